// The hand-written sm_90a GEMM core of the v3 kernels:
//
//   C[M, N] (T) = T( Σ_segments Σ_k P_s(m, k)·Q_s(n, k)  [masked after segment 0]  + bias[n] )
//
// with bf16/f16 operands (T), fp32 accumulation in registers, written once through shared memory
// by TMA stores. A K-segment s is (P map, Q map, k-blocks): P_s is K-major ([M, K_s] row-major),
// Q_s K-major ([N, K_s] row-major) or MN-major ([K_s, N] row-major: W and At in dX); every
// segment runs into the SAME accumulators (the K-extension: the forward's d_in steps over (X, W)
// then its r steps over (Ug, Bt); dX's r steps over (Vg, At), the dropout mask applied to the
// accumulators, then its d_out steps over (dY, W)). K tails, M and N tails are TMA's: loads
// zero-fill outside the tensor (so a partial k-block adds zeros), stores clip.
//
// Block = 384 threads = 3 warpgroups, __launch_bounds__(384, 1), one CTA per SM:
//   warpgroup 0 (producer, setmaxnreg 40): warp 0 lane 0 issues every TMA load into a STAGES-deep
//     ring of (P, Q) tiles guarded by full/empty mbarriers; warps 1-3 (96 threads, dX only)
//     generate the dropout mask of the next output tiles (Philox, rs_dropout_quad) as a bitmap in
//     a 2-deep ring guarded by mask_full/mask_empty mbarriers, off the consumers' critical path;
//   warpgroups 1, 2 (consumers, setmaxnreg 232): rows 64·c .. 64·c + 63 of the 128 × BN output
//     tile each, wgmma.mma_async m64nBNk16 (4 per 64-wide k-block) into BN/2 fp32 registers per
//     thread; a stage is released (empty, one arrival per warp) once the wgmma group after it
//     has been issued and it has completed (wgmma.wait_group 1); the epilogue converts to T (+ bias)
//     into a 128-byte-swizzled shared tile and one thread per warpgroup TMA-stores it while the
//     producer already fills the ring for the next tile.
// Persistent grid: CTA b takes tiles b, b + gridDim.x, ...; tile t → (tm, tn) in groups of
// kGroupM tile rows (consecutive CTAs share Q tiles and a band of P rows in L2).
// CM = 2 (optional, launched with cluster dims (2, 1, 1)): the two CTAs of a cluster take the two
// vertically adjacent tiles (2p, tn), (2p + 1, tn) of a unit and share its Q tile: each loads its
// own P tile and one half of Q, multicast into both CTAs (same shared offsets, complete_tx on both
// CTAs' full barriers); a stage is free again when the consumer warps of BOTH CTAs released it
// (empty barriers count 16 arrivals: local and remote). Halves the L2 → SM traffic of Q.
//
// Shared memory (dynamic, base rounded up to 1024 in the kernel: +1024 bytes requested), per
// stage P: 128 rows × 128 bytes (TMA box {64, 128}, SWIZZLE_128B), Q K-major: BN rows × 128 bytes
// (box {64, BN}), Q MN-major: BN/64 chunks of [64 k-rows][64 n × 2 bytes] (box {64, 64} each).
// wgmma descriptors (PTX ISA canonical layouts, 128B swizzle, 16-bit types, sizes in bytes):
//   K-major  (P, and Q when !QMN): start = tile + 32·kk (k16 step kk < 4), LBO 16 (unused),
//                                  SBO 1024 (8 rows of 128 bytes);
//   MN-major (Q when QMN):         start = tile + 2048·kk (16 k-rows), LBO 8192 (next 64-wide n
//                                  chunk), SBO 1024 (next 8 k-rows).
#pragma once
#include <stdint.h>
#include "../arch/sm90.cuh"
#include "../rslora_philox.cuh"
#include "../rslora_tile.cuh"  // rs::to_f32 / rs::from_f32

// A kernel body that reaches the sm_90a instructions: compiled for sm_90a (nvcc defines
// __CUDA_ARCH_FEAT_SM90_ALL only for compute_90a) and for the CPU emulation; every other device
// target of a multi-arch build (the harness also builds sm_80) gets a trap instead.
#if defined(RS_EMULATE) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RS_SM90A_BODY(...) __VA_ARGS__
#else
#define RS_SM90A_BODY(...) __trap();
#endif

