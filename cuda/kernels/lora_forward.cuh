// (2) Y = X·Wᵀ + bias + γ·U·Bᵀ
//   X [n, d_in] T, W [d_out, d_in] T, bias [d_out] T (nullable), U [n, r] f32, B [d_out, r] f32
//   → Y [n, d_out] T (assigned).
// The LoRA term is an extra K-segment of the same fp32 accumulator (k = d_in .. d_in + r, with γ
// folded into U's tile on load), so Y is written once and rounded once. r = 0: base layer only.
// Launch: grid (ceil(d_out/64), ceil(n/64)), block 256.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_forward_v1(const RsLoraForwardParams& p) {
    __shared__ __align__(16) rs::TileRow ps[rs::kTileK];
    __shared__ __align__(16) rs::TileRow qs[rs::kTileK];
    const int n0 = blockIdx.x * rs::kTile;  // output columns o
    const int m0 = blockIdx.y * rs::kTile;  // rows i
    const RsDropout none = {0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    float acc[4][4];
    rs::zero(acc);
    // segment 1, k = c < d_in:  P(i, c) = X[i, c],  Q(o, c) = W[o, c]
    const rs::Operand<T, true, false> xp{static_cast<const T*>(p.x), p.d_in, p.n, 1.0f};
    const rs::Operand<T, true, false> wq{static_cast<const T*>(p.w), p.d_in, p.d_out, 1.0f};
    rs::gemm_segment(acc, ps, qs, xp, wq, m0, n0, 0, p.d_in, none);
    // segment 2, k = j < r:  P(i, j) = γ·U[i, j],  Q(o, j) = B[o, j]
    if (p.r > 0) {
        const rs::Operand<float, true, false> up{p.u, p.r, p.n, p.gamma};
        const rs::Operand<float, true, false> bq{p.lora_b, p.r, p.d_out, 1.0f};
        rs::gemm_segment(acc, ps, qs, up, bq, m0, n0, 0, p.r, none);
    }
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    const T* bias = static_cast<const T*>(p.bias);
    T* y = static_cast<T*>(p.y);
#pragma unroll
    for (int b = 0; b < 4; ++b) {
        const int o = n0 + 4 * tx + b;
        if (o >= p.d_out) {
            continue;
        }
        const float bo = bias != nullptr ? rs::to_f32<T>(bias[o]) : 0.0f;
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int i = m0 + 4 * ty + a;
            if (i < p.n) {
                y[(int64_t)i * p.d_out + o] = rs::from_f32<T>(acc[a][b] + bo);
            }
        }
    }
}

RS_EXPORT_DTYPES(lora_forward_v1, RsLoraForwardParams, lora_forward_v1)
