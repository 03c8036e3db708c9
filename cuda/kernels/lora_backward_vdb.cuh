// (3) V = dY·B and the row-group partials of dB = γ·dYᵀ·U, from one read of dY per rank tile.
//   dY [n, d_out] T, B [d_out, r] f32, U [n, r] f32
//   → V [n, r] f32 (assigned), ws [G, d_out, r] f32 with ws[g][o][j] = Σ_{i in group g} dY[i,o]·U[i,j]
//   (no γ; rslora_reduce_groups_v1 forms dB (=|+=) γ·Σ_g ws[g] in fixed g order: deterministic).
// Block (jt, g): rank columns j in [64·jt, 64·jt + 64), rows i of group g
//   [g·rows_per_group, min(n, (g+1)·rows_per_group)), walked in 64-row sub-tiles. For each
//   sub-tile it loads U's 64×64 tile once, then streams dY in 64×16 tiles: each dY tile feeds both
//   V += dY·B (registers, 4×4 per thread) and the 16×64 dB partial (read-modify-write of the
//   block's own ws slot, no other block touches it: no atomics). dY is read once per 64-wide rank
//   tile (exactly once for r <= 64).
// Launch: grid (ceil(r/64), G = ceil(n / rows_per_group)), block 256; rows_per_group % 64 == 0.
#pragma once
#include "../rslora_tile.cuh"

template <typename T>
__device__ __forceinline__ void lora_backward_vdb_v1(const RsLoraBackwardVdbParams& p) {
    __shared__ __align__(16) rs::TileRow us[rs::kTile];    // us[ii][jj] = U[i0 + ii, j0 + jj]
    __shared__ __align__(16) rs::TileRow ds[rs::kTileK];   // ds[kk][ii] = dY[i0 + ii, o0 + kk]
    __shared__ __align__(16) rs::TileRow bs[rs::kTileK];   // bs[kk][jj] = B[o0 + kk, j0 + jj]
    const RsDropout none = {0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    const int j0 = blockIdx.x * rs::kTile;
    const int g = blockIdx.y;
    const int row_begin = g * p.rows_per_group;
    const int row_end = min(p.n, row_begin + p.rows_per_group);
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    const int o_part = threadIdx.x >> 4;            // dB partial: row o0 + o_part (0..15)
    const int j_part = (threadIdx.x & 15) * 4;      //             columns j0 + j_part .. +3
    float* ws = p.ws + (int64_t)g * p.d_out * p.r;
    // U viewed as [K = i][M = j] (M-major), dY as [M = i][K = o] (K-major), B as [K = o][N = j].
    const rs::Operand<float, false, false> uop{p.u, p.r, p.r, 1.0f};
    const rs::Operand<T, true, false> dyop{static_cast<const T*>(p.dy), p.d_out, row_end, 1.0f};
    const rs::Operand<float, false, false> bop{p.lora_b, p.r, p.r, 1.0f};

    for (int i0 = row_begin; i0 < row_end; i0 += rs::kTile) {
        const bool first = i0 == row_begin;
#pragma unroll
        for (int q = 0; q < rs::kTile / rs::kTileK; ++q) {
            // rows i0 + 16q .. +15 of U; rows >= row_end are zero (they belong to the next group)
            rs::load_tile(us + q * rs::kTileK, uop, j0, i0 + q * rs::kTileK, row_end, none);
        }
        float acc[4][4];
        rs::zero(acc);
        for (int o0 = 0; o0 < p.d_out; o0 += rs::kTileK) {
            rs::load_tile(ds, dyop, i0, o0, p.d_out, none);
            rs::load_tile(bs, bop, j0, o0, p.d_out, none);
            __syncthreads();
            // V tile: acc[a][b] += Σ_kk dY[i0 + 4ty + a, o0 + kk]·B[o0 + kk, j0 + 4tx + b]
#pragma unroll
            for (int kk = 0; kk < rs::kTileK; ++kk) {
                const float4 pa = *reinterpret_cast<const float4*>(&ds[kk][4 * ty]);
                const float4 qb = *reinterpret_cast<const float4*>(&bs[kk][4 * tx]);
                const float pv[4] = {pa.x, pa.y, pa.z, pa.w};
                const float qv[4] = {qb.x, qb.y, qb.z, qb.w};
#pragma unroll
                for (int a = 0; a < 4; ++a) {
#pragma unroll
                    for (int b = 0; b < 4; ++b) {
                        acc[a][b] = fmaf(pv[a], qv[b], acc[a][b]);
                    }
                }
            }
            // dB partial: part[b] = Σ_ii dY[i0 + ii, o0 + o_part]·U[i0 + ii, j0 + j_part + b]
            float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll 8
            for (int ii = 0; ii < rs::kTile; ++ii) {
                const float dyv = ds[o_part][ii];
                const float4 uv = *reinterpret_cast<const float4*>(&us[ii][j_part]);
                part[0] = fmaf(dyv, uv.x, part[0]);
                part[1] = fmaf(dyv, uv.y, part[1]);
                part[2] = fmaf(dyv, uv.z, part[2]);
                part[3] = fmaf(dyv, uv.w, part[3]);
            }
            const int o = o0 + o_part;
            if (o < p.d_out) {
#pragma unroll
                for (int b = 0; b < 4; ++b) {
                    const int j = j0 + j_part + b;
                    if (j < p.r) {
                        float* slot = ws + (int64_t)o * p.r + j;
                        *slot = first ? part[b] : *slot + part[b];
                    }
                }
            }
            __syncthreads();
        }
#pragma unroll
        for (int a = 0; a < 4; ++a) {
            const int i = i0 + 4 * ty + a;
#pragma unroll
            for (int b = 0; b < 4; ++b) {
                const int j = j0 + 4 * tx + b;
                if (i < row_end && j < p.r) {
                    p.v[(int64_t)i * p.r + j] = acc[a][b];
                }
            }
        }
        __syncthreads();  // us is reloaded by the next sub-tile
    }
}

RS_EXPORT_DTYPES(lora_backward_vdb_v1, RsLoraBackwardVdbParams, lora_backward_vdb_v1)