namespace rs3 {

// One K-segment: k-blocks of 64 over (P, Q). kblocks >= 1 (= ceil(K_s / 64)).
struct Segment {
    const CUtensorMap* p;
    const CUtensorMap* q;
    int kblocks;
};

template <typename T>
struct Problem {
    int m, n;                // C extent (rows, columns)
    int nseg;                // 1 or 2 segments
    Segment seg[2];
    const CUtensorMap* c;    // C [M, N] T, box {64, 64}, SWIZZLE_128B (TMA store)
    const T* bias;           // [N] T added in the epilogue, or null
    RsDropout drop;          // MASK cores with nseg == 2 and drop.enabled: after segment 0,
                             // acc(m, n) = keep(m, n) ? acc·scale : 0 (X's mask of element (m, n))
};

template <typename T> struct Pair2;
template <> struct Pair2<__nv_bfloat16> { typedef __nv_bfloat162 type; };
template <> struct Pair2<__half> { typedef __half2 type; };

__host__ __device__ constexpr int cdiv(int a, int b) { return (a + b - 1) / b; }

template <typename T, int BN, int STAGES, bool QMN, bool MASK, int CM = 1>
struct Sm90Gemm {
    static_assert(BN == 128 || BN == 256, "BN: 128 or 256");
    static_assert(CM == 1 || CM == 2, "CM: cluster of 1 or 2 CTAs along M");
    static_assert(STAGES >= 2, "STAGES >= 2");
    static constexpr int kThreads = 384;
    static constexpr int kBM = 128, kBK = 64;
    static constexpr int kGroupM = 16;  // tile rows per group of the tile order
    // setmaxnreg split of the 384·168 registers: 128·40 + 256·232 without the mask warps; with them
    // (Philox in the producer warpgroup) 128·56 + 256·224
    static constexpr int kProducerRegs = MASK ? 56 : 40, kConsumerRegs = MASK ? 224 : 232;
    static_assert(128 * kProducerRegs + 256 * kConsumerRegs == 384 * 168, "setmaxnreg split must use the whole pool");
    static constexpr int kMaskThreads = 96;                        // producer warps 1-3
    static constexpr uint32_t kPBytes = kBM * kBK * 2;
    static constexpr uint32_t kQBytes = BN * kBK * 2;
    static constexpr uint32_t kStageBytes = kPBytes + kQBytes;
    static constexpr uint32_t kEpiWgBytes = 64 * BN * 2;           // one consumer's 64 × BN T tile
    static constexpr int kRowWords = BN / 32;                      // mask bitmap: words per tile row
    static constexpr uint32_t kMaskWords = kBM * kRowWords;
    static constexpr uint32_t kOffEpi = STAGES * kStageBytes;
    static constexpr uint32_t kOffMask = kOffEpi + 2 * kEpiWgBytes;
    static constexpr uint32_t kOffBars = kOffMask + (MASK ? 2 * kMaskWords * 4 : 0);
    static constexpr uint32_t kNumBars = 2 * STAGES + (MASK ? 4 : 0);
    // dynamic shared memory to request: the layout, rounded to 1 KiB, + 1 KiB for the base alignment
    static constexpr uint32_t kSmemBytes = ((kOffBars + kNumBars * 8 + 1023) / 1024) * 1024 + 1024;
    static_assert(kSmemBytes <= 227 * 1024, "over the sm_90 per-block shared memory limit");

    // The persistent schedule: work units (CM vertically adjacent tiles, one per CTA of a cluster)
    // u = first, first + stride, ... < units; the same sequence in every role of the CTA.
    struct Sched {
        int tiles_m, tiles_n;  // output tiles
        int units;             // ⌈tiles_m / CM⌉ · tiles_n
        int first, stride;     // this cluster's first unit, the number of clusters
        int rank;              // this CTA's rank in its cluster (0 when CM == 1)
    };
    // unit u → this CTA's (tile row tm, tile column tn): units in groups of kGroupM / CM unit rows
    static __device__ __forceinline__ void tile_coords(const Sched& sc, int u, int& tm, int& tn) {
        constexpr int kGroup = kGroupM / CM;
        const int unit_rows = cdiv(sc.tiles_m, CM);
        const int per_group = kGroup * sc.tiles_n;
        const int g = u / per_group;
        const int first = g * kGroup;
        const int rows = min(unit_rows - first, kGroup);
        const int r = u - g * per_group;
        tm = (first + r % rows) * CM + sc.rank;
        tn = r / rows;
    }

