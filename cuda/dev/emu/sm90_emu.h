// The sm90 device functions of GPU-CONTRACT.md (GPU side: cuda/arch/sm90.cuh) and the driver's
// cuTensorMapEncodeTiled on the CPU emulation (GPU-CONTRACT.md lies outside this repository: see
// cuda/REVIEW.md, "The CPU emulation"). Semantics chosen where the PTX ISA leaves latitude:
//
// mbarrier (a 64-bit object in shared memory, addressed by its 32-bit shared address):
//   mbar_init(bar, count)   count in 1..2^20-1; phase 0, pending arrivals = count, tx-count 0. The 8
//       bytes in shared memory get a tag that every later operation checks: an mbarrier overwritten by
//       a plain store, or used without mbar_init, is reported.
//   mbar_arrive             pending -= 1 (more arrivals than count in one phase is reported).
//   mbar_arrive_expect_tx   tx-count += bytes, then arrive.
//   complete-tx (TMA)       tx-count -= the full box bytes (OOB-filled elements count), at the TMA call.
//   A phase completes when pending == 0 and tx-count == 0: the phase number increments, pending is
//   reset to count. (tx-count may go negative transiently: a load issued before its expect_tx.)
//   mbar_try_wait_parity(bar, P) / mbar_wait_parity: true once the phase with parity P has completed,
//       i.e. (completed phases & 1) != P. The calling thread parks until then (the emulation's
//       try_wait has no time limit, so it returns true); a phase that can never complete is a reported
//       deadlock that names the barrier, its phase, pending arrivals and tx-count.
// TMA (cp.async.bulk.tensor.2d, tensor maps from the emulated cuTensorMapEncodeTiled below):
//   load: at the call, the box at (c0 = innermost, c1) is read from global memory (elements outside
//       the tensor: zero; the NaN fill option is refused by the encoder as not emulated), laid out
//       row-major (pitch = box0·elemsize) from the destination, every 16-byte chunk moved by the
//       swizzle of the map (address bits [4,4+b) ^= bits [7,7+b), b = 1, 2, 3 for 32/64/128 B,
//       on the 32-bit shared address); the destination bytes are overwritten with 0xFF garbage now,
//       the data LANDS only when a thread's wait on the mbarrier finds the copy's phase complete
//       (so a consumer that reads without waiting reads garbage). The destination must be 128-byte
//       aligned, and aligned to the swizzle pattern (256/512/1024 B) when swizzled.
//   store: the shared source is read at the call (same layout); tma_store_wait_read<N> (per-thread
//       bulk groups, committed by tma_store_commit) checks that the source bytes are unchanged
//       (overwritten before the read completed: reported) and writes the box to global memory,
//       clipped to the tensor's extent; groups still open at thread exit complete then.
// wgmma (warpgroup-collective: the 128 threads of warps 4g..4g+3 must all execute the same call):
//   make_smem_desc / the descriptor: start address bits 0-13 (addr>>4, 18-bit addresses), LBO bits
//       16-29, SBO bits 32-45 (both >>4), base offset bits 49-51, swizzle bits 62-63 (0 none, 1 128B,
//       2 64B, 3 32B); reserved bits must be 0 and the base offset 0 (tiles start on the pattern
//       boundary): otherwise reported.
//   Canonical layouts (PTX ISA "Shared Memory Matrix Layout", strides in bytes, S = swizzle span):
//       K-major, no swizzle:  (mn, k) at start + (mn/8)·SBO + (k/8)·LBO + (mn%8)·16 + (k%8)·2
//       K-major, swizzled:    (mn, k) at start + (mn/8)·SBO + (mn%8)·S + k·2        (LBO unused)
//       MN-major, no swizzle: (k, mn) at start + (mn/8)·SBO + (k/8)·LBO + (k%8)·16 + (mn%8)·2
//       MN-major, swizzled:   (k, mn) at start + (mn/(S/2))·LBO + (k/8)·SBO + (k%8)·S + (mn%(S/2))·2
//       then the swizzle of the address bits as for TMA.
//   wgmma_ss<N, T, TRANS_B>(d, desc_a, desc_b, scale_d): A (64×16) K-major, B K-major (TRANS_B 0) or
//       N-major (1); operands are read at the call, accumulators are produced at the call but written
//       into d only by the wgmma_wait that retires the group (d holds a NaN pattern meanwhile, and a
//       write to d while the wgmma is in flight is reported); at that wait the operand bytes are
//       compared with what was read: a stage overwritten while a wgmma still reads it is reported.
//       D fragment: thread t = 32w + l, d[i] = D(16w + l/4 + 8·((i/2)%2), 8·(i/4) + 2·(l%4) + i%2).
//       D = (scale_d ? D : 0) + A·B in fp32 like mma_16816 (exact products, ascending k).
//       A wgmma_fence() of the warpgroup is required before the first wgmma_ss and again after every
//       wgmma_wait<0> (the accumulators are normally read or written then); desc/scale_d must be
//       uniform over the warpgroup.
//   setmaxnreg_inc/dec<R>: a checked no-op (R multiple of 8 in 24..256, warpgroup-collective).
// Fences (fence_proxy_async_shared, fence_view_async_shared, fence_mbarrier_init): no-ops, counted.
// Clusters (launch with RS_LAUNCH_CLUSTER): the blocks of a cluster run together (one scheduler, one
//   window each); cluster_ctarank, cluster_sync (barrier.cluster over the non-exited threads of the
//   cluster), mbar_arrive_cluster(bar, cta) and tma_load_2d_multicast (the box lands in every CTA of
//   the mask at the same shared offset, complete-tx on each CTA's mbarrier at `bar`).
#pragma once

#include <cuda.h>

#include <array>
#include <deque>
#include <map>

#include "sm80_emu.h"

namespace rs_emu {

// ---- tensor maps ---------------------------------------------------------------------------------
constexpr uint64_t kTmapMagic = 0x50414d54554d4552ull;  // "REMUTMAP"

struct TmaMap {
    const unsigned char* base;
    uint64_t dim[5];
    uint64_t stride[5];  // bytes; stride[0] = element size
    uint32_t box[5], estride[5];
    int rank, dtype, esize, swizzle_span;
};

inline uint64_t tmap_sum(const uint64_t* q) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 15; ++i) h = (h ^ q[i]) * 1099511628211ull;
    return h;
}

inline int tmap_esize(int dtype) {
    switch (dtype) {
        case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
        case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: return 2;
        case CU_TENSOR_MAP_DATA_TYPE_FLOAT32: return 4;
        default: return 0;
    }
}

inline CUresult tmap_fail(const std::string& why, CUresult r = CUDA_ERROR_INVALID_VALUE) {
    std::fprintf(stderr, "cuda-emu: cuTensorMapEncodeTiled: %s\n", why.c_str());
    return r;
}

