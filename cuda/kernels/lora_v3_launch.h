// Host-side launch facts of the v3 kernels (sm_90a only; kernels/lora_forward_v3.cuh,
// kernels/lora_backward_dx_v3.cuh, translation unit rslora_kernels_sm90.cu). Plain C++ (no CUDA
// headers), so the harness, the registry and the Java side's tests can read the same numbers; the
// kernel headers static_assert that these equal the core's own constants.
//
// Launch: block (384, 1, 1); dynamic shared memory kForwardSmemBytes / kDxSmemBytes (> 48 KiB:
// cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes) once per function,
// cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) from the driver API);
// persistent 1-D grid (grid(), ≤ one CTA per SM); no cluster. Kernel arguments: the params struct
// by value, then the five CUtensorMap (128 bytes, 64-byte aligned) by value, in the order below.
//
// Tensor maps (cuTensorMapEncodeTiled): rank 2, dtype BFLOAT16 or FLOAT16 (= the kernel suffix),
// globalDim {inner, outer} and globalStrides {inner·2 bytes} as listed, boxDim as listed,
// elementStrides {1, 1}, INTERLEAVE_NONE, SWIZZLE_128B, L2_PROMOTION_L2_256B (any promotion is
// correct), FLOAT_OOB_FILL_NONE (out-of-bounds elements load as zero; stores clip).
//   forward (rslora_lora_forward_v3_*):  X  {d_in,  n}     box {64, 128}
//                                         W  {d_in,  d_out} box {64, 256}
//                                         Ug {r_pad, n}     box {64, 128}   (r = 0: any valid map)
//                                         Bt {r_pad, d_out} box {64, 256}   (r = 0: any valid map)
//                                         Y  {d_out, n}     box {64, 64}
//   dX (rslora_lora_backward_dx_v3_*):    Vg {r_pad, n}     box {64, 128}   (r = 0: any valid map)
//                                         At {d_in,  r}     box {64, 64}    (r = 0: any valid map)
//                                         dY {d_out, n}     box {64, 128}
//                                         W  {d_in,  d_out} box {64, 64}
//                                         dX {d_in,  n}     box {64, 64}
// W needs two maps (forward box {64, 256}, dX box {64, 64}); both can be encoded once per frozen
// weight. r_pad = round_up(r, 8).
#pragma once
#include <stdint.h>

namespace rs3launch {

constexpr int kThreads = 384;
constexpr int kTileM = 128;  // output rows (tokens) per tile
constexpr int kTileN = 256;  // output columns per tile
constexpr uint32_t kForwardSmemBytes = 215040;
constexpr uint32_t kDxSmemBytes = 223232;

// Output tiles of an [rows, cols] result (forward: n × d_out, dX: n × d_in).
inline long long tiles(long long rows, long long cols) {
    return ((rows + kTileM - 1) / kTileM) * ((cols + kTileN - 1) / kTileN);
}
// gridDim.x: one persistent CTA per SM, fewer when there are fewer tiles.
inline int grid(int sm_count, long long rows, long long cols) {
    const long long t = tiles(rows, cols);
    return (int)(t < sm_count ? t : sm_count);
}

// Why the v3 kernels cannot take this layer step (then fall back to v4, then v1), or nullptr.
// TMA needs 16-byte aligned bases and row strides that are multiples of 16 bytes (d_in, d_out
// multiples of 8 for 16-bit T; r_pad is by construction); shapes must fit int32 coordinates.
inline const char* refuse(long long n, long long d_in, long long d_out, long long r, const void* const* bases,
                          int num_bases) {
    if (n < 1 || d_in < 1 || d_out < 1 || r < 0) return "v3: n, d_in, d_out must be >= 1 and r >= 0";
    if (n > 2147483647LL || d_in > 2147483647LL || d_out > 2147483647LL || r > 2147483647LL)
        return "v3: a dimension does not fit int32 TMA coordinates";
    if (d_in % 8 != 0) return "v3: d_in is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)";
    if (d_out % 8 != 0) return "v3: d_out is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)";
    for (int i = 0; i < num_bases; ++i) {
        if (bases[i] != nullptr && ((uintptr_t)bases[i] & 15u) != 0) return "v3: a tensor base is not 16-byte aligned";
    }
    return nullptr;
}

}  // namespace rs3launch
