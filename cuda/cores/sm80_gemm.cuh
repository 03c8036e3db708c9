// The sm_80-family GEMM core (v4): C[M, N] = Σ_k P(m, k)·Q(n, k), bf16/f16 operands, fp32
// accumulation on the tensor cores (mma.sync m16n8k16), for sm_80, sm_86, sm_89 and sm_90.
//
// One block computes the BM × BN tile at (m0, n0) of C (cores/sm80_gemm_config.h). Its K range is
// made of up to two K-segments that accumulate into the SAME fp32 registers (the K-extension: the
// LoRA term of the forward and dX is a second segment over (Ug, Bt) or a first one over (Vg, At)).
// Each segment is (P, Q, k):
//   P [M, k] row-major (K-major), leading dimension ldp:          P(m, kk) = P[m·ldp + kk]
//   Q K-major  [N, k] row-major (Q_MN = false), leading dim ldq:   Q(n, kk) = Q[n·ldq + kk]
//   Q MN-major [k, N] row-major (Q_MN = true),  leading dim ldq:   Q(n, kk) = Q[kk·ldq + n]
// Data movement: a STAGES-deep ring of shared-memory stages filled by cp.async (16 bytes per
// thread and copy; a copy whose chunk lies outside the operand is a zero-filling src-size-0 copy,
// so tails in M, N and K need no bounds-checked staging), read by ldmatrix (.trans for the MN-major
// Q), multiplied by mma.sync. Shared layouts are XOR-swizzled so that every cp.async write phase
// and every ldmatrix phase touches 8 distinct 16-byte bank groups (no bank conflicts):
//   K-major tile [rows][32]: 64-byte rows, chunk c (of 4) of row r stored at chunk c ^ ((r >> 1) & 3);
//   MN-major tile [32][BN]:  BN·2-byte rows, chunk c of row r stored at chunk c ^ (r & 7).
// Preconditions (the launch-side check, cuda/kernels/lora_v4_launch.h, refuses anything else):
//   every row of P and Q starts 16-byte aligned (base 16-byte aligned, ld % 8 == 0);
//   N % 8 == 0 when Q is MN-major (a 16-byte chunk of a Q row is wholly inside or outside);
//   a K-major operand's chunk that starts below k is read whole: k % 8 == 0, or the row holds
//   round_up(k, 8) elements whose tail past k is zero (the r_pad columns of Ug, Bt, Vg).
// The epilogue goes through shared memory (fp32, one warp-row of the tile per pass) to 16-byte
// coalesced global stores, with an optional bias (per column) and an optional read-modify-write
// accumulate (out = T(out + C + bias): fp32 add, one rounding); requires N % 8 == 0.
#pragma once
#include <stdint.h>
#include <string.h>
#include "../arch/sm80.cuh"
#include "../rslora_params.h"
#include "../rslora_philox.cuh"
#include "../rslora_tile.cuh"  // rs::to_f32 / rs::from_f32 (round to nearest even)
#include "sm80_gemm_config.h"

