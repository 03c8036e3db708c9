// (5) v3 — dX = D'(Vg·At) + dY·W on the sm_90a core (cores/sm90_gemm.cuh): bf16/f16, sm_90a only.
//   dY [n, d_out] T, W [d_out, d_in] T, Vg [n, r_pad] T = T(γ·V), At [r, d_in] T = T(A)
//   →  dX [n, d_in] T (assigned), written once, rounded once.
// One fp32 accumulator per element: ceil(r/64) k-blocks over (Vg K-major, At MN-major) first; then
// the forward's dropout mask of X element (i, c) applied to the accumulator registers
// (keep ? ·scale : 0; keep bits regenerated with rs_dropout_quad by the producer warpgroup's three
// spare warps into a shared-memory bitmap, one per output tile, while the tensor cores run);
// then ceil(d_out/64) k-blocks over (dY K-major, W MN-major) accumulate on top. γ is in Vg.
// Why the mask goes into the accumulators and not the epilogue: a separate LoRA accumulator would
// double the 128 fp32 registers per thread of the 128×256 tile (no room under setmaxnreg 232);
// applying the mask in registers between the segments costs one wgmma drain per tile
// (≈ 1 of ~65 k-blocks at d_out = 4096) and no extra registers.
// Launch: kernels/lora_v3_launch.h (384 threads, kDxSmemBytes, grid = min(SMs, tiles(n, d_in))).
#pragma once
#include "../cores/sm90_gemm.cuh"
#include "../rslora_params.h"
#include "lora_v3_launch.h"

namespace rs3 {
template <typename T>
using DxCore = Sm90Gemm<T, rs3launch::kTileN, 3, true, true>;
static_assert(DxCore<__nv_bfloat16>::kSmemBytes == rs3launch::kDxSmemBytes, "lora_v3_launch.h is stale");
static_assert(DxCore<__nv_bfloat16>::kThreads == rs3launch::kThreads, "lora_v3_launch.h is stale");
}  // namespace rs3

template <typename T>
__device__ __forceinline__ void lora_backward_dx_v3(const RsLoraBackwardDxV3Params& p, const CUtensorMap* vg,
                                                    const CUtensorMap* at, const CUtensorMap* dy,
                                                    const CUtensorMap* w, const CUtensorMap* dx,
                                                    unsigned char* smem) {
    rs3::Problem<T> pb;
    pb.m = p.n;
    pb.n = p.d_in;
    const rs3::Segment lora{vg, at, rs3::cdiv(p.r, 64)};       // k = j < r:     Vg[i, j]·At[j, c]
    const rs3::Segment base{dy, w, rs3::cdiv(p.d_out, 64)};    // k = o < d_out: dY[i, o]·W[o, c]
    if (p.r > 0) {
        pb.nseg = 2;
        pb.seg[0] = lora;
        pb.seg[1] = base;
    } else {
        pb.nseg = 1;
        pb.seg[0] = base;
        pb.seg[1] = base;
    }
    pb.c = dx;
    pb.bias = nullptr;
    pb.drop = p.drop;
    rs3::DxCore<T>::run(pb, smem);
}

// extern "C" entry points; the params struct by value, then the tensor maps (kernels/lora_v3_launch.h)
#define RS_EXPORT_DX_V3(T, sfx)                                                                               \
    extern "C" __global__ void __launch_bounds__(rs3launch::kThreads, 1) rslora_lora_backward_dx_v3_##sfx(    \
        const RsLoraBackwardDxV3Params p, const __grid_constant__ CUtensorMap vg,                            \
        const __grid_constant__ CUtensorMap at, const __grid_constant__ CUtensorMap dy,                      \
        const __grid_constant__ CUtensorMap w, const __grid_constant__ CUtensorMap dx) {                     \
        RS_SM90A_BODY(RS_DYNAMIC_SMEM(smem); lora_backward_dx_v3<T>(p, &vg, &at, &dy, &w, &dx, smem);)        \
    }
RS_EXPORT_DX_V3(__nv_bfloat16, bf16)
RS_EXPORT_DX_V3(__half, f16)
#undef RS_EXPORT_DX_V3
