// Shared pieces of the memory-bound LoRA kernels of the v3/v4 families (mb_*.cuh): 16-byte tile
// staging through registers (one tile in flight while the previous one is multiplied), the
// dropout mask of a staged X chunk from Philox in registers, and the wmma (→ mma.sync m16n8k16)
// fragments the rank-dimension products use. Every kernel here: 256 threads, T = bf16 or f16.
//
// Tiles in shared memory are row-major T with a row stride of COLS + 8 elements (16 bytes of pad:
// wmma's ldm stays a multiple of 8 and consecutive rows start in different banks).
// Loads: a "chunk" is 8 consecutive T elements of one row (16 bytes). When the matrix's leading
// dimension is a multiple of 8 and its base is 16-byte aligned (`vec`), a chunk is one 16-byte
// load; otherwise element loads with bounds (any shape works, the awkward ones slower). Out of
// bounds elements are zero. The mask zeroes dropped X elements exactly (keep: x; drop: 0); the
// kernels apply the dropout scale 1/(1-p) to their fp32 accumulators.
#pragma once
#include <mma.h>
#include "../rslora_tile.cuh"
#include "../rslora_smem.cuh"

namespace rsmb {

constexpr int kThreads = 256;  // 8 warps
constexpr int kBM = 64;        // rows per tile
constexpr int kBK = 64;        // the streamed dimension per tile (d_in for down/da, d_out for vdb)
constexpr int kPadT = 8;       // T tile row pad (elements)
constexpr int kPadF = 4;       // f32 tile row pad (elements)

typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> Acc;
template <typename T> using FragA = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, nvcuda::wmma::row_major>;
template <typename T> using FragAT = nvcuda::wmma::fragment<nvcuda::wmma::matrix_a, 16, 16, 16, T, nvcuda::wmma::col_major>;
template <typename T> using FragB = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, nvcuda::wmma::row_major>;
template <typename T> using FragBT = nvcuda::wmma::fragment<nvcuda::wmma::matrix_b, 16, 16, 16, T, nvcuda::wmma::col_major>;

template <typename T> __device__ __forceinline__ unsigned short bits16(T v);
template <> __device__ __forceinline__ unsigned short bits16<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat16_as_ushort(v); }
template <> __device__ __forceinline__ unsigned short bits16<__half>(__half v) { return __half_as_ushort(v); }

__device__ __forceinline__ uint4 ld16(const void* p) {
#if defined(RS_EMULATE)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) ::rs_emu::die(std::string("16-byte load from a misaligned address in ") + ::rs_emu::st().kernel);
    uint4 v;
    std::memcpy(&v, p, 16);
    return v;
#else
    return *reinterpret_cast<const uint4*>(p);
#endif
}
__device__ __forceinline__ void st16(void* p, uint4 v) {
#if defined(RS_EMULATE)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) ::rs_emu::die(std::string("16-byte store to a misaligned address in ") + ::rs_emu::st().kernel);
    std::memcpy(p, &v, 16);
#else
    *reinterpret_cast<uint4*>(p) = v;
#endif
}

// true when rows of `cols` T elements at `base` allow 16-byte chunk loads
template <typename T>
__device__ __forceinline__ bool vec_ok(const void* base, int64_t ld) {
    return reinterpret_cast<uintptr_t>(base) % 16 == 0 && ld % 8 == 0;
}

// The 8 elements src[row][c0 .. c0+7] (c0 % 8 == 0) of a row-major matrix (leading dimension ld),
// zero outside [0, row_lim) × [0, col_lim). With vec, col_lim % 8 == 0 too (a chunk is all in or all out).
template <typename T>
__device__ __forceinline__ uint4 load8(const T* src, int64_t ld, int row, int c0, int row_lim, int col_lim, bool vec) {
    uint4 out = make_uint4(0u, 0u, 0u, 0u);
    if (row >= row_lim || c0 >= col_lim) return out;
    const T* p = src + (int64_t)row * ld + c0;
    if (vec) return ld16(p);
    uint32_t w[4] = {0u, 0u, 0u, 0u};
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        if (c0 + e < col_lim) w[e >> 1] |= (uint32_t)bits16<T>(p[e]) << (16 * (e & 1));
    }
    out.x = w[0];
    out.y = w[1];
    out.z = w[2];
    out.w = w[3];
    return out;
}

