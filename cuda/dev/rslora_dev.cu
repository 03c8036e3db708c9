// Standalone development harness for the rsLoRA kernels (llm.c dev/cuda style): a CPU reference
// (double accumulation), the numbered kernel versions, validation of every configuration against
// the reference, then CUDA-event timing.
//
//   rslora_dev selftest            CPU only (no GPU needed): Philox known-answer vectors and mask facts
//   rslora_dev mask SEED STEP LAYER P ROW0 ROWS COLS   CPU only: the mask as 0/1 lines (Java compares it)
//   rslora_dev validate [version [quick]]  every kernel × dtype × shape × dropout × assign/accumulate
//                                  × row groups vs the CPU reference (quick: a quarter of the combinations)
//   rslora_dev bigindex [version]  n·d > 2^31 elements (64-bit index math): the last row tile and row group
//   rslora_dev adamw [quick|bench]  the fused AdamW and the gradient norm vs host references (adamw_check.cuh)
//   rslora_dev adafactor [quick|dump|bench]  the fused Adafactor vs the CPU update's host mirror (adafactor_check.cuh)
//   rslora_dev seqlogprob [quick|bench] sequence log-probs and their backward vs double (seq_logprob_check.cuh)
//   rslora_dev bench [version] [jsonl]  median time of each kernel at the PERFORMANCE.md reference shapes;
//                                  with jsonl, also one JSON line per (kernel, r) in that file (bench/RESULTS.md
//                                  is generated from it: jmh/bench.sh)
// The same source builds for the CPU emulation (-DRS_EMULATE, g++, cuda/dev/emu/cuda_emu.h): then
// validate runs the unchanged kernels on the CPU (native-build/cpu-emulate.sh) and bench is refused.
//
// Versions: 1 = the v1 kernels of cuda/kernels/ (plain tiled SIMT, the GPU-side oracle);
// 2 = v1 with the forward and dX GEMMs replaced by the tensor-core (wmma/mma.sync) kernels for
// bf16/fp16 (f32 stays v1). v2 is validated with an extra bound for its bf16/fp16 staging of the
// f32 LoRA operands (γ·U, B, V, A): 4·u_T·γ·Σ_j |U_ij·B_oj| (and the same for V·A in dX). Build: make -C cuda/dev (needs nvcc; runs on sm_80+).
// Shapes (SPEC.md §1): X [n, d_in], W [d_out, d_in], bias [d_out], A [r, d_in], B [d_out, r],
// U = D(X)·Aᵀ, V = dY·B [n, r]; Y = X·Wᵀ + bias + γ·U·Bᵀ; dB = γ·dYᵀ·U; dA = γ·Vᵀ·D(X);
// dX = dY·W + γ·D'(V·A); merge W ± γ·B·A.
#if defined(RS_EMULATE)
#include "emu/cuda_emu.h"  // CPU emulation (no GPU): see that file for what it does and does not cover
#else
#include <cuda_runtime.h>
#define RS_LAUNCH(kernel, grid, block, ...) kernel<<<grid, block>>>(__VA_ARGS__)
#endif
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../rslora_kernels.cu"

#define CUDA_CHECK(call)                                                                        \
    do {                                                                                        \
        cudaError_t err_ = (call);                                                              \
        if (err_ != cudaSuccess) {                                                              \
            std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", cudaGetErrorName(err_), __FILE__, \
                         __LINE__, cudaGetErrorString(err_));                                   \
            std::exit(2);                                                                       \
        }                                                                                       \
    } while (0)

// ---------------------------------------------------------------------------------------------
// host dtype helpers
enum class DT { F32, BF16, F16 };
static const char* dt_name(DT d) { return d == DT::F32 ? "f32" : d == DT::BF16 ? "bf16" : "f16"; }
static size_t dt_size(DT d) { return d == DT::F32 ? 4 : 2; }
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
// CPU reference: double accumulation over the (already dtype-rounded) inputs
struct Problem {
    int n, d_in, d_out, r;
    float gamma;
    RsDropout drop;
    bool bias, accumulate;
    std::vector<float> x, w, b, a, bb, dy, ga0, gb0;  // ga0/gb0: initial dA/dB for accumulate
};
struct Expected {
    std::vector<double> u, y, v, db, da, dx, wm;
};
static Expected reference(const Problem& p) {
    Expected e;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r;
    // the mask multipliers of X [n, d_in], computed once (scale or 0; 1 when dropout is off)
    std::vector<float> mk((size_t)n * di);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < di; ++c) mk[(size_t)i * di + c] = rs_dropout_one(p.drop, (uint32_t)i, (uint32_t)c);
    auto dmask = [&](const Problem&, int i, int c) { return (double)mk[(size_t)i * di + c]; };
    e.u.assign((size_t)n * r, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < r; ++j) {
            double s = 0;
            for (int c = 0; c < di; ++c) {
                double m = dmask(p, i, c);
                double xd = m == 0.0 ? 0.0 : (double)(p.x[(size_t)i * di + c] * (float)m);
                s += xd * p.a[(size_t)j * di + c];
            }
            e.u[(size_t)i * r + j] = s;
        }
    e.y.assign((size_t)n * dout, 0.0);
    for (int i = 0; i < n; ++i)
        for (int o = 0; o < dout; ++o) {
            double s = p.bias ? p.b[o] : 0.0;
            for (int c = 0; c < di; ++c) s += (double)p.x[(size_t)i * di + c] * p.w[(size_t)o * di + c];
            double l = 0;
            for (int j = 0; j < r; ++j) l += e.u[(size_t)i * r + j] * p.bb[(size_t)o * r + j];
            e.y[(size_t)i * dout + o] = s + p.gamma * l;
        }
    e.v.assign((size_t)n * r, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < r; ++j) {
            double s = 0;
            for (int o = 0; o < dout; ++o) s += (double)p.dy[(size_t)i * dout + o] * p.bb[(size_t)o * r + j];
            e.v[(size_t)i * r + j] = s;
        }
    e.db.assign((size_t)dout * r, 0.0);
    for (int o = 0; o < dout; ++o)
        for (int j = 0; j < r; ++j) {
            double s = 0;
            for (int i = 0; i < n; ++i) s += (double)p.dy[(size_t)i * dout + o] * e.u[(size_t)i * r + j];
            e.db[(size_t)o * r + j] = (p.accumulate ? p.gb0[(size_t)o * r + j] : 0.0) + p.gamma * s;
        }
    e.da.assign((size_t)r * di, 0.0);
    for (int j = 0; j < r; ++j)
        for (int c = 0; c < di; ++c) {
            double s = 0;
            for (int i = 0; i < n; ++i) {
                double m = dmask(p, i, c);
                double xd = m == 0.0 ? 0.0 : (double)(p.x[(size_t)i * di + c] * (float)m);
                s += e.v[(size_t)i * r + j] * xd;
            }
            e.da[(size_t)j * di + c] = (p.accumulate ? p.ga0[(size_t)j * di + c] : 0.0) + p.gamma * s;
        }
    e.dx.assign((size_t)n * di, 0.0);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < di; ++c) {
            double s = 0;
            for (int o = 0; o < dout; ++o) s += (double)p.dy[(size_t)i * dout + o] * p.w[(size_t)o * di + c];
            double l = 0;
            for (int j = 0; j < r; ++j) l += e.v[(size_t)i * r + j] * p.a[(size_t)j * di + c];
            e.dx[(size_t)i * di + c] = s + p.gamma * l * dmask(p, i, c);
        }
    e.wm.assign((size_t)dout * di, 0.0);
    for (int o = 0; o < dout; ++o)
        for (int c = 0; c < di; ++c) {
            double s = 0;
            for (int j = 0; j < r; ++j) s += (double)p.bb[(size_t)o * r + j] * p.a[(size_t)j * di + c];
            e.wm[(size_t)o * di + c] = p.w[(size_t)o * di + c] + p.gamma * s;
        }
    return e;
}