inline TmaMap tmap_decode(const CUtensorMap* map, const char* what, Site site) {
    if (map == nullptr || reinterpret_cast<uintptr_t>(map) % 64 != 0)
        die(std::string(what) + ": tensor map pointer is null or not 64-byte aligned, in " + where() + " at " + site_str(site));
    const uint64_t* q = reinterpret_cast<const uint64_t*>(map);  // the driver needs 64-byte alignment, the C++ type says 128
    if (q[0] != kTmapMagic || q[15] != tmap_sum(q))
        die(std::string(what) + ": not a tensor map made by cuTensorMapEncodeTiled (or it was modified), in " + where() + " at " + site_str(site));
    TmaMap m;
    m.base = reinterpret_cast<const unsigned char*>(q[1]);
    m.dtype = (int)(q[13] & 0xFF);
    m.rank = (int)(q[13] >> 8 & 0xFF);
    m.swizzle_span = (int)(q[13] >> 24 & 0xFF) == 0 ? 0 : 16 << (int)(q[13] >> 24 & 0xFF);
    m.esize = tmap_esize(m.dtype);
    for (int i = 0; i < 5; ++i) {
        m.dim[i] = q[2 + i];
        m.stride[i] = i == 0 ? (uint64_t)m.esize : q[7 + i - 1];
        m.box[i] = (uint32_t)(i < 4 ? q[11] >> (16 * i) : q[12]) & 0xFFFF;
        m.estride[i] = (uint32_t)(q[12] >> (16 + 8 * i)) & 0xFF;
    }
    return m;
}

}  // namespace rs_emu

// The driver entry point, same signature; validates as the driver documents (cuda.h) and stores what
// the emulated TMA needs in the 128-byte map. Emulated: 2-byte (bf16, f16) and 4-byte (f32) floats,
// no interleave, swizzle none/32B/64B/128B, element strides accepted (the TMA functions take 1).
extern "C" inline CUresult cuTensorMapEncodeTiled(CUtensorMap* tensorMap, CUtensorMapDataType tensorDataType, cuuint32_t tensorRank,
                                                  void* globalAddress, const cuuint64_t* globalDim, const cuuint64_t* globalStrides,
                                                  const cuuint32_t* boxDim, const cuuint32_t* elementStrides, CUtensorMapInterleave interleave,
                                                  CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2Promotion, CUtensorMapFloatOOBfill oobFill) {
    using namespace rs_emu;
    if (tensorMap == nullptr || reinterpret_cast<uintptr_t>(tensorMap) % 64 != 0) return tmap_fail("tensorMap must be 64-byte aligned");
    if ((int)tensorDataType < 0 || (int)tensorDataType > (int)CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B)
        return tmap_fail("tensorDataType " + std::to_string((int)tensorDataType) + " is not a CUtensorMapDataType");
    const int esize = tmap_esize((int)tensorDataType);
    if (esize == 0)
        return tmap_fail("tensorDataType " + std::to_string((int)tensorDataType) + " is valid for the driver but not emulated (bf16, f16, f32 only)",
                         CUDA_ERROR_NOT_SUPPORTED);
    if (tensorRank < 1 || tensorRank > 5) return tmap_fail("tensorRank " + std::to_string(tensorRank) + " is not in 1..5");
    if ((int)interleave < 0 || (int)interleave > (int)CU_TENSOR_MAP_INTERLEAVE_32B) return tmap_fail("interleave is not a CUtensorMapInterleave");
    if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE) {
        if (tensorRank < 3) return tmap_fail("interleave needs tensorRank >= 3");
        return tmap_fail("interleaved layouts are valid for the driver but not emulated", CUDA_ERROR_NOT_SUPPORTED);
    }
    if (globalAddress == nullptr || reinterpret_cast<uintptr_t>(globalAddress) % 16 != 0) return tmap_fail("globalAddress must be 16-byte aligned");
    for (cuuint32_t i = 0; i < tensorRank; ++i) {
        if (globalDim[i] == 0 || globalDim[i] > (1ull << 32))
            return tmap_fail("globalDim[" + std::to_string(i) + "] = " + std::to_string(globalDim[i]) + " is not in 1..2^32");
        if (boxDim[i] == 0 || boxDim[i] > 256) return tmap_fail("boxDim[" + std::to_string(i) + "] = " + std::to_string(boxDim[i]) + " is not in 1..256");
        if (elementStrides[i] == 0 || elementStrides[i] > 8)
            return tmap_fail("elementStrides[" + std::to_string(i) + "] = " + std::to_string(elementStrides[i]) + " is not in 1..8");
    }
    for (cuuint32_t i = 0; i + 1 < tensorRank; ++i) {
        if (globalStrides[i] % 16 != 0 || globalStrides[i] >= (1ull << 40))
            return tmap_fail("globalStrides[" + std::to_string(i) + "] = " + std::to_string(globalStrides[i]) + " is not a multiple of 16 below 2^40");
    }
    if ((boxDim[0] * (uint64_t)esize) % 16 != 0)
        return tmap_fail("boxDim[0] * element size = " + std::to_string(boxDim[0] * esize) + " bytes is not a multiple of 16");
    int span = 0, code = 0;
    switch (swizzle) {
        case CU_TENSOR_MAP_SWIZZLE_NONE: break;
        case CU_TENSOR_MAP_SWIZZLE_32B: span = 32, code = 1; break;
        case CU_TENSOR_MAP_SWIZZLE_64B: span = 64, code = 2; break;
        case CU_TENSOR_MAP_SWIZZLE_128B: span = 128, code = 3; break;
        default:
            if ((int)swizzle >= 0 && (int)swizzle <= (int)CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B)
                return tmap_fail("swizzle " + std::to_string((int)swizzle) + " is valid for the driver but not emulated", CUDA_ERROR_NOT_SUPPORTED);
            return tmap_fail("swizzle is not a CUtensorMapSwizzle");
    }
    if (span != 0 && boxDim[0] * (uint64_t)esize > (uint64_t)span)
        return tmap_fail("the box's inner dimension (" + std::to_string(boxDim[0] * esize) + " bytes) exceeds the swizzle span of " + std::to_string(span) + " bytes");
    if ((int)l2Promotion < 0 || (int)l2Promotion > (int)CU_TENSOR_MAP_L2_PROMOTION_L2_256B) return tmap_fail("l2Promotion is not a CUtensorMapL2promotion");
    if ((int)oobFill < 0 || (int)oobFill > (int)CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA) return tmap_fail("oobFill is not a CUtensorMapFloatOOBfill");
    if (oobFill != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
        return tmap_fail("CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA is valid for the driver but not emulated (zero fill only)", CUDA_ERROR_NOT_SUPPORTED);
    uint64_t* q = reinterpret_cast<uint64_t*>(tensorMap);  // 64-byte alignment is what the driver requires
    std::memset(q, 0, sizeof(CUtensorMap));
    q[0] = kTmapMagic;
    q[1] = reinterpret_cast<uint64_t>(globalAddress);
    for (cuuint32_t i = 0; i < 5; ++i) {
        q[2 + i] = i < tensorRank ? globalDim[i] : 1;
        if (i < 4) q[7 + i] = i + 1 < tensorRank ? globalStrides[i] : 0;
    }
    for (cuuint32_t i = 0; i < 5; ++i) {
        const uint64_t b = i < tensorRank ? boxDim[i] : 1, e = i < tensorRank ? elementStrides[i] : 1;
        if (i < 4) q[11] |= b << (16 * i);
        else q[12] |= b;
        q[12] |= e << (16 + 8 * i);
    }
    q[13] = (uint64_t)tensorDataType | (uint64_t)tensorRank << 8 | (uint64_t)interleave << 16 | (uint64_t)code << 24 | (uint64_t)l2Promotion << 32 |
            (uint64_t)oobFill << 40;
    q[15] = tmap_sum(q);
    return CUDA_SUCCESS;
}

