// Hopper (sm_90a) device functions of the GPU-work contract (GPU-CONTRACT.md, outside this repository,
// in ../helpers/ when these were written: cuda/REVIEW.md, "The CPU emulation"): mbarriers,
// proxy fences, TMA (cp.async.bulk.tensor) loads and stores, wgmma.mma_async with shared-memory
// matrix descriptors, setmaxnreg. Inline PTX, written from the PTX ISA (9.7.9.25 mbarrier,
// 9.7.9.27 cp.async.bulk.tensor, 9.7.15 wgmma, 9.7.19.x setmaxnreg); the CPU emulation implements
// the same names in cuda/dev/emu/sm90_emu.h, independently, from the same ISA text.
// Needs the `a` target: -gencode arch=compute_90a,code=sm_90a (wgmma and setmaxnreg do not exist on
// plain sm_90).
//
// Addresses: `bar`, `smem_dst`, `smem_src`, descriptor start addresses are 32-bit shared-state-space
// addresses (rsarch::smem_addr). Tensor maps are `const CUtensorMap*` pointing at
// `const __grid_constant__ CUtensorMap` kernel parameters (generic addresses of the param space).
#pragma once
#include <stdint.h>
#include <type_traits>
#include <cuda.h>  // CUtensorMap
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include "common.cuh"

#if !defined(RS_EMULATE)
namespace rsarch {

// ---- mbarrier (64-bit object in shared memory) ------------------------------------------------
// Initialise with an expected arrival count (phase 0 in progress, no pending transactions).
__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialisations above visible to the async proxy (TMA complete_tx) and the cluster.
__device__ __forceinline__ void fence_mbarrier_init() {
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}
// One arrival, release semantics at CTA scope (orders this thread's earlier memory accesses).
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.release.cta.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
// One arrival that also raises the pending transaction count by `bytes` (the TMA loads that
// complete_tx on this barrier lower it as their bytes land).
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.release.cta.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
                 : "memory");
}
// true when the phase with this parity (the current or the immediately preceding one) has
// completed; acquire semantics at CTA scope.
__device__ __forceinline__ bool mbar_try_wait_parity(uint32_t bar, uint32_t parity) {
    uint32_t ok;
    asm volatile(
        "{\n"
        ".reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n"
        "}\n"
        : "=r"(ok)
        : "r"(bar), "r"(parity)
        : "memory");
    return ok != 0;
}
__device__ __forceinline__ void mbar_wait_parity(uint32_t bar, uint32_t parity) {
    while (!mbar_try_wait_parity(bar, parity)) {
    }
}

// One arrival on the mbarrier at the same shared-memory offset in CTA `cta` of this cluster
// (mapa + remote arrive, release at cluster scope).
__device__ __forceinline__ void mbar_arrive_cluster(uint32_t bar, uint32_t cta) {
    asm volatile(
        "{\n"
        ".reg .b32 ra;\n"
        "mapa.shared::cluster.u32 ra, %0, %1;\n"
        "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [ra];\n"
        "}\n" ::"r"(bar),
        "r"(cta)
        : "memory");
}

// ---- clusters ----------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t cluster_ctarank() {
    uint32_t r;
    asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
    return r;
}
// barrier.cluster arrive (release) + wait (acquire), the non-.aligned forms: callable from divergent
// code; the wait is for every non-exited thread of the cluster.
__device__ __forceinline__ void cluster_sync() {
    asm volatile(
        "barrier.cluster.arrive.release;\n"
        "barrier.cluster.wait.acquire;\n" ::
            : "memory");
}