// ---------------------------------------------------------------------------------------------
// validation: pass when |got - ref| <= atol·sqrt(K) + rtol·|ref| (K = the reduction length)
struct Tol {
    double atol, rtol;
};
static Tol tol_for(DT d, bool stored_in_dtype) {
    if (!stored_in_dtype || d == DT::F32) return {2e-6, 2e-5};
    if (d == DT::BF16) return {2e-3, 1e-2};
    return {5e-4, 2e-3};
}
static int check(const char* what, const std::vector<float>& got, const std::vector<double>& ref, Tol t, int k,
                 const std::vector<double>* extra = nullptr) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        double lim = t.atol * std::sqrt((double)std::max(k, 1)) + t.rtol * std::fabs(ref[i]) + (extra ? (*extra)[i] : 0.0);
        double err = std::fabs((double)got[i] - ref[i]);
        if (!(err <= lim)) {  // NaN fails
            if (bad < 5) std::printf("    MISMATCH %s[%zu]: got %.9g ref %.9g (tol %.3g)\n", what, i, got[i], ref[i], lim);
            ++bad;
        }
        if (err > worst) worst = err;
    }
    if (bad) std::printf("    %s: %d of %zu mismatches (max err %.3g)\n", what, bad, ref.size(), worst);
    return bad;
}

// ---------------------------------------------------------------------------------------------
// kernels per dtype and version
template <typename T> struct V1;
#define RS_DEV_BIND(T, sfx)                                                           \
    template <> struct V1<T> {                                                        \
        static constexpr auto down = rslora_lora_down_v1_##sfx;                       \
        static constexpr auto forward = rslora_lora_forward_v1_##sfx;                 \
        static constexpr auto vdb = rslora_lora_backward_vdb_v1_##sfx;                \
        static constexpr auto da = rslora_lora_backward_da_v1_##sfx;                  \
        static constexpr auto dx = rslora_lora_backward_dx_v1_##sfx;                  \
        static constexpr auto merge = rslora_lora_merge_v1_##sfx;                     \
    };
RS_DEV_BIND(float, f32)
RS_DEV_BIND(__nv_bfloat16, bf16)
RS_DEV_BIND(__half, f16)

// version 2: the tensor-core forward and dX (bf16/fp16), 128 threads per block; f32 maps to v1
template <typename T> struct V2 {
    static constexpr bool tensor_cores = false;
    static constexpr int threads = 256;
    static constexpr auto forward = V1<T>::forward;
    static constexpr auto dx = V1<T>::dx;
};
template <> struct V2<__nv_bfloat16> {
    static constexpr bool tensor_cores = true;
    static constexpr int threads = rs2::kThreads;
    static constexpr auto forward = rslora_lora_forward_v2_bf16;
    static constexpr auto dx = rslora_lora_backward_dx_v2_bf16;
};
template <> struct V2<__half> {
    static constexpr bool tensor_cores = true;
    static constexpr int threads = rs2::kThreads;
    static constexpr auto forward = rslora_lora_forward_v2_f16;
    static constexpr auto dx = rslora_lora_backward_dx_v2_f16;
};

static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

