// Standalone development check of the sm_90a GEMM core (cuda/cores/sm90_gemm.cuh) and of the v3
// kernels built on it (cuda/kernels/lora_forward_v3.cuh, lora_backward_dx_v3.cuh), llm.c style:
// a CPU double reference, the kernel, validation. Builds with nvcc for sm_90a (runs on an H100/H200)
// and with g++ against the CPU emulation (-DRS_EMULATE, cuda/dev/emu/), which is how it runs here.
//
//   gemm_sm90 core [quick]   the core alone at awkward shapes: M, N, K tails in every dimension,
//                            one or two K-segments of 1 … 600, Q K-major and MN-major, bf16 and f16,
//                            the dX configuration's accumulator mask, persistent grids smaller than
//                            the tile count (ring and mask-buffer wrap, epilogue buffer reuse)
//   gemm_sm90 v3 [quick]     rslora_lora_forward_v3_* and rslora_lora_backward_dx_v3_* at layer
//                            shapes (r = 0 … 200, bias on/off, dropout on/off) against a double
//                            reference, and the dX dropout pattern against rs_dropout_one exactly
//   gemm_sm90 bench          (GPU only) TFLOP/s of the v3 forward and dX at 8192×4096×4096
//   gemm_sm90 all [quick]    core + v3
// Every output is poisoned (NaN) first, and the padding columns of every buffer hold NaN that a
// stray read would spread and a stray write would overwrite (both are checked). Tolerance per
// output: u_T·|ref| + (K + 2)·2^-22·Σ|terms| (u_T = 2^-8 bf16, 2^-11 f16: the one rounding to T;
// the second term bounds fp32 accumulation in any order, with margin for the tensor core's).
// Seeds are printed with every case. Build: make -C cuda/dev gemm-sm90 (nvcc) / gemm-sm90-emu (g++).
#if defined(RS_EMULATE)
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#define RS_LAUNCH_EX(kernel, grid, block, smem, ...) kernel<<<grid, block, smem>>>(__VA_ARGS__)
#endif
#include <cuda.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../cores/sm90_gemm.cuh"
#include "../rslora_kernels_sm90a.cu"

#include "check.cuh"

// ---------------------------------------------------------------------------------------------
// the core under test: a kernel that runs one Problem with up to two segments
struct CoreTestParams {
    int m, n, nseg, kb0, kb1;
    const void* bias;
    RsDropout drop;
};

template <typename T, int BN, int STAGES, bool QMN, bool MASK, int CM>
__global__ void __launch_bounds__(384, 1)
    core_test_kernel(const CoreTestParams p, const __grid_constant__ CUtensorMap p0, const __grid_constant__ CUtensorMap q0,
                     const __grid_constant__ CUtensorMap p1, const __grid_constant__ CUtensorMap q1,
                     const __grid_constant__ CUtensorMap c) {
    RS_SM90A_BODY(RS_DYNAMIC_SMEM(core_smem); rs3::Problem<T> pb; pb.m = p.m; pb.n = p.n; pb.nseg = p.nseg;
                  pb.seg[0] = rs3::Segment{&p0, &q0, p.kb0}; pb.seg[1] = rs3::Segment{&p1, &q1, p.kb1}; pb.c = &c;
                  pb.bias = static_cast<const T*>(p.bias); pb.drop = p.drop;
                  rs3::Sm90Gemm<T, BN, STAGES, QMN, MASK, CM>::run(pb, core_smem);)
}

// One launch path for the GPU and the emulation: dynamic shared memory (opted in above 48 KB) and
// cluster dims (cudaLaunchKernelEx's attribute; the emulation's launch_ex).
template <typename... P, typename... A>
static void launch(const char* name, void (*k)(P...), dim3 grid, dim3 block, size_t smem, dim3 cluster, A&&... args) {
    if (smem > 48 * 1024) CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
#if defined(RS_EMULATE)
    ::rs_emu::launch_ex(name, k, grid, block, smem, cluster, P(args)...);
#else
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cudaLaunchAttribute attr[1];
    if (cluster.x * cluster.y * cluster.z > 1) {
        attr[0].id = cudaLaunchAttributeClusterDimension;
        attr[0].val.clusterDim.x = cluster.x;
        attr[0].val.clusterDim.y = cluster.y;
        attr[0].val.clusterDim.z = cluster.z;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
    }
    const cudaError_t e = cudaLaunchKernelEx(&cfg, k, P(args)...);
    if (e != cudaSuccess) {
        std::fprintf(stderr, "launch of %s (grid %u, smem %zu, cluster %u) failed: %s\n", name, grid.x, smem, cluster.x,
                     cudaGetErrorString(e));
        std::exit(2);
    }
#endif
}

