// (v3/v4 step 4) one read of dY for both V = dY·B and dB = γ·dYᵀ·U, deterministic (no atomics):
//   dY [n, d_out] T, Bt [d_out, r_pad] T, Ug [n, r_pad] T = T(γ·U)
//   → v_ws [chunks, n, r] f32:  v_ws[c][i][j] = Σ_{o in chunk c} dY[i,o]·Bt[o,j]
//     db_ws [groups, d_out, r] f32: db_ws[g][o][j] = Σ_{i in group g} dY[i,o]·Ug[i,j]
//   (rslora_mb_vdb_reduce_* sums them in fixed order into V, Vg = T(γ·V) and dB).
// Block (rank chunk z, column chunk c, row group g): for each 64-row tile of the group it stages Ug
// once, then streams the chunk's dY in 64×64 tiles (16-byte loads, next tile in registers) with the
// matching 64×RC Bt tile; each dY tile feeds V += dY·Bt (fragments in registers, one row tile at a
// time) and the chunk's dB accumulator += dYᵀ·Ug (fp32 in shared memory, up to
// vdb_chunk_cols(RC) × RC,
// accumulated over the group's row tiles, written once at the end). Both products on tensor cores
// (wmma 16×16×16, fp32 accumulation). Partial traffic: chunks·n·r·4 + groups·d_out·r·4 bytes.
// Launch (grid rule mb_vdb): grid (ceil(r/RC), chunks, groups), block 256, dynamic shared memory
// rsmb::vdb_smem_bytes(RC) (the table's smem column), cols_per_chunk <= rsmb::vdb_chunk_cols(RC).
#pragma once
#include "mb_common.cuh"

namespace rsmb {
// Shared memory of the vdb kernel: the staging tiles (dY 64×64, Bt 64×RC, Ug 64×RC; or, aliased,
// the fp32 V staging 64×RC) plus the chunk's fp32 dB accumulator, as many 64-column tiles of d_out
// as fit in 96 KB in all (so the kernel launches on every sm_80+ part, 99 KB on sm_86/89).
__host__ __device__ constexpr int vdb_stage_bytes(int rc) {
    return (kBM * (kBK + kPadT) + 2 * kBM * (rc + kPadT)) * 2 > kBM * (rc + kPadF) * 4
               ? (kBM * (kBK + kPadT) + 2 * kBM * (rc + kPadT)) * 2
               : kBM * (rc + kPadF) * 4;
}
__host__ __device__ constexpr int vdb_chunk_cols(int rc) {
    return (98304 - vdb_stage_bytes(rc)) / ((rc + kPadF) * 4) / kBK * kBK;
}
__host__ __device__ constexpr int vdb_smem_bytes(int rc) { return vdb_chunk_cols(rc) * (rc + kPadF) * 4 + vdb_stage_bytes(rc); }
static_assert(vdb_chunk_cols(16) == 1024 && vdb_smem_bytes(16) == 97280, "vdb r16 layout (kernels.table)");
static_assert(vdb_chunk_cols(64) == 256 && vdb_smem_bytes(64) == 97280, "vdb r64 layout (kernels.table)");
}  // namespace rsmb