struct Dev {
    std::vector<void*> ptrs;
    void* alloc(size_t bytes, unsigned char poison) {
        void* p = nullptr;
        // exactly the tensor's bytes (no slack), so an out-of-bounds tail access is visible to
        // compute-sanitizer on a GPU and to AddressSanitizer in the CPU emulation
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
    ~Dev() {
        for (void* p : ptrs) cudaFree(p);
    }
};
static std::vector<unsigned char> download(const void* p, size_t bytes) {
    std::vector<unsigned char> out(bytes);
    CUDA_CHECK(cudaMemcpy(out.data(), p, bytes, cudaMemcpyDeviceToHost));
    return out;
}

// Runs one whole layer step (forward, backward, merge) with version-1 kernels and checks all outputs.
template <typename T>
static int run_step(const Problem& p, DT dt, long long ws_cap, int version) {
    Expected e = reference(p);
    Dev d;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r;
    void* x = d.upload(pack(dt, p.x));
    void* w = d.upload(pack(dt, p.w));
    void* bias = p.bias ? d.upload(pack(dt, p.b)) : nullptr;
    float* a = (float*)d.upload(pack(DT::F32, p.a));
    float* bb = (float*)d.upload(pack(DT::F32, p.bb));
    void* dy = d.upload(pack(dt, p.dy));
    float* u = (float*)d.alloc((size_t)n * r * 4, 0xFF);  // 0xFF.. = NaN poison
    float* v = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    void* y = d.alloc((size_t)n * dout * dt_size(dt), 0xFF);
    void* dx = d.alloc((size_t)n * di * dt_size(dt), 0xFF);
    float* ga = p.accumulate ? (float*)d.upload(pack(DT::F32, p.ga0)) : (float*)d.alloc((size_t)r * di * 4, 0xFF);
    float* gb = p.accumulate ? (float*)d.upload(pack(DT::F32, p.gb0)) : (float*)d.alloc((size_t)dout * r * 4, 0xFF);
    const int rpg_b = rows_per_group(n, (long long)dout * r, ws_cap);
    const int rpg_a = rows_per_group(n, (long long)r * di, ws_cap);
    const int g_b = (int)cdiv(n, rpg_b), g_a = (int)cdiv(n, rpg_a);
    float* ws = (float*)d.alloc(std::max((size_t)g_b * dout * r, (size_t)g_a * r * di) * 4, 0xFF);

    RS_LAUNCH(V1<T>::down, dim3(cdiv(r, 64), cdiv(n, 64)), 256, RsLoraDownParams{x, a, u, n, di, r, p.drop});
    const bool v2 = version == 2 && V2<T>::tensor_cores;
    if (v2) {
        RS_LAUNCH(V2<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), V2<T>::threads, RsLoraForwardParams{x, w, bias, u, bb, y, n, di, dout, r, p.gamma});
    } else {
        RS_LAUNCH(V1<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), 256, RsLoraForwardParams{x, w, bias, u, bb, y, n, di, dout, r, p.gamma});
    }
    RS_LAUNCH(V1<T>::vdb, dim3(cdiv(r, 64), g_b), 256, RsLoraBackwardVdbParams{dy, bb, u, v, ws, n, dout, r, rpg_b});
    RS_LAUNCH(rslora_reduce_groups_v1, cdiv((long long)dout * r, 256), 256, RsReduceParams{ws, gb, (int64_t)dout * r, g_b, p.gamma, p.accumulate ? 1 : 0});
    RS_LAUNCH(V1<T>::da, dim3(cdiv(di, 64), cdiv(r, 64), g_a), 256, RsLoraBackwardDaParams{v, x, ws, n, di, r, rpg_a, p.drop});
    RS_LAUNCH(rslora_reduce_groups_v1, cdiv((long long)r * di, 256), 256, RsReduceParams{ws, ga, (int64_t)r * di, g_a, p.gamma, p.accumulate ? 1 : 0});
    if (v2) {
        RS_LAUNCH(V2<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), V2<T>::threads, RsLoraBackwardDxParams{dy, w, v, a, dx, n, di, dout, r, p.gamma, p.drop});
    } else {
        RS_LAUNCH(V1<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), 256, RsLoraBackwardDxParams{dy, w, v, a, dx, n, di, dout, r, p.gamma, p.drop});
    }
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    // v2 stages the f32 LoRA operands as T: bound their rounding by 4·u_T·γ·Σ_j |·|
    std::vector<double> ey, edx;
    if (v2) {
        const double unit = dt == DT::BF16 ? 0x1p-8 : 0x1p-11;
        ey.assign((size_t)n * dout, 0.0);
        edx.assign((size_t)n * di, 0.0);
        for (int i = 0; i < n; ++i) {
            for (int o = 0; o < dout; ++o) {
                double s = 0;
                for (int j = 0; j < r; ++j) s += std::fabs(e.u[(size_t)i * r + j] * p.bb[(size_t)o * r + j]);
                ey[(size_t)i * dout + o] = 4 * unit * std::fabs(p.gamma) * s;
            }
            for (int c = 0; c < di; ++c) {
                double s = 0;
                for (int j = 0; j < r; ++j) s += std::fabs(e.v[(size_t)i * r + j] * p.a[(size_t)j * di + c]);
                edx[(size_t)i * di + c] = 4 * unit * std::fabs(p.gamma) * p.drop.scale * s;
            }
        }
    }
    int bad = 0;
    bad += check("U", unpack(DT::F32, download(u, (size_t)n * r * 4), (size_t)n * r), e.u, tol_for(dt, false), di);
    bad += check("Y", unpack(dt, download(y, (size_t)n * dout * dt_size(dt)), (size_t)n * dout), e.y, tol_for(dt, true), di + r,
                 v2 ? &ey : nullptr);
    bad += check("V", unpack(DT::F32, download(v, (size_t)n * r * 4), (size_t)n * r), e.v, tol_for(dt, false), dout);
    bad += check("dB", unpack(DT::F32, download(gb, (size_t)dout * r * 4), (size_t)dout * r), e.db, tol_for(dt, false), n * 4);
    bad += check("dA", unpack(DT::F32, download(ga, (size_t)r * di * 4), (size_t)r * di), e.da, tol_for(dt, false), n * 4);
    bad += check("dX", unpack(dt, download(dx, (size_t)n * di * dt_size(dt)), (size_t)n * di), e.dx, tol_for(dt, true), dout + r,
                 v2 ? &edx : nullptr);
    // merge then unmerge (W is T; merged values compared with W + γ·B·A)
    RS_LAUNCH(V1<T>::merge, dim3(cdiv(di, 64), cdiv(dout, 64)), 256, RsMergeParams{w, bb, a, dout, di, r, p.gamma});
    CUDA_CHECK(cudaDeviceSynchronize());
    bad += check("Wmerged", unpack(dt, download(w, (size_t)dout * di * dt_size(dt)), (size_t)dout * di), e.wm, tol_for(dt, true), r);
    return bad;
}