// ---------------------------------------------------------------------------------------------
// host helpers
enum class DT { BF16, F16 };
static const char* dt_name(DT d) { return d == DT::BF16 ? "bf16" : "f16"; }
static double unit_roundoff(DT d) { return d == DT::BF16 ? 0x1p-8 : 0x1p-11; }
static float round_to(DT d, float v) {
    return d == DT::BF16 ? __bfloat162float(__float2bfloat16_rn(v)) : __half2float(__float2half_rn(v));
}
static uint16_t bits_of(DT d, float v) {
    uint16_t b;
    if (d == DT::BF16) {
        __nv_bfloat16 h = __float2bfloat16_rn(v);
        std::memcpy(&b, &h, 2);
    } else {
        __half h = __float2half_rn(v);
        std::memcpy(&b, &h, 2);
    }
    return b;
}
static float from_bits(DT d, uint16_t b) {
    if (d == DT::BF16) {
        __nv_bfloat16 h;
        std::memcpy(static_cast<void*>(&h), &b, 2);
        return __bfloat162float(h);
    }
    __half h;
    std::memcpy(static_cast<void*>(&h), &b, 2);
    return __half2float(h);
}
static long long round_up(long long a, long long b) { return (a + b - 1) / b * b; }
static int cdiv(long long a, long long b) { return (int)((a + b - 1) / b); }
static const uint16_t kPoison = 0xFFFF;  // NaN in bf16 and f16

// A host matrix [rows, ld] of T bits whose columns >= cols are poison; values[i][j] as float.
struct HostMat {
    int rows = 0, cols = 0, ld = 0;
    std::vector<uint16_t> bits;
    std::vector<float> val;  // rows × cols, the T values as float
    float at(int i, int j) const { return val[(size_t)i * cols + j]; }
};
static HostMat random_mat(DT d, int rows, int cols, std::mt19937_64& g, float lo = -1.0f, float hi = 1.0f) {
    HostMat m;
    m.rows = rows;
    m.cols = cols;
    m.ld = (int)round_up(std::max(cols, 1), 8);
    m.bits.assign((size_t)rows * m.ld, kPoison);
    m.val.assign((size_t)rows * cols, 0.0f);
    std::uniform_real_distribution<float> u(lo, hi);
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) {
            float v = round_to(d, u(g));
            m.val[(size_t)i * cols + j] = v;
            m.bits[(size_t)i * m.ld + j] = bits_of(d, v);
        }
    return m;
}

struct Dev {
    std::vector<void*> ptrs;
    void* upload(const std::vector<uint16_t>& b) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, b.size() * 2));
        CUDA_CHECK(cudaMemcpy(p, b.data(), b.size() * 2, cudaMemcpyHostToDevice));
        ptrs.push_back(p);
        return p;
    }
    void* poisoned(size_t elems) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, elems * 2));
        CUDA_CHECK(cudaMemset(p, 0xFF, elems * 2));
        ptrs.push_back(p);
        return p;
    }
    ~Dev() {
        for (void* p : ptrs) cudaFree(p);
    }
};
static std::vector<uint16_t> download(const void* p, size_t elems) {
    std::vector<uint16_t> out(elems);
    CUDA_CHECK(cudaMemcpy(out.data(), p, elems * 2, cudaMemcpyDeviceToHost));
    return out;
}

// cuTensorMapEncodeTiled through the runtime's driver entry point (the emulation provides both)
typedef CUresult (*EncodeTiledFn)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                  const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                  CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
static EncodeTiledFn encode_fn() {
    static EncodeTiledFn fn = nullptr;
    if (!fn) {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q;
        CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
        if (!p || q != cudaDriverEntryPointSuccess) {
            std::fprintf(stderr, "cuTensorMapEncodeTiled is not available\n");
            std::exit(2);
        }
        fn = reinterpret_cast<EncodeTiledFn>(p);
    }
    return fn;
}
// A 2-D map over a row-major [outer, ld] T buffer whose logical extent is {inner, outer}.
static CUtensorMap make_map(DT d, const void* base, long long inner, long long outer, long long ld, int box_inner,
                            int box_outer) {
    CUtensorMap m;
    const cuuint64_t dims[2] = {(cuuint64_t)inner, (cuuint64_t)outer};
    const cuuint64_t strides[1] = {(cuuint64_t)ld * 2};
    const cuuint32_t box[2] = {(cuuint32_t)box_inner, (cuuint32_t)box_outer};
    const cuuint32_t estr[2] = {1, 1};
    CUresult r = encode_fn()(&m, d == DT::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                             const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
                             CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        std::fprintf(stderr, "cuTensorMapEncodeTiled failed (%d): inner %lld outer %lld ld %lld box {%d, %d}\n", (int)r,
                     inner, outer, ld, box_inner, box_outer);
        std::exit(2);
    }
    return m;
}
static int sm_count() {
    int n = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0));
    return n;
}

// got [rows, ld] bits vs ref (rows × cols) with per-element bound; the padding columns must still
// be poison. Returns the number of failures (prints the first few).
static int check(const char* what, DT d, const std::vector<uint16_t>& got, int rows, int cols, int ld,
                 const std::vector<double>& ref, const std::vector<double>& bound) {
    int bad = 0;
    double worst = 0.0;
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < ld; ++j) {
            const uint16_t b = got[(size_t)i * ld + j];
            if (j >= cols) {
                if (b != kPoison) {
                    if (bad < 5) std::printf("    %s: padding [%d][%d] was written (0x%04x)\n", what, i, j, b);
                    ++bad;
                }
                continue;
            }
            const double r = ref[(size_t)i * cols + j], g = from_bits(d, b);
            const double err = std::fabs(g - r);
            if (!(err <= bound[(size_t)i * cols + j])) {  // NaN fails
                if (bad < 5)
                    std::printf("    %s[%d][%d]: got %.8g ref %.8g (bound %.3g)\n", what, i, j, g, r,
                                bound[(size_t)i * cols + j]);
                ++bad;
            }
            if (err > worst) worst = err;
        }
    }
    if (bad) std::printf("    %s: %d failures of %d (max err %.3g)\n", what, bad, rows * cols, worst);
    return bad;
}

