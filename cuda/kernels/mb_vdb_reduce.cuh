// (v3/v4 step 4, second pass) the fixed-order sums of mb_vdb's partials (deterministic: the same
// bits on every run and in graph replay, no atomics):
//   V [n, r] f32 = Σ_{c ascending} v_ws[c]   (written when v != null)
//   Vg [n, r_pad] T = T(γ·V), pad columns 0
//   dB [d_out, r] f32 (=|+=) Σ_{g ascending} db_ws[g]   (when db_ws != null; γ is already in Ug)
// Grid-stride over n·r_pad + d_out·r elements (V/Vg first, then dB).
// Launch (grid rule elementwise, count = n·r_pad + d_out·r): block 256.
#pragma once
#include "mb_common.cuh"

template <typename T>
__device__ __forceinline__ void mb_vdb_reduce(const RsMbVdbReduceParams& p) {
    const int64_t nv = (int64_t)p.n * p.r_pad;
    const int64_t nvr = (int64_t)p.n * p.r;
    const int64_t ndb = (int64_t)p.d_out * p.r;
    const int64_t total = nv + (p.db_ws != nullptr ? ndb : 0);
    T* vg = static_cast<T*>(p.vg);
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        if (e < nv) {
            const int64_t i = e / p.r_pad;
            const int j = (int)(e % p.r_pad);
            if (j < p.r) {
                const int64_t q = i * p.r + j;
                float s = 0.0f;
                for (int c = 0; c < p.chunks; ++c) s += p.v_ws[(int64_t)c * nvr + q];
                if (p.v != nullptr) p.v[q] = s;
                vg[e] = rs::from_f32<T>(p.gamma * s);
            } else {
                vg[e] = rs::from_f32<T>(0.0f);
            }
        } else {
            const int64_t q = e - nv;
            float s = 0.0f;
            for (int g = 0; g < p.groups; ++g) s += p.db_ws[(int64_t)g * ndb + q];
            p.db[q] = p.accumulate ? p.db[q] + s : s;
        }
    }
}

extern "C" __global__ void __launch_bounds__(rsmb::kThreads) rslora_mb_vdb_reduce_bf16(RsMbVdbReduceParams p) {
    mb_vdb_reduce<__nv_bfloat16>(p);
}
extern "C" __global__ void __launch_bounds__(rsmb::kThreads) rslora_mb_vdb_reduce_f16(RsMbVdbReduceParams p) {
    mb_vdb_reduce<__half>(p);
}