static std::vector<float> rnd(std::mt19937_64& g, size_t count, DT d, float lo, float hi) {
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(count);
    for (auto& x : v) x = round_to(d, u(g));
    return v;
}

// quick: per (shape, dtype) two of the eight (dropout, assign/accumulate, groups) combinations, one
// with dropout 0 and one with 0.1, rotating over shapes (for the CPU emulation in CI); the seeds
// are those of the full run, so a quick failure reproduces in the full run.
static int validate(int version, bool quick) {
    if (version != 1 && version != 2) {
        std::printf("version %d is not in this build (available: 1, 2)\n", version);
        return 2;
    }
    struct Shape { int n, d_in, d_out, r; };
    const Shape shapes[] = {{1, 1, 1, 1},     {7, 7, 9, 3},      {1, 64, 96, 8},     {127, 96, 64, 16},
                            {130, 130, 71, 64}, {65, 200, 33, 100}, {300, 64, 127, 1},  {257, 33, 257, 256},
                            {64, 1000, 96, 512}};
    const DT dts[] = {DT::F32, DT::BF16, DT::F16};
    int failures = 0, runs = 0, checked = 0;
    uint64_t seed0 = 0x5eed0001ULL;
    for (const Shape& s : shapes)
        for (int di = 0; di < 3; ++di)
            for (float pdrop : {0.0f, 0.1f})
                for (int acc = 0; acc < 2; ++acc)
                    for (long long cap : {1LL << 40, 1LL})  // the most groups (one per 64-row tile), and one group
                    {
                        const DT dt = dts[di];
                        const int combo = acc * 2 + (cap == 1 ? 1 : 0);
                        const int shape_i = (int)(&s - shapes);
                        const bool skip = quick && combo != (shape_i + di + (pdrop > 0 ? 2 : 0)) % 4;
                        if (skip) {
                            ++runs;
                            continue;
                        }
                        ++checked;
                        uint64_t seed = seed0 + runs;
                        std::mt19937_64 g(seed);
                        Problem p;
                        p.n = s.n; p.d_in = s.d_in; p.d_out = s.d_out; p.r = s.r;
                        p.gamma = 2.0f / std::sqrt((float)s.r);
                        p.drop = make_dropout(seed * 31 + 7, 5 + runs, 3, pdrop, true);
                        p.bias = (runs & 1) == 0;
                        p.accumulate = acc == 1;
                        p.x = rnd(g, (size_t)s.n * s.d_in, dt, -1, 1);
                        p.w = rnd(g, (size_t)s.d_out * s.d_in, dt, -1, 1);
                        p.b = rnd(g, s.d_out, dt, -1, 1);
                        p.a = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
                        p.bb = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
                        p.dy = rnd(g, (size_t)s.n * s.d_out, dt, -1, 1);
                        p.ga0 = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
                        p.gb0 = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
                        int bad = dt == DT::F32 ? run_step<float>(p, dt, cap, version)
                                : dt == DT::BF16 ? run_step<__nv_bfloat16>(p, dt, cap, version)
                                : run_step<__half>(p, dt, cap, version);
                        std::printf("%s v%d %-4s n=%d d_in=%d d_out=%d r=%d p=%.1f %s %s seed=%llu\n",
                                    bad ? "FAIL" : "ok  ", dt == DT::F32 ? 1 : version, dt_name(dt), s.n, s.d_in, s.d_out, s.r, pdrop,
                                    acc ? "accumulate" : "assign", cap == 1 ? "groups=1" : "groups=max",
                                    (unsigned long long)seed);
                        failures += bad ? 1 : 0;
                        ++runs;
                    }
    std::printf("%d passed, %d failed\n", checked - failures, failures);
    return failures ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// bigindex: a problem whose X, dX [n, d_in] and Y, dY [n, d_out] hold more than 2^31 elements, so
// every element index and byte offset must be computed in 64 bits. Checked against the double
// reference: the last row tile (a 37-row tail) of U, Y, V, dX and the last row group's dB and dA
// partials. A GPU runs the whole grids (~25 GB of device memory; the other rows hold garbage and are
// not checked); the CPU emulation runs only the blocks that produce the checked part.
#if defined(RS_EMULATE)
#define RS_ONLY_BLOCKS(pred) (rs_emu::st().block_filter = (pred))
#else
#define RS_ONLY_BLOCKS(pred) ((void)0)
#endif
static int bigindex(int version) {
    typedef __nv_bfloat16 T;
    const DT dt = DT::BF16;
    const int n = 600037, di = 4099, dout = 4101, r = 16;
    const int last = (n - 1) / 64, row0 = last * 64, rows = n - row0;  // the last row tile: 37 rows
    const int rpg = 64, groups = last + 1;                             // one row group per row tile
    const float gamma = 2.0f / std::sqrt((float)r);
    const RsDropout drop = make_dropout(0xB16B16B16ULL, 0x100000003ULL, 7, 0.1f, true);
    const bool v2 = version == 2;
    std::printf("bigindex: n=%d d_in=%d d_out=%d r=%d bf16: n*d_in = %.3g, n*d_out = %.3g elements (2^31 = %.3g); "
                "checking rows %d..%d, kernels v%d\n", n, di, dout, r, (double)n * di, (double)n * dout, 2147483648.0, row0,
                n - 1, version);
    std::mt19937_64 g(0xB16);
    std::vector<float> x = rnd(g, (size_t)rows * di, dt, -1, 1), dy = rnd(g, (size_t)rows * dout, dt, -1, 1);
    std::vector<float> w = rnd(g, (size_t)dout * di, dt, -1, 1), b = rnd(g, dout, dt, -1, 1);
    std::vector<float> a = rnd(g, (size_t)r * di, DT::F32, -1, 1), bb = rnd(g, (size_t)dout * r, DT::F32, -1, 1);
    Dev d;
    char* X = (char*)d.alloc_raw((size_t)n * di * 2);
    char* DY = (char*)d.alloc_raw((size_t)n * dout * 2);
    char* Y = (char*)d.alloc_raw((size_t)n * dout * 2);
    char* DX = (char*)d.alloc_raw((size_t)n * di * 2);
    float* wsb = (float*)d.alloc_raw((size_t)groups * dout * r * 4);
    float* wsa = (float*)d.alloc_raw((size_t)groups * r * di * 4);
    void* W = d.upload(pack(dt, w));
    void* bias = d.upload(pack(dt, b));
    float* A = (float*)d.upload(pack(DT::F32, a));
    float* B = (float*)d.upload(pack(DT::F32, bb));
    float* U = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    float* V = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    // the checked rows: inputs uploaded, outputs poisoned (NaN)
    const std::vector<unsigned char> xb = pack(dt, x), dyb = pack(dt, dy);
    CUDA_CHECK(cudaMemcpy(X + (size_t)row0 * di * 2, xb.data(), xb.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(DY + (size_t)row0 * dout * 2, dyb.data(), dyb.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(Y + (size_t)row0 * dout * 2, 0xFF, (size_t)rows * dout * 2));
    CUDA_CHECK(cudaMemset(DX + (size_t)row0 * di * 2, 0xFF, (size_t)rows * di * 2));
    CUDA_CHECK(cudaMemset(wsb + (size_t)last * dout * r, 0xFF, (size_t)dout * r * 4));
    CUDA_CHECK(cudaMemset(wsa + (size_t)last * r * di, 0xFF, (size_t)r * di * 4));

    RS_ONLY_BLOCKS([&](uint3 blk) { return (int)blk.y == last; });
    RS_LAUNCH(V1<T>::down, dim3(cdiv(r, 64), cdiv(n, 64)), 256, RsLoraDownParams{X, A, U, n, di, r, drop});
    if (v2) {
        RS_LAUNCH(V2<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), V2<T>::threads, RsLoraForwardParams{X, W, bias, U, B, Y, n, di, dout, r, gamma});
    } else {
        RS_LAUNCH(V1<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), 256, RsLoraForwardParams{X, W, bias, U, B, Y, n, di, dout, r, gamma});
    }
    RS_LAUNCH(V1<T>::vdb, dim3(cdiv(r, 64), groups), 256, RsLoraBackwardVdbParams{DY, B, U, V, wsb, n, dout, r, rpg});
    RS_ONLY_BLOCKS([&](uint3 blk) { return (int)blk.z == last; });
    RS_LAUNCH(V1<T>::da, dim3(cdiv(di, 64), cdiv(r, 64), groups), 256, RsLoraBackwardDaParams{V, X, wsa, n, di, r, rpg, drop});
    RS_ONLY_BLOCKS([&](uint3 blk) { return (int)blk.y == last; });
    if (v2) {
        RS_LAUNCH(V2<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), V2<T>::threads, RsLoraBackwardDxParams{DY, W, V, A, DX, n, di, dout, r, gamma, drop});
    } else {
        RS_LAUNCH(V1<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), 256, RsLoraBackwardDxParams{DY, W, V, A, DX, n, di, dout, r, gamma, drop});
    }
    RS_ONLY_BLOCKS(nullptr);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    // double reference on the last rows (mask of the absolute row)
    std::vector<double> mk((size_t)rows * di);
    for (int i = 0; i < rows; ++i)
        for (int c = 0; c < di; ++c) mk[(size_t)i * di + c] = rs_dropout_one(drop, (uint32_t)(row0 + i), (uint32_t)c);
    auto xd = [&](int i, int c) { double m = mk[(size_t)i * di + c]; return m == 0.0 ? 0.0 : (double)(x[(size_t)i * di + c] * (float)m); };
    std::vector<double> eu((size_t)rows * r), ey((size_t)rows * dout), ev((size_t)rows * r), edx((size_t)rows * di);
    std::vector<double> ewb((size_t)dout * r, 0.0), ewa((size_t)r * di, 0.0), bound_y((size_t)rows * dout, 0.0), bound_dx((size_t)rows * di, 0.0);
    const double unit = 0x1p-8;
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < r; ++j) {
            double su = 0, sv = 0;
            for (int c = 0; c < di; ++c) su += xd(i, c) * a[(size_t)j * di + c];
            for (int o = 0; o < dout; ++o) sv += (double)dy[(size_t)i * dout + o] * bb[(size_t)o * r + j];
            eu[(size_t)i * r + j] = su;
            ev[(size_t)i * r + j] = sv;
        }
        for (int o = 0; o < dout; ++o) {
            double s = b[o], l = 0, mag = 0;
            for (int c = 0; c < di; ++c) s += (double)x[(size_t)i * di + c] * w[(size_t)o * di + c];
            for (int j = 0; j < r; ++j) {
                l += eu[(size_t)i * r + j] * bb[(size_t)o * r + j];
                mag += std::fabs(eu[(size_t)i * r + j] * bb[(size_t)o * r + j]);
            }
            ey[(size_t)i * dout + o] = s + gamma * l;
            if (v2) bound_y[(size_t)i * dout + o] = 4 * unit * gamma * mag;
        }
        for (int c = 0; c < di; ++c) {
            double s = 0, l = 0, mag = 0;
            for (int o = 0; o < dout; ++o) s += (double)dy[(size_t)i * dout + o] * w[(size_t)o * di + c];
            for (int j = 0; j < r; ++j) {
                l += ev[(size_t)i * r + j] * a[(size_t)j * di + c];
                mag += std::fabs(ev[(size_t)i * r + j] * a[(size_t)j * di + c]);
            }
            edx[(size_t)i * di + c] = s + gamma * l * mk[(size_t)i * di + c];
            if (v2) bound_dx[(size_t)i * di + c] = 4 * unit * gamma * drop.scale * mag;
        }
    }
    // the partials from the kernels' own U and V (checked above), so their tolerance is that of a 37-term sum
    const std::vector<float> gu = unpack(DT::F32, download(U + (size_t)row0 * r, (size_t)rows * r * 4), (size_t)rows * r);
    const std::vector<float> gv = unpack(DT::F32, download(V + (size_t)row0 * r, (size_t)rows * r * 4), (size_t)rows * r);
    // (rounding bound of an fp32 sum of `rows` products: rows·2^-24·Σ|terms|, the standard forward bound)
    std::vector<double> bound_b((size_t)dout * r, 0.0), bound_a((size_t)r * di, 0.0);
    for (int o = 0; o < dout; ++o)
        for (int j = 0; j < r; ++j)
            for (int i = 0; i < rows; ++i) {
                const double t = (double)dy[(size_t)i * dout + o] * gu[(size_t)i * r + j];
                ewb[(size_t)o * r + j] += t;
                bound_b[(size_t)o * r + j] += rows * 0x1p-24 * std::fabs(t);
            }
    for (int j = 0; j < r; ++j)
        for (int c = 0; c < di; ++c)
            for (int i = 0; i < rows; ++i) {
                const double t = (double)gv[(size_t)i * r + j] * xd(i, c);
                ewa[(size_t)j * di + c] += t;
                bound_a[(size_t)j * di + c] += rows * 0x1p-24 * std::fabs(t);
            }

    int bad = 0;
    bad += check("U", gu, eu, tol_for(dt, false), di);
    bad += check("Y", unpack(dt, download(Y + (size_t)row0 * dout * 2, (size_t)rows * dout * 2), (size_t)rows * dout), ey,
                 tol_for(dt, true), di + r, v2 ? &bound_y : nullptr);
    bad += check("V", gv, ev, tol_for(dt, false), dout);
    bad += check("dB partial", unpack(DT::F32, download(wsb + (size_t)last * dout * r, (size_t)dout * r * 4), (size_t)dout * r), ewb,
                 tol_for(dt, false), rows, &bound_b);
    bad += check("dA partial", unpack(DT::F32, download(wsa + (size_t)last * r * di, (size_t)r * di * 4), (size_t)r * di), ewa,
                 tol_for(dt, false), rows, &bound_a);
    bad += check("dX", unpack(dt, download(DX + (size_t)row0 * di * 2, (size_t)rows * di * 2), (size_t)rows * di), edx,
                 tol_for(dt, true), dout + r, v2 ? &bound_dx : nullptr);
    std::printf("%s bigindex v%d\n%d passed, %d failed\n", bad ? "FAIL" : "ok  ", version, bad ? 0 : 1, bad ? 1 : 0);
    return bad ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// timing: median of reps, inputs rotated over enough copies to defeat the 60 MB L2 is left to the