// ---------------------------------------------------------------------------------------------
// core cases
struct CoreCase {
    int m, n, k0, k1;  // k1 = 0: one segment
    int grid_cap;      // 0: min(SMs, tiles); else at most this many CTAs (persistence)
    float drop_p;      // MASK configuration: dropout of segment 0 (0: disabled)
    bool bias;
};

template <typename T, int BN, int STAGES, bool QMN, bool MASK, int CM = 1>
static int run_core_case(DT dt, const CoreCase& cc, uint64_t seed) {
    typedef rs3::Sm90Gemm<T, BN, STAGES, QMN, MASK, CM> Core;
    std::mt19937_64 g(seed);
    const int M = cc.m, N = cc.n, nseg = cc.k1 > 0 ? 2 : 1;
    const int K[2] = {cc.k0, cc.k1};
    HostMat P[2], Q[2];
    Dev dev;
    CUtensorMap pm[2], qm[2];
    for (int s = 0; s < nseg; ++s) {
        P[s] = random_mat(dt, M, K[s], g);
        // K-major Q: [N, K] row-major; MN-major Q: [K, N] row-major (the same logical Q(n, k))
        Q[s] = QMN ? random_mat(dt, K[s], N, g) : random_mat(dt, N, K[s], g);
        void* pd = dev.upload(P[s].bits);
        void* qd = dev.upload(Q[s].bits);
        pm[s] = make_map(dt, pd, K[s], M, P[s].ld, 64, 128);
        qm[s] = QMN ? make_map(dt, qd, N, K[s], Q[s].ld, 64, 64) : make_map(dt, qd, K[s], N, Q[s].ld, 64, BN / CM);
    }
    if (nseg == 1) {
        pm[1] = pm[0];
        qm[1] = qm[0];
    }
    HostMat bias;
    void* bias_d = nullptr;
    if (cc.bias) {
        bias = random_mat(dt, 1, N, g);
        bias_d = dev.upload(bias.bits);
    }
    const int ldc = (int)round_up(N, 8) + 8;  // 8 extra padding columns that must stay poison
    void* c_d = dev.poisoned((size_t)M * ldc);
    const CUtensorMap cm = make_map(dt, c_d, N, M, ldc, 64, 64);

    RsDropout drop{0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    if (MASK && cc.drop_p > 0.0f) {
        drop.key_lo = (uint32_t)(seed * 2654435761u);
        drop.key_hi = (uint32_t)(seed >> 7);
        drop.layer = 3;
        drop.step = 11;
        drop.threshold = (uint32_t)std::ceil((double)cc.drop_p * 16777216.0);
        drop.scale = 1.0f / (1.0f - cc.drop_p);
        drop.enabled = 1;
    }
    const bool masked = MASK && nseg == 2 && drop.enabled;

    // reference
    std::vector<double> ref((size_t)M * N), bound((size_t)M * N);
    const double u = unit_roundoff(dt);
    for (int i = 0; i < M; ++i) {
        for (int j = 0; j < N; ++j) {
            double total = 0.0, mag = 0.0;
            for (int s = 0; s < nseg; ++s) {
                double sum = 0.0, abs_sum = 0.0;
                for (int k = 0; k < K[s]; ++k) {
                    const double pq = (double)P[s].at(i, k) * (QMN ? Q[s].at(k, j) : Q[s].at(j, k));
                    sum += pq;
                    abs_sum += std::fabs(pq);
                }
                if (s == 0 && masked) {
                    const double mk = rs_dropout_one(drop, (uint32_t)i, (uint32_t)j);
                    sum *= mk;
                    abs_sum *= mk;
                }
                total += sum;
                mag += abs_sum;
            }
            if (cc.bias) {
                total += bias.at(0, j);
                mag += std::fabs(bias.at(0, j));
            }
            ref[(size_t)i * N + j] = total;
            bound[(size_t)i * N + j] = u * std::fabs(total) + (double)(K[0] + K[1] + 2) * 0x1p-22 * mag + 1e-30;
        }
    }

    CoreTestParams p{M, N, nseg, cdiv(K[0], 64), nseg == 2 ? cdiv(K[1], 64) : 0, bias_d, drop};
    const long long tiles = (long long)cdiv(M, 128) * cdiv(N, BN);
    const long long units = (long long)cdiv(cdiv(M, 128), CM) * cdiv(N, BN);  // CM tiles (one per CTA of a cluster)
    int clusters = (int)std::min<long long>(units, sm_count() / CM);
    if (cc.grid_cap > 0) clusters = std::min(clusters, std::max(1, cc.grid_cap / CM));
    const int grid = clusters * CM;
    auto* kernel = core_test_kernel<T, BN, STAGES, QMN, MASK, CM>;
    launch("core_test_kernel", kernel, dim3(grid), dim3(384), Core::kSmemBytes, dim3(CM, 1, 1), p, pm[0], qm[0], pm[1],
           qm[1], cm);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<uint16_t> got = download(c_d, (size_t)M * ldc);
    const int bad = check("C", dt, got, M, N, ldc, ref, bound);
    const std::string ks = std::to_string(K[0]) + (nseg == 2 ? "+" + std::to_string(K[1]) : std::string());
    std::printf("%s core %s BN=%d S=%d Q=%s%s%s M=%d N=%d K=%s grid=%d/%lld tiles%s%s seed=%llu\n", bad ? "FAIL" : "ok  ",
                dt_name(dt), BN, STAGES, QMN ? "MN" : "K ", MASK ? " mask" : "", CM == 2 ? " cluster2" : "", M, N, ks.c_str(), grid, tiles,
                cc.bias ? " bias" : "", masked ? " dropout" : "", (unsigned long long)seed);
    return bad ? 1 : 0;
}

template <typename T>
static void core_suite(DT dt, bool quick, int& pass, int& fail, uint64_t& seed) {
    const CoreCase k_cases[] = {
        {1, 1, 1, 0, 0, 0.0f, false},       {7, 9, 7, 0, 0, 0.0f, true},          {64, 64, 64, 0, 0, 0.0f, false},
        {127, 255, 63, 0, 0, 0.0f, true},   {129, 257, 65, 0, 0, 0.0f, false},    {300, 520, 600, 0, 0, 0.0f, true},
        {65, 100, 130, 9, 0, 0.0f, false},  {200, 300, 100, 37, 0, 0.0f, true},   {256, 512, 192, 64, 0, 0.0f, false},
        {33, 777, 8, 600, 0, 0.0f, true},   {390, 1000, 72, 16, 1, 0.0f, true},   {390, 1000, 72, 16, 5, 0.0f, false},
        {2181, 300, 16, 8, 7, 0.0f, true},  // 18 tile rows: a second, partial group of the tile order
    };
    const CoreCase mask_cases[] = {
        {130, 300, 16, 72, 0, 0.1f, false}, {7, 9, 1, 7, 0, 0.5f, false},        {257, 520, 200, 64, 2, 0.1f, false},
        {390, 1000, 65, 40, 3, 0.25f, false}, {200, 300, 64, 64, 0, 0.0f, false}, {300, 260, 100, 0, 0, 0.1f, false},
        {2181, 300, 24, 40, 5, 0.1f, true},
    };
    int i = 0;
    for (const CoreCase& c : k_cases) {
        if (quick && (i++ % 3) != 0) continue;
        (run_core_case<T, 256, 3, false, false>(dt, c, ++seed) ? fail : pass)++;
        (run_core_case<T, 256, 3, true, false>(dt, c, ++seed) ? fail : pass)++;
    }
    i = 0;
    for (const CoreCase& c : mask_cases) {
        if (quick && (i++ % 2) != 0) continue;
        (run_core_case<T, 256, 3, true, true>(dt, c, ++seed) ? fail : pass)++;
    }
    // clusters of 2 along M with Q multicast: odd tile-row counts (a unit whose second tile is empty),
    // several units per cluster, both Q layouts, the mask
    const CoreCase c2_cases[] = {
        {300, 520, 600, 0, 0, 0.0f, true}, {390, 1000, 72, 16, 4, 0.0f, false}, {1, 9, 7, 0, 0, 0.0f, true},
        {2181, 300, 16, 8, 6, 0.0f, false},
    };
    i = 0;
    for (const CoreCase& c : c2_cases) {
        if (quick && (i++ % 2) != 0) continue;
        (run_core_case<T, 256, 3, false, false, 2>(dt, c, ++seed) ? fail : pass)++;
        (run_core_case<T, 256, 3, true, false, 2>(dt, c, ++seed) ? fail : pass)++;
    }
    (run_core_case<T, 256, 3, true, true, 2>(dt, CoreCase{390, 1000, 65, 40, 4, 0.25f, true}, ++seed) ? fail : pass)++;
    if (!quick) {  // the 128-wide tile (wgmma N = 128) and a deeper ring
        (run_core_case<T, 128, 4, false, false>(dt, CoreCase{200, 300, 100, 37, 2, 0.0f, true}, ++seed) ? fail : pass)++;
        (run_core_case<T, 128, 4, true, true>(dt, CoreCase{257, 390, 130, 20, 3, 0.1f, false}, ++seed) ? fail : pass)++;
    }
}

// ---------------------------------------------------------------------------------------------
// v3 kernels against a double reference of the layer-step contract (GPU-CONTRACT.md v3 items 3, 6;
// that contract lies outside this repository: cuda/REVIEW.md, "The CPU emulation")
struct LayerCase {
    int n, d_in, d_out, r;
    bool bias;
    float drop_p;
    int grid_cap;
};

template <typename T>
struct V3 {
    static constexpr auto forward = std::is_same<T, __nv_bfloat16>::value ? rslora_lora_forward_v3_bf16 : rslora_lora_forward_v3_f16;
    static constexpr auto dx =
        std::is_same<T, __nv_bfloat16>::value ? rslora_lora_backward_dx_v3_bf16 : rslora_lora_backward_dx_v3_f16;
};

template <typename T>
static int run_v3_case(DT dt, const LayerCase& lc, uint64_t seed, bool pattern_only) {
    std::mt19937_64 g(seed);
    const int n = lc.n, di = lc.d_in, dout = lc.d_out, r = lc.r, rp = (int)round_up(std::max(r, 1), 8);
    Dev dev;
    // inputs, every row stride a multiple of 8 elements (the v3 contract); Ug, Vg, Bt pad columns 0
    HostMat X = random_mat(dt, n, di, g), W = random_mat(dt, dout, di, g), dY = random_mat(dt, n, dout, g);
    if (pattern_only) {
        std::fill(dY.val.begin(), dY.val.end(), 0.0f);
        for (int i = 0; i < n; ++i)
            for (int o = 0; o < dout; ++o) dY.bits[(size_t)i * dY.ld + o] = bits_of(dt, 0.0f);
    }
    auto lora_mat = [&](int rows) {  // [rows, r_pad] with zero pad columns
        HostMat m = random_mat(dt, rows, r, g, -2.0f, 2.0f);
        HostMat z;
        z.rows = rows;
        z.cols = rp;
        z.ld = rp;
        z.bits.assign((size_t)rows * rp, bits_of(dt, 0.0f));
        z.val.assign((size_t)rows * rp, 0.0f);
        for (int i = 0; i < rows; ++i)
            for (int j = 0; j < r; ++j) {
                z.val[(size_t)i * rp + j] = m.at(i, j);
                z.bits[(size_t)i * rp + j] = bits_of(dt, m.at(i, j));
            }
        return z;
    };
    HostMat Ug = lora_mat(n), Bt = lora_mat(dout), Vg = lora_mat(n);
    HostMat At = random_mat(dt, std::max(r, 1), di, g);
    HostMat bias = random_mat(dt, 1, dout, g);
    void* x_d = dev.upload(X.bits);
    void* w_d = dev.upload(W.bits);
    void* dy_d = dev.upload(dY.bits);
    void* ug_d = dev.upload(Ug.bits);
    void* bt_d = dev.upload(Bt.bits);
    void* vg_d = dev.upload(Vg.bits);
    void* at_d = dev.upload(At.bits);
    void* bias_d = lc.bias ? dev.upload(bias.bits) : nullptr;
    const int ldy = (int)round_up(dout, 8), ldx = (int)round_up(di, 8);
    void* y_d = dev.poisoned((size_t)n * ldy);
    void* dx_d = dev.poisoned((size_t)n * ldx);

    const void* bases[] = {x_d, w_d, dy_d, ug_d, bt_d, vg_d, at_d, bias_d, y_d, dx_d};
    const char* why = rs3launch::refuse(n, di, dout, r, bases, 10);
    if (why) {
        std::printf("FAIL v3 refused a valid case: %s\n", why);
        return 1;
    }
    RsDropout drop{0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    if (lc.drop_p > 0.0f) {
        drop.key_lo = (uint32_t)(seed * 0x9E3779B1u);
        drop.key_hi = 0x1234u;
        drop.layer = 7;
        drop.step = (uint32_t)seed;
        drop.threshold = (uint32_t)std::ceil((double)lc.drop_p * 16777216.0);
        drop.scale = 1.0f / (1.0f - lc.drop_p);
        drop.enabled = 1;
    }
    const double u = unit_roundoff(dt);
    int bad = 0;
    const int sms = sm_count();

    // forward: Y = X·Wᵀ + bias + Ug·Btᵀ
    if (!pattern_only) {
        const CUtensorMap xm = make_map(dt, x_d, di, n, X.ld, 64, 128), wm = make_map(dt, w_d, di, dout, W.ld, 64, 256),
                          um = make_map(dt, ug_d, rp, n, rp, 64, 128), bm = make_map(dt, bt_d, rp, dout, rp, 64, 256),
                          ym = make_map(dt, y_d, dout, n, ldy, 64, 64);
        std::vector<double> ref((size_t)n * dout), bound((size_t)n * dout);
        for (int i = 0; i < n; ++i)
            for (int o = 0; o < dout; ++o) {
                double s = lc.bias ? bias.at(0, o) : 0.0, mag = std::fabs(s);
                for (int c = 0; c < di; ++c) {
                    const double t = (double)X.at(i, c) * W.at(o, c);
                    s += t;
                    mag += std::fabs(t);
                }
                for (int j = 0; j < r; ++j) {
                    const double t = (double)Ug.at(i, j) * Bt.at(o, j);
                    s += t;
                    mag += std::fabs(t);
                }
                ref[(size_t)i * dout + o] = s;
                bound[(size_t)i * dout + o] = u * std::fabs(s) + (double)(di + r + 2) * 0x1p-22 * mag + 1e-30;
            }
        RsLoraForwardV3Params p{bias_d, n, di, dout, r};
        int grid = rs3launch::grid(sms, n, dout);
        if (lc.grid_cap > 0) grid = std::min(grid, lc.grid_cap);
        launch("rslora_lora_forward_v3", V3<T>::forward, dim3(grid), dim3(rs3launch::kThreads), rs3launch::kForwardSmemBytes,
               dim3(1, 1, 1), p, xm, wm, um, bm, ym);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
        bad += check("Y", dt, download(y_d, (size_t)n * ldy), n, dout, ldy, ref, bound);
    }
    // dX = D'(Vg·At) + dY·W
    {
        const CUtensorMap vm = make_map(dt, vg_d, rp, n, rp, 64, 128), am = make_map(dt, at_d, di, std::max(r, 1), At.ld, 64, 64),
                          dym = make_map(dt, dy_d, dout, n, dY.ld, 64, 128), wm = make_map(dt, w_d, di, dout, W.ld, 64, 64),
                          dxm = make_map(dt, dx_d, di, n, ldx, 64, 64);
        std::vector<double> ref((size_t)n * di), bound((size_t)n * di);
        for (int i = 0; i < n; ++i)
            for (int c = 0; c < di; ++c) {
                double l = 0.0, lmag = 0.0, s = 0.0, mag = 0.0;
                for (int j = 0; j < r; ++j) {
                    const double t = (double)Vg.at(i, j) * At.at(j, c);
                    l += t;
                    lmag += std::fabs(t);
                }
                const double mk = rs_dropout_one(drop, (uint32_t)i, (uint32_t)c);
                s = l * mk;
                mag = lmag * mk;
                for (int o = 0; o < dout; ++o) {
                    const double t = (double)dY.at(i, o) * W.at(o, c);
                    s += t;
                    mag += std::fabs(t);
                }
                ref[(size_t)i * di + c] = s;
                bound[(size_t)i * di + c] =
                    pattern_only ? (mk == 0.0 ? 0.0 : u * std::fabs(s) + (double)(r + 2) * 0x1p-22 * mag + 1e-30)
                                 : u * std::fabs(s) + (double)(dout + r + 2) * 0x1p-22 * mag + 1e-30;
            }
        RsLoraBackwardDxV3Params p{n, di, dout, r, drop};
        int grid = rs3launch::grid(sms, n, di);
        if (lc.grid_cap > 0) grid = std::min(grid, lc.grid_cap);
        launch("rslora_lora_backward_dx_v3", V3<T>::dx, dim3(grid), dim3(rs3launch::kThreads), rs3launch::kDxSmemBytes,
               dim3(1, 1, 1), p, vm, am, dym, wm, dxm);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<uint16_t> got = download(dx_d, (size_t)n * ldx);
        bad += check("dX", dt, got, n, di, ldx, ref, bound);
        if (pattern_only && r > 0 && drop.enabled) {  // zero exactly where rs_dropout_one drops, nonzero where kept
            int wrong = 0;
            for (int i = 0; i < n; ++i)
                for (int c = 0; c < di; ++c) {
                    const bool kept = rs_dropout_one(drop, (uint32_t)i, (uint32_t)c) != 0.0f;
                    const float v = from_bits(dt, got[(size_t)i * ldx + c]);
                    if (kept != (v != 0.0f) && !(kept && ref[(size_t)i * di + c] == 0.0)) ++wrong;
                }
            if (wrong) std::printf("    dX mask pattern: %d elements disagree with rs_dropout_one\n", wrong);
            bad += wrong;
        }
    }
    std::printf("%s v3 %s n=%d d_in=%d d_out=%d r=%d%s%s%s%s seed=%llu\n", bad ? "FAIL" : "ok  ", dt_name(dt), n, di,
                dout, r, lc.bias ? " bias" : "", drop.enabled ? " dropout" : "", pattern_only ? " (dX mask pattern, dY = 0)" : "",
                lc.grid_cap > 0 ? (" grid<=" + std::to_string(lc.grid_cap)).c_str() : "", (unsigned long long)seed);
    return bad ? 1 : 0;
}

template <typename T>
static void v3_suite(DT dt, bool quick, int& pass, int& fail, uint64_t& seed) {
    const LayerCase cases[] = {
        {1, 8, 8, 1, true, 0.1f, 0},       {7, 72, 40, 8, false, 0.5f, 0},     {130, 264, 520, 16, true, 0.1f, 0},
        {300, 128, 264, 65, false, 0.1f, 2}, {65, 520, 72, 200, true, 0.0f, 0}, {129, 136, 256, 0, true, 0.1f, 0},
        {200, 1000, 96, 64, false, 0.25f, 3}, {33, 8, 600, 3, true, 0.1f, 0},
    };
    int i = 0;
    for (const LayerCase& c : cases) {
        if (quick && (i++ % 2) != 0) continue;
        (run_v3_case<T>(dt, c, ++seed, false) ? fail : pass)++;
    }
    (run_v3_case<T>(dt, LayerCase{140, 520, 64, 24, false, 0.3f, 2}, ++seed, true) ? fail : pass)++;
}

#if !defined(RS_EMULATE)
// ---------------------------------------------------------------------------------------------
// cuBLAS for the side-by-side base GEMMs of `bench`, through dlopen (no cuBLAS headers or link-time
// library needed to build): cublasGemmEx, bf16 in/out, fp32 compute, default algorithm.
#include <dlfcn.h>
struct Cublas {
    typedef int (*CreateFn)(void**);
    typedef int (*GemmExFn)(void*, int, int, int, int, int, const void*, const void*, int, int, const void*, int, int,
                            const void*, void*, int, int, int, int);
    void* handle = nullptr;
    GemmExFn gemm = nullptr;
    std::string lib;
    bool load() {
        for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so"}) {
            void* so = dlopen(name, RTLD_NOW | RTLD_LOCAL);
            if (!so) continue;
            CreateFn create = reinterpret_cast<CreateFn>(dlsym(so, "cublasCreate_v2"));
            gemm = reinterpret_cast<GemmExFn>(dlsym(so, "cublasGemmEx"));
            if (create && gemm && create(&handle) == 0) {
                lib = name;
                return true;
            }
        }
        return false;
    }
    // row-major C[m, n] = A[m, k]·op(B), op(B) = B[n, k]ᵀ (b_kmajor) or B[k, n]; column-major cuBLAS sees Cᵀ = op(B)ᵀ·Aᵀ
    int run(const void* a, const void* b, void* c, int m, int n, int k, bool b_kmajor) const {
        const float one = 1.0f, zero = 0.0f;
        const int kOpN = 0, kOpT = 1, kBf16 = 14, kCompute32F = 68, kDefault = -1;
        return gemm(handle, b_kmajor ? kOpT : kOpN, kOpN, n, m, k, &one, b, kBf16, b_kmajor ? k : n, a, kBf16, k, &zero, c,
                    kBf16, n, kCompute32F, kDefault);
    }
};

// ---------------------------------------------------------------------------------------------
// inputs random, never zeros (timing: median_ms of check.cuh)
// Random T bits in [-1, 1) without the float copy (the bench's 8192×4096 operands).
static std::vector<uint16_t> random_bits(DT d, size_t count, uint64_t seed) {
    std::vector<uint16_t> out(count);
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < count; ++i) {
        z ^= z << 13, z ^= z >> 7, z ^= z << 17;  // xorshift64
        out[i] = bits_of(d, (float)((double)(z >> 11) * 0x1p-52 - 1.0));
    }
    return out;
}
static int bench() {
    typedef __nv_bfloat16 T;
    const DT dt = DT::BF16;
    const int n = 8192, di = 4096, dout = 4096;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d, %d SMs), bf16, n=%d d_in=%d d_out=%d, median of 20 (CUDA events, after 3 warm-ups)\n",
                prop.name, prop.major, prop.minor, prop.multiProcessorCount, n, di, dout);
    Dev dev;  // the large operands once: X [n, d_in], W [d_out, d_in], dY [n, d_out]; Y, dX outputs
    void* x = dev.upload(random_bits(dt, (size_t)n * di, 1));
    void* w = dev.upload(random_bits(dt, (size_t)dout * di, 2));
    void* dy = dev.upload(random_bits(dt, (size_t)n * dout, 3));
    void* y = dev.poisoned((size_t)n * dout);
    void* dx = dev.poisoned((size_t)n * di);
    const double base = 2.0 * n * dout * di / 1e12;  // TFLOP of one base GEMM
    Cublas cublas;
    if (cublas.load()) {  // the frozen base GEMMs through cuBLAS, same shapes, same process
        const float fms = median_ms([&] { cublas.run(x, w, y, n, dout, di, true); }, 20);
        const float dms = median_ms([&] { cublas.run(dy, w, dx, n, di, dout, false); }, 20);
        std::printf("cuBLAS (%s) Y = X·Wᵀ %8.3f ms %7.1f TFLOP/s | dX = dY·W %8.3f ms %7.1f TFLOP/s\n", cublas.lib.c_str(), fms,
                    base / (fms * 1e-3), dms, base / (dms * 1e-3));
    } else {
        std::printf("cuBLAS: no libcublas.so.13/.12 could be loaded (no side-by-side base GEMM)\n");
    }
    const CUtensorMap xm = make_map(dt, x, di, n, di, 64, 128), w256 = make_map(dt, w, di, dout, di, 64, 256),
                      w128 = make_map(dt, w, di, dout, di, 64, 128), wmn = make_map(dt, w, di, dout, di, 64, 64),
                      ym = make_map(dt, y, dout, n, dout, 64, 64), dym = make_map(dt, dy, dout, n, dout, 64, 128),
                      dxm = make_map(dt, dx, di, n, di, 64, 64);
    {  // the core alone (one segment, no bias): cluster of 1 (what v3 ships) vs 2 (Q multicast), both Q layouts
        const CoreTestParams pk{n, dout, 1, di / 64, 0, nullptr, RsDropout{0u, 0u, 0u, 0u, 0u, 1.0f, 0}};
        const CoreTestParams pm{n, di, 1, dout / 64, 0, nullptr, RsDropout{0u, 0u, 0u, 0u, 0u, 1.0f, 0}};
        const long long tiles = (long long)(n / 128) * (dout / 256);
        const int g1 = (int)std::min<long long>(tiles, prop.multiProcessorCount);
        const int g2 = (int)std::min<long long>(tiles, prop.multiProcessorCount) & ~1;
        typedef rs3::Sm90Gemm<T, 256, 3, false, false, 1> K1;
        const size_t sm = K1::kSmemBytes;
        const float k1 = median_ms([&] { launch("core", core_test_kernel<T, 256, 3, false, false, 1>, dim3(g1), dim3(384), sm, dim3(1, 1, 1), pk, xm, w256, xm, w256, ym); }, 20);
        const float k2 = median_ms([&] { launch("core", core_test_kernel<T, 256, 3, false, false, 2>, dim3(g2), dim3(384), sm, dim3(2, 1, 1), pk, xm, w128, xm, w128, ym); }, 20);
        const float m1 = median_ms([&] { launch("core", core_test_kernel<T, 256, 3, true, false, 1>, dim3(g1), dim3(384), sm, dim3(1, 1, 1), pm, dym, wmn, dym, wmn, dxm); }, 20);
        const float m2 = median_ms([&] { launch("core", core_test_kernel<T, 256, 3, true, false, 2>, dim3(g2), dim3(384), sm, dim3(2, 1, 1), pm, dym, wmn, dym, wmn, dxm); }, 20);
        std::printf("core Q K-major  (Y = X·Wᵀ)  cluster 1 %8.3f ms %7.1f TFLOP/s | cluster 2 %8.3f ms %7.1f TFLOP/s\n", k1, base / (k1 * 1e-3), k2, base / (k2 * 1e-3));
        std::printf("core Q MN-major (dX = dY·W) cluster 1 %8.3f ms %7.1f TFLOP/s | cluster 2 %8.3f ms %7.1f TFLOP/s\n", m1, base / (m1 * 1e-3), m2, base / (m2 * 1e-3));
    }
    CUDA_CHECK(cudaFuncSetAttribute(rslora_lora_forward_v3_bf16, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)rs3launch::kForwardSmemBytes));
    CUDA_CHECK(cudaFuncSetAttribute(rslora_lora_backward_dx_v3_bf16, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    (int)rs3launch::kDxSmemBytes));
    const int gf = rs3launch::grid(prop.multiProcessorCount, n, dout), gd = rs3launch::grid(prop.multiProcessorCount, n, di);
    const RsDropout drop{1234u, 0u, 0u, 1u, (uint32_t)std::ceil(0.1 * 16777216.0), 1.0f / 0.9f, 1};
    for (int r : {0, 16, 64, 256}) {  // the v3 kernels, dropout 0.1 in dX
        const int rp = (int)round_up(std::max(r, 1), 8);
        Dev lora;
        void* ug = lora.upload(random_bits(dt, (size_t)n * rp, 10 + r));
        void* bt = lora.upload(random_bits(dt, (size_t)dout * rp, 20 + r));
        void* at = lora.upload(random_bits(dt, (size_t)std::max(r, 1) * di, 30 + r));
        const CUtensorMap um = make_map(dt, ug, rp, n, rp, 64, 128), bm = make_map(dt, bt, rp, dout, rp, 64, 256),
                          am = make_map(dt, at, di, std::max(r, 1), di, 64, 64);
        const float fms = median_ms([&] {
            RS_LAUNCH_EX(rslora_lora_forward_v3_bf16, dim3(gf), dim3(rs3launch::kThreads), rs3launch::kForwardSmemBytes,
                         RsLoraForwardV3Params{nullptr, n, di, dout, r}, xm, w256, um, bm, ym);
        }, 20);
        const float dms = median_ms([&] {
            RS_LAUNCH_EX(rslora_lora_backward_dx_v3_bf16, dim3(gd), dim3(rs3launch::kThreads), rs3launch::kDxSmemBytes,
                         RsLoraBackwardDxV3Params{n, di, dout, r, drop}, um, am, dym, wmn, dxm);
        }, 20);
        std::printf("v3 forward r=%-3d %8.3f ms %7.1f TFLOP/s | v3 dx r=%-3d %8.3f ms %7.1f TFLOP/s\n", r, fms,
                    2.0 * n * dout * (di + r) / (fms * 1e-3) / 1e12, r, dms, 2.0 * n * di * (dout + r) / (dms * 1e-3) / 1e12);
    }
    return 0;
}
#endif

