// (v3/v4 step 5) one read of X: the row-group partials of dA = γ·Vᵀ·D(X), deterministic:
//   X [n, d_in] T, Vg [n, r_pad] T = T(γ·V)
//   → ws [groups, r, d_in] f32: ws[g][j][c] = s·Σ_{i in group g} Vg[i,j]·M(X)[i,c]
//   (M: the mask zeroes dropped elements, s = 1/(1-p) the dropout scale, so s·M(X) = D(X));
//   rslora_reduce_groups_v1 with gamma = 1 then forms dA (=|+=) Σ_g ws[g] in fixed g order.
// Block (rank chunk z, 64-column tile ct of d_in, row group g): streams the group's rows of that
// column tile in 64×64 X tiles (16-byte loads, mask from Philox in registers, next tile in flight)
// with the matching 64×RC Vg tile; the RC×64 partial on tensor cores (wmma 16×16×16, fp32
// accumulation in registers), written once. X is read once per rank chunk; the small Vg is re-read
// per column tile (from L2). Partial traffic: groups·r·d_in·4 bytes.
// Launch (grid rule mb_da): grid (ceil(r/RC), ceil(d_in/64), groups), block 256, no dynamic shared memory.
#pragma once
#include "mb_common.cuh"

template <typename T, int RC>
__device__ __forceinline__ void mb_da(const RsMbDaParams& p) {
    using namespace rsmb;
    using namespace nvcuda;
    constexpr int FM = RC / 16;                 // fragments over the rank rows
    constexpr int FW = FM >= 2 ? FM / 2 : 1;    // per warp: warp w owns column fragment w % 4 and rank fragments w / 4 + 2t
    constexpr int LX = kBK + kPadT, LR = RC + kPadT, LE = kBK + kPadF;
    constexpr int kStage = (kBM * LX + kBM * LR) * 2;
    constexpr int kEpi = RC * LE * 4;
    __shared__ __align__(128) unsigned char sm[kStage > kEpi ? kStage : kEpi];
    T* xs = reinterpret_cast<T*>(sm);
    T* vs = xs + kBM * LX;
    float* es = reinterpret_cast<float*>(sm);

    const int j0 = blockIdx.x * RC;
    const int c0 = blockIdx.y * kBK;
    const int g = blockIdx.z;
    const int row_begin = g * p.rows_per_group, row_end = min(p.n, row_begin + p.rows_per_group);
    if (p.rows_per_group % kBM != 0) __trap();
    const int warp = threadIdx.x >> 5, fn = warp & 3, fm0 = warp >> 2;
    const bool mma_warp = fm0 < FM;
    const T* x = static_cast<const T*>(p.x);
    const T* vg = static_cast<const T*>(p.vg);
    const bool vec_x = vec_ok<T>(x, p.d_in);
    const bool vec_v = vec_ok<T>(vg, p.r_pad);

    Acc acc[FW];
#pragma unroll
    for (int t = 0; t < FW; ++t) wmma::fill_fragment(acc[t], 0.0f);
    Stager<T, kBM, kBK> sx;
    Stager<T, kBM, RC> sv;
    sx.load(x, p.d_in, row_begin, c0, row_end, p.d_in, vec_x);
    sv.load(vg, p.r_pad, row_begin, j0, row_end, p.r_pad, vec_v);
    if (p.drop.enabled) sx.mask(p.drop, row_begin, c0);
    for (int i0 = row_begin; i0 < row_end; i0 += kBM) {
        sx.store(xs);
        sv.store(vs);
        __syncthreads();
        if (i0 + kBM < row_end) {
            sx.load(x, p.d_in, i0 + kBM, c0, row_end, p.d_in, vec_x);
            sv.load(vg, p.r_pad, i0 + kBM, j0, row_end, p.r_pad, vec_v);
            if (p.drop.enabled) sx.mask(p.drop, i0 + kBM, c0);
        }
        if (mma_warp) {
#pragma unroll
            for (int kk = 0; kk < kBM; kk += 16) {
                FragB<T> b;  // B(i, c) = M(X)[i0 + kk + i, c0 + 16fn + c]
                wmma::load_matrix_sync(b, xs + kk * LX + 16 * fn, LX);
#pragma unroll
                for (int t = 0; t < FW; ++t) {
                    FragAT<T> a;  // A(j, i) = Vg[i0 + kk + i, j0 + 16fm + j]: column-major over the Vg tile
                    wmma::load_matrix_sync(a, vs + kk * LR + 16 * (fm0 + 2 * t), LR);
                    wmma::mma_sync(acc[t], a, b, acc[t]);
                }
            }
        }
        __syncthreads();
    }
    if (mma_warp) {
#pragma unroll
        for (int t = 0; t < FW; ++t) wmma::store_matrix_sync(es + (16 * (fm0 + 2 * t)) * LE + 16 * fn, acc[t], LE, wmma::mem_row_major);
    }
    __syncthreads();
    const float s = drop_scale(p.drop);
    float* ws = p.ws + (int64_t)g * p.r * p.d_in;
    for (int e = threadIdx.x; e < RC * kBK; e += kThreads) {
        const int jj = e / kBK, cc = e % kBK;
        const int j = j0 + jj, col = c0 + cc;
        if (j < p.r && col < p.d_in) ws[(int64_t)j * p.d_in + col] = s * es[jj * LE + cc];
    }
}

RS_EXPORT_MB(da, 16, 2, RsMbDaParams, mb_da)
RS_EXPORT_MB(da, 64, 2, RsMbDaParams, mb_da)
RS_EXPORT_MB(da, 128, 1, RsMbDaParams, mb_da)