// Java benchmarks; here one copy, warm-up first, CUDA events around each launch.
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

#if !defined(RS_EMULATE)
static int bench(int version, const char* jsonl) {
    if (version != 1 && version != 2) {
        std::printf("version %d is not in this build (available: 1, 2)\n", version);
        return 2;
    }
    FILE* json = nullptr;
    if (jsonl) {
        json = std::fopen(jsonl, "w");
        if (!json) {
            std::fprintf(stderr, "cannot write %s\n", jsonl);
            return 2;
        }
    }
    const bool v2 = version == 2;
    typedef __nv_bfloat16 T;
    const int n = 8192, di = 4096, dout = 4096;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d), bf16, n=%d d_in=%d d_out=%d, dropout 0.1, median of 20, kernels v%d\n", prop.name,
                prop.major, prop.minor, n, di, dout, version);
    std::printf("%-10s %5s %10s %10s\n", "kernel", "r", "ms", "TFLOP/s");
    for (int r : {16, 64, 256}) {
        Dev d;
        std::mt19937_64 g(42);
        void* x = d.upload(pack(DT::BF16, rnd(g, (size_t)n * di, DT::BF16, -1, 1)));
        void* w = d.upload(pack(DT::BF16, rnd(g, (size_t)dout * di, DT::BF16, -1, 1)));
        void* dy = d.upload(pack(DT::BF16, rnd(g, (size_t)n * dout, DT::BF16, -1, 1)));
        float* a = (float*)d.upload(pack(DT::F32, rnd(g, (size_t)r * di, DT::F32, -1, 1)));
        float* bb = (float*)d.upload(pack(DT::F32, rnd(g, (size_t)dout * r, DT::F32, -1, 1)));
        float* u = (float*)d.alloc((size_t)n * r * 4, 0);
        float* v = (float*)d.alloc((size_t)n * r * 4, 0);
        float* ga = (float*)d.alloc((size_t)r * di * 4, 0);
        float* gb = (float*)d.alloc((size_t)dout * r * 4, 0);
        void* y = d.alloc((size_t)n * dout * 2, 0);
        void* dx = d.alloc((size_t)n * di * 2, 0);
        const long long cap = 256LL << 20;
        const int rpg_b = rows_per_group(n, (long long)dout * r, cap), rpg_a = rows_per_group(n, (long long)r * di, cap);
        const int g_b = (int)cdiv(n, rpg_b), g_a = (int)cdiv(n, rpg_a);
        float* ws = (float*)d.alloc(std::max((size_t)g_b * dout * r, (size_t)g_a * r * di) * 4, 0);
        RsDropout drop = make_dropout(1234, 1, 0, 0.1f, true);
        const float gamma = 16.0f / std::sqrt((float)r);
        struct Item { const char* name; double flop; float ms; };
        std::vector<Item> items;
        items.push_back({"down", 2.0 * n * di * r, median_ms([&] {
            RS_LAUNCH(V1<T>::down, dim3(cdiv(r, 64), cdiv(n, 64)), 256, RsLoraDownParams{x, a, u, n, di, r, drop}); }, 20)});
        items.push_back({"forward", 2.0 * n * dout * (di + r), median_ms([&] {
            if (v2) RS_LAUNCH(V2<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), V2<T>::threads, RsLoraForwardParams{x, w, nullptr, u, bb, y, n, di, dout, r, gamma});
            else RS_LAUNCH(V1<T>::forward, dim3(cdiv(dout, 64), cdiv(n, 64)), 256, RsLoraForwardParams{x, w, nullptr, u, bb, y, n, di, dout, r, gamma}); }, 20)});
        items.push_back({"vdb", 4.0 * n * dout * r, median_ms([&] {
            RS_LAUNCH(V1<T>::vdb, dim3(cdiv(r, 64), g_b), 256, RsLoraBackwardVdbParams{dy, bb, u, v, ws, n, dout, r, rpg_b});
            RS_LAUNCH(rslora_reduce_groups_v1, cdiv((long long)dout * r, 256), 256, RsReduceParams{ws, gb, (int64_t)dout * r, g_b, gamma, 0}); }, 20)});
        items.push_back({"da", 2.0 * n * di * r, median_ms([&] {
            RS_LAUNCH(V1<T>::da, dim3(cdiv(di, 64), cdiv(r, 64), g_a), 256, RsLoraBackwardDaParams{v, x, ws, n, di, r, rpg_a, drop});
            RS_LAUNCH(rslora_reduce_groups_v1, cdiv((long long)r * di, 256), 256, RsReduceParams{ws, ga, (int64_t)r * di, g_a, gamma, 0}); }, 20)});
        items.push_back({"dx", 2.0 * n * di * (dout + r), median_ms([&] {
            if (v2) RS_LAUNCH(V2<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), V2<T>::threads, RsLoraBackwardDxParams{dy, w, v, a, dx, n, di, dout, r, gamma, drop});
            else RS_LAUNCH(V1<T>::dx, dim3(cdiv(di, 64), cdiv(n, 64)), 256, RsLoraBackwardDxParams{dy, w, v, a, dx, n, di, dout, r, gamma, drop}); }, 20)});
        for (const Item& it : items) {
            std::printf("%-10s %5d %10.3f %10.2f\n", it.name, r, it.ms, it.flop / (it.ms * 1e-3) / 1e12);
            if (json)
                std::fprintf(json,
                             "{\"kind\": \"kernel\", \"device\": \"%s\", \"sm\": \"%d%d\", \"version\": %d, "
                             "\"kernel\": \"%s\", \"dtype\": \"bf16\", \"n\": %d, \"d_in\": %d, \"d_out\": %d, "
                             "\"r\": %d, \"dropout\": 0.1, \"reps\": 20, \"median_ms\": %.6f, \"flop\": %.0f}\n",
                             prop.name, prop.major, prop.minor, version, it.name, n, di, dout, r, it.ms, it.flop);
            if (json) std::fflush(json);  // whole lines survive a run cut short by its timeout
        }
    }
    if (json) std::fclose(json);
    return 0;
}
#endif

