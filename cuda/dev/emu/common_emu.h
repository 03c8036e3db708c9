// The "Common" device functions of GPU-CONTRACT.md (GPU side: cuda/arch/common.cuh) on the CPU
// emulation, plus the CUDA warp intrinsics __syncwarp / __shfl_*_sync (full mask only).
// (GPU-CONTRACT.md lies outside this repository: see cuda/REVIEW.md, "The CPU emulation".)
//   smem_addr(p)        the 32-bit shared address of p inside the block's dynamic window
//                       (0x400 + offset); any other pointer is reported;
//   lane_id, warp_id    threadIdx.x & 31, threadIdx.x >> 5 (reported if the block is not 1-D);
//   syncwarp, shfl_*    warp-collectives: all 32 lanes must arrive (at the same kind of operation;
//                       call sites may differ, as for the non-.aligned shfl.sync / bar.warp.sync);
//                       each lane gets the value its source lane passed; a lane that exited or a
//                       partial warp is reported;
//   named_bar_sync/arrive  bar.sync / bar.arrive id (1..15), count (multiple of 32): see emu_sched.h.
// Every function takes the caller's file and line as defaulted trailing arguments (messages, and
// the same-instruction rule of .aligned collectives); calls are written exactly as on the GPU.
#pragma once

#include "emu_sched.h"

#define RS_EMU_SITE_PARAMS const char *rs_file_ = __builtin_FILE(), int rs_line_ = __builtin_LINE()
#define RS_EMU_SITE (::rs_emu::Site{rs_file_, rs_line_})

namespace rs_emu {

struct ShflIn {
    uint64_t bits;  // the lane's value
    int arg;        // srcLane, laneMask or delta
    int width;
};

inline void check_full_mask(unsigned mask, const char* what, Site site) {
    if (mask != 0xffffffffu) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "0x%08x", mask);
        die(std::string(what) + ": member mask " + buf + " (the emulation takes full warps only: 0xffffffff), in " + where() + " at " + site_str(site));
    }
}

// shfl.sync: every lane computes its source lane from its own argument (CUDA's rules for width):
// idx: (lane / width) * width + arg % width; xor: lane ^ arg, own value if that lies in a later
// width-segment; up: lane - arg, own value below its segment; down: lane + arg, own value past it.
inline uint64_t shuffle(int kind, uint64_t bits, int arg, int width, Site site, const char* what) {
    if (width <= 0 || width > 32 || (width & (width - 1)) != 0)
        die(std::string(what) + ": width " + std::to_string(width) + " is not a power of two in 1..32, in " + where() + " at " + site_str(site));
    ShflIn in{bits, arg, width};
    uint64_t out = 0;
    collective(32, kind, what, false, site, &in, &out, [kind](Coll& co) {
        uint64_t vals[32];
        for (int l = 0; l < 32; ++l) vals[l] = static_cast<const ShflIn*>(co.in[l])->bits;
        for (int l = 0; l < 32; ++l) {
            const ShflIn& me = *static_cast<const ShflIn*>(co.in[l]);
            const int w = me.width, seg = l / w * w;
            int src = l;
            if (kind == kCollShflIdx) {
                src = seg + (int)((unsigned)me.arg % (unsigned)w);
            } else if (kind == kCollShflXor) {
                const int t = l ^ me.arg;
                src = (t >= 0 && t < seg + w && t < 32) ? t : l;
            } else if (kind == kCollShflUp) {
                src = (l - seg) >= me.arg ? l - me.arg : l;
            } else {
                src = (l - seg) + me.arg < w ? l + me.arg : l;
            }
            *static_cast<uint64_t*>(co.out[l]) = vals[src];
        }
    });
    return out;
}

template <typename T>
inline T shuffle_t(int kind, T v, int arg, int width, Site site, const char* what) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a type larger than 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    bits = shuffle(kind, bits, arg, width, site, what);
    T r;
    std::memcpy(&r, &bits, sizeof(T));
    return r;
}

inline void warp_sync(Site site, const char* what) {
    collective(32, kCollSyncwarp, what, false, site, nullptr, nullptr, [](Coll&) {});
}

inline void check_1d_block(const char* what, Site site) {
    const State& s = st();
    if (s.block_dim.y != 1 || s.block_dim.z != 1)
        die(std::string(what) + " assumes a 1-D block (threadIdx.x & 31) but the block is " + dim_str(make_uint3(s.block_dim.x, s.block_dim.y, s.block_dim.z)) +
            ", in " + where() + " at " + site_str(site));
}

}  // namespace rs_emu

// ---- CUDA intrinsics ---------------------------------------------------------------------------
inline void __syncwarp(unsigned mask = 0xffffffffu, RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_full_mask(mask, "__syncwarp", RS_EMU_SITE);
    ::rs_emu::warp_sync(RS_EMU_SITE, "__syncwarp");
}
template <typename T>
inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_full_mask(mask, "__shfl_sync", RS_EMU_SITE);
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflIdx, v, src, width, RS_EMU_SITE, "__shfl_sync");
}
template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32, RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_full_mask(mask, "__shfl_xor_sync", RS_EMU_SITE);
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflXor, v, lane_mask, width, RS_EMU_SITE, "__shfl_xor_sync");
}
template <typename T>
inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_full_mask(mask, "__shfl_up_sync", RS_EMU_SITE);
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflUp, v, (int)delta, width, RS_EMU_SITE, "__shfl_up_sync");
}
template <typename T>
inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_full_mask(mask, "__shfl_down_sync", RS_EMU_SITE);
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflDown, v, (int)delta, width, RS_EMU_SITE, "__shfl_down_sync");
}

// ---- GPU-CONTRACT.md "Common" ------------------------------------------------------------------
namespace rsarch {

inline uint32_t smem_addr(const void* p, RS_EMU_SITE_PARAMS) { return ::rs_emu::shared_addr_of(p, RS_EMU_SITE); }

inline unsigned lane_id(RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_1d_block("lane_id()", RS_EMU_SITE);
    return ::rs_emu::cur().tid.x & 31u;
}
inline unsigned warp_id(RS_EMU_SITE_PARAMS) {
    ::rs_emu::check_1d_block("warp_id()", RS_EMU_SITE);
    return ::rs_emu::cur().tid.x >> 5;
}

inline void syncwarp(RS_EMU_SITE_PARAMS) { ::rs_emu::warp_sync(RS_EMU_SITE, "syncwarp"); }

inline float shfl_xor(float v, int m, RS_EMU_SITE_PARAMS) {
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflXor, v, m, 32, RS_EMU_SITE, "shfl_xor");
}
inline uint32_t shfl_idx(uint32_t v, int src, RS_EMU_SITE_PARAMS) {
    return ::rs_emu::shuffle_t(::rs_emu::kCollShflIdx, v, src, 32, RS_EMU_SITE, "shfl_idx");
}

inline void named_bar_sync(int id, int nthreads, RS_EMU_SITE_PARAMS) { ::rs_emu::named_barrier(id, nthreads, true, RS_EMU_SITE); }
inline void named_bar_arrive(int id, int nthreads, RS_EMU_SITE_PARAMS) { ::rs_emu::named_barrier(id, nthreads, false, RS_EMU_SITE); }

}  // namespace rsarch
