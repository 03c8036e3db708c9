// (5) dX = dY·W + γ·D'(V·A)
//   dY [n, d_out] T, W [d_out, d_in] T, V [n, r] f32, A [r, d_in] f32  →  dX [n, d_in] T (assigned).
// Two fp32 accumulators per element (the mask applies to the LoRA term only): base over k = o < d_out,
// LoRA over k = j < r; the epilogue applies the forward's mask (one Philox call per 4 columns of a
// row) and γ, adds, and rounds once. r = 0: dX = dY·W. Launch: grid (ceil(d_in/64), ceil(n/64)), block 256.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_backward_dx_v1(const RsLoraBackwardDxParams& p) {
    __shared__ __align__(16) rs::TileRow ps[rs::kTileK];
    __shared__ __align__(16) rs::TileRow qs[rs::kTileK];
    const RsDropout none = {0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    const int n0 = blockIdx.x * rs::kTile;  // input columns c
    const int m0 = blockIdx.y * rs::kTile;  // rows i
    float base[4][4];
    float lora[4][4];
    rs::zero(base);
    rs::zero(lora);
    // base, k = o:  P(i, o) = dY[i, o] (K-major),  Q(c, o) = W[o, c] (M-major)
    const rs::Operand<T, true, false> dyp{static_cast<const T*>(p.dy), p.d_out, p.n, 1.0f};
    const rs::Operand<T, false, false> wq{static_cast<const T*>(p.w), p.d_in, p.d_in, 1.0f};
    rs::gemm_segment(base, ps, qs, dyp, wq, m0, n0, 0, p.d_out, none);
    // LoRA, k = j:  P(i, j) = V[i, j] (K-major),  Q(c, j) = A[j, c] (M-major)
    if (p.r > 0) {
        const rs::Operand<float, true, false> vp{p.v, p.r, p.n, 1.0f};
        const rs::Operand<float, false, false> aq{p.lora_a, p.d_in, p.d_in, 1.0f};
        rs::gemm_segment(lora, ps, qs, vp, aq, m0, n0, 0, p.r, none);
    }
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    const int c0 = n0 + 4 * tx;  // a multiple of 4: one Philox call per row covers the four columns
    T* dx = static_cast<T*>(p.dx);
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int i = m0 + 4 * ty + a;
        if (i >= p.n) {
            continue;
        }
        float m[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        if (p.r > 0 && p.drop.enabled) {
            rs_dropout_quad(p.drop, (uint32_t)i, (uint32_t)c0, m);
        }
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            const int c = c0 + b;
            if (c < p.d_in) {
                const float l = m[b] != 0.0f ? lora[a][b] * m[b] : 0.0f;  // D'(V·A), fp32
                dx[(int64_t)i * p.d_in + c] = rs::from_f32<T>(base[a][b] + p.gamma * l);
            }
        }
    }
}

RS_EXPORT_DTYPES(lora_backward_dx_v1, RsLoraBackwardDxParams, lora_backward_dx_v1)
