// (6) Merge / unmerge: W ← round(W + signed_gamma·B·A), ΔW computed in fp32 and added in fp32,
// rounded once to W's dtype (signed_gamma = +γ merge, −γ unmerge; SPEC.md §6):
//   s = Σ_j B[o,j]·A[j,c] (fp32 FMA, j ascending), δ = fl32(signed_gamma·s), W' = round_T(fl32(W + δ)).
// __fmul_rn/__fadd_rn keep nvcc from contracting W + signed_gamma·s into one FMA (it did until
// 2026-12: one rounding less than SPEC and MergeMath/PEFT; MergeRule in the Java tests emulates both).
//   W [d_out, d_in] T (in place), B [d_out, r] f32, A [r, d_in] f32.
// Launch: grid (ceil(d_in/64), ceil(d_out/64)), block 256.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_merge_v1(const RsMergeParams& p) {
    __shared__ __align__(16) rs::TileRow ps[rs::kTileK];
    __shared__ __align__(16) rs::TileRow qs[rs::kTileK];
    const RsDropout none = {0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    const int n0 = blockIdx.x * rs::kTile;  // columns c
    const int m0 = blockIdx.y * rs::kTile;  // rows o
    float acc[4][4];
    rs::zero(acc);
    // m = o, n = c, k = j:  P(o, j) = B[o, j] (K-major),  Q(c, j) = A[j, c] (M-major)
    const rs::Operand<float, true, false> bp{p.lora_b, p.r, p.d_out, 1.0f};
    const rs::Operand<float, false, false> aq{p.lora_a, p.d_in, p.d_in, 1.0f};
    rs::gemm_segment(acc, ps, qs, bp, aq, m0, n0, 0, p.r, none);
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    T* w = static_cast<T*>(p.w);
#pragma unroll
    for (int a = 0; a < 4; ++a) {
        const int o = m0 + 4 * ty + a;
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            const int c = n0 + 4 * tx + b;
            if (o < p.d_out && c < p.d_in) {
                T* e = w + (int64_t)o * p.d_in + c;
                *e = rs::from_f32<T>(__fadd_rn(rs::to_f32<T>(*e), __fmul_rn(p.signed_gamma, acc[a][b])));
            }
        }
    }
}

RS_EXPORT_DTYPES(lora_merge_v1, RsMergeParams, lora_merge_v1)