namespace rs4 {

// One K-segment: P (K-major) and Q over k columns; k == 0: the segment is absent (pointers unused).
template <typename T>
struct Segment {
    const T* p;
    const T* q;
    int64_t ldp, ldq;
    int k;
};

// Block pid → (tile_m, tile_n) in the grouped order: pid runs over groups of kGroupM row tiles,
// inside a group down the rows first, then across the columns (host + device: the dev harness uses it
// to pick the blocks of one row tile).
__host__ __device__ __forceinline__ void tile_of(int pid, int tiles_m, int tiles_n, int& tm, int& tn) {
    const int per_group = kGroupM * tiles_n;
    const int group = pid / per_group;
    const int first_m = group * kGroupM;
    const int rows = tiles_m - first_m < kGroupM ? tiles_m - first_m : kGroupM;
    const int local = pid - group * per_group;
    tm = first_m + local % rows;
    tn = local / rows;
}
__device__ __forceinline__ void tile_coords(int tiles_m, int tiles_n, int& tm, int& tn) {
    tile_of((int)blockIdx.x, tiles_m, tiles_n, tm, tn);
}

// ---- shared-memory layout: every address the core computes, as host+device functions so that
// cuda/dev/gemm_sm80.cu (`banks`) can enumerate them and check that no access phase has a bank
// conflict (16-byte accesses: 8 lanes per phase; 8-byte: 16 lanes; ldmatrix: one phase per 8×8 matrix).
#define RS4_HD __host__ __device__ __forceinline__

// Byte offset of 16-byte chunk ch of row r in a swizzled K-major [rows][32] tile.
RS4_HD uint32_t kmajor_off(int r, int ch) { return (uint32_t)(r * 64 + ((ch ^ ((r >> 1) & 3)) << 4)); }
// Byte offset of 16-byte chunk ch of row r in a swizzled MN-major [32][BN] tile.
template <int BN>
RS4_HD uint32_t mnmajor_off(int r, int ch) { return (uint32_t)(r * (BN * 2) + ((ch ^ (r & 7)) << 4)); }

template <class C>
struct Layout {
    // cp.async: copy number c (= thread + i·THREADS) of a stage writes row r, chunk ch
    RS4_HD static void kmajor_copy(int c, int& r, int& ch) {
        r = c >> 2;
        ch = c & 3;
    }
    RS4_HD static void mnmajor_copy(int c, int& r, int& ch) {
        r = c / (C::BN / 8);
        ch = c % (C::BN / 8);
    }
    // ldmatrix.x4 row address of A fragment i, k16 step ks: matrices 0..3 = (rows 0-7, k 0-7),
    // (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15) = a[0..3]
    RS4_HD static uint32_t a_row(int warp_m, int i, int ks, int lane) {
        return kmajor_off(warp_m * C::WTM + i * 16 + (lane & 15), ks * 2 + (lane >> 4));
    }
    // ldmatrix.x4 row address of B fragments 2jj, 2jj+1 from a K-major [n][k] tile: matrices =
    // (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) = b[2jj][0..1], b[2jj+1][0..1]
    RS4_HD static uint32_t b_row_kmajor(int warp_n, int jj, int ks, int lane) {
        return kmajor_off(warp_n * C::WTN + jj * 16 + (lane & 7) + ((lane >> 4) << 3), ks * 2 + ((lane >> 3) & 1));
    }
    // ldmatrix.x4.trans row address of the same four matrices from an MN-major [k][n] tile
    RS4_HD static uint32_t b_row_mnmajor(int warp_n, int jj, int ks, int lane) {
        return mnmajor_off<C::BN>(ks * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), (warp_n * C::WTN + jj * 16) / 8 + (lane >> 4));
    }
    // epilogue staging (fp32, row stride C_LD floats): float index of accumulator pair
    // (acc[i][j][2·half], acc[i][j][2·half + 1]) of this lane, within its warp-row's WTM rows
    RS4_HD static int frag_pair(int i, int j, int half, int warp_n, int lane) {
        return (i * 16 + (lane >> 2) + 8 * half) * C::C_LD + warp_n * C::WTN + j * 8 + 2 * (lane & 3);
    }
    // epilogue read-out: 16-byte output chunk `task` = (row r, chunk ch); its two float4 halves are
    // read in the order (h, h ^ 1), h = (lane >> 2) & 1, so that no 8-lane phase conflicts
    RS4_HD static void out_chunk(int task, int& r, int& ch) {
        r = task / (C::BN / 8);
        ch = task % (C::BN / 8);
    }
    RS4_HD static int out_read(int r, int ch, int lane, int second) {
        return r * C::C_LD + ch * 8 + 4 * (((lane >> 2) & 1) ^ second);
    }
};

