// Host-side launch rules of the v4 kernels (cuda/kernels/lora_forward_v4.cuh,
// lora_backward_dx_v4.cuh): threads, dynamic shared memory, grid, and the shapes they refuse.
// Plain C++ (no CUDA headers), shared by the dev harness and mirrored by the Java kernel table.
//
//   kernel (suffix _bf16/_f16)     params                     tile      threads  dyn. smem  output cols
//   rslora_lora_forward_v4         RsLoraForwardV4Params      128×256   256      98304 B    d_out
//   rslora_lora_up_add_v4          RsLoraForwardV4Params      128×128   256      49152 B    d_out
//   rslora_lora_backward_dx_v4     RsLoraBackwardDxV4Params   128×256   256      98304 B    d_in
//   rslora_lora_dx_add_v4          RsLoraBackwardDxV4Params   128×128   256      49152 B    d_in
// Grid: 1-D, ceil(n / tile_m) · ceil(cols / tile_n) blocks (grouped tile order inside the kernel).
// Dynamic shared memory above 48 KiB needs cudaFuncSetAttribute(...MaxDynamicSharedMemorySize...)
// (cuFuncSetAttribute CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) once per kernel; 98304 B
// fits every target (sm_86/sm_89 allow 101376 B per block).
// Refused (the caller falls back to v1): a 16-bit row that does not start 16-byte aligned —
// d_in % 8 != 0 or d_out % 8 != 0 where that tensor is read or written, a base address not 16-byte
// aligned — and n < 1, r < 0, or a grid over 2^31 - 1 blocks.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include "../cores/sm80_gemm_config.h"

enum class RsV4Kernel { Forward, UpAdd, BackwardDx, DxAdd };

struct RsV4Launch {
    const char* name;  // exported name without the dtype suffix
    int threads;
    int smem_bytes;
    int tile_m, tile_n;
    bool base;    // has the dense (X, W) / (dY, W) segment
    bool dx;      // output columns are d_in (else d_out)
};

template <class C>
constexpr RsV4Launch rs_v4_launch_of(const char* name, bool base, bool dx) {
    return RsV4Launch{name, C::THREADS, C::SMEM_BYTES, C::BM, C::BN, base, dx};
}

inline RsV4Launch rs_v4_launch(RsV4Kernel k) {
    switch (k) {
        case RsV4Kernel::Forward: return rs_v4_launch_of<rs4::BigTile>("rslora_lora_forward_v4", true, false);
        case RsV4Kernel::UpAdd: return rs_v4_launch_of<rs4::SmallTile>("rslora_lora_up_add_v4", false, false);
        case RsV4Kernel::BackwardDx: return rs_v4_launch_of<rs4::BigTile>("rslora_lora_backward_dx_v4", true, true);
        default: return rs_v4_launch_of<rs4::SmallTile>("rslora_lora_dx_add_v4", false, true);
    }
}

inline long long rs_v4_blocks(const RsV4Launch& l, int n, int d_in, int d_out) {
    const long long cols = l.dx ? d_in : d_out;
    return ((long long)n + l.tile_m - 1) / l.tile_m * ((cols + l.tile_n - 1) / l.tile_n);
}

// nullptr when kernel k takes the shape and the pointers (null entries are skipped: an absent
// bias, or Ug/Bt/Vg/At when r == 0); otherwise a message in buf naming the offending value.
inline const char* rs_v4_refusal(RsV4Kernel k, int n, int d_in, int d_out, int r, const void* const* ptrs,
                                 const char* const* ptr_names, int nptrs, char* buf, size_t len) {
    const RsV4Launch l = rs_v4_launch(k);
    // which widths are 16-bit row strides of tensors this kernel touches
    const bool need_din = l.base || l.dx;    // X/W rows (forward), W/dX/At rows (dx, dx_add)
    const bool need_dout = l.base || !l.dx;  // W/dY rows (dx), Y/bias/W rows (forward, up_add)
    if (n < 1) {
        snprintf(buf, len, "%s: n = %d (must be >= 1)", l.name, n);
    } else if (r < 0) {
        snprintf(buf, len, "%s: r = %d (must be >= 0)", l.name, r);
    } else if (need_din && (d_in < 1 || d_in % 8 != 0)) {
        snprintf(buf, len, "%s: d_in = %d is not a positive multiple of 8 (16-byte rows for cp.async)", l.name, d_in);
    } else if (need_dout && (d_out < 1 || d_out % 8 != 0)) {
        snprintf(buf, len, "%s: d_out = %d is not a positive multiple of 8 (16-byte rows for cp.async)", l.name, d_out);
    } else if (rs_v4_blocks(l, n, d_in, d_out) > 0x7fffffffLL) {
        snprintf(buf, len, "%s: %lld blocks exceed the 1-D grid limit (n = %d)", l.name, rs_v4_blocks(l, n, d_in, d_out), n);
    } else {
        for (int i = 0; i < nptrs; ++i) {
            if (ptrs[i] != nullptr && (uintptr_t)ptrs[i] % 16 != 0) {
                snprintf(buf, len, "%s: %s = %p is not 16-byte aligned", l.name, ptr_names[i], ptrs[i]);
                return buf;
            }
        }
        return nullptr;
    }
    return buf;
}
