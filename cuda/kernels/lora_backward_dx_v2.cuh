// (5) v2 — dX = dY·W + γ·D'(V·A) on tensor cores (bf16/fp16 only; NOT VALIDATED ON HARDWARE YET,
// opt-in with -Drslora.cuda.kernels=v2).
//   dY [n, d_out] T, W [d_out, d_in] T, V [n, r] f32, A [r, d_in] f32  →  dX [n, d_in] T (assigned).
// Two fp32 accumulators (the mask applies to the LoRA term only): base over k = o, LoRA over k = j
// (V and A staged as T); the epilogue applies the forward's mask (one Philox call per 4 columns of a
// row), γ, adds, rounds once. Launch: grid (ceil(d_in/64), ceil(n/64)), block 128. Same params as v1.
#pragma once
#include "../rslora_mma.cuh"

template <typename T>
__device__ __forceinline__ void lora_backward_dx_v2(const RsLoraBackwardDxParams& p) {
    __shared__ __align__(128) rs2::Stage<T> s;
    __shared__ __align__(128) float cb[rs2::kTile][rs2::kLdC];
    __shared__ __align__(128) float cl[rs2::kTile][rs2::kLdC];
    const int n0 = blockIdx.x * rs2::kTile;  // input columns c
    const int m0 = blockIdx.y * rs2::kTile;  // rows i
    rs2::Acc acc[2][2];
    rs2::zero<T>(acc);
    // base, k = o: P(i, o) = dY[i, o] (K-major), Q(c, o) = W[o, c] (M-major)
    rs2::mma_segment<T, T, true, T, false>(acc, s, static_cast<const T*>(p.dy), p.d_out, p.n, 1.0f,
                                           static_cast<const T*>(p.w), p.d_in, p.d_in, 1.0f, m0, n0, p.d_out);
    rs2::store(cb, acc);
    rs2::zero<T>(acc);
    // LoRA, k = j: P(i, j) = V[i, j] (K-major), Q(c, j) = A[j, c] (M-major)
    if (p.r > 0) {
        rs2::mma_segment<T, float, true, float, false>(acc, s, p.v, p.r, p.n, 1.0f, p.lora_a, p.d_in, p.d_in, 1.0f,
                                                       m0, n0, p.r);
    }
    rs2::store(cl, acc);
    __syncthreads();
    T* dx = static_cast<T*>(p.dx);
    // one quad (row, 4 aligned columns) per iteration: one Philox call
    for (int e = threadIdx.x; e < rs2::kTile * (rs2::kTile / 4); e += rs2::kThreads) {
        const int mm = e / (rs2::kTile / 4), nq = (e % (rs2::kTile / 4)) * 4;
        const int i = m0 + mm, c0 = n0 + nq;
        if (i >= p.n) {
            continue;
        }
        float m[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        if (p.r > 0 && p.drop.enabled) {
            rs_dropout_quad(p.drop, (uint32_t)i, (uint32_t)c0, m);
        }
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            if (c0 + b < p.d_in) {
                const float l = m[b] != 0.0f ? cl[mm][nq + b] * m[b] : 0.0f;
                dx[(int64_t)i * p.d_in + c0 + b] = rs::from_f32<T>(cb[mm][nq + b] + p.gamma * l);
            }
        }
    }
}

RS_EXPORT_V2(lora_backward_dx_v2, RsLoraBackwardDxParams, lora_backward_dx_v2)