// Issues this thread's cp.async copies of K-tile [k0, k0 + 32) of segment s into one stage.
template <class C, typename T, bool Q_MN>
__device__ __forceinline__ void load_stage(uint32_t stage, const Segment<T>& s, int k0, int m0, int n0, int M, int N) {
    const int tid = (int)threadIdx.x;
#pragma unroll
    for (int i = 0; i < C::BM * 4 / C::THREADS; ++i) {  // P: BM rows × 4 chunks
        int r, ch;
        Layout<C>::kmajor_copy(tid + i * C::THREADS, r, ch);
        const int m = m0 + r, k = k0 + ch * 8;
        const bool ok = m < M && k < s.k;
        rsarch::cp_async_16(stage + kmajor_off(r, ch), ok ? s.p + (int64_t)m * s.ldp + k : s.p, ok);
    }
    const uint32_t qs = stage + C::P_BYTES;
    if (!Q_MN) {
#pragma unroll
        for (int i = 0; i < C::BN * 4 / C::THREADS; ++i) {  // Q: BN rows × 4 chunks
            int r, ch;
            Layout<C>::kmajor_copy(tid + i * C::THREADS, r, ch);
            const int n = n0 + r, k = k0 + ch * 8;
            const bool ok = n < N && k < s.k;
            rsarch::cp_async_16(qs + kmajor_off(r, ch), ok ? s.q + (int64_t)n * s.ldq + k : s.q, ok);
        }
    } else {
#pragma unroll
        for (int i = 0; i < C::BK * (C::BN / 8) / C::THREADS; ++i) {  // Q: 32 rows (k) × BN/8 chunks (n)
            int r, ch;
            Layout<C>::mnmajor_copy(tid + i * C::THREADS, r, ch);
            const int k = k0 + r, n = n0 + ch * 8;
            const bool ok = k < s.k && n < N;
            rsarch::cp_async_16(qs + mnmajor_off<C::BN>(r, ch), ok ? s.q + (int64_t)k * s.ldq + n : s.q, ok);
        }
    }
}

// acc += the 32-deep K-tile held in one stage, for this warp's WTM × WTN tile.
template <class C, typename T, bool Q_MN>
__device__ __forceinline__ void compute_stage(float (&acc)[C::MT][C::NT][4], uint32_t stage, int warp_m, int warp_n,
                                              int lane) {
    const uint32_t qs = stage + C::P_BYTES;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {  // two k16 steps
        uint32_t a[C::MT][4];
        uint32_t b[C::NT][2];
#pragma unroll
        for (int i = 0; i < C::MT; ++i) {
            rsarch::ldmatrix_x4(a[i], stage + Layout<C>::a_row(warp_m, i, ks, lane));
        }
#pragma unroll
        for (int jj = 0; jj < C::NT / 2; ++jj) {  // two n8 fragments per ldmatrix.x4
            uint32_t t4[4];
            if (!Q_MN) {
                rsarch::ldmatrix_x4(t4, qs + Layout<C>::b_row_kmajor(warp_n, jj, ks, lane));
            } else {
                rsarch::ldmatrix_x4_trans(t4, qs + Layout<C>::b_row_mnmajor(warp_n, jj, ks, lane));
            }
            b[2 * jj][0] = t4[0];
            b[2 * jj][1] = t4[1];
            b[2 * jj + 1][0] = t4[2];
            b[2 * jj + 1][1] = t4[3];
        }
#pragma unroll
        for (int i = 0; i < C::MT; ++i) {
#pragma unroll
            for (int j = 0; j < C::NT; ++j) {
                rsarch::mma_16816<T>(acc[i][j], a[i], b[j], acc[i][j]);
            }
        }
    }
}

// acc ← D'(acc): the dropout multiplier of element (row, col) of the output (the forward mask of
// X [n, d_in] at the same (row, col), SPEC.md §4) applied to each accumulator in registers; a
// dropped element is 0 even when the accumulator is NaN/inf, as v1 and the CPU do.
// One Philox call per (row, 4 aligned columns): of the two lanes holding the same 4 columns, the
// even lane computes the quad of row g, the odd lane that of row g + 8, and they swap keep bits.
template <class C>
__device__ __forceinline__ void apply_mask(float (&acc)[C::MT][C::NT][4], const RsDropout& d, int row_base, int col_base,
                                           int lane) {
    const int g = lane >> 2, t = lane & 3, odd = t & 1;
    const int p0 = 2 * odd;  // this lane's first column within its quad
#pragma unroll
    for (int i = 0; i < C::MT; ++i) {
#pragma unroll
        for (int j = 0; j < C::NT; ++j) {
            const uint32_t row = (uint32_t)(row_base + i * 16 + g + 8 * odd);
            const uint32_t col4 = (uint32_t)(col_base + j * 8 + ((t >> 1) << 2));
            float m[4];
            rs_dropout_quad(d, row, col4, m);
            const uint32_t mine = (m[0] != 0.0f ? 1u : 0u) | (m[1] != 0.0f ? 2u : 0u) | (m[2] != 0.0f ? 4u : 0u) |
                                  (m[3] != 0.0f ? 8u : 0u);
            const uint32_t other = rsarch::shfl_idx(mine, lane ^ 1);
            const uint32_t top = odd ? other : mine;  // keep bits of row g
            const uint32_t bot = odd ? mine : other;  // keep bits of row g + 8
            acc[i][j][0] = (top >> p0) & 1u ? acc[i][j][0] * d.scale : 0.0f;
            acc[i][j][1] = (top >> (p0 + 1)) & 1u ? acc[i][j][1] * d.scale : 0.0f;
            acc[i][j][2] = (bot >> p0) & 1u ? acc[i][j][2] * d.scale : 0.0f;
            acc[i][j][3] = (bot >> (p0 + 1)) & 1u ? acc[i][j][3] * d.scale : 0.0f;
        }
    }
}