// The keep bits (bit e: element c0 + e kept) of X[row][c0 .. c0+7]: two Philox calls (the quads
// c0 and c0 + 4), bit-identical to rs_dropout_quad.
__device__ __forceinline__ uint32_t keep8(const RsDropout& d, uint32_t row, uint32_t c0) {
    const RsU32x4 q0 = rs_philox4x32_10(c0 >> 2, row, d.layer, d.step, d.key_lo, d.key_hi);
    const RsU32x4 q1 = rs_philox4x32_10((c0 >> 2) + 1u, row, d.layer, d.step, d.key_lo, d.key_hi);
    const uint32_t t = d.threshold;
    return ((q0.v[0] >> 8) >= t ? 1u : 0u) | ((q0.v[1] >> 8) >= t ? 2u : 0u) | ((q0.v[2] >> 8) >= t ? 4u : 0u) |
           ((q0.v[3] >> 8) >= t ? 8u : 0u) | ((q1.v[0] >> 8) >= t ? 16u : 0u) | ((q1.v[1] >> 8) >= t ? 32u : 0u) |
           ((q1.v[2] >> 8) >= t ? 64u : 0u) | ((q1.v[3] >> 8) >= t ? 128u : 0u);
}

// zero the dropped 16-bit elements of a chunk (a dropped NaN becomes 0, as on the CPU)
__device__ __forceinline__ uint4 apply_keep(uint4 v, uint32_t k) {
    const uint32_t m0 = ((k & 1u) ? 0x0000FFFFu : 0u) | ((k & 2u) ? 0xFFFF0000u : 0u);
    const uint32_t m1 = ((k & 4u) ? 0x0000FFFFu : 0u) | ((k & 8u) ? 0xFFFF0000u : 0u);
    const uint32_t m2 = ((k & 16u) ? 0x0000FFFFu : 0u) | ((k & 32u) ? 0xFFFF0000u : 0u);
    const uint32_t m3 = ((k & 64u) ? 0x0000FFFFu : 0u) | ((k & 128u) ? 0xFFFF0000u : 0u);
    return make_uint4(v.x & m0, v.y & m1, v.z & m2, v.w & m3);
}

// A ROWS × COLS tile of T, staged through registers: load() issues the global loads of a tile,
// mask() computes its keep bits (Philox while the loads are in flight), store() writes it to
// shared memory (row stride COLS + kPadT). Chunk q of the tile is row q / (COLS/8), columns
// 8·(q % (COLS/8)); thread t holds chunks t, t + 256, ...
template <typename T, int ROWS, int COLS>
struct Stager {
    static constexpr int kChunks = ROWS * COLS / 8;
    static constexpr int kPer = (kChunks + kThreads - 1) / kThreads;
    static constexpr int kLd = COLS + kPadT;
    uint4 v[kPer];
    uint32_t keep[kPer];

    __device__ __forceinline__ void load(const T* src, int64_t ld, int row0, int col0, int row_lim, int col_lim, bool vec) {
#pragma unroll
        for (int s = 0; s < kPer; ++s) {
            const int q = (int)threadIdx.x + s * kThreads;
            keep[s] = 0xFFu;
            v[s] = make_uint4(0u, 0u, 0u, 0u);
            if (kChunks % kThreads == 0 || q < kChunks) {
                v[s] = load8<T>(src, ld, row0 + q / (COLS / 8), col0 + 8 * (q % (COLS / 8)), row_lim, col_lim, vec);
            }
        }
    }
    __device__ __forceinline__ void mask(const RsDropout& d, int row0, int col0) {
#pragma unroll
        for (int s = 0; s < kPer; ++s) {
            const int q = (int)threadIdx.x + s * kThreads;
            if (kChunks % kThreads == 0 || q < kChunks) {
                keep[s] = keep8(d, (uint32_t)(row0 + q / (COLS / 8)), (uint32_t)(col0 + 8 * (q % (COLS / 8))));
            }
        }
    }
    __device__ __forceinline__ void store(T* tile) const {
#pragma unroll
        for (int s = 0; s < kPer; ++s) {
            const int q = (int)threadIdx.x + s * kThreads;
            if (kChunks % kThreads == 0 || q < kChunks) {
                st16(tile + (q / (COLS / 8)) * kLd + 8 * (q % (COLS / 8)), apply_keep(v[s], keep[s]));
            }
        }
    }
};

__device__ __forceinline__ float drop_scale(const RsDropout& d) { return d.enabled ? d.scale : 1.0f; }

}  // namespace rsmb

// Stamps the bf16 and f16 entry points of a memory-bound kernel body templated on <T, RC>:
//   extern "C" __global__ void rslora_mb_<name>_r<RC>_bf16 / _f16(Params p)
// MINB: the blocks per SM ptxas must leave room for (2: at most 128 registers; 1: up to 255, for
// the rank classes whose fragments need them: the build fails on any spill).
#define RS_EXPORT_MB(name, RC, MINB, Params, body)                                                               \
    extern "C" __global__ void __launch_bounds__(rsmb::kThreads, MINB) rslora_mb_##name##_r##RC##_bf16(Params p) { \
        body<__nv_bfloat16, RC>(p);                                                                              \
    }                                                                                                            \
    extern "C" __global__ void __launch_bounds__(rsmb::kThreads, MINB) rslora_mb_##name##_r##RC##_f16(Params p) {  \
        body<__half, RC>(p);                                                                                     \
    }
