// Host helpers of the development harness (cuda/dev/rslora_dev.cu): dtypes and
// their packing, seeded random data, device allocation with poison, the dropout parameters, the
// split-over-N rule of the v1 reductions; the error check and CUDA-event timing come from check.cuh.
// No kernel knowledge here.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.cuh"

[[noreturn]] inline void dev_die(const std::string& what) {
    std::fflush(stdout);
    std::fprintf(stderr, "rslora_dev: %s\n", what.c_str());
    std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// host dtype helpers
enum class DT { F32, BF16, F16 };
static const char* dt_name(DT d) { return d == DT::F32 ? "f32" : d == DT::BF16 ? "bf16" : "f16"; }
static size_t dt_size(DT d) { return d == DT::F32 ? 4 : 2; }
// unit roundoff of the dtype (half an ulp of 1): the T-rounding bounds of the tensor-core families
static double dt_unit(DT d) { return d == DT::BF16 ? 0x1p-8 : d == DT::F16 ? 0x1p-11 : 0x1p-24; }
static float round_to(DT d, float v) {
    if (d == DT::BF16) return __bfloat162float(__float2bfloat16_rn(v));
    if (d == DT::F16) return __half2float(__float2half_rn(v));
    return v;
}
static std::vector<unsigned char> pack(DT d, const std::vector<float>& v) {
    std::vector<unsigned char> out(v.size() * dt_size(d));
    for (size_t i = 0; i < v.size(); ++i) {
        if (d == DT::F32) {
            std::memcpy(&out[i * 4], &v[i], 4);
        } else if (d == DT::BF16) {
            __nv_bfloat16 h = __float2bfloat16_rn(v[i]);
            std::memcpy(&out[i * 2], &h, 2);
        } else {
            __half h = __float2half_rn(v[i]);
            std::memcpy(&out[i * 2], &h, 2);
        }
    }
    return out;
}
static std::vector<float> unpack(DT d, const std::vector<unsigned char>& b, size_t count) {
    std::vector<float> out(count);
    for (size_t i = 0; i < count; ++i) {
        if (d == DT::F32) {
            std::memcpy(&out[i], &b[i * 4], 4);
        } else if (d == DT::BF16) {
            __nv_bfloat16 h;
            std::memcpy(&h, &b[i * 2], 2);
            out[i] = __bfloat162float(h);
        } else {
            __half h;
            std::memcpy(&h, &b[i * 2], 2);
            out[i] = __half2float(h);
        }
    }
    return out;
}
static std::vector<float> rnd(std::mt19937_64& g, size_t count, DT d, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(count);
    for (auto& x : v) x = round_to(d, u(g));
    return v;
}

static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

// ---------------------------------------------------------------------------------------------
// the dropout parameters exactly as dev.rslora.dropout.DropoutMask computes them
static RsDropout make_dropout(uint64_t seed, uint64_t step, uint32_t layer, float p, bool enabled) {
    RsDropout d;
    d.key_lo = (uint32_t)seed;
    d.key_hi = (uint32_t)(seed >> 32);
    d.layer = layer;
    d.step = (uint32_t)step;
    d.threshold = (uint32_t)std::ceil((double)p * 16777216.0);
    d.scale = 1.0f / (1.0f - p);
    d.enabled = enabled && p > 0.0f ? 1 : 0;
    return d;
}

// the host mirror of the Java split-over-N rule (dev.rslora.backend.cuda.LaunchGeometry.rowsPerGroup)
static int rows_per_group(int n, long long out_elems, long long cap_bytes) {
    long long tiles = (n + 63) / 64;
    long long by_cap = std::max(1LL, cap_bytes / (out_elems * 4));
    long long groups = std::min(tiles, by_cap);
    return (int)(((tiles + groups - 1) / groups) * 64);
}

// ---------------------------------------------------------------------------------------------
// device memory: every buffer exactly its bytes (no slack), so an out-of-bounds tail access is
// visible to compute-sanitizer on a GPU and to AddressSanitizer in the CPU emulation
struct Dev {
    std::vector<void*> ptrs;
    void* alloc(size_t bytes, unsigned char poison) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, bytes));
        CUDA_CHECK(cudaMemset(p, poison, bytes));
        ptrs.push_back(p);
        return p;
    }
    void* upload(const std::vector<unsigned char>& b) {
        void* p = alloc(b.size(), 0xFF);
        CUDA_CHECK(cudaMemcpy(p, b.data(), b.size(), cudaMemcpyHostToDevice));
        return p;
    }
    // no fill: for the multi-GB buffers of bigindex (the caller poisons the part it checks)
    void* alloc_raw(size_t bytes) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, bytes));
        ptrs.push_back(p);
        return p;
    }
    Dev() = default;
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;
    ~Dev() {
        for (void* p : ptrs) cudaFree(p);
    }
};
static std::vector<unsigned char> download(const void* p, size_t bytes) {
    std::vector<unsigned char> out(bytes);
    CUDA_CHECK(cudaMemcpy(out.data(), p, bytes, cudaMemcpyDeviceToHost));
    return out;
}