// The main loop over both segments: acc (zeroed here) = Σ over s0's K-tiles, then (MASK and
// drop.enabled and s0 present) acc ← D'(acc), then += Σ over s1's K-tiles. M, N bound the rows of
// P and of Q. Ends with every cp.async landed and a __syncthreads(): the caller may reuse smem.
template <class C, typename T, bool Q_MN, bool MASK>
__device__ __forceinline__ void mainloop(float (&acc)[C::MT][C::NT][4], uint32_t smem, const Segment<T>& s0,
                                         const Segment<T>& s1, int M, int N, int m0, int n0, const RsDropout& drop) {
    const int lane = (int)rsarch::lane_id(), warp = (int)rsarch::warp_id();
    const int warp_m = warp / C::WARPS_N, warp_n = warp % C::WARPS_N;
#pragma unroll
    for (int i = 0; i < C::MT; ++i) {
#pragma unroll
        for (int j = 0; j < C::NT; ++j) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                acc[i][j][e] = 0.0f;
            }
        }
    }
    const int kt0 = (s0.k + C::BK - 1) / C::BK;
    const int kt_all = kt0 + (s1.k + C::BK - 1) / C::BK;
    auto load = [&](int kt, int stage) {
        const uint32_t dst = smem + (uint32_t)(stage * C::STAGE_BYTES);
        if (kt < kt0) {
            load_stage<C, T, Q_MN>(dst, s0, kt * C::BK, m0, n0, M, N);
        } else {
            load_stage<C, T, Q_MN>(dst, s1, (kt - kt0) * C::BK, m0, n0, M, N);
        }
    };
    // prologue: K-tiles 0 .. STAGES-2 in flight, one commit group each (empty groups past the end
    // keep the group count, and so the wait below, uniform)
#pragma unroll
    for (int s = 0; s < C::STAGES - 1; ++s) {
        if (s < kt_all) {
            load(s, s);
        }
        rsarch::cp_async_commit();
    }
    int kt = 0, rd = 0, wr = C::STAGES - 1;
    auto step = [&]() {
        rsarch::cp_async_wait<C::STAGES - 2>();  // this thread's copies of K-tile kt have landed
        __syncthreads();                         // everyone's, and everyone is done with K-tile kt-1
        if (kt + C::STAGES - 1 < kt_all) {
            load(kt + C::STAGES - 1, wr);  // into the stage K-tile kt-1 occupied
        }
        rsarch::cp_async_commit();
        compute_stage<C, T, Q_MN>(acc, smem + (uint32_t)(rd * C::STAGE_BYTES), warp_m, warp_n, lane);
        rd = rd + 1 == C::STAGES ? 0 : rd + 1;
        wr = wr + 1 == C::STAGES ? 0 : wr + 1;
        ++kt;
    };
    if (MASK) {
        while (kt < kt0) {
            step();
        }
        if (kt0 > 0 && drop.enabled) {
            apply_mask<C>(acc, drop, m0 + warp_m * C::WTM, n0 + warp_n * C::WTN, lane);
        }
    }
    while (kt < kt_all) {
        step();
    }
    rsarch::cp_async_wait<0>();
    __syncthreads();
}

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    const T a = rs::from_f32<T>(lo), b = rs::from_f32<T>(hi);
    uint16_t ua, ub;
    memcpy(&ua, static_cast<const void*>(&a), 2);
    memcpy(&ub, static_cast<const void*>(&b), 2);
    return (uint32_t)ua | ((uint32_t)ub << 16);
}
template <typename T>
__device__ __forceinline__ void unpack2(uint32_t w, float& lo, float& hi) {
    const uint16_t ua = (uint16_t)(w & 0xffffu), ub = (uint16_t)(w >> 16);
    T a, b;
    memcpy(static_cast<void*>(&a), &ua, 2);
    memcpy(static_cast<void*>(&b), &ub, 2);
    lo = rs::to_f32<T>(a);
    hi = rs::to_f32<T>(b);
}