    // The whole kernel body. `smem_raw`: the kernel's dynamic shared memory (kSmemBytes requested).
    static __device__ __forceinline__ void run(const Problem<T>& pb, unsigned char* smem_raw) {
        const uint32_t raw = rsarch::smem_addr(smem_raw);
        const uint32_t pad = (1024u - (raw & 1023u)) & 1023u;
        unsigned char* smem = smem_raw + pad;
        const uint32_t sbase = raw + pad;
        const uint32_t bars = sbase + kOffBars;
        Sched sc;
        sc.tiles_m = cdiv(pb.m, kBM);
        sc.tiles_n = cdiv(pb.n, BN);
        sc.units = cdiv(sc.tiles_m, CM) * sc.tiles_n;
        sc.first = (int)blockIdx.x / CM;
        sc.stride = (int)gridDim.x / CM;
        sc.rank = CM == 1 ? 0 : (int)rsarch::cluster_ctarank();
        const bool masked = MASK && pb.nseg == 2 && pb.drop.enabled != 0;
        if (threadIdx.x == 0) {
            for (int s = 0; s < STAGES; ++s) {
                rsarch::mbar_init(full_bar(bars, s), 1);        // the producer's arrive.expect_tx
                rsarch::mbar_init(empty_bar(bars, s), 8 * CM);  // one arrival per consumer warp of the cluster
            }
            if (MASK) {
                for (int b = 0; b < 2; ++b) {
                    rsarch::mbar_init(mask_full_bar(bars, b), kMaskThreads);
                    rsarch::mbar_init(mask_empty_bar(bars, b), 256);
                }
            }
            rsarch::fence_mbarrier_init();
        }
        if (CM == 1) {
            __syncthreads();
        } else {
            rsarch::cluster_sync();  // both CTAs' barriers exist before any remote arrival or multicast
        }
        const int wg = (int)(threadIdx.x >> 7);
        if (wg == 0) {
            rsarch::setmaxnreg_dec<kProducerRegs>();
            if (threadIdx.x == 0) {
                producer(pb, sbase, bars, sc);
            } else if (masked && threadIdx.x >= 32) {
                mask_worker(pb, smem, bars, sc);
            } else {
                return;  // idle: exited threads do not take part in the cluster barrier below
            }
        } else {
            rsarch::setmaxnreg_inc<kConsumerRegs>();
            consumer(pb, smem, sbase, bars, sc, masked);
        }
        if (CM == 2) {
            // no CTA leaves while its peer may still arrive on its barriers (or multicast into it)
            rsarch::cluster_sync();
        }
    }

   private:
    static __device__ __forceinline__ uint32_t full_bar(uint32_t bars, int s) { return bars + 8u * (uint32_t)s; }
    static __device__ __forceinline__ uint32_t empty_bar(uint32_t bars, int s) {
        return bars + 8u * (uint32_t)(STAGES + s);
    }
    static __device__ __forceinline__ uint32_t mask_full_bar(uint32_t bars, int b) {
        return bars + 8u * (uint32_t)(2 * STAGES + b);
    }
    static __device__ __forceinline__ uint32_t mask_empty_bar(uint32_t bars, int b) {
        return bars + 8u * (uint32_t)(2 * STAGES + 2 + b);
    }

