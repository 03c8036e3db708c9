// (4) Row-group partials of dA = γ·Vᵀ·D(X), one pass over X per 64-wide rank tile.
//   V [n, r] f32, X [n, d_in] T  →  ws [G, r, d_in] f32, ws[g][j][c] = Σ_{i in group g} V[i,j]·D(X)[i,c]
//   (no γ). Split over N into G groups of rows_per_group rows; rslora_reduce_groups_v1 then forms
//   dA (=|+=) γ·Σ_g ws[g] in fixed g order, so the result is deterministic (bit-identical on every
//   run and in graph replay). D(X) is regenerated from Philox exactly as in the forward.
// Launch: grid (ceil(d_in/64), ceil(r/64), G = ceil(n / rows_per_group)), block 256.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_backward_da_v1(const RsLoraBackwardDaParams& p) {
    __shared__ __align__(16) rs::TileRow ps[rs::kTileK];
    __shared__ __align__(16) rs::TileRow qs[rs::kTileK];
    const int n0 = blockIdx.x * rs::kTile;  // input columns c
    const int m0 = blockIdx.y * rs::kTile;  // rank rows j
    const int g = blockIdx.z;
    const int row_begin = g * p.rows_per_group;
    const int row_end = min(p.n, row_begin + p.rows_per_group);
    float acc[4][4];
    rs::zero(acc);
    // m = j, n = c, k = i:  P(j, i) = V[i, j] (M-major),  Q(c, i) = D(X)[i, c] (M-major, masked)
    const rs::Operand<float, false, false> vp{p.v, p.r, p.r, 1.0f};
    const rs::Operand<T, false, true> xq{static_cast<const T*>(p.x), p.d_in, p.d_in, 1.0f};
    rs::gemm_segment(acc, ps, qs, vp, xq, m0, n0, row_begin, row_end, p.drop);
    float* ws = p.ws + (int64_t)g * p.r * p.d_in;
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int j = m0 + 4 * ty + a;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            const int c = n0 + 4 * tx + b;
            if (j < p.r && c < p.d_in) {
                ws[(int64_t)j * p.d_in + c] = acc[a][b];
            }
        }
    }
}

RS_EXPORT_DTYPES(lora_backward_da_v1, RsLoraBackwardDaParams, lora_backward_da_v1)
