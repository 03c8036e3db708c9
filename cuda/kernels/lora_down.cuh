// (1) U = D(X)·Aᵀ   X [n, d_in] T, A [r, d_in] f32  →  U [n, r] f32 (assigned, no γ).
// D is inverted dropout with the mask regenerated in registers from Philox (RsDropout): neither
// D(X) nor the mask is ever stored. Launch: grid (ceil(r/64), ceil(n/64)), block 256.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_down_v1(const RsLoraDownParams& p) {
    __shared__ __align__(16) rs::TileRow ps[rs::kTileK];
    __shared__ __align__(16) rs::TileRow qs[rs::kTileK];
    const int n0 = blockIdx.x * rs::kTile;  // rank columns j
    const int m0 = blockIdx.y * rs::kTile;  // rows i
    float acc[4][4];
    rs::zero(acc);
    // m = i, n = j, k = c:  P(i, c) = D(X)[i, c],  Q(j, c) = A[j, c]
    const rs::Operand<T, true, true> xp{static_cast<const T*>(p.x), p.d_in, p.n, 1.0f};
    const rs::Operand<float, true, false> aq{p.lora_a, p.d_in, p.r, 1.0f};
    rs::gemm_segment(acc, ps, qs, xp, aq, m0, n0, 0, p.d_in, p.drop);
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int i = m0 + 4 * ty + a;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            const int j = n0 + 4 * tx + b;
            if (i < p.n && j < p.r) {
                p.u[(int64_t)i * p.r + j] = acc[a][b];
            }
        }
    }
}

RS_EXPORT_DTYPES(lora_down_v1, RsLoraDownParams, lora_down_v1)