#include "adamw_check.cuh"  // the `adamw` command: fused AdamW and gradient norm
#include "adafactor_check.cuh"     // the `adafactor` command: fused Adafactor
#include "seq_logprob_check.cuh"   // the `seqlogprob` command: sequence log-probs (DPO)

// ---------------------------------------------------------------------------------------------
// CPU-only self test: Philox known-answer vectors (SPEC.md §4) and dropout facts
static int selftest() {
    struct Kat { uint32_t c[4], k[2], out[4]; };
    const Kat kats[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu},
         {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u},
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    int pass = 0, fail = 0;
    for (const Kat& k : kats) {
        RsU32x4 o = rs_philox4x32_10(k.c[0], k.c[1], k.c[2], k.c[3], k.k[0], k.k[1]);
        bool ok = std::memcmp(o.v, k.out, sizeof o.v) == 0;
        std::printf("%s philox KAT %08x %08x %08x %08x\n", ok ? "ok  " : "FAIL", o.v[0], o.v[1], o.v[2], o.v[3]);
        ok ? ++pass : ++fail;
    }
    // threshold = ceil(p·2^24) equals the float comparison u >= p for every 24-bit draw near it
    for (float p : {0.1f, 0.5f, 0.25f, 1e-7f, 0.9999f}) {
        RsDropout d = make_dropout(1, 2, 3, p, true);
        bool ok = true;
        for (int64_t q = (int64_t)d.threshold - 3; q <= (int64_t)d.threshold + 3; ++q) {
            if (q < 0 || q >= (1 << 24)) continue;
            bool by_int = (uint32_t)q >= d.threshold;
            bool by_float = (float)q * 0x1p-24f >= p;
            ok = ok && by_int == by_float;
        }
        std::printf("%s threshold p=%g -> %u\n", ok ? "ok  " : "FAIL", p, d.threshold);
        ok ? ++pass : ++fail;
    }
    // keep rate of p = 0.1 over 400k elements within 5 sigma of 0.9
    RsDropout d = make_dropout(0x1234567890abcdefULL, 7, 2, 0.1f, true);
    long kept = 0, total = 0;
    for (uint32_t i = 0; i < 400; ++i)
        for (uint32_t c = 0; c < 1000; ++c, ++total) kept += rs_dropout_one(d, i, c) != 0.0f;
    double rate = (double)kept / total, sigma = std::sqrt(0.09 / total);
    bool ok = std::fabs(rate - 0.9) < 5 * sigma;
    std::printf("%s keep rate %.5f (p=0.1)\n", ok ? "ok  " : "FAIL", rate);
    ok ? ++pass : ++fail;
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

// CPU only: the mask of rows [row0, row0 + rows) × columns [0, cols) as one line of '1' (kept) and
// '0' (dropped) per row, from the kernels' own rs_dropout_one. The Java tests compare it with
// dev.rslora.dropout.DropoutMask (the CPU backends' mask) bit for bit, without a GPU.
static int print_mask(int argc, char** argv) {
    if (argc != 9) {
        std::fprintf(stderr, "usage: %s mask SEED STEP LAYER P ROW0 ROWS COLS\n", argv[0]);
        return 2;
    }
    const uint64_t seed = std::strtoull(argv[2], nullptr, 0), step = std::strtoull(argv[3], nullptr, 0);
    const uint32_t layer = (uint32_t)std::strtoul(argv[4], nullptr, 0);
    const float p = std::strtof(argv[5], nullptr);
    const uint32_t row0 = (uint32_t)std::strtoul(argv[6], nullptr, 0);
    const int rows = std::atoi(argv[7]), cols = std::atoi(argv[8]);
    const RsDropout d = make_dropout(seed, step, layer, p, true);
    std::printf("threshold %u scale %.9g\n", d.threshold, d.scale);
    std::string line((size_t)cols, '0');
    for (int i = 0; i < rows; ++i) {
        for (int c = 0; c < cols; ++c) line[(size_t)c] = rs_dropout_one(d, row0 + (uint32_t)i, (uint32_t)c) != 0.0f ? '1' : '0';
        std::printf("%s\n", line.c_str());
    }
    return 0;
}

int main(int argc, char** argv) {
    std::string cmd = argc > 1 ? argv[1] : "validate";
    int version = argc > 2 ? std::atoi(argv[2]) : 1;
    const bool quick = argc > 3 && std::string(argv[3]) == "quick";
    if (cmd == "selftest") return selftest();
    if (cmd == "mask") return print_mask(argc, argv);
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device: '%s' needs a GPU (selftest runs without one)\n", cmd.c_str());
        return 3;
    }
    if (cmd == "adafactor" || cmd == "seqlogprob") {
        const std::string mode = argc > 2 ? argv[2] : "";
        const bool af = cmd == "adafactor";
#if defined(RS_EMULATE)
        if (mode == "bench") {
            std::printf("bench needs a GPU (this is the CPU emulation build)\n");
            return 3;
        }
        std::printf("CPU emulation (cuda/dev/emu/cuda_emu.h), thread order %s between barriers\n", rs_emu::order_name());
#else
        if (mode == "bench") return af ? adafactor_dev::bench() : seqlp_dev::bench();
#endif
        if (af && mode == "dump") return adafactor_dev::dump();
        return af ? adafactor_dev::validate(mode == "quick") : seqlp_dev::validate(mode == "quick");
    }
    if (cmd == "adamw") {
        const std::string mode = argc > 2 ? argv[2] : "";
#if defined(RS_EMULATE)
        if (mode == "bench") {
            std::printf("bench needs a GPU (this is the CPU emulation build)\n");
            return 3;
        }
        std::printf("CPU emulation (cuda/dev/emu/cuda_emu.h), thread order %s between barriers\n", rs_emu::order_name());
#else
        if (mode == "bench") return adamw_dev::bench();
#endif
        return adamw_dev::validate(mode == "quick");
    }
#if defined(RS_EMULATE)
    if (cmd == "validate") {
        std::printf("CPU emulation (cuda/dev/emu/cuda_emu.h), thread order %s between barriers\n", rs_emu::order_name());
        int rc = validate(version, quick);
        std::printf("emulated %llu launches, %llu blocks, %llu block barriers\n", (unsigned long long)rs_emu::st().launches,
                    (unsigned long long)rs_emu::st().blocks, (unsigned long long)rs_emu::st().barriers);
        return rc;
    }
    if (cmd == "bench") {
        std::printf("bench needs a GPU (this is the CPU emulation build)\n");
        return 3;
    }
    if (cmd == "bigindex") return bigindex(version);
#else
    if (cmd == "bigindex") return bigindex(version);
    if (cmd == "validate") return validate(version, quick);
    if (cmd == "bench") return bench(version, argc > 3 ? argv[3] : nullptr);
#endif
    std::fprintf(stderr, "usage: %s selftest | mask ... | validate [version [quick]] | bigindex [version] | bench [version] [jsonl] | adamw [quick|bench] | adafactor [quick|bench] | seqlogprob [quick|bench]\n", argv[0]);
    return 2;
}