    // One thread: every (tile, segment, k-block) in order, into stage it % STAGES. Before the
    // r-th fill of a stage (r >= 1) it waits for the consumers' r-th release (phase r - 1).
    static __device__ __forceinline__ void producer(const Problem<T>& pb, uint32_t sbase, uint32_t bars, const Sched& sc) {
#pragma unroll
        for (int s = 0; s < 2; ++s) {
            if (s < pb.nseg) {
                rsarch::prefetch_tensormap(pb.seg[s].p);
                rsarch::prefetch_tensormap(pb.seg[s].q);
            }
        }
        int stage = 0;
        uint32_t phase = 0;
        bool wrapped = false;  // the ring has been filled once: wait for releases from now on
        for (int u = sc.first; u < sc.units; u += sc.stride) {
            int tm, tn;
            tile_coords(sc, u, tm, tn);
            const int m0 = tm * kBM, n0 = tn * BN;
#pragma unroll
            for (int s = 0; s < 2; ++s) {
                if (s >= pb.nseg) {
                    break;
                }
                const CUtensorMap* pm = pb.seg[s].p;
                const CUtensorMap* qm = pb.seg[s].q;
                for (int kb = 0; kb < pb.seg[s].kblocks; ++kb) {
                    if (wrapped) {
                        rsarch::mbar_wait_parity(empty_bar(bars, stage), phase ^ 1u);
                    }
                    const uint32_t full = full_bar(bars, stage);
                    const uint32_t sp = sbase + (uint32_t)stage * kStageBytes;
                    rsarch::mbar_arrive_expect_tx(full, kStageBytes);
                    rsarch::tma_load_2d(sp, pm, full, kb * kBK, m0);
                    if (CM == 1) {
                        if (QMN) {
#pragma unroll
                            for (int j = 0; j < BN / 64; ++j) {
                                rsarch::tma_load_2d(sp + kPBytes + (uint32_t)j * 8192u, qm, full, n0 + 64 * j, kb * kBK);
                            }
                        } else {
                            rsarch::tma_load_2d(sp + kPBytes, qm, full, kb * kBK, n0);
                        }
                    } else if (QMN) {  // this CTA's half of the n chunks, into both CTAs
#pragma unroll
                        for (int jj = 0; jj < BN / 128; ++jj) {
                            const int j = sc.rank * (BN / 128) + jj;
                            rsarch::tma_load_2d_multicast(sp + kPBytes + (uint32_t)j * 8192u, qm, full, n0 + 64 * j,
                                                          kb * kBK, (uint16_t)3);
                        }
                    } else {           // this CTA's half of the Q rows (map box {64, BN/2}), into both CTAs
                        rsarch::tma_load_2d_multicast(sp + kPBytes + (uint32_t)sc.rank * (kQBytes / 2), qm, full, kb * kBK,
                                                      n0 + sc.rank * (BN / 2), (uint16_t)3);
                    }
                    if (++stage == STAGES) {
                        stage = 0;
                        phase ^= 1u;
                        wrapped = true;
                    }
                }
            }
        }
    }

    // 96 threads: per tile (same order as the consumers), bit (r, c) of the bitmap = the dropout
    // keep bit of X element (m0 + r, n0 + c); word (r, w) holds columns 32w .. 32w + 31. Buffer
    // b = tile_iter % 2; before its k-th fill (k >= 1) it waits for the consumers' k-th release.
    static __device__ __forceinline__ void mask_worker(const Problem<T>& pb, unsigned char* smem, uint32_t bars,
                                                       const Sched& sc) {
        const int mt = (int)threadIdx.x - 32;
        int tile_iter = 0;
        for (int u = sc.first; u < sc.units; u += sc.stride, ++tile_iter) {
            int tm, tn;
            tile_coords(sc, u, tm, tn);
            const uint32_t m0 = (uint32_t)(tm * kBM), n0 = (uint32_t)(tn * BN);
            const int b = tile_iter & 1;
            if (tile_iter >= 2) {
                rsarch::mbar_wait_parity(mask_empty_bar(bars, b), (uint32_t)((tile_iter >> 1) - 1) & 1u);
            }
            uint32_t* bits = reinterpret_cast<uint32_t*>(smem + kOffMask) + b * kMaskWords;
            for (int w = mt; w < (int)kMaskWords; w += kMaskThreads) {
                const uint32_t row = m0 + (uint32_t)(w / kRowWords);
                const uint32_t col = n0 + 32u * (uint32_t)(w % kRowWords);
                uint32_t word = 0;
#pragma unroll 2
                for (int qd = 0; qd < 8; ++qd) {
                    float keep[4];
                    rs_dropout_quad(pb.drop, row, col + 4u * (uint32_t)qd, keep);
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        word |= (keep[e] != 0.0f ? 1u : 0u) << (4 * qd + e);
                    }
                }
                bits[w] = word;
            }
            rsarch::mbar_arrive(mask_full_bar(bars, b));
        }
    }

