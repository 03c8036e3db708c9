// The shared-memory tiled SIMT GEMM core of the version-1 kernels (the GPU-side oracle):
// plain, bounds-checked everywhere, fp32 accumulation, no alignment assumptions.
//
// One block = 256 threads computes a 64×64 output tile C[m0.., n0..] += Σ_k P(m,k)·Q(n,k);
// thread (ty, tx) = (tid / 16, tid % 16) owns the 4×4 micro-tile m = m0 + 4·ty + a,
// n = n0 + 4·tx + b (a, b < 4): four consecutive output columns, so an epilogue dropout quad
// is one Philox call and the four stores are adjacent.
// Operands are row-major source matrices S with leading dimension ld, read either
//   K-major: op(m, k) = mul·S[m][k]   (S is [M, K]), or
//   M-major: op(m, k) = mul·S[k][m]   (S is [K, M]),
// optionally through the dropout mask of S's element (row, col). Each thread loads four
// consecutive elements of one row of S (its contiguous direction) per 64×16 tile.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include "rslora_params.h"
#include "rslora_philox.cuh"

namespace rs {

constexpr int kThreads = 256;  // every v1 kernel is launched with blockDim = (256, 1, 1)
constexpr int kTile = 64;      // BM = BN = 64
constexpr int kTileK = 16;     // BK
constexpr int kPad = 4;        // keeps rows 16-byte aligned for float4 reads (68 floats = 272 bytes)

typedef float TileRow[kTile + kPad];  // a shared tile is TileRow[kTileK]: s[k][m]

// Storage dtype conversions: to fp32 exactly; from fp32 round to nearest even (NaN stays NaN).
template <typename T> __device__ __forceinline__ float to_f32(T v);
template <> __device__ __forceinline__ float to_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ float to_f32<__half>(__half v) { return __half2float(v); }
template <> __device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_f32(float v);
template <> __device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// A GEMM operand: source S (row-major, leading dimension ld), the bound on the M (or N) index
// (m_lim), a multiplier and whether the dropout mask of S applies.
template <typename T, bool KMAJOR, bool DROP>
struct Operand {
    const T* s;
    int64_t ld;
    int m_lim;
    float mul;
};

// Fills tile[kk][mm] = op(m0 + mm, k0 + kk) for kk < 16, mm < 64; 0 where m >= m_lim or k >= k_lim.
// Dropout quads: the quad's first source column is a multiple of 4 because m0, k0 are multiples of
// 16 (callers guarantee it) and the in-tile offset is a multiple of 4, so one Philox call covers it.
template <typename T, bool KMAJOR, bool DROP>
__device__ __forceinline__ void load_tile(TileRow* tile, const Operand<T, KMAJOR, DROP>& op, int m0, int k0,
                                          int k_lim, const RsDropout& drop) {
    const int t = threadIdx.x;
    int mm, kk, srow, scol, row_lim, col_lim;
    if (KMAJOR) {            // 64 (m) × 16 (k): thread → m = t/4, k = 4·(t%4) .. +3
        mm = t >> 2;
        kk = (t & 3) * 4;
        srow = m0 + mm;
        scol = k0 + kk;
        row_lim = op.m_lim;
        col_lim = k_lim;
    } else {                 // 16 (k) × 64 (m): thread → k = t/16, m = 4·(t%16) .. +3
        kk = t >> 4;
        mm = (t & 15) * 4;
        srow = k0 + kk;
        scol = m0 + mm;
        row_lim = k_lim;
        col_lim = op.m_lim;
    }
    float v[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (srow < row_lim) {
        const T* src = op.s + (int64_t)srow * op.ld;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            if (scol + e < col_lim) {
                v[e] = to_f32<T>(src[scol + e]);
            }
        }
        if (DROP && drop.enabled) {
            float m[4];
            rs_dropout_quad(drop, (uint32_t)srow, (uint32_t)scol, m);
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                v[e] = m[e] != 0.0f ? v[e] * m[e] : 0.0f;  // a dropped NaN/inf is 0, as on the CPU
            }
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            v[e] = v[e] * op.mul;
        }
    }
    if (KMAJOR) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            tile[kk + e][mm] = v[e];
        }
    } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            tile[kk][mm + e] = v[e];
        }
    }
}

// acc[a][b] += Σ_{k in [k_begin, k_end)} P(m0 + 4·ty + a, k)·Q(n0 + 4·tx + b, k).
// k_begin must be a multiple of 16. Ends with a __syncthreads(), so the tiles may be reused.
template <typename TP, bool PK, bool PD, typename TQ, bool QK, bool QD>
__device__ __forceinline__ void gemm_segment(float (&acc)[4][4], TileRow* ps, TileRow* qs,
                                             const Operand<TP, PK, PD>& p, const Operand<TQ, QK, QD>& q,
                                             int m0, int n0, int k_begin, int k_end, const RsDropout& drop) {
    const int ty = threadIdx.x >> 4, tx = threadIdx.x & 15;
    for (int k0 = k_begin; k0 < k_end; k0 += kTileK) {
        load_tile(ps, p, m0, k0, k_end, drop);
        load_tile(qs, q, n0, k0, k_end, drop);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kTileK; ++kk) {
            const float4 pa = *reinterpret_cast<const float4*>(&ps[kk][4 * ty]);
            const float4 qb = *reinterpret_cast<const float4*>(&qs[kk][4 * tx]);
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
        __syncthreads();
    }
}

__device__ __forceinline__ void zero(float (&acc)[4][4]) {
#pragma unroll
    for (int a = 0; a < 4; ++a) {
#pragma unroll
        for (int b = 0; b < 4; ++b) {
            acc[a][b] = 0.0f;
        }
    }
}

}  // namespace rs

// Stamps the three exported entry points of a templated kernel body:
//   extern "C" __global__ void rslora_<name>_f32 / _bf16 / _f16(Params p)
#define RS_EXPORT_DTYPES(name, Params, body)                                                      \
    extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_##name##_f32(Params p) {    \
        body<float>(p);                                                                           \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_##name##_bf16(Params p) {   \
        body<__nv_bfloat16>(p);                                                                   \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_##name##_f16(Params p) {    \
        body<__half>(p);                                                                          \
    }