// out[m, n] (=|+=) T(acc + bias[n]) for the tile at (m0, n0), rows < M, columns < N (N % 8 == 0),
// leading dimension ldo. smem: the block's dynamic shared memory (≥ C::EPI_BYTES, free: the main
// loop has finished with it). Pass p stages the accumulators of warp-row p (WTM rows × BN, fp32) and
// the whole block writes them out as 16-byte chunks (a warp covers whole contiguous row segments).
template <class C, typename T>
__device__ __forceinline__ void epilogue(const float (&acc)[C::MT][C::NT][4], unsigned char* smem, T* out, int64_t ldo,
                                         int M, int N, int m0, int n0, const T* bias, bool accumulate) {
    float* cs = reinterpret_cast<float*>(smem);
    const int lane = (int)rsarch::lane_id(), warp = (int)rsarch::warp_id();
    const int warp_m = warp / C::WARPS_N, warp_n = warp % C::WARPS_N;
    constexpr int CPR = C::BN / 8;  // 16-byte output chunks per tile row
#pragma unroll 1
    for (int pass = 0; pass < C::WARPS_M; ++pass) {
        if (warp_m == pass) {
#pragma unroll
            for (int i = 0; i < C::MT; ++i) {
#pragma unroll
                for (int j = 0; j < C::NT; ++j) {
                    float2 top, bot;
                    top.x = acc[i][j][0];
                    top.y = acc[i][j][1];
                    bot.x = acc[i][j][2];
                    bot.y = acc[i][j][3];
                    *reinterpret_cast<float2*>(&cs[Layout<C>::frag_pair(i, j, 0, warp_n, lane)]) = top;
                    *reinterpret_cast<float2*>(&cs[Layout<C>::frag_pair(i, j, 1, warp_n, lane)]) = bot;
                }
            }
        }
        __syncthreads();
#pragma unroll
        for (int it = 0; it < C::WTM * CPR / C::THREADS; ++it) {
            int r, ch;
            Layout<C>::out_chunk((int)threadIdx.x + it * C::THREADS, r, ch);
            const int m = m0 + pass * C::WTM + r, n = n0 + ch * 8;
            const float4 first = *reinterpret_cast<const float4*>(&cs[Layout<C>::out_read(r, ch, lane, 0)]);
            const float4 second = *reinterpret_cast<const float4*>(&cs[Layout<C>::out_read(r, ch, lane, 1)]);
            const int h = (lane >> 2) & 1;  // first is the high half of the chunk
            const float4 lo = h ? second : first, hi = h ? first : second;
            float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
            if (m < M && n < N) {
                if (bias != nullptr) {
                    const uint4 bw = *reinterpret_cast<const uint4*>(bias + n);
                    const uint32_t bws[4] = {bw.x, bw.y, bw.z, bw.w};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float b0, b1;
                        unpack2<T>(bws[e], b0, b1);
                        v[2 * e] += b0;
                        v[2 * e + 1] += b1;
                    }
                }
                T* dst = out + (int64_t)m * ldo + n;
                if (accumulate) {
                    const uint4 ow = *reinterpret_cast<const uint4*>(dst);
                    const uint32_t ows[4] = {ow.x, ow.y, ow.z, ow.w};
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float o0, o1;
                        unpack2<T>(ows[e], o0, o1);
                        v[2 * e] = o0 + v[2 * e];
                        v[2 * e + 1] = o1 + v[2 * e + 1];
                    }
                }
                uint4 w;
                w.x = pack2<T>(v[0], v[1]);
                w.y = pack2<T>(v[2], v[3]);
                w.z = pack2<T>(v[4], v[5]);
                w.w = pack2<T>(v[6], v[7]);
                *reinterpret_cast<uint4*>(dst) = w;
            }
        }
        __syncthreads();
    }
}

}  // namespace rs4