template <typename T, int RC>
__device__ __forceinline__ void mb_vdb(const RsMbVdbParams& p) {
    using namespace rsmb;
    using namespace nvcuda;
    constexpr int WN = RC >= 32 ? 2 : 1;
    constexpr int FN = RC / 16 / WN;
    constexpr int OPC = vdb_chunk_cols(RC);
    constexpr int LY = kBK + kPadT;  // dY tile [64 rows][64 o]
    constexpr int LR = RC + kPadT;   // Bt tile [64 o][RC], Ug tile [64 rows][RC]
    constexpr int LF = RC + kPadF;   // fp32: dB accumulator [OPC][RC], V staging [64][RC]
    static_assert(OPC % kBK == 0, "chunk capacity is whole 64-column tiles");
    RS_DYNAMIC_SMEM(smem);
    float* dbs = reinterpret_cast<float*>(smem);
    T* ys = reinterpret_cast<T*>(smem + OPC * LF * 4);
    T* bs = ys + kBM * LY;
    T* us = bs + kBK * LR;
    float* vs = reinterpret_cast<float*>(smem + OPC * LF * 4);  // aliases ys/bs/us after a row tile

    const int j0 = blockIdx.x * RC;
    const int c = blockIdx.y, g = blockIdx.z;
    const int o_begin = c * p.cols_per_chunk, o_end = min(p.d_out, o_begin + p.cols_per_chunk);
    const int row_begin = g * p.rows_per_group, row_end = min(p.n, row_begin + p.rows_per_group);
    if (p.cols_per_chunk > OPC || p.cols_per_chunk % kBK != 0 || p.rows_per_group % kBM != 0) __trap();
    const int warp = threadIdx.x >> 5, wm = warp & 3, wn = warp >> 2;
    const bool mma_warp = wn < WN;
    const T* dy = static_cast<const T*>(p.dy);
    const T* bt = static_cast<const T*>(p.bt);
    const T* ug = static_cast<const T*>(p.ug);
    const bool vec_y = vec_ok<T>(dy, p.d_out);
    const bool vec_r = vec_ok<T>(bt, p.r_pad) && vec_ok<T>(ug, p.r_pad);

    for (int e = threadIdx.x; e < OPC * LF; e += kThreads) dbs[e] = 0.0f;
    for (int i0 = row_begin; i0 < row_end; i0 += kBM) {
        {
            Stager<T, kBM, RC> su;
            su.load(ug, p.r_pad, i0, j0, row_end, p.r_pad, vec_r);
            su.store(us);
        }
        Stager<T, kBM, kBK> sy;
        Stager<T, kBK, RC> sb;
        sy.load(dy, p.d_out, i0, o_begin, row_end, o_end, vec_y);
        sb.load(bt, p.r_pad, o_begin, j0, o_end, p.r_pad, vec_r);
        Acc vacc[FN];
#pragma unroll
        for (int f = 0; f < FN; ++f) wmma::fill_fragment(vacc[f], 0.0f);
        for (int o0 = o_begin; o0 < o_end; o0 += kBK) {
            sy.store(ys);
            sb.store(bs);
            __syncthreads();
            if (o0 + kBK < o_end) {
                sy.load(dy, p.d_out, i0, o0 + kBK, row_end, o_end, vec_y);
                sb.load(bt, p.r_pad, o0 + kBK, j0, o_end, p.r_pad, vec_r);
            }
            if (mma_warp) {
#pragma unroll
                for (int kk = 0; kk < kBK; kk += 16) {  // V(i, j) += Σ_o dY(i, o)·Bt(o, j)
                    FragA<T> a;
                    wmma::load_matrix_sync(a, ys + (16 * wm) * LY + kk, LY);
#pragma unroll
                    for (int f = 0; f < FN; ++f) {
                        FragB<T> b;
                        wmma::load_matrix_sync(b, bs + kk * LR + 16 * (wn * FN + f), LR);
                        wmma::mma_sync(vacc[f], a, b, vacc[f]);
                    }
                }
                float* dbrow = dbs + (o0 - o_begin + 16 * wm) * LF;
#pragma unroll
                for (int f = 0; f < FN; ++f) {  // dB(o, j) += Σ_i dY(i, o)·Ug(i, j)
                    const int col = 16 * (wn * FN + f);
                    Acc t;
                    wmma::load_matrix_sync(t, dbrow + col, LF, wmma::mem_row_major);
#pragma unroll
                    for (int kk = 0; kk < kBM; kk += 16) {
                        FragAT<T> a;  // A(o, i) = dY tile [i][o]: column-major over the dY tile
                        wmma::load_matrix_sync(a, ys + kk * LY + 16 * wm, LY);
                        FragB<T> b;
                        wmma::load_matrix_sync(b, us + kk * LR + col, LR);
                        wmma::mma_sync(t, a, b, t);
                    }
                    wmma::store_matrix_sync(dbrow + col, t, LF, wmma::mem_row_major);
                }
            }
            __syncthreads();
        }
        // this row tile's V over the chunk → v_ws[c]
        if (mma_warp) {
#pragma unroll
            for (int f = 0; f < FN; ++f) wmma::store_matrix_sync(vs + (16 * wm) * LF + 16 * (wn * FN + f), vacc[f], LF, wmma::mem_row_major);
        }
        __syncthreads();
        float* vout = p.v_ws + (int64_t)c * p.n * p.r;
        for (int e = threadIdx.x; e < kBM * RC; e += kThreads) {
            const int ii = e / RC, jj = e % RC;
            const int i = i0 + ii, j = j0 + jj;
            if (i < row_end && j < p.r) vout[(int64_t)i * p.r + j] = vs[ii * LF + jj];
        }
        __syncthreads();  // vs aliases the staging tiles of the next row tile
    }
    float* dbout = p.db_ws + (int64_t)g * p.d_out * p.r;
    for (int e = threadIdx.x; e < OPC * RC; e += kThreads) {
        const int oo = e / RC, jj = e % RC;
        const int o = o_begin + oo, j = j0 + jj;
        if (o < o_end && j < p.r) dbout[(int64_t)o * p.r + j] = dbs[oo * LF + jj];
    }
}

// two rank classes: the V partials grow with the columns per block (chunks·n·r·4 bytes, chunks =
// d_out / vdb_chunk_cols(RC)), so ranks above 64 run as 64-column rank chunks (grid x)
RS_EXPORT_MB(vdb, 16, 2, RsMbVdbParams, mb_vdb)
RS_EXPORT_MB(vdb, 64, 1, RsMbVdbParams, mb_vdb)
