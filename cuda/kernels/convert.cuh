// dtype conversions for the Java side: dst[i] = convert(src[i]), i < count. To bf16/f16 rounds to
// nearest even (__float2bfloat16_rn / __float2half_rn; NaN stays NaN); to f32 is exact.
// Exported: rslora_convert_f32_to_bf16, _f32_to_f16, _bf16_to_f32, _f16_to_f32.
// Launch: any 1-D grid, block 256 (grid-stride loop).
#pragma once
#include "../rslora_tile.cuh"

template <typename S, typename D>
__device__ __forceinline__ void convert_body(const RsConvertParams& p) {
    const S* src = static_cast<const S*>(p.src);
    D* dst = static_cast<D*>(p.dst);
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.count; i += stride) {
        dst[i] = rs::from_f32<D>(rs::to_f32<S>(src[i]));
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_convert_f32_to_bf16(RsConvertParams p) {
    convert_body<float, __nv_bfloat16>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_convert_f32_to_f16(RsConvertParams p) {
    convert_body<float, __half>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_convert_bf16_to_f32(RsConvertParams p) {
    convert_body<__nv_bfloat16, float>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_convert_f16_to_f32(RsConvertParams p) {
    convert_body<__half, float>(p);
}
