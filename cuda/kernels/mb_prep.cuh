// (v3/v4 step 2) once per step, after an optimizer update: the T copies of the adapter that the
// tensor-core kernels read.
//   A [r, d_in] f32 → At [r, d_in] T = T(A);  B [d_out, r] f32 → Bt [d_out, r_pad] T = T(B), pad columns 0.
// Rounding to nearest even (NaN stays NaN). Grid-stride over r·d_in + d_out·r_pad elements.
// Launch (grid rule elementwise, count = r·d_in + d_out·r_pad): block 256.
#pragma once
#include "mb_common.cuh"

template <typename T>
__device__ __forceinline__ void mb_prep(const RsMbPrepParams& p) {
    const int64_t na = (int64_t)p.r * p.d_in;
    const int64_t total = na + (int64_t)p.d_out * p.r_pad;
    T* at = static_cast<T*>(p.at);
    T* bt = static_cast<T*>(p.bt);
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        if (e < na) {
            at[e] = rs::from_f32<T>(p.lora_a[e]);
        } else {
            const int64_t q = e - na;
            const int64_t o = q / p.r_pad;
            const int j = (int)(q % p.r_pad);
            bt[q] = rs::from_f32<T>(j < p.r ? p.lora_b[o * p.r + j] : 0.0f);
        }
    }
}

extern "C" __global__ void __launch_bounds__(rsmb::kThreads) rslora_mb_prep_bf16(RsMbPrepParams p) { mb_prep<__nv_bfloat16>(p); }
extern "C" __global__ void __launch_bounds__(rsmb::kThreads) rslora_mb_prep_f16(RsMbPrepParams p) { mb_prep<__half>(p); }