    static __device__ __forceinline__ void consumer(const Problem<T>& pb, unsigned char* smem, uint32_t sbase,
                                                    uint32_t bars, const Sched& sc, bool masked) {
        const int cw = (int)(threadIdx.x >> 7) - 1;  // 0, 1: rows 64·cw .. of the tile
        const int tid = (int)(threadIdx.x & 127);
        const int warp = tid >> 5, lane = tid & 31;
        const int q = lane & 3;
        const int rr = 16 * warp + (lane >> 2);      // this thread's rows: rr and rr + 8 of its 64
        float acc[BN / 2];
#pragma unroll
        for (int i = 0; i < BN / 2; ++i) {
            acc[i] = 0.0f;
        }
        int stage = 0;
        uint32_t phase = 0;
        int tile_iter = 0;
        const int peer = sc.rank ^ 1;
        for (int u = sc.first; u < sc.units; u += sc.stride, ++tile_iter) {
            int tm, tn;
            tile_coords(sc, u, tm, tn);
            const int m0 = tm * kBM, n0 = tn * BN;
            int pending = -1;   // the stage of the last issued wgmma group, not yet released
            int scale_d = 0;    // 0 for the tile's first wgmma: D = A·B
#pragma unroll
            for (int s = 0; s < 2; ++s) {
                if (s >= pb.nseg) {
                    break;
                }
                for (int kb = 0; kb < pb.seg[s].kblocks; ++kb) {
                    rsarch::mbar_wait_parity(full_bar(bars, stage), phase);
                    const uint32_t pa = sbase + (uint32_t)stage * kStageBytes + (uint32_t)cw * 8192u;
                    const uint32_t qb = sbase + (uint32_t)stage * kStageBytes + kPBytes;
                    rsarch::reg_fence(acc);
                    rsarch::wgmma_fence();
#pragma unroll
                    for (int kk = 0; kk < 4; ++kk) {
                        const uint64_t da = rsarch::make_smem_desc(pa + 32u * (uint32_t)kk, 16, 1024, 1);
                        const uint64_t db = QMN ? rsarch::make_smem_desc(qb + 2048u * (uint32_t)kk, 8192, 1024, 1)
                                                : rsarch::make_smem_desc(qb + 32u * (uint32_t)kk, 16, 1024, 1);
                        rsarch::wgmma_ss<BN, T, QMN ? 1 : 0>(acc, da, db, scale_d);
                        scale_d = 1;
                    }
                    rsarch::wgmma_commit();
                    rsarch::wgmma_wait<1>();  // every group but the one just issued has completed
                    if (pending >= 0) {
                        release(bars, pending, lane, peer);
                    }
                    pending = stage;
                    if (++stage == STAGES) {
                        stage = 0;
                        phase ^= 1u;
                    }
                }
                if (s == 0 && masked) {
                    rsarch::wgmma_wait<0>();
                    rsarch::reg_fence(acc);
                    release(bars, pending, lane, peer);
                    pending = -1;
                    apply_mask(pb, acc, smem, bars, tile_iter, cw, rr, q);
                }
            }
            rsarch::wgmma_wait<0>();
            rsarch::reg_fence(acc);
            if (pending >= 0) {
                release(bars, pending, lane, peer);
            }
            epilogue(pb, acc, smem, sbase, m0, n0, cw, tid, rr, q);
        }
        if (tid == 0) {
            rsarch::tma_store_wait_read<0>();  // the last tile's store has read shared memory
        }
    }

    static __device__ __forceinline__ void release(uint32_t bars, int stage, int lane, int peer) {
        if (lane == 0) {
            rsarch::mbar_arrive(empty_bar(bars, stage));
            if (CM == 2) {
                rsarch::mbar_arrive_cluster(empty_bar(bars, stage), (uint32_t)peer);  // the peer's producer writes here too
            }
        }
    }

