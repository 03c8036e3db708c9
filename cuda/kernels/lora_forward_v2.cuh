// (2) v2 — Y = X·Wᵀ + bias + γ·U·Bᵀ on tensor cores (bf16/fp16 only; NOT VALIDATED ON HARDWARE YET,
// opt-in with -Drslora.cuda.kernels=v2).
//   X [n, d_in] T, W [d_out, d_in] T, bias [d_out] T (nullable), U [n, r] f32, B [d_out, r] f32
//   → Y [n, d_out] T (assigned), written once and rounded once.
// The LoRA term is an extra K-segment of the same fp32 accumulator fragments: γ·U and B staged as T.
// Launch: grid (ceil(d_out/64), ceil(n/64)), block 128 (rs2::kThreads). Same params struct as v1.
#pragma once
#include "../rslora_mma.cuh"

template <typename T>
__device__ __forceinline__ void lora_forward_v2(const RsLoraForwardParams& p) {
    __shared__ __align__(128) rs2::Stage<T> s;
    __shared__ __align__(128) float c[rs2::kTile][rs2::kLdC];
    const int n0 = blockIdx.x * rs2::kTile;  // output columns o
    const int m0 = blockIdx.y * rs2::kTile;  // rows i
    rs2::Acc acc[2][2];
    rs2::zero<T>(acc);
    // k = c < d_in: P(i, c) = X[i, c], Q(o, c) = W[o, c]  (both K-major)
    rs2::mma_segment<T, T, true, T, true>(acc, s, static_cast<const T*>(p.x), p.d_in, p.n, 1.0f,
                                          static_cast<const T*>(p.w), p.d_in, p.d_out, 1.0f, m0, n0, p.d_in);
    // k = j < r: P(i, j) = γ·U[i, j], Q(o, j) = B[o, j]  (both K-major, f32 staged as T)
    if (p.r > 0) {
        rs2::mma_segment<T, float, true, float, true>(acc, s, p.u, p.r, p.n, p.gamma, p.lora_b, p.r, p.d_out, 1.0f,
                                                      m0, n0, p.r);
    }
    rs2::store(c, acc);
    __syncthreads();
    const T* bias = static_cast<const T*>(p.bias);
    T* y = static_cast<T*>(p.y);
    for (int e = threadIdx.x; e < rs2::kTile * rs2::kTile; e += rs2::kThreads) {
        const int mm = e / rs2::kTile, nn = e % rs2::kTile;
        const int i = m0 + mm, o = n0 + nn;
        if (i < p.n && o < p.d_out) {
            const float bo = bias != nullptr ? rs::to_f32<T>(bias[o]) : 0.0f;
            y[(int64_t)i * p.d_out + o] = rs::from_f32<T>(c[mm][nn] + bo);
        }
    }
}

RS_EXPORT_V2(lora_forward_v2, RsLoraForwardParams, lora_forward_v2)