// ---- proxy fences --------------------------------------------------------------------------------
// Orders this thread's generic-proxy shared-memory accesses before later async-proxy accesses
// (TMA store reading a tile the threads wrote, wgmma reading shared memory written by threads).
__device__ __forceinline__ void fence_proxy_async_shared() {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// ---- TMA (tensor maps made by cuTensorMapEncodeTiled) -------------------------------------------
// Loads the box at (c0 = innermost coordinate, c1) into shared memory at smem_dst (1024-byte
// aligned for 128-byte swizzle) and signals complete_tx(box bytes) on `bar`. Elements outside
// the tensor are zero-filled (and still counted).
__device__ __forceinline__ void tma_load_2d(uint32_t smem_dst, const CUtensorMap* map, uint32_t bar, int32_t c0,
                                            int32_t c1) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];" ::"r"(
            smem_dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
        : "memory");
}
// tma_load_2d into the same shared-memory offset of every CTA in cta_mask (bit i: cluster rank i),
// complete_tx on the mbarrier at the same offset in each of them.
__device__ __forceinline__ void tma_load_2d_multicast(uint32_t smem_dst, const CUtensorMap* map, uint32_t bar, int32_t c0,
                                                      int32_t c1, uint16_t cta_mask) {
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1, {%2, %3}], [%4], %5;" ::"r"(smem_dst),
        "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar), "h"(cta_mask)
        : "memory");
}
// Stores the box at (c0, c1) from shared memory; elements outside the tensor are not written.
// Completion is tracked by bulk groups (tma_store_commit / tma_store_wait_read).
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, uint32_t smem_src, int32_t c0, int32_t c1) {
    asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%2, %3}], [%1];" ::"l"(
                     reinterpret_cast<uint64_t>(map)),
                 "r"(smem_src), "r"(c0), "r"(c1)
                 : "memory");
}
__device__ __forceinline__ void tma_store_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
// Waits until at most N of this thread's committed bulk groups are still reading shared memory.
template <int N>
__device__ __forceinline__ void tma_store_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void prefetch_tensormap(const CUtensorMap* map) {
    asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// ---- wgmma --------------------------------------------------------------------------------------
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// Compiler-only fence on accumulator registers (no instruction): every d[i] is "read and written"
// here, so the compiler can neither hoist a use of an accumulator above a preceding wgmma_wait nor
// sink a write of one below a following wgmma_fence. The emulation's version is a no-op.
// (Addition to the contract's API: Board 2026-12-04 sm90.)
template <int K>
__device__ __forceinline__ void reg_fence(float (&d)[K]) {
#pragma unroll
    for (int i = 0; i < K; ++i) {
        asm volatile("" : "+f"(d[i])::"memory");
    }
}

// Shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format"): bits 0-13 start address
// >> 4, 16-29 leading-dimension byte offset >> 4, 32-45 stride-dimension byte offset >> 4, 49-51
// base offset (0: every operand here starts on the swizzle pattern's 1024-byte boundary, or at a
// 32-byte K step inside it), 62-63 swizzle mode (0 none, 1 128B, 2 64B, 3 32B).
__device__ __forceinline__ uint64_t make_smem_desc(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes,
                                                   int swizzle_mode) {
    return (uint64_t)((smem_addr & 0x3FFFFu) >> 4) | ((uint64_t)((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
           ((uint64_t)((sbo_bytes & 0x3FFFFu) >> 4) << 32) | ((uint64_t)(swizzle_mode & 3) << 62);
}

// The accumulator operand lists: d[0] .. d[K-1] as "+f".
#define RS_WG_D4(b) "+f"(d[(b)]), "+f"(d[(b) + 1]), "+f"(d[(b) + 2]), "+f"(d[(b) + 3])
#define RS_WG_D16(b) RS_WG_D4(b), RS_WG_D4((b) + 4), RS_WG_D4((b) + 8), RS_WG_D4((b) + 12)
#define RS_WG_D32(b) RS_WG_D16(b), RS_WG_D16((b) + 16)
#define RS_WG_D64(b) RS_WG_D32(b), RS_WG_D32((b) + 32)
#define RS_WG_D128 RS_WG_D64(0), RS_WG_D64(64)

// {%0 .. %31}: the 32 accumulator registers of m64n64k16
#define RS_WGMMA_REGS_64 \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
// {%0 .. %63}: the 64 accumulator registers of m64n128k16
#define RS_WGMMA_REGS_128 \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
// {%0 .. %127}: the 128 accumulator registers of m64n256k16
#define RS_WGMMA_REGS_256 \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, " \
    "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, " \
    "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, " \
    "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
    "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"

// wgmma.mma_async m64nNk16, f32 accumulators, A and B from shared memory, scale-a = scale-b = 1,
// A K-major (imm-trans-a 0), B K-major (TRANS_B 0) or MN-major (TRANS_B 1); scale-d as predicate:
// 0 → D = A·B, 1 → D = A·B + D. IA/IB/IS/IT: operand numbers of desc_a, desc_b, scale_d, TRANS_B.
#define RS_WGMMA_SS_ASM(NS, TY, REGS, IA, IB, IS, IT, OUTS)                                                   \
    asm volatile("{\n"                                                                                        \
                 ".reg .pred p;\n"                                                                            \
                 "setp.ne.b32 p, %" IS ", 0;\n"                                                               \
                 "wgmma.mma_async.sync.aligned.m64n" NS "k16.f32." TY "." TY " {" REGS "}, %" IA ", %" IB    \
                 ", p, 1, 1, 0, %" IT ";\n"                                                                   \
                 "}\n"                                                                                        \
                 : OUTS                                                                                       \
                 : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(TRANS_B)                                       \
                 : "memory")

// Accumulator layout (PTX ISA, wgmma .m64nNk16 D fragment): thread t of the warpgroup, warp
// w = t / 32, lane l = t % 32: d[4i + 0, 1] = D(16w + l/4, 8i + 2(l%4) + {0, 1}),
// d[4i + 2, 3] = D(16w + l/4 + 8, 8i + 2(l%4) + {0, 1}), i = 0 .. N/8 - 1.
template <int N, typename T, int TRANS_B>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int scale_d) {
    static_assert(N == 64 || N == 128 || N == 256, "wgmma_ss: N must be 64, 128 or 256");
    static_assert(TRANS_B == 0 || TRANS_B == 1, "wgmma_ss: TRANS_B is 0 (K-major) or 1 (MN-major)");
    constexpr bool kBf16 = std::is_same<T, __nv_bfloat16>::value;
    static_assert(kBf16 || std::is_same<T, __half>::value, "wgmma_ss: T must be __nv_bfloat16 or __half");
    if constexpr (N == 256) {
        if constexpr (kBf16) {
            RS_WGMMA_SS_ASM("256", "bf16", RS_WGMMA_REGS_256, "128", "129", "130", "131", RS_WG_D128);
        } else {
            RS_WGMMA_SS_ASM("256", "f16", RS_WGMMA_REGS_256, "128", "129", "130", "131", RS_WG_D128);
        }
    } else if constexpr (N == 128) {
        if constexpr (kBf16) {
            RS_WGMMA_SS_ASM("128", "bf16", RS_WGMMA_REGS_128, "64", "65", "66", "67", RS_WG_D64(0));
        } else {
            RS_WGMMA_SS_ASM("128", "f16", RS_WGMMA_REGS_128, "64", "65", "66", "67", RS_WG_D64(0));
        }
    } else {
        if constexpr (kBf16) {
            RS_WGMMA_SS_ASM("64", "bf16", RS_WGMMA_REGS_64, "32", "33", "34", "35", RS_WG_D32(0));
        } else {
            RS_WGMMA_SS_ASM("64", "f16", RS_WGMMA_REGS_64, "32", "33", "34", "35", RS_WG_D32(0));
        }
    }
}

#undef RS_WGMMA_SS_ASM
#undef RS_WGMMA_REGS_64
#undef RS_WGMMA_REGS_128
#undef RS_WGMMA_REGS_256
#undef RS_WG_D4
#undef RS_WG_D16
#undef RS_WG_D32
#undef RS_WG_D64
#undef RS_WG_D128

// ---- register reallocation (warpgroup-wide; needs __launch_bounds__(threads, 1) on the kernel) ----
template <int R>
__device__ __forceinline__ void setmaxnreg_inc() {
    static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: 24..256, multiple of 8");
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(R));
}
template <int R>
__device__ __forceinline__ void setmaxnreg_dec() {
    static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: 24..256, multiple of 8");
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(R));
}

}  // namespace rsarch
#endif  // !RS_EMULATE