// The harness reaches the driver function through the runtime as on a GPU (cuda_runtime_api.h,
// included by the toolkit's fp16 header, declares both with their default arguments).
namespace rs_emu {
inline cudaError_t driver_entry_point(const char* symbol, void** funcPtr, cudaDriverEntryPointQueryResult* driverStatus) {
    const bool found = symbol != nullptr && std::strcmp(symbol, "cuTensorMapEncodeTiled") == 0;
    if (driverStatus) *driverStatus = found ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
    *funcPtr = found ? reinterpret_cast<void*>(&cuTensorMapEncodeTiled) : nullptr;
    return found ? cudaSuccess : cudaErrorSymbolNotFound;
}
}  // namespace rs_emu
inline cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** funcPtr, unsigned long long, cudaDriverEntryPointQueryResult* driverStatus) {
    return ::rs_emu::driver_entry_point(symbol, funcPtr, driverStatus);
}
inline cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** funcPtr, unsigned int, unsigned long long,
                                                    cudaDriverEntryPointQueryResult* driverStatus) {
    return ::rs_emu::driver_entry_point(symbol, funcPtr, driverStatus);
}

namespace rs_emu {

// ---- swizzle ----------------------------------------------------------------------------------------
// 16-byte chunk bits [4, 4+b) ^= address bits [7, 7+b): b = 1, 2, 3 for a 32, 64, 128-byte span.
inline uint32_t swizzle(uint32_t addr, int span) {
    switch (span) {
        case 128: return addr ^ ((addr >> 3) & 0x70);
        case 64: return addr ^ ((addr >> 3) & 0x30);
        case 32: return addr ^ ((addr >> 3) & 0x10);
        default: return addr;
    }
}

// ---- mbarriers --------------------------------------------------------------------------------------
constexpr uint64_t kMbarTag = 0x4d42415252494552ull;  // "REIRRABM"

struct TmaLanding {
    uint32_t phase;                    // the mbarrier phase the copy's complete-tx belongs to
    std::vector<uint32_t> chunk_addr;  // destination of each 16-byte chunk (swizzled)
    std::vector<unsigned char> data;   // 16 bytes per chunk
};

struct Mbar {
    uint32_t count = 0, pending = 0, phase = 0;
    int64_t tx = 0;
    Site init_site;
    std::vector<TmaLanding> landings;
    std::vector<unsigned> waiters;
};

struct BulkStore {
    TmaMap map;
    uint32_t src;
    int32_t c0, c1;
    std::vector<uint32_t> chunk_addr;
    std::vector<unsigned char> data;
    Site site;
};
struct BulkThread {
    std::vector<BulkStore> open;
    std::vector<std::vector<BulkStore>> groups;  // committed, oldest first
};

struct WgOp {
    int n = 0;
    Site site;
    std::vector<uint32_t> chunk_addr;  // every 16-byte chunk of A and B the wgmma read
    std::vector<unsigned char> chunk_data;
    unsigned a_chunks = 0;
    std::vector<float> out;  // [128][n/2]
    float* d[128];
};
struct WgState {
    bool fenced = false;
    std::vector<WgOp> open;
    std::vector<std::vector<WgOp>> groups;  // committed, oldest first
};

struct Sm90 {
    bool used = false;  // some sm90 function ran in the current cluster (else the hooks have nothing to do)
    std::vector<std::map<uint32_t, Mbar>> mbars;  // per CTA of the cluster
    std::vector<BulkThread> bulk;                 // per fiber
    std::vector<std::vector<WgState>> wg;         // per CTA, per warpgroup
    unsigned cluster_arrived = 0;
    std::vector<unsigned> cluster_waiters;
    uint64_t fences_proxy = 0, fences_view = 0, fences_mbar_init = 0, tma_loads = 0, tma_stores = 0, wgmmas = 0;
};
inline Sm90& sm90_state() {
    static Sm90 s;
    return s;
}
// the state, sized for the current cluster on first use
inline Sm90& sm90() {
    Sm90& g = sm90_state();
    if (!g.used) {
        const State& s = st();
        g.used = true;
        g.mbars.assign(s.ctas.size(), {});
        g.bulk.resize(s.fibers.size());
        for (BulkThread& b : g.bulk) b.open.clear(), b.groups.clear();
        g.wg.assign(s.ctas.size(), std::vector<WgState>((s.nt + 127) / 128));
        g.cluster_arrived = 0;
        g.cluster_waiters.clear();
    }
    return g;
}

constexpr uint32_t kAccPoison = 0x7fc0a5a5u;  // a quiet NaN: the accumulators while a wgmma is in flight

inline uint64_t mbar_tag(uint32_t bar) { return kMbarTag ^ ((uint64_t)bar * 0x9E3779B97F4A7C15ull); }

inline Mbar& mbar_get(Cta& c, uint32_t bar, const char* what, Site site) {
    unsigned char* p = shared_ptr(c, bar, 8, what, site);
    if (bar % 8 != 0) die(std::string(what) + ": mbarrier address " + hex(bar) + " is not 8-byte aligned, in " + where() + " at " + site_str(site));
    auto& table = sm90().mbars[c.rank];
    auto it = table.find(bar);
    uint64_t tag;
    std::memcpy(&tag, p, 8);
    if (it == table.end() || tag != mbar_tag(bar)) {
        die(std::string(what) + ": no mbarrier at shared address " + hex(bar) + " of block " + dim_str(c.idx) +
            (it == table.end() ? " (mbar_init was not called for it)" : " (its 8 bytes were overwritten after mbar_init at " + site_str(it->second.init_site) + ")") +
            ", in " + where() + " at " + site_str(site));
    }
    return it->second;
}

// An async-proxy write (a TMA load landing, or its garbage at issue): the window and its async view.
inline void async_write(Cta& c, uint32_t addr, const void* src, const char* what, Site site) {
    unsigned char* p = shared_ptr(c, addr, 16, what, site);
    std::memcpy(p, src, 16);
    if (c.aview) std::memcpy(c.aview + (p - c.window), src, 16);
}
// An async-proxy read (a TMA store's source, a wgmma operand) of 16 bytes: bytes that threads stored
// (generic proxy) after the last fence_proxy_async_shared() are not visible to it: reported.
inline const unsigned char* async_read(Cta& c, uint32_t addr, const char* what, Site site) {
    const unsigned char* p = shared_ptr(c, addr, 16, what, site);
    if (c.aview && std::memcmp(p, c.aview + (p - c.window), 16) != 0)
        die(std::string(what) + " reads shared memory (16 bytes at " + hex(addr) + ") that threads wrote after the last fence_proxy_async_shared(): "
            "generic-proxy stores are not visible to the async proxy (TMA, wgmma) without fence.proxy.async, in " + where() + " at " + site_str(site));
    return p;
}

inline void mbar_land(Cta& c, Mbar& m) {
    if (m.landings.empty()) return;
    std::vector<TmaLanding> keep;
    for (TmaLanding& l : m.landings) {
        if (l.phase < m.phase) {
            for (size_t k = 0; k < l.chunk_addr.size(); ++k) async_write(c, l.chunk_addr[k], &l.data[16 * k], "TMA load", Site{});
        } else {
            keep.push_back(std::move(l));
        }
    }
    m.landings.swap(keep);
}

inline void mbar_try_complete(Mbar& m) {
    if (m.pending != 0 || m.tx != 0) return;
    ++m.phase;
    m.pending = m.count;
    State& s = st();
    for (unsigned w : m.waiters) wake(s.fibers[w]);
    m.waiters.clear();
}

inline void mbar_check_tx(const Mbar& m, uint32_t bar, const char* what, Site site) {
    if (m.tx >= (1 << 20) || m.tx <= -(1 << 20))
        die(std::string(what) + ": tx-count of mbarrier " + hex(bar) + " is " + std::to_string(m.tx) + ", outside the PTX range -(2^20-1)..2^20-1, in " +
            where() + " at " + site_str(site));
}

inline void mbar_arrive_on(Cta& c, uint32_t bar, uint32_t tx_bytes, const char* what, Site site) {
    Mbar& m = mbar_get(c, bar, what, site);
    m.tx += tx_bytes;
    mbar_check_tx(m, bar, what, site);
    if (m.pending == 0) {
        die(std::string(what) + ": more arrivals than the count " + std::to_string(m.count) + " of mbarrier " + hex(bar) + " in its phase " +
            std::to_string(m.phase) + " (waiting for tx-count " + std::to_string(m.tx) + "), in " + where() + " at " + site_str(site));
    }
    --m.pending;
    mbar_try_complete(m);
}

inline void mbar_complete_tx(Cta& c, uint32_t bar, uint32_t bytes, const char* what, Site site) {
    Mbar& m = mbar_get(c, bar, what, site);
    m.tx -= bytes;
    mbar_check_tx(m, bar, what, site);
    mbar_try_complete(m);
}

inline std::string mbar_describe(const Fiber& f) {
    auto& table = sm90().mbars[f.cta->rank];
    auto it = table.find(f.wa);
    std::string st = it == table.end() ? std::string("?")
                                       : "completed phases " + std::to_string(it->second.phase) + ", pending arrivals " + std::to_string(it->second.pending) +
                                             " of " + std::to_string(it->second.count) + ", tx-count " + std::to_string(it->second.tx);
    return std::string(f.wname) + "(bar " + hex(f.wa) + ", parity " + std::to_string(f.wb) + ") at " + site_str(f.wsite) + " [" + st + "]";
}

inline void mbar_wait(uint32_t bar, uint32_t parity, const char* what, Site site) {
    if (parity > 1) die(std::string(what) + ": parity " + std::to_string(parity) + " is not 0 or 1, in " + where() + " at " + site_str(site));
    for (;;) {
        Fiber& f = cur();
        Cta& c = *f.cta;
        Mbar& m = mbar_get(c, bar, what, site);
        if ((m.phase & 1) != parity) {
            mbar_land(c, m);
            return;
        }
        m.waiters.push_back(f.idx);
        park(Wait::Ext, bar, parity, site, what, mbar_describe);
    }
}

// ---- the cluster barrier --------------------------------------------------------------------------
inline std::string cluster_describe(const Fiber& f) {
    return "cluster_sync() at " + site_str(f.wsite) + " (" + std::to_string(sm90().cluster_arrived) + " arrived)";
}
inline void cluster_release_if_complete() {
    State& s = st();
    Sm90& g = sm90();
    const unsigned need = (unsigned)s.fibers.size() - s.done;
    if (g.cluster_arrived > 0 && g.cluster_arrived >= need) {
        g.cluster_arrived = 0;
        for (unsigned w : g.cluster_waiters) wake(s.fibers[w]);
        g.cluster_waiters.clear();
    }
}

// ---- the block's lifecycle ------------------------------------------------------------------------
inline void sm90_cluster_start() { sm90_state().used = false; }

inline void bulk_complete(Cta& c, BulkStore& b);

inline void sm90_thread_exit(Fiber& f) {
    if (!sm90_state().used) return;
    Sm90& g = sm90();
    if (f.idx < g.bulk.size()) {
        BulkThread& t = g.bulk[f.idx];
        for (auto& grp : t.groups)
            for (BulkStore& b : grp) bulk_complete(*f.cta, b);
        for (BulkStore& b : t.open) bulk_complete(*f.cta, b);
        t.groups.clear();
        t.open.clear();
    }
    const unsigned wgi = f.lin / 128;
    if (f.cta->rank < g.wg.size() && wgi < g.wg[f.cta->rank].size()) {
        const WgState& w = g.wg[f.cta->rank][wgi];
        size_t n = w.open.size();
        for (const auto& grp : w.groups) n += grp.size();
        if (n > 0) {
            Site at = w.open.empty() ? Site{} : w.open.back().site;
            for (const auto& grp : w.groups)
                if (!grp.empty()) at = grp.back().site;
            die("thread " + std::to_string(f.lin) + " of kernel " + st().kernel + " block " + dim_str(f.cta->idx) + " exited with " + std::to_string(n) +
                " wgmma(s) of its warpgroup still in flight (issued at " + site_str(at) + "): wgmma_commit and wgmma_wait<0> before the accumulators are used");
        }
    }
    cluster_release_if_complete();
}

inline void sm90_cluster_end() {
    if (!sm90_state().used) return;
    State& s = st();
    Sm90& g = sm90();
    for (size_t k = 0; k < g.mbars.size(); ++k) {
        for (auto& kv : g.mbars[k]) {
            for (const TmaLanding& l : kv.second.landings) {
                if (l.phase >= kv.second.phase) {
                    die("kernel " + std::string(s.kernel) + " block " + dim_str(s.ctas[k].idx) + " ended with a TMA load on mbarrier " + hex(kv.first) +
                        " whose phase never completed (pending arrivals " + std::to_string(kv.second.pending) + ", tx-count " +
                        std::to_string(kv.second.tx) + ")");
                }
            }
        }
    }
}

inline bool sm90_registered() {
    static const bool r = [] {
        Hooks h;
        h.cluster_start = sm90_cluster_start;
        h.thread_exit = sm90_thread_exit;
        h.cluster_end = sm90_cluster_end;
        st().hooks.push_back(h);
        return true;
    }();
    return r;
}
inline const bool sm90_hooks_installed = sm90_registered();

// ---- TMA ----------------------------------------------------------------------------------------------
// The box's 16-byte chunks in row-major order (pitch = box0·elemsize) and where each lands.
inline void tma_chunks(const TmaMap& m, uint32_t saddr, std::vector<uint32_t>& addr, const char* what, Site site) {
    const uint32_t align = m.swizzle_span ? (uint32_t)m.swizzle_span * 8 : 128;
    if (saddr % align != 0)
        die(std::string(what) + ": shared address " + hex(saddr) + " is not " + std::to_string(align) + "-byte aligned" +
            (m.swizzle_span ? " (the start of the map's " + std::to_string(m.swizzle_span) + "-byte swizzle pattern)" : "") + ", in " + where() + " at " +
            site_str(site));
    const size_t bytes = (size_t)m.box[0] * m.box[1] * m.esize;
    addr.resize(bytes / 16);
    for (size_t q = 0; q < addr.size(); ++q) addr[q] = swizzle(saddr + (uint32_t)(16 * q), m.swizzle_span);
}

inline TmaMap tma_map2d(const CUtensorMap* map, const char* what, Site site) {
    TmaMap m = tmap_decode(map, what, site);
    if (m.rank != 2) die(std::string(what) + ": the tensor map has rank " + std::to_string(m.rank) + ", not 2, in " + where() + " at " + site_str(site));
    if (m.estride[1] != 1)
        die(std::string(what) + ": elementStrides[1] = " + std::to_string(m.estride[1]) + " is not emulated (1 only), in " + where() + " at " + site_str(site));
    return m;
}

inline void tma_load(uint32_t dst, const CUtensorMap* map, uint32_t bar, int32_t c0, int32_t c1, uint32_t cta_mask, const char* what, Site site) {
    const TmaMap m = tma_map2d(map, what, site);
    std::vector<uint32_t> addr;
    tma_chunks(m, dst, addr, what, site);
    const size_t pitch = (size_t)m.box[0] * m.esize, bytes = pitch * m.box[1];
    std::vector<unsigned char> img(bytes, 0);  // out-of-bounds elements: zero (CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE)
    const int64_t x0 = std::max<int64_t>(c0, 0), x1 = std::min<int64_t>((int64_t)c0 + m.box[0], (int64_t)m.dim[0]);
    for (uint32_t j = 0; j < m.box[1]; ++j) {
        const int64_t y = (int64_t)c1 + j;
        if (y < 0 || y >= (int64_t)m.dim[1] || x1 <= x0) continue;
        std::memcpy(&img[j * pitch + (size_t)(x0 - c0) * m.esize], m.base + (uint64_t)y * m.stride[1] + (uint64_t)x0 * m.esize, (size_t)(x1 - x0) * m.esize);
    }
    State& s = st();
    Cta& me = *cur().cta;
    const unsigned nc = (unsigned)s.ctas.size();
    for (unsigned k = 0; k < nc; ++k) {
        const bool target = cta_mask == 0 ? &s.ctas[k] == &me : (cta_mask >> k & 1) != 0;
        if (!target) continue;
        Cta& c = s.ctas[k];
        Mbar& mb = mbar_get(c, bar, what, site);
        mbar_land(c, mb);  // copies of completed phases have landed before a new one starts
        unsigned char ff[16];
        std::memset(ff, 0xFF, 16);
        for (uint32_t a : addr) async_write(c, a, ff, what, site);  // undefined until it lands
        mb.landings.push_back(TmaLanding{mb.phase, addr, img});
        mbar_complete_tx(c, bar, (uint32_t)bytes, what, site);
    }
    if (cta_mask >> nc != 0)
        die(std::string(what) + ": CTA mask " + hex(cta_mask) + " names CTAs beyond the cluster of " + std::to_string(nc) + ", in " + where() + " at " + site_str(site));
    ++sm90().tma_loads;
}

inline void bulk_complete(Cta& c, BulkStore& b) {
    for (size_t k = 0; k < b.chunk_addr.size(); ++k) {
        if (std::memcmp(shared_ptr(c, b.chunk_addr[k], 16, "tma_store_2d", b.site), &b.data[16 * k], 16) != 0) {
            die("the shared memory a TMA store reads (chunk at " + hex(b.chunk_addr[k]) + " of the box from " + hex(b.src) + ", issued at " + site_str(b.site) +
                ") was overwritten before tma_store_wait_read retired it, in " + where());
        }
    }
    const TmaMap& m = b.map;
    const size_t pitch = (size_t)m.box[0] * m.esize;
    const int64_t x0 = std::max<int64_t>(b.c0, 0), x1 = std::min<int64_t>((int64_t)b.c0 + m.box[0], (int64_t)m.dim[0]);
    for (uint32_t j = 0; j < m.box[1]; ++j) {
        const int64_t y = (int64_t)b.c1 + j;
        if (y < 0 || y >= (int64_t)m.dim[1] || x1 <= x0) continue;
        std::memcpy(const_cast<unsigned char*>(m.base) + (uint64_t)y * m.stride[1] + (uint64_t)x0 * m.esize, &b.data[j * pitch + (size_t)(x0 - b.c0) * m.esize],
                    (size_t)(x1 - x0) * m.esize);
    }
}

inline BulkThread& bulk_me() {
    Fiber& f = cur();
    Sm90& g = sm90();
    if (f.idx >= g.bulk.size()) g.bulk.resize(st().fibers.size());
    return g.bulk[f.idx];
}

// ---- wgmma -------------------------------------------------------------------------------------------
struct Desc {
    uint32_t start, lbo, sbo;
    int span;  // swizzle span in bytes, 0 = none
    int mode, base_offset;
};

// The matrix descriptor, bit for bit (PTX ISA "Matrix Descriptor Format").
inline Desc decode_desc(uint64_t d) {
    Desc r;
    r.start = (uint32_t)(d & 0x3FFF) << 4;
    r.lbo = (uint32_t)(d >> 16 & 0x3FFF) << 4;
    r.sbo = (uint32_t)(d >> 32 & 0x3FFF) << 4;
    r.base_offset = (int)(d >> 49 & 7);
    r.mode = (int)(d >> 62 & 3);
    r.span = r.mode == 1 ? 128 : r.mode == 2 ? 64 : r.mode == 3 ? 32 : 0;
    return r;
}
constexpr uint64_t kDescReserved = 0x3FF0000000000000ull | 0x0001C00000000000ull | 0x00000000C000C000ull;  // bits 52-61, 46-48, 30-31, 14-15

inline Desc check_desc(uint64_t d, const char* which, Site site) {
    if (d & kDescReserved)
        die(std::string("wgmma: matrix descriptor ") + which + " " + hex(d) + " has reserved bits set (" + hex(d & kDescReserved) + "), in " + where() + " at " +
            site_str(site));
    Desc r = decode_desc(d);
    if (r.base_offset != 0)
        die(std::string("wgmma: matrix descriptor ") + which + " has base offset " + std::to_string(r.base_offset) +
            ": not emulated (tiles must start on the swizzle pattern's boundary), in " + where() + " at " + site_str(site));
    return r;
}

// element (mn, k) of a K-major operand, (k, mn) of an MN-major one: the 16-byte chunk holding it and
// the byte within (8 consecutive k, resp. mn, share a chunk)
inline uint32_t operand_addr(const Desc& d, bool mn_major, int mn, int k) {
    uint32_t a;
    if (!mn_major) {
        a = d.span == 0 ? d.start + (uint32_t)(mn / 8) * d.sbo + (uint32_t)(k / 8) * d.lbo + (uint32_t)(mn % 8) * 16 + (uint32_t)(k % 8) * 2
                        : d.start + (uint32_t)(mn / 8) * d.sbo + (uint32_t)(mn % 8) * (uint32_t)d.span + (uint32_t)k * 2;
    } else if (d.span == 0) {
        a = d.start + (uint32_t)(mn / 8) * d.sbo + (uint32_t)(k / 8) * d.lbo + (uint32_t)(k % 8) * 16 + (uint32_t)(mn % 8) * 2;
    } else {
        const int per = d.span / 2;  // 16-bit elements per swizzle row
        a = d.start + (uint32_t)(mn / per) * d.lbo + (uint32_t)(k / 8) * d.sbo + (uint32_t)(k % 8) * (uint32_t)d.span + (uint32_t)(mn % per) * 2;
    }
    return swizzle(a, d.span);
}

struct WgmmaIn {
    uint64_t da, db;
    int scale_d;
    float* d;
};

inline WgState& wg_me() {
    Fiber& f = cur();
    return sm90().wg[f.cta->rank][f.lin / 128];
}

// Reads the chunks of one operand: rows × 2 chunks (K-major: 8 k per chunk) or 16 × rows/8 chunks
// (MN-major: 8 mn per chunk); val[mn][k] in float.
inline void read_operand(Cta& c, const Desc& d, bool mn_major, int rows, std::vector<float>& val, bool bf16, WgOp& op, const char* which, Site site) {
    val.assign((size_t)rows * 16, 0.0f);
    if (!mn_major && d.span != 0 && (d.start % (uint32_t)d.span) + 32 > (uint32_t)d.span)
        die(std::string("wgmma: operand ") + which + " starts at " + hex(d.start) + ", so its 16 k (32 bytes) cross a " + std::to_string(d.span) +
            "-byte swizzle row, in " + where() + " at " + site_str(site));
    auto chunk = [&](uint32_t a, int mn0, int k0, bool along_mn) {
        if (a % 16 != 0)
            die(std::string("wgmma: operand ") + which + " element address " + hex(a) + " is not on a 16-byte chunk (descriptor start/LBO/SBO), in " + where() +
                " at " + site_str(site));
        const unsigned char* p = async_read(c, a, "wgmma", site);
        op.chunk_addr.push_back(a);
        op.chunk_data.insert(op.chunk_data.end(), p, p + 16);
        for (int e = 0; e < 8; ++e) {
            uint16_t bits;
            std::memcpy(&bits, p + 2 * e, 2);
            const int mn = along_mn ? mn0 + e : mn0, k = along_mn ? k0 : k0 + e;
            val[(size_t)mn * 16 + k] = b16_to_float(bits, bf16);
        }
    };
    if (!mn_major) {
        for (int mn = 0; mn < rows; ++mn)
            for (int k0 = 0; k0 < 16; k0 += 8) chunk(operand_addr(d, false, mn, k0), mn, k0, false);
    } else {
        for (int k = 0; k < 16; ++k)
            for (int mn0 = 0; mn0 < rows; mn0 += 8) chunk(operand_addr(d, true, mn0, k), mn0, k, true);
    }
}

// The latest in-flight result for the accumulator array p of warpgroup thread t, or null.
inline const float* wg_pending(const WgState& w, unsigned t, const float* p, int n) {
    for (size_t i = w.open.size(); i-- > 0;)
        if (w.open[i].d[t] == p) return &w.open[i].out[(size_t)t * (n / 2)];
    for (size_t g = w.groups.size(); g-- > 0;)
        for (size_t i = w.groups[g].size(); i-- > 0;)
            if (w.groups[g][i].d[t] == p) return &w.groups[g][i].out[(size_t)t * (n / 2)];
    return nullptr;
}

template <int N, bool BF16, int TRANS_B>
inline void wgmma_exec(Coll& co, Site site) {
    Fiber& f = cur();
    Cta& c = *f.cta;
    WgState& w = wg_me();
    const WgmmaIn& in0 = *static_cast<const WgmmaIn*>(co.in[0]);
    for (unsigned t = 1; t < 128; ++t) {
        const WgmmaIn& x = *static_cast<const WgmmaIn*>(co.in[t]);
        if (x.da != in0.da || x.db != in0.db || (x.scale_d != 0) != (in0.scale_d != 0))
            die("wgmma_ss: descriptors and scale_d must be the same in all 128 threads of the warpgroup; warpgroup thread " + std::to_string(t) + " passed " +
                hex(x.da) + ", " + hex(x.db) + ", " + std::to_string(x.scale_d) + " and thread 0 " + hex(in0.da) + ", " + hex(in0.db) + ", " +
                std::to_string(in0.scale_d) + ", in " + where() + " at " + site_str(site));
    }
    if (!w.fenced)
        die("wgmma_ss without a wgmma_fence() of the warpgroup since the kernel start or the last wgmma_wait<0>() (needed before the first wgmma and after "
            "the accumulator registers were accessed), in " + where() + " at " + site_str(site));
    WgOp op;
    op.n = N;
    op.site = site;
    std::vector<float> A, B;
    read_operand(c, check_desc(in0.da, "A", site), false, 64, A, BF16, op, "A", site);
    op.a_chunks = (unsigned)op.chunk_addr.size();
    read_operand(c, check_desc(in0.db, "B", site), TRANS_B != 0, N, B, BF16, op, "B", site);
    op.out.resize((size_t)128 * (N / 2));
    for (unsigned t = 0; t < 128; ++t) {
        const WgmmaIn& x = *static_cast<const WgmmaIn*>(co.in[t]);
        op.d[t] = x.d;
        const float* prev = in0.scale_d ? wg_pending(w, t, x.d, N) : nullptr;
        const unsigned wi = t / 32, l = t % 32;
        float* out = &op.out[(size_t)t * (N / 2)];
        for (int i = 0; i < N / 2; ++i) {
            const int row = (int)(16 * wi + l / 4 + 8 * ((i / 2) % 2)), col = 8 * (i / 4) + (int)(2 * (l % 4)) + i % 2;
            float s = in0.scale_d ? (prev ? prev[i] : x.d[i]) : 0.0f;
            for (int k = 0; k < 16; ++k) s = std::fmaf(A[(size_t)row * 16 + k], B[(size_t)col * 16 + k], s);
            out[i] = s;
        }
    }
    for (unsigned t = 0; t < 128; ++t) {
        // the registers are undefined until the wgmma_wait that retires it: a NaN pattern
        if (wg_pending(w, t, op.d[t], N) == nullptr)
            for (int i = 0; i < N / 2; ++i) std::memcpy(&op.d[t][i], &kAccPoison, 4);
    }
    w.open.push_back(std::move(op));
    ++sm90().wgmmas;
}

inline void wgmma_retire(Cta& c, WgState& w, std::vector<WgOp>& grp, Site site) {
    for (size_t i = 0; i < grp.size(); ++i) {
        WgOp& op = grp[i];
        for (size_t k = 0; k < op.chunk_addr.size(); ++k) {
            if (std::memcmp(shared_ptr(c, op.chunk_addr[k], 16, "wgmma", op.site), &op.chunk_data[16 * k], 16) != 0) {
                die(std::string("shared memory read by the wgmma issued at ") + site_str(op.site) + " (operand " + (k < op.a_chunks ? "A" : "B") +
                    ", 16 bytes at " + hex(op.chunk_addr[k]) + ") changed before the wgmma_wait that retires it: a stage was overwritten while a wgmma "
                    "still read it, in " + where() + " at " + site_str(site));
            }
        }
        for (unsigned t = 0; t < 128; ++t) {
            bool later = false;  // a later wgmma in flight on the same registers writes them
            for (size_t j = i + 1; j < grp.size() && !later; ++j) later = grp[j].d[t] == op.d[t];
            if (!later) later = wg_pending(w, t, op.d[t], op.n) != nullptr;
            if (later) continue;
            for (int e = 0; e < op.n / 2; ++e) {
                uint32_t bits;
                std::memcpy(&bits, &op.d[t][e], 4);
                if (bits != kAccPoison)
                    die("the accumulator registers of the wgmma issued at " + site_str(op.site) + " (warpgroup thread " + std::to_string(t) + ", element " +
                        std::to_string(e) + ") were written while it was in flight, in " + where() + " at " + site_str(site));
            }
            std::memcpy(op.d[t], &op.out[(size_t)t * (op.n / 2)], sizeof(float) * (size_t)(op.n / 2));
        }
    }
}

struct SetmaxnregIn {};

}  // namespace rs_emu

