// Elementwise dropout for the unfused (PEFT-equivalent) cuBLAS baseline, which materialises the
// dropped input as PEFT does (the fused kernels never do):
//   rslora_dropout_apply_v1_<T>: dst[i,c] = D(src)[i,c]               src, dst [n, d] T
//   rslora_dropout_add_v1_<T>:   dst[i,c] = dst[i,c] + D'(src)[i,c]   (fp32 add, rounded once)
// D/D' = keep ? x·scale : 0 with the mask of (row i, column c) (RsDropout; identity when disabled).
// One thread per 4-column quad of a row: one Philox call. Launch: any 1-D grid, block 256 (grid-stride).
#pragma once
#include "../rslora_tile.cuh"

template <typename T, bool ADD>
__device__ __forceinline__ void dropout_elementwise(const RsDropoutElementwiseParams& p) {
    const T* src = static_cast<const T*>(p.src);
    T* dst = static_cast<T*>(p.dst);
    const int quads_per_row = (p.d + 3) / 4;
    const int64_t quads = (int64_t)p.n * quads_per_row;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < quads; q += stride) {
        const int i = (int)(q / quads_per_row);
        const int c0 = (int)(q % quads_per_row) * 4;
        float m[4] = {1.0f, 1.0f, 1.0f, 1.0f};
        if (p.drop.enabled) {
            rs_dropout_quad(p.drop, (uint32_t)i, (uint32_t)c0, m);
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int c = c0 + e;
            if (c < p.d) {
                const int64_t at = (int64_t)i * p.d + c;
                const float x = rs::to_f32<T>(src[at]);
                const float v = m[e] != 0.0f ? x * m[e] : 0.0f;
                dst[at] = rs::from_f32<T>(ADD ? rs::to_f32<T>(dst[at]) + v : v);
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void dropout_apply_v1(const RsDropoutElementwiseParams& p) {
    dropout_elementwise<T, false>(p);
}

template <typename T>
__device__ __forceinline__ void dropout_add_v1(const RsDropoutElementwiseParams& p) {
    dropout_elementwise<T, true>(p);
}

RS_EXPORT_DTYPES(dropout_apply_v1, RsDropoutElementwiseParams, dropout_apply_v1)
RS_EXPORT_DTYPES(dropout_add_v1, RsDropoutElementwiseParams, dropout_add_v1)
