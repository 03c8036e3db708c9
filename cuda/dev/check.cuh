// The dev programs' CUDA error check and CUDA-event timing (rslora_dev.cu through common.cuh,
// gemm_sm80.cu, gemm_sm90.cu). Include after cuda_runtime.h, or after emu/cuda_emu.h (RS_EMULATE:
// no timing there).
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        cudaError_t err_ = (call);                                                              \
        if (err_ != cudaSuccess) {                                                              \
            std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(err_), __FILE__, \
                         __LINE__, cudaGetErrorString(err_));                                   \
            std::exit(2);                                                                       \
        }                                                                                       \
    } while (0)

#if !defined(RS_EMULATE)
// Median milliseconds of `reps` launches, each between two CUDA events, after 3 warm-up launches.
template <typename F>
static float median_ms(F launch, int reps) {
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; ++i) launch();
    std::vector<float> t;
    for (int i = 0; i < reps; ++i) {
        CUDA_CHECK(cudaEventRecord(e0));
        launch();
        CUDA_CHECK(cudaEventRecord(e1));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        t.push_back(ms);
    }
    CUDA_CHECK(cudaGetLastError());
    std::sort(t.begin(), t.end());
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return t[t.size() / 2];
}
#endif