namespace rsarch {

// ---- mbarrier ---------------------------------------------------------------------------------------
inline void mbar_init(uint32_t bar, uint32_t count, RS_EMU_SITE_PARAMS) {
    const ::rs_emu::Site site = RS_EMU_SITE;
    ::rs_emu::Cta& c = *::rs_emu::cur().cta;
    unsigned char* p = ::rs_emu::shared_ptr(c, bar, 8, "mbar_init", site);
    if (bar % 8 != 0) ::rs_emu::die("mbar_init: address " + ::rs_emu::hex(bar) + " is not 8-byte aligned, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(site));
    if (count < 1 || count >= (1u << 20))
        ::rs_emu::die("mbar_init: count " + std::to_string(count) + " is not in 1..2^20-1, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(site));
    auto& table = ::rs_emu::sm90().mbars[c.rank];
    auto it = table.find(bar);
    if (it != table.end()) ::rs_emu::mbar_land(c, it->second);
    ::rs_emu::Mbar m;
    m.count = m.pending = count;
    m.init_site = site;
    table[bar] = std::move(m);
    const uint64_t tag = ::rs_emu::mbar_tag(bar);
    std::memcpy(p, &tag, 8);
}
inline void fence_mbarrier_init(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    ++::rs_emu::sm90().fences_mbar_init;
}
inline void mbar_arrive(uint32_t bar, RS_EMU_SITE_PARAMS) { ::rs_emu::mbar_arrive_on(*::rs_emu::cur().cta, bar, 0, "mbar_arrive", RS_EMU_SITE); }
inline void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes, RS_EMU_SITE_PARAMS) {
    ::rs_emu::mbar_arrive_on(*::rs_emu::cur().cta, bar, bytes, "mbar_arrive_expect_tx", RS_EMU_SITE);
}
inline bool mbar_try_wait_parity(uint32_t bar, uint32_t parity, RS_EMU_SITE_PARAMS) {
    ::rs_emu::mbar_wait(bar, parity, "mbar_try_wait_parity", RS_EMU_SITE);
    return true;
}
inline void mbar_wait_parity(uint32_t bar, uint32_t parity, RS_EMU_SITE_PARAMS) { ::rs_emu::mbar_wait(bar, parity, "mbar_wait_parity", RS_EMU_SITE); }
// mbarrier.arrive.release.cluster on the mbarrier at the same shared address in CTA `cta` of the cluster
inline void mbar_arrive_cluster(uint32_t bar, uint32_t cta, RS_EMU_SITE_PARAMS) {
    ::rs_emu::State& s = ::rs_emu::st();
    if (cta >= s.ctas.size())
        ::rs_emu::die("mbar_arrive_cluster: CTA " + std::to_string(cta) + " is not in the cluster of " + std::to_string(s.ctas.size()) + ", in " +
                      ::rs_emu::where() + " at " + ::rs_emu::site_str(RS_EMU_SITE));
    ::rs_emu::mbar_arrive_on(s.ctas[cta], bar, 0, "mbar_arrive_cluster", RS_EMU_SITE);
}

// ---- fences (no-ops: one thread runs at a time; counted) -------------------------------------------
// fence.proxy.async.shared::cta: the generic stores so far become visible to the async proxy (the
// emulation publishes the whole window: every thread's stores, not only this thread's)
inline void fence_proxy_async_shared(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    ::rs_emu::Cta& c = *::rs_emu::cur().cta;
    if (c.aview) std::memcpy(c.aview, c.window, c.window_bytes);
    ++::rs_emu::sm90().fences_proxy;
}
inline void fence_view_async_shared(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    ++::rs_emu::sm90().fences_view;
}

// ---- TMA ------------------------------------------------------------------------------------------
inline void tma_load_2d(uint32_t smem_dst, const CUtensorMap* map, uint32_t bar, int32_t c0, int32_t c1, RS_EMU_SITE_PARAMS) {
    ::rs_emu::tma_load(smem_dst, map, bar, c0, c1, 0, "tma_load_2d", RS_EMU_SITE);
}
inline void tma_load_2d_multicast(uint32_t smem_dst, const CUtensorMap* map, uint32_t bar, int32_t c0, int32_t c1, uint16_t cta_mask, RS_EMU_SITE_PARAMS) {
    if (cta_mask == 0)
        ::rs_emu::die("tma_load_2d_multicast: empty CTA mask, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(RS_EMU_SITE));
    ::rs_emu::tma_load(smem_dst, map, bar, c0, c1, cta_mask, "tma_load_2d_multicast", RS_EMU_SITE);
}
inline void tma_store_2d(const CUtensorMap* map, uint32_t smem_src, int32_t c0, int32_t c1, RS_EMU_SITE_PARAMS) {
    const ::rs_emu::Site site = RS_EMU_SITE;
    ::rs_emu::BulkStore b;
    b.map = ::rs_emu::tma_map2d(map, "tma_store_2d", site);
    b.src = smem_src;
    b.c0 = c0;
    b.c1 = c1;
    b.site = site;
    ::rs_emu::tma_chunks(b.map, smem_src, b.chunk_addr, "tma_store_2d", site);
    b.data.resize(b.chunk_addr.size() * 16);
    ::rs_emu::Cta& c = *::rs_emu::cur().cta;
    for (size_t k = 0; k < b.chunk_addr.size(); ++k) std::memcpy(&b.data[16 * k], ::rs_emu::async_read(c, b.chunk_addr[k], "tma_store_2d", site), 16);
    ::rs_emu::bulk_me().open.push_back(std::move(b));
    ++::rs_emu::sm90().tma_stores;
}
inline void tma_store_commit(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    ::rs_emu::BulkThread& t = ::rs_emu::bulk_me();
    t.groups.push_back(std::move(t.open));
    t.open.clear();
}
// cp.async.bulk.wait_group.read N: the reads of all committed groups but the N most recent are done
template <int N>
inline void tma_store_wait_read(RS_EMU_SITE_PARAMS) {
    static_assert(N >= 0, "tma_store_wait_read<N>: N >= 0");
    (void)rs_file_, (void)rs_line_;
    ::rs_emu::BulkThread& t = ::rs_emu::bulk_me();
    const size_t n = t.groups.size();
    if (n <= (size_t)N) return;
    for (size_t g = 0; g < n - N; ++g)
        for (::rs_emu::BulkStore& b : t.groups[g]) ::rs_emu::bulk_complete(*::rs_emu::cur().cta, b);
    t.groups.erase(t.groups.begin(), t.groups.begin() + (long)(n - N));
}
inline void prefetch_tensormap(const CUtensorMap* map, RS_EMU_SITE_PARAMS) { (void)::rs_emu::tmap_decode(map, "prefetch_tensormap", RS_EMU_SITE); }

// ---- wgmma ------------------------------------------------------------------------------------------
inline uint64_t make_smem_desc(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes, int swizzle_mode, RS_EMU_SITE_PARAMS) {
    const ::rs_emu::Site site = RS_EMU_SITE;
    if (smem_addr % 16 || lbo_bytes % 16 || sbo_bytes % 16 || smem_addr >= (1u << 18) || lbo_bytes >= (1u << 18) || sbo_bytes >= (1u << 18))
        ::rs_emu::die("make_smem_desc(" + ::rs_emu::hex(smem_addr) + ", " + std::to_string(lbo_bytes) + ", " + std::to_string(sbo_bytes) +
                      "): address, LBO and SBO must be multiples of 16 below 2^18, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(site));
    if (swizzle_mode < 0 || swizzle_mode > 3)
        ::rs_emu::die("make_smem_desc: swizzle mode " + std::to_string(swizzle_mode) + " is not 0..3, in " + ::rs_emu::where() + " at " + ::rs_emu::site_str(site));
    return (uint64_t)((smem_addr & 0x3FFFF) >> 4) | (uint64_t)((lbo_bytes & 0x3FFFF) >> 4) << 16 | (uint64_t)((sbo_bytes & 0x3FFFF) >> 4) << 32 |
           (uint64_t)swizzle_mode << 62;
}

inline void wgmma_fence(RS_EMU_SITE_PARAMS) {
    ::rs_emu::collective(128, ::rs_emu::kCollWgmmaFence, "wgmma_fence", true, RS_EMU_SITE, nullptr, nullptr,
                         [](::rs_emu::Coll&) { ::rs_emu::wg_me().fenced = true; });
}
inline void wgmma_commit(RS_EMU_SITE_PARAMS) {
    ::rs_emu::collective(128, ::rs_emu::kCollWgmmaCommit, "wgmma_commit", true, RS_EMU_SITE, nullptr, nullptr, [](::rs_emu::Coll&) {
        ::rs_emu::WgState& w = ::rs_emu::wg_me();
        w.groups.push_back(std::move(w.open));
        w.open.clear();
    });
}
// wgmma.wait_group N: all committed groups but the N most recent have completed: their accumulators
// are written now (and their shared-memory operands checked unchanged)
template <int N>
inline void wgmma_wait(RS_EMU_SITE_PARAMS) {
    static_assert(N >= 0, "wgmma_wait<N>: N >= 0");
    const ::rs_emu::Site site = RS_EMU_SITE;
    ::rs_emu::collective(128, (::rs_emu::kCollWgmmaWait << 8) | N, "wgmma_wait", true, site, nullptr, nullptr, [site](::rs_emu::Coll&) {
        ::rs_emu::WgState& w = ::rs_emu::wg_me();
        ::rs_emu::Cta& c = *::rs_emu::cur().cta;
        while (w.groups.size() > (size_t)N) {
            std::vector<::rs_emu::WgOp> grp = std::move(w.groups.front());
            w.groups.erase(w.groups.begin());
            ::rs_emu::wgmma_retire(c, w, grp, site);
        }
        if (N == 0) w.fenced = false;
    });
}

template <int N, typename T, int TRANS_B>
inline void wgmma_ss(float (&d)[N / 2], uint64_t desc_a, uint64_t desc_b, int scale_d, RS_EMU_SITE_PARAMS) {
    static_assert(N >= 8 && N <= 256 && N % 8 == 0, "wgmma m64nNk16: N = 8..256 in steps of 8");
    static_assert(TRANS_B == 0 || TRANS_B == 1, "TRANS_B is 0 (B K-major) or 1 (B N-major)");
    constexpr bool bf16 = ::rs_emu::is_bf16<T>();
    const ::rs_emu::Site site = RS_EMU_SITE;
    const ::rs_emu::WgmmaIn in{desc_a, desc_b, scale_d, d};
    const int kind = (::rs_emu::kCollWgmma << 16) | (N << 4) | (TRANS_B << 1) | (bf16 ? 1 : 0);
    ::rs_emu::collective(128, kind, "wgmma_ss", true, site, &in, nullptr,
                         [site](::rs_emu::Coll& co) { ::rs_emu::wgmma_exec<N, bf16, TRANS_B>(co, site); });
}

// A compiler-only fence on the accumulator registers (GPU: an empty asm with "+f" on every element):
// nothing to do here, the emulation's compiler sees every access.
template <int K>
inline void reg_fence(float (&d)[K]) {
    (void)d;
}

// setmaxnreg.{inc,dec}.sync.aligned.u32 R: no registers here; the rules are checked
template <int R>
inline void setmaxnreg_inc(RS_EMU_SITE_PARAMS) {
    static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: R must be a multiple of 8 in 24..256");
    ::rs_emu::collective(128, (::rs_emu::kCollSetmaxnreg << 16) | (1 << 12) | R, "setmaxnreg_inc", true, RS_EMU_SITE, nullptr, nullptr, [](::rs_emu::Coll&) {});
}
template <int R>
inline void setmaxnreg_dec(RS_EMU_SITE_PARAMS) {
    static_assert(R >= 24 && R <= 256 && R % 8 == 0, "setmaxnreg: R must be a multiple of 8 in 24..256");
    ::rs_emu::collective(128, (::rs_emu::kCollSetmaxnreg << 16) | R, "setmaxnreg_dec", true, RS_EMU_SITE, nullptr, nullptr, [](::rs_emu::Coll&) {});
}

// ---- clusters -----------------------------------------------------------------------------------------
inline uint32_t cluster_ctarank(RS_EMU_SITE_PARAMS) {
    (void)rs_file_, (void)rs_line_;
    return ::rs_emu::cur().cta->rank;
}
// barrier.cluster.arrive + barrier.cluster.wait: every non-exited thread of the cluster
inline void cluster_sync(RS_EMU_SITE_PARAMS) {
    ::rs_emu::Sm90& g = ::rs_emu::sm90();
    ::rs_emu::Fiber& f = ::rs_emu::cur();
    ++g.cluster_arrived;
    const unsigned need = (unsigned)::rs_emu::st().fibers.size() - ::rs_emu::st().done;
    if (g.cluster_arrived >= need) {
        ::rs_emu::cluster_release_if_complete();
        ::rs_emu::yield();
    } else {
        g.cluster_waiters.push_back(f.idx);
        ::rs_emu::park(::rs_emu::Wait::Ext, 0, 0, RS_EMU_SITE, "cluster_sync", ::rs_emu::cluster_describe);
    }
}

}  // namespace rsarch

// Launch with clusters of cluster_x blocks along x (nvcc: cudaLaunchKernelEx with a cluster dimension).
#define RS_LAUNCH_CLUSTER(kernel, grid, block, smem, cluster_x, ...) \
    ::rs_emu::launch(#kernel, kernel, dim3(grid), dim3(block), size_t(smem), dim3(cluster_x, 1, 1), false, __VA_ARGS__)
