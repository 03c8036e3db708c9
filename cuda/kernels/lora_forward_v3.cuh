// (2) v3 — Y = X·Wᵀ + bias + Ug·Btᵀ on the sm_90a core (cores/sm90_gemm.cuh): bf16/f16, sm_90a only.
//   X [n, d_in] T, W [d_out, d_in] T, bias [d_out] T (nullable), Ug [n, r_pad] T = T(γ·U),
//   Bt [d_out, r_pad] T = T(B)  →  Y [n, d_out] T (assigned), written once, rounded once.
// One fp32 accumulator: ceil(d_in/64) k-blocks over (X, W), then ceil(r/64) k-blocks over (Ug, Bt)
// (TMA zero-fills past d_in and past r_pad), bias added in fp32 in the epilogue.
// Launch: kernels/lora_v3_launch.h (384 threads, kForwardSmemBytes, grid = min(SMs, tiles(n, d_out))).
#pragma once
#include "../cores/sm90_gemm.cuh"
#include "../rslora_params.h"
#include "lora_v3_launch.h"

namespace rs3 {
template <typename T>
using ForwardCore = Sm90Gemm<T, rs3launch::kTileN, 3, false, false>;
static_assert(ForwardCore<__nv_bfloat16>::kSmemBytes == rs3launch::kForwardSmemBytes, "lora_v3_launch.h is stale");
static_assert(ForwardCore<__nv_bfloat16>::kThreads == rs3launch::kThreads, "lora_v3_launch.h is stale");
static_assert(ForwardCore<__nv_bfloat16>::kBM == rs3launch::kTileM, "lora_v3_launch.h is stale");
}  // namespace rs3

template <typename T>
__device__ __forceinline__ void lora_forward_v3(const RsLoraForwardV3Params& p, const CUtensorMap* x,
                                                const CUtensorMap* w, const CUtensorMap* ug, const CUtensorMap* bt,
                                                const CUtensorMap* y, unsigned char* smem) {
    rs3::Problem<T> pb;
    pb.m = p.n;
    pb.n = p.d_out;
    pb.nseg = p.r > 0 ? 2 : 1;
    pb.seg[0] = rs3::Segment{x, w, rs3::cdiv(p.d_in, 64)};       // k = c < d_in: X[i, c]·W[o, c]
    pb.seg[1] = rs3::Segment{ug, bt, rs3::cdiv(p.r, 64)};        // k = j < r: Ug[i, j]·Bt[o, j]
    pb.c = y;
    pb.bias = static_cast<const T*>(p.bias);
    pb.drop = RsDropout{0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    rs3::ForwardCore<T>::run(pb, smem);
}

// extern "C" entry points; the params struct by value, then the tensor maps (kernels/lora_v3_launch.h)
#define RS_EXPORT_FORWARD_V3(T, sfx)                                                                          \
    extern "C" __global__ void __launch_bounds__(rs3launch::kThreads, 1) rslora_lora_forward_v3_##sfx(        \
        const RsLoraForwardV3Params p, const __grid_constant__ CUtensorMap x, const __grid_constant__ CUtensorMap w, \
        const __grid_constant__ CUtensorMap ug, const __grid_constant__ CUtensorMap bt,                      \
        const __grid_constant__ CUtensorMap y) {                                                             \
        RS_SM90A_BODY(RS_DYNAMIC_SMEM(smem); lora_forward_v3<T>(p, &x, &w, &ug, &bt, &y, smem);)              \
    }
RS_EXPORT_FORWARD_V3(__nv_bfloat16, bf16)
RS_EXPORT_FORWARD_V3(__half, f16)
#undef RS_EXPORT_FORWARD_V3
