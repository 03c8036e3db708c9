// (v3/v4 step 1) U = D(X)·Atᵀ  [n, r] f32 (no γ; when u != null) and Ug = T(γ·U) [n, r_pad] T, pad 0.
//   X [n, d_in] T (read once), At [r, d_in] T (from mb_prep; L2-resident, re-read per row tile).
// Block (row tile of 64 rows, rank chunk of RC columns): streams X in 64×64 tiles (16-byte loads,
// the next tile in registers while the current one is multiplied; the mask of the next tile from
// Philox meanwhile), zeroing dropped elements; the 64×RC product on tensor cores (wmma 16×16×16,
// fp32 accumulation); the dropout scale and γ in the epilogue. For r > RC the grid's y covers the
// rank chunks (X is then read once per chunk, from L2 when the chunks of a row tile run together).
// Warps: 4 row slabs × 2 column halves (RC ≥ 32) or 4 × 1 (RC = 16: warps 4-7 only stage).
// Launch (grid rule mb_rows): grid (ceil(n/64), ceil(r/RC)), block 256, no dynamic shared memory.
#pragma once
#include "mb_common.cuh"

template <typename T, int RC>
__device__ __forceinline__ void mb_down(const RsMbDownParams& p) {
    using namespace rsmb;
    using namespace nvcuda;
    constexpr int WN = RC >= 32 ? 2 : 1;  // warps over the rank columns
    constexpr int FN = RC / 16 / WN;      // 16-column fragments per warp
    constexpr int LX = kBK + kPadT, LA = kBK + kPadT;
    constexpr int EC = RC < 64 ? RC : 64;  // epilogue column chunk
    constexpr int LE = EC + kPadF;
    constexpr int kStage = (kBM * LX + RC * LA) * 2;
    constexpr int kEpi = kBM * LE * 4;
    __shared__ __align__(128) unsigned char sm[kStage > kEpi ? kStage : kEpi];
    T* xs = reinterpret_cast<T*>(sm);
    T* as = xs + kBM * LX;
    float* es = reinterpret_cast<float*>(sm);

    const int i0 = blockIdx.x * kBM;
    const int j0 = blockIdx.y * RC;
    const int warp = threadIdx.x >> 5, wm = warp & 3, wn = warp >> 2;
    const bool mma_warp = wn < WN;
    const T* x = static_cast<const T*>(p.x);
    const T* at = static_cast<const T*>(p.at);
    const bool vec = vec_ok<T>(x, p.d_in) && vec_ok<T>(at, p.d_in);

    Acc acc[FN];
#pragma unroll
    for (int f = 0; f < FN; ++f) wmma::fill_fragment(acc[f], 0.0f);

    Stager<T, kBM, kBK> sx;
    Stager<T, RC, kBK> sa;
    sx.load(x, p.d_in, i0, 0, p.n, p.d_in, vec);
    sa.load(at, p.d_in, j0, 0, p.r, p.d_in, vec);
    if (p.drop.enabled) sx.mask(p.drop, i0, 0);
    for (int k0 = 0; k0 < p.d_in; k0 += kBK) {
        sx.store(xs);
        sa.store(as);
        __syncthreads();
        if (k0 + kBK < p.d_in) {  // the next tile in flight while this one is multiplied
            sx.load(x, p.d_in, i0, k0 + kBK, p.n, p.d_in, vec);
            sa.load(at, p.d_in, j0, k0 + kBK, p.r, p.d_in, vec);
            if (p.drop.enabled) sx.mask(p.drop, i0, k0 + kBK);
        }
        if (mma_warp) {
#pragma unroll
            for (int kk = 0; kk < kBK; kk += 16) {
                FragA<T> a;
                wmma::load_matrix_sync(a, xs + (16 * wm) * LX + kk, LX);  // A(i, k) = D(X)[i0 + 16wm + i, k0 + kk + k]
#pragma unroll
                for (int f = 0; f < FN; ++f) {
                    FragBT<T> b;  // B(k, j) = At[j0 + col + j, k0 + kk + k] (col-major over the At tile)
                    wmma::load_matrix_sync(b, as + (16 * (wn * FN + f)) * LA + kk, LA);
                    wmma::mma_sync(acc[f], a, b, acc[f]);
                }
            }
        }
        __syncthreads();
    }
    // epilogue, EC columns at a time: U = s·acc, Ug = T(γ·s·acc) (s = the dropout scale), pads 0
    const float s = drop_scale(p.drop);
    T* ug = static_cast<T*>(p.ug);
#pragma unroll
    for (int cc = 0; cc < RC; cc += EC) {
        if (mma_warp) {
#pragma unroll
            for (int f = 0; f < FN; ++f) {
                const int col = 16 * (wn * FN + f);
                if (col >= cc && col < cc + EC) wmma::store_matrix_sync(es + (16 * wm) * LE + (col - cc), acc[f], LE, wmma::mem_row_major);
            }
        }
        __syncthreads();
        for (int e = threadIdx.x; e < kBM * EC; e += kThreads) {
            const int ii = e / EC, jj = e % EC;
            const int i = i0 + ii, j = j0 + cc + jj;
            if (i < p.n && j < p.r_pad) {
                if (j < p.r) {
                    const float uval = s * es[ii * LE + jj];
                    if (p.u != nullptr) p.u[(int64_t)i * p.r + j] = uval;
                    ug[(int64_t)i * p.r_pad + j] = rs::from_f32<T>(p.gamma * uval);
                } else {
                    ug[(int64_t)i * p.r_pad + j] = rs::from_f32<T>(0.0f);
                }
            }
        }
        __syncthreads();
    }
}

RS_EXPORT_MB(down, 16, 2, RsMbDownParams, mb_down)
RS_EXPORT_MB(down, 64, 2, RsMbDownParams, mb_down)
RS_EXPORT_MB(down, 128, 2, RsMbDownParams, mb_down)
RS_EXPORT_MB(down, 256, 1, RsMbDownParams, mb_down)
