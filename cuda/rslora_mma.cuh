// Version-2 GEMM core: tensor cores through nvcuda::wmma (compiled to mma.sync on sm_80+),
// bf16/fp16 operands, fp32 accumulation. NOT VALIDATED ON HARDWARE YET: opt-in only
// (-Drslora.cuda.kernels=v2); cuda/dev validates it against the CPU reference and v1.
//
// One block = 128 threads (4 warps) computes a 64×64 output tile C[m0.., n0..] += Σ_k P(m,k)·Q(n,k);
// warp w owns the 32×32 quarter (rows 32·(w/2), cols 32·(w%2)) as 2×2 fragments of 16×16.
// Per 32-wide K step the block stages P as ps[m][k] (row-major A) and Q as qs[n][k] (col-major B),
// converting from the source dtype (T or f32) to T on the way: every element is loaded with a
// bounds check (zero outside), so any n, d_in, d_out, r >= 1 works and no alignment is assumed.
// Operands as in v1: K-major op(m,k) = mul·S[m][k], M-major op(m,k) = mul·S[k][m].
// The f32 adapter-side operands (γ·U, B, V, A) are rounded to T on staging: a bf16/fp16 LoRA
// term carries that rounding (~2^-8 relative for bf16), the base GEMM is exact-input.
#pragma once
#include <mma.h>
#include "rslora_tile.cuh"

namespace rs2 {

constexpr int kThreads = 128;
constexpr int kTile = 64;
constexpr int kK = 32;
constexpr int kLd = kK + 8;       // 40 16-bit elements = 80 bytes per row (wmma ldm: multiple of 8)
constexpr int kLdC = kTile + 4;   // fp32 epilogue staging, 272 bytes per row

template <typename T>
struct Stage {
    T p[kTile][kLd];
    T q[kTile][kLd];
};

typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> Acc;

// dst[mm][kk] = T(mul·op(m0 + mm, k0 + kk)) for mm < 64, kk < 32; zero outside [0,m_lim)×[0,k_lim).
// K-major: consecutive threads read consecutive k (contiguous in S); M-major: consecutive m.
template <typename T, typename S, bool KMAJOR>
__device__ __forceinline__ void stage(T (*dst)[kLd], const S* src, int64_t ld, int m0, int k0, int m_lim, int k_lim,
                                      float mul) {
    for (int e = threadIdx.x; e < kTile * kK; e += kThreads) {
        const int mm = KMAJOR ? e / kK : e % kTile;
        const int kk = KMAJOR ? e % kK : e / kTile;
        const int m = m0 + mm, k = k0 + kk;
        float v = 0.0f;
        if (m < m_lim && k < k_lim) {
            v = rs::to_f32<S>(KMAJOR ? src[(int64_t)m * ld + k] : src[(int64_t)k * ld + m]) * mul;
        }
        dst[mm][kk] = rs::from_f32<T>(v);
    }
}

template <typename T>
__device__ __forceinline__ void zero(Acc (&acc)[2][2]) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            nvcuda::wmma::fill_fragment(acc[i][j], 0.0f);
        }
    }
}

// acc += Σ_{k < k_end} P(m, k)·Q(n, k) over this warp's 32×32 quarter. Ends with __syncthreads().
template <typename T, typename SP, bool PK, typename SQ, bool QK>
__device__ __forceinline__ void mma_segment(Acc (&acc)[2][2], Stage<T>& s, const SP* p, int64_t pld, int m_lim,
                                            float pmul, const SQ* q, int64_t qld, int n_lim, float qmul, int m0,
                                            int n0, int k_end) {
    using namespace nvcuda;
    const int warp = threadIdx.x >> 5;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
    for (int k0 = 0; k0 < k_end; k0 += kK) {
        stage<T, SP, PK>(s.p, p, pld, m0, k0, m_lim, k_end, pmul);
        stage<T, SQ, QK>(s.q, q, qld, n0, k0, n_lim, k_end, qmul);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                wmma::load_matrix_sync(fa[i], &s.p[wm + 16 * i][kk], kLd);  // A(m, k) = p[m][k]
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                wmma::load_matrix_sync(fb[j], &s.q[wn + 16 * j][kk], kLd);  // B(k, n) = q[n][k]
            }
#pragma unroll
            for (int i = 0; i < 2; ++i) {
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
                }
            }
        }
        __syncthreads();
    }
}

// c[m][n] = acc (this warp's quarter) in shared memory, row-major with kLdC.
__device__ __forceinline__ void store(float (*c)[kLdC], Acc (&acc)[2][2]) {
    const int warp = threadIdx.x >> 5;
    const int wm = (warp >> 1) * 32, wn = (warp & 1) * 32;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            nvcuda::wmma::store_matrix_sync(&c[wm + 16 * i][wn + 16 * j], acc[i][j], kLdC, nvcuda::wmma::mem_row_major);
        }
    }
}

}  // namespace rs2

// Stamps the two 16-bit exported entry points of a v2 kernel body (no f32 version: f32 uses v1).
#define RS_EXPORT_V2(name, Params, body)                                                          \
    extern "C" __global__ void __launch_bounds__(rs2::kThreads) rslora_##name##_bf16(Params p) {  \
        body<__nv_bfloat16>(p);                                                                   \
    }                                                                                             \
    extern "C" __global__ void __launch_bounds__(rs2::kThreads) rslora_##name##_f16(Params p) {   \
        body<__half>(p);                                                                          \
    }