int main(int argc, char** argv) {
    const std::string cmd = argc > 1 ? argv[1] : "all";
    const bool quick = argc > 2 && std::string(argv[2]) == "quick";
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device\n");
        return 3;
    }
#if defined(RS_EMULATE)
    std::printf("CPU emulation (cuda/dev/emu/), thread order %s\n", rs_emu::order_name());
    if (cmd == "bench") {
        std::printf("bench needs a GPU (this is the CPU emulation build)\n");
        return 3;
    }
#else
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    if (prop.major != 9 || prop.minor != 0) {
        std::printf("the sm_90a kernels need a compute capability 9.0 device; this is %d.%d (%s)\n", prop.major, prop.minor,
                    prop.name);
        return 3;
    }
    if (cmd == "bench") return bench();
#endif
    int pass = 0, fail = 0;
    uint64_t seed = argc > 3 ? std::strtoull(argv[3], nullptr, 0) : 1000;
    if (cmd == "core" || cmd == "all") {
        core_suite<__nv_bfloat16>(DT::BF16, quick, pass, fail, seed);
        core_suite<__half>(DT::F16, quick, pass, fail, seed);
    }
    if (cmd == "v3" || cmd == "all") {
        v3_suite<__nv_bfloat16>(DT::BF16, quick, pass, fail, seed);
        v3_suite<__half>(DT::F16, quick, pass, fail, seed);
    }
    if (cmd != "core" && cmd != "v3" && cmd != "all") {
        std::fprintf(stderr, "usage: %s core|v3|all [quick [seed]] | bench\n", argv[0]);
        return 2;
    }
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}
