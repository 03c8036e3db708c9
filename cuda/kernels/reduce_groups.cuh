// Second pass of (3) and (4): out[i] (=|+=) γ·Σ_{g=0..G-1} ws[g·count + i]  (f32 → f32).
// Each element is summed by one thread in ascending g: deterministic. Grid-stride loop.
// Launch: grid (min(ceil(count/256), 65535·...)), block 256 (any 1-D grid is correct).
#pragma once
#include "../rslora_tile.cuh"

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_reduce_groups_v1(RsReduceParams p) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.count; i += stride) {
        float s = 0.0f;
        for (int g = 0; g < p.groups; ++g) {
            s += p.ws[(int64_t)g * p.count + i];
        }
        const float d = p.gamma * s;
        p.out[i] = p.accumulate ? p.out[i] + d : d;
    }
}