    // acc(r, c) = keep(r, c) ? acc·scale : 0 for this thread's elements (rows rr, rr + 8 of the
    // consumer's 64; columns 8i + 2q + {0, 1}), from the mask worker's bitmap of this tile.
    static __device__ __forceinline__ void apply_mask(const Problem<T>& pb, float (&acc)[BN / 2], unsigned char* smem,
                                                      uint32_t bars, int tile_iter, int cw, int rr, int q) {
        const int b = tile_iter & 1;
        rsarch::mbar_wait_parity(mask_full_bar(bars, b), (uint32_t)(tile_iter >> 1) & 1u);
        const uint32_t* bits = reinterpret_cast<const uint32_t*>(smem + kOffMask) + b * kMaskWords;
        const int row0 = 64 * cw + rr;
        uint32_t w0[kRowWords], w1[kRowWords];
#pragma unroll
        for (int v = 0; v < kRowWords; v += 4) {
            const uint4 a = *reinterpret_cast<const uint4*>(bits + row0 * kRowWords + v);
            const uint4 c = *reinterpret_cast<const uint4*>(bits + (row0 + 8) * kRowWords + v);
            w0[v] = a.x, w0[v + 1] = a.y, w0[v + 2] = a.z, w0[v + 3] = a.w;
            w1[v] = c.x, w1[v + 1] = c.y, w1[v + 2] = c.z, w1[v + 3] = c.w;
        }
        rsarch::mbar_arrive(mask_empty_bar(bars, b));
        const float scale = pb.drop.scale;
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) {
            const int bit = 8 * (i & 3) + 2 * q;  // column 8i + 2q of the tile, in word i / 4
            const uint32_t a = w0[i >> 2] >> bit, c = w1[i >> 2] >> bit;
            acc[4 * i + 0] = (a & 1u) ? acc[4 * i + 0] * scale : 0.0f;
            acc[4 * i + 1] = (a & 2u) ? acc[4 * i + 1] * scale : 0.0f;
            acc[4 * i + 2] = (c & 1u) ? acc[4 * i + 2] * scale : 0.0f;
            acc[4 * i + 3] = (c & 2u) ? acc[4 * i + 3] * scale : 0.0f;
        }
    }

    // T(acc + bias) → this consumer's shared tile (BN/64 chunks of [64 rows][128 bytes], 16-byte
    // column j of row r stored at column j ^ (r % 8): the TMA 128B swizzle, bank-conflict free for
    // these 4-byte stores), then one thread stores the chunks that start inside C.
    static __device__ __forceinline__ void epilogue(const Problem<T>& pb, float (&acc)[BN / 2], unsigned char* smem,
                                                    uint32_t sbase, int m0, int n0, int cw, int tid, int rr, int q) {
        typedef typename Pair2<T>::type P2;
        unsigned char* tile = smem + kOffEpi + (uint32_t)cw * kEpiWgBytes;
        const int bar_id = 1 + cw;
        if (tid == 0) {
            rsarch::tma_store_wait_read<0>();  // the previous tile's store has finished reading
        }
        rsarch::named_bar_sync(bar_id, 128);
        const uint32_t sw = (uint32_t)(rr & 7);
#pragma unroll
        for (int i = 0; i < BN / 8; ++i) {
            const int col = n0 + 8 * i + 2 * q;
            float b0 = 0.0f, b1 = 0.0f;
            if (pb.bias != nullptr) {
                if (col < pb.n) {
                    b0 = rs::to_f32<T>(pb.bias[col]);
                }
                if (col + 1 < pb.n) {
                    b1 = rs::to_f32<T>(pb.bias[col + 1]);
                }
            }
            const uint32_t off = (uint32_t)(i >> 3) * 8192u + (uint32_t)rr * 128u + ((((uint32_t)i & 7u) ^ sw) << 4) +
                                 4u * (uint32_t)q;
            *reinterpret_cast<P2*>(tile + off) = P2(rs::from_f32<T>(acc[4 * i + 0] + b0), rs::from_f32<T>(acc[4 * i + 1] + b1));
            *reinterpret_cast<P2*>(tile + off + 8u * 128u) =
                P2(rs::from_f32<T>(acc[4 * i + 2] + b0), rs::from_f32<T>(acc[4 * i + 3] + b1));
        }
        rsarch::fence_proxy_async_shared();  // these generic-proxy writes → the TMA store's reads
        rsarch::named_bar_sync(bar_id, 128);
        if (tid == 0) {
            const int row0 = m0 + 64 * cw;
            if (row0 < pb.m) {
                const uint32_t base = sbase + kOffEpi + (uint32_t)cw * kEpiWgBytes;
#pragma unroll
                for (int j = 0; j < BN / 64; ++j) {
                    if (n0 + 64 * j < pb.n) {
                        rsarch::tma_store_2d(pb.c, base + (uint32_t)j * 8192u, n0 + 64 * j, row0);
                    }
                }
            }
            rsarch::tma_store_commit();
        }
    }
};

}  // namespace rs3
