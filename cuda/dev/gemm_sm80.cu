// Standalone development program of the sm_80-family GEMM core and the v4 kernels (llm.c style):
// a CPU double-precision reference, the core (cuda/cores/sm80_gemm.cuh) and the exported v4
// kernels run at awkward shapes, compared element by element.
//
//   gemm_sm80 frags          ldmatrix.x4 (.trans), mma.m16n8k16 (bf16, f16) and cp.async zero fill, one
//                            instruction at a time, against fragment maps taken from CUTLASS's CuTe
//                            (a second source: see frags() below); run it first on new hardware
//   gemm_sm80 core [quick]   the core alone: tails in M, N and K, K-segments 1 … 600, both Q layouts
//                            (K-major, MN-major through ldmatrix.trans), bf16/f16, both tile configs,
//                            the dropout mask between the segments, bias, accumulate, padded
//                            leading dimensions whose padding is NaN (so a read past a row shows)
//   gemm_sm80 v4 [quick]     rslora_lora_{forward,up_add,backward_dx,dx_add}_v4_{bf16,f16} against
//                            the double reference from the same T inputs (data contract of
//                            GPU-CONTRACT.md, outside this repository: Ug, Bt, Vg with zero pad
//                            columns up to r_pad, At [r, d_in])
//                            with the mask compared to rs_dropout_one element by element
//   gemm_sm80 bigindex       n·d > 2^31 elements (64-bit index math) for the four v4 kernels, the last
//                            row tile checked (the emulation runs only its blocks)
//   gemm_sm80 refuse         the launch-side refusals of cuda/kernels/lora_v4_launch.h (CPU only)
//   gemm_sm80 banks          CPU only: every shared-memory address pattern of the core (rs4::Layout:
//                            cp.async writes, ldmatrix reads of A and of both Q layouts, the epilogue's
//                            float2 writes and float4 reads) for both tile configs, checked for bank
//                            conflicts, 16-byte alignment, bounds and exact tile coverage
//   gemm_sm80 bench [jsonl]  GPU only: median time and TFLOP/s of the v4 kernels at N = 8192,
//                            d = 4096, r = 16/64/256 (bf16, dropout 0.1)
// Build: make -C cuda/dev gemm (nvcc, sm_80 + sm_90) or make -C cuda/dev gemm-emu (g++ against the
// CPU emulation, -DRS_EMULATE, AddressSanitizer + UBSan; RS_EMU_ORDER=fwd|rev|shuffle).
// Pass rule: |got − ref| ≤ u_T·|ref| + 2^-22·(K + 8)·Σ|terms| + 2^-24, u_T = 2^-8 (bf16) or 2^-11
// (f16): one rounding to T plus an fp32 accumulation of K products (4× the standard bound).
#if defined(RS_EMULATE)
#include "emu/cuda_emu.h"
#else
#include <cuda_runtime.h>
#define RS_LAUNCH_EX(kernel, grid, block, smem, ...) kernel<<<grid, block, smem>>>(__VA_ARGS__)
#endif
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../kernels/lora_backward_dx_v4.cuh"
#include "../kernels/lora_forward_v4.cuh"
#include "../kernels/lora_v4_launch.h"

#include "check.cuh"

// ---------------------------------------------------------------------------------------------
// host side of the 16-bit types
template <typename T> struct Ty;
template <> struct Ty<__nv_bfloat16> {
    static constexpr const char* name = "bf16";
    static constexpr double u = 0x1p-8;
    static __nv_bfloat16 from(float v) { return __float2bfloat16_rn(v); }
    static float to(__nv_bfloat16 v) { return __bfloat162float(v); }
};
template <> struct Ty<__half> {
    static constexpr const char* name = "f16";
    static constexpr double u = 0x1p-11;
    static __half from(float v) { return __float2half_rn(v); }
    static float to(__half v) { return __half2float(v); }
};

// A host matrix of T values (kept as the floats they are exactly), rows × ld, and its device copy.
template <typename T>
struct Mat {
    int rows = 0, cols = 0, ld = 0;
    std::vector<float> v;  // rows × ld
    T* dev = nullptr;
    float at(int r, int c) const { return v[(size_t)r * ld + c]; }
};

static std::mt19937_64 g_rng;
static float uni(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(g_rng); }

// rows × cols random values in [-1, 1] rounded to T; columns [cols, zero_to) are 0 and [zero_to, ld)
// NaN (a kernel that reads them shows it); ld ≥ zero_to ≥ cols.
template <typename T>
static Mat<T> make_mat(int rows, int cols, int zero_to, int ld) {
    Mat<T> m;
    m.rows = rows;
    m.cols = cols;
    m.ld = ld;
    m.v.assign((size_t)rows * ld, std::nanf(""));
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < zero_to; ++c) m.v[(size_t)r * ld + c] = c < cols ? Ty<T>::to(Ty<T>::from(uni(-1, 1))) : 0.0f;
    return m;
}

struct Dev {
    std::vector<void*> ptrs;
    template <typename T>
    T* upload(const std::vector<float>& v) {
        std::vector<T> h(v.size());
        for (size_t i = 0; i < v.size(); ++i) h[i] = Ty<T>::from(v[i]);
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(h.size(), 1) * sizeof(T)));  // exactly the tensor: ASan sees tails
        CUDA_CHECK(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
        ptrs.push_back(p);
        return static_cast<T*>(p);
    }
    template <typename T>
    void upload(Mat<T>& m) {
        m.dev = upload<T>(m.v);
    }
    ~Dev() {
        for (void* p : ptrs) cudaFree(p);
    }
};
template <typename T>
static std::vector<float> download(const T* p, size_t count) {
    std::vector<T> h(count);
    CUDA_CHECK(cudaMemcpy(h.data(), p, count * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = Ty<T>::to(h[i]);
    return out;
}

// got vs ref with the pass rule above; mag = Σ|terms| per element, k = the reduction length.
template <typename T>
static int compare(const char* what, const std::vector<float>& got, const std::vector<double>& ref,
                   const std::vector<double>& mag, int k, int ld_got, int rows, int cols) {
    int bad = 0;
    double worst = 0;
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) {
            const size_t i = (size_t)r * cols + c;
            const double g = got[(size_t)r * ld_got + c];
            const double lim = Ty<T>::u * std::fabs(ref[i]) + 0x1p-22 * (k + 8) * mag[i] + 0x1p-24;
            const double err = std::fabs(g - ref[i]);
            if (!(err <= lim)) {  // NaN fails
                if (bad < 4) std::printf("    MISMATCH %s[%d,%d]: got %.9g ref %.9g (tol %.3g)\n", what, r, c, g, ref[i], lim);
                ++bad;
            }
            if (err / lim > worst) worst = err / lim;
        }
    if (bad) std::printf("    %s: %d of %d mismatches (worst err/tol %.3g)\n", what, bad, rows * cols, worst);
    return bad;
}

static RsDropout make_dropout(uint64_t seed, uint32_t step, uint32_t layer, float p) {
    RsDropout d;
    d.key_lo = (uint32_t)seed;
    d.key_hi = (uint32_t)(seed >> 32);
    d.layer = layer;
    d.step = step;
    d.threshold = (uint32_t)std::ceil((double)p * 16777216.0);
    d.scale = 1.0f / (1.0f - p);
    d.enabled = p > 0.0f ? 1 : 0;
    return d;
}

static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }

// ---------------------------------------------------------------------------------------------
// the core alone, through a test kernel with the shipped kernels' structure
template <typename T>
struct CoreArgs {
    rs4::Segment<T> s0, s1;
    T* out;
    int64_t ldo;
    const T* bias;
    int M, N, accumulate;
    RsDropout drop;
};

template <class C, typename T, bool Q_MN, bool MASK>
__global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) core_kernel(CoreArgs<T> a) {
    RS_DYNAMIC_SMEM(smem);
    int tm, tn;
    rs4::tile_coords((a.M + C::BM - 1) / C::BM, (a.N + C::BN - 1) / C::BN, tm, tn);
    const int m0 = tm * C::BM, n0 = tn * C::BN;
    float acc[C::MT][C::NT][4];
    rs4::mainloop<C, T, Q_MN, MASK>(acc, rsarch::smem_addr(smem), a.s0, a.s1, a.M, a.N, m0, n0, a.drop);
    rs4::epilogue<C, T>(acc, smem, a.out, a.ldo, a.M, a.N, m0, n0, a.bias, a.accumulate != 0);
}

struct CoreCase {
    int M, N, k0, k1;
    bool q_mn, mask, bias, accumulate, big, pad;  // pad: leading dimensions with NaN padding
};

template <class C, typename T, bool Q_MN, bool MASK>
static void launch_core(const CoreArgs<T>& a) {
    auto k = core_kernel<C, T, Q_MN, MASK>;
    CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM_BYTES));
    const unsigned blocks = cdiv(a.M, C::BM) * cdiv(a.N, C::BN);
    RS_LAUNCH_EX(k, dim3(blocks), dim3(C::THREADS), C::SMEM_BYTES, a);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
}

template <class C, typename T>
static void launch_core_any(const CoreCase& cc, const CoreArgs<T>& a) {
    if (cc.q_mn) {
        if (cc.mask) launch_core<C, T, true, true>(a);
        else launch_core<C, T, true, false>(a);
    } else {
        if (cc.mask) launch_core<C, T, false, true>(a);
        else launch_core<C, T, false, false>(a);
    }
}

template <typename T>
static int run_core_case(const CoreCase& cc) {
    Dev d;
    const int M = cc.M, N = cc.N;
    // K-major operands: ld = round_up(k, 8) (+ 16 NaN columns when padded): the chunk that holds
    // column k-1 is read whole, so columns [k, round_up(k, 8)) are zero as the data contract says
    auto kld = [&](int k) { return ((k + 7) & ~7) + (cc.pad ? 16 : 0); };
    const int nld = N + (cc.pad ? 24 : 0);
    Mat<T> p[2], q[2];
    const int ks[2] = {cc.k0, cc.k1};
    for (int s = 0; s < 2; ++s) {
        const int k = ks[s];
        if (k == 0) continue;
        p[s] = make_mat<T>(M, k, (k + 7) & ~7, kld(k));
        q[s] = cc.q_mn ? make_mat<T>(k, N, N, nld) : make_mat<T>(N, k, (k + 7) & ~7, kld(k));
        d.upload(p[s]);
        d.upload(q[s]);
    }
    Mat<T> bias = make_mat<T>(1, N, N, N);
    Mat<T> out = make_mat<T>(M, N, N, nld);  // the accumulate input; NaN everywhere when assigning
    if (!cc.accumulate) std::fill(out.v.begin(), out.v.end(), std::nanf(""));
    if (cc.bias) d.upload(bias);
    d.upload(out);
    const RsDropout drop = make_dropout(0x9e3779b97f4a7c15ULL ^ (uint64_t)(M * 131 + N), 7, 3, cc.mask ? 0.25f : 0.0f);

    CoreArgs<T> a;
    for (int s = 0; s < 2; ++s) {
        rs4::Segment<T>& sg = s == 0 ? a.s0 : a.s1;
        sg.p = p[s].dev;
        sg.q = q[s].dev;
        sg.ldp = ks[s] ? p[s].ld : 0;
        sg.ldq = ks[s] ? q[s].ld : 0;
        sg.k = ks[s];
    }
    a.out = out.dev;
    a.ldo = out.ld;
    a.bias = cc.bias ? bias.dev : nullptr;
    a.M = M;
    a.N = N;
    a.accumulate = cc.accumulate;
    a.drop = drop;
    if (cc.big) launch_core_any<rs4::BigTile, T>(cc, a);
    else launch_core_any<rs4::SmallTile, T>(cc, a);

    std::vector<double> ref((size_t)M * N), mag((size_t)M * N);
    for (int i = 0; i < M; ++i)
        for (int n = 0; n < N; ++n) {
            double s = 0, sa = 0;
            for (int seg = 0; seg < 2; ++seg) {
                for (int k = 0; k < ks[seg]; ++k) {
                    const double t = (double)p[seg].at(i, k) * (cc.q_mn ? q[seg].at(k, n) : q[seg].at(n, k));
                    s += t;
                    sa += std::fabs(t);
                }
                if (seg == 0 && cc.mask && ks[0] > 0) {
                    const double m = rs_dropout_one(drop, (uint32_t)i, (uint32_t)n);
                    s = m == 0.0 ? 0.0 : s * m;
                    sa *= m;
                }
            }
            if (cc.bias) {
                s += bias.at(0, n);
                sa += std::fabs(bias.at(0, n));
            }
            if (cc.accumulate) {
                s += out.at(i, n);
                sa += std::fabs(out.at(i, n));
            }
            ref[(size_t)i * N + n] = s;
            mag[(size_t)i * N + n] = sa;
        }
    const std::vector<float> got = download(out.dev, out.v.size());
    int bad = compare<T>("C", got, ref, mag, cc.k0 + cc.k1, out.ld, M, N);
    // the padding columns of the output are never written
    if (cc.pad)
        for (int i = 0; i < M && bad == 0; ++i)
            for (int n = N; n < out.ld; ++n)
                if (std::memcmp(&got[(size_t)i * out.ld + n], &out.v[(size_t)i * out.ld + n], 4) != 0 &&
                    !(std::isnan(got[(size_t)i * out.ld + n]) && std::isnan(out.v[(size_t)i * out.ld + n]))) {
                    std::printf("    output padding written at [%d,%d]\n", i, n);
                    ++bad;
                    break;
                }
    return bad;
}

static int core(bool quick) {
    // (M, N, k0, k1): tails in every dimension, K-segments 1 … 600, absent segments
    const int shapes[][4] = {
        {1, 8, 1, 0},     {7, 64, 16, 0},   {16, 8, 0, 5},     {127, 136, 33, 0},  {128, 256, 32, 32},
        {129, 264, 40, 7}, {300, 520, 600, 0}, {33, 128, 1, 600}, {200, 64, 0, 64}, {64, 392, 256, 17},
        {257, 24, 31, 1},  {5, 1032, 8, 9},  {130, 200, 95, 160}, {1, 256, 600, 600}, {96, 16, 0, 0},
    };
    int pass = 0, fail = 0, idx = 0;
    for (const auto& s : shapes) {
        for (int variant = 0; variant < 8; ++variant, ++idx) {
            if (quick && (idx % 3) != 0) continue;
            CoreCase cc;
            cc.M = s[0];
            cc.N = s[1];
            cc.k0 = s[2];
            cc.k1 = s[3];
            cc.q_mn = variant & 1;
            cc.big = (variant >> 1) & 1;
            cc.mask = ((variant >> 2) & 1) != 0;
            cc.bias = ((idx * 7) % 3) == 0;
            cc.accumulate = ((idx * 5) % 4) == 1;
            cc.pad = (idx % 2) == 1;
            const bool bf = ((idx / 2) % 2) == 0;
            g_rng.seed(1000 + idx);
            const int bad = bf ? run_core_case<__nv_bfloat16>(cc) : run_core_case<__half>(cc);
            std::printf("%s core %-4s M=%-4d N=%-4d k0=%-3d k1=%-3d Q %s tile %s%s%s%s%s (seed %d)\n", bad ? "FAIL" : "ok  ",
                        bf ? "bf16" : "f16", cc.M, cc.N, cc.k0, cc.k1, cc.q_mn ? "MN-major" : "K-major ",
                        cc.big ? "128x256" : "128x128", cc.mask ? " mask" : "", cc.bias ? " bias" : "",
                        cc.accumulate ? " accumulate" : "", cc.pad ? " padded-ld" : "", 1000 + idx);
            bad ? ++fail : ++pass;
        }
    }
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// the exported v4 kernels against the data contract
struct V4Case {
    int n, d_in, d_out, r;
    float p_drop;
    bool bias, accumulate;
};

template <typename T> struct V4K;
template <> struct V4K<__nv_bfloat16> {
    static constexpr auto forward = rslora_lora_forward_v4_bf16;
    static constexpr auto up_add = rslora_lora_up_add_v4_bf16;
    static constexpr auto dx = rslora_lora_backward_dx_v4_bf16;
    static constexpr auto dx_add = rslora_lora_dx_add_v4_bf16;
};
template <> struct V4K<__half> {
    static constexpr auto forward = rslora_lora_forward_v4_f16;
    static constexpr auto up_add = rslora_lora_up_add_v4_f16;
    static constexpr auto dx = rslora_lora_backward_dx_v4_f16;
    static constexpr auto dx_add = rslora_lora_dx_add_v4_f16;
};

template <typename Params>
static void launch_v4(void (*kernel)(Params), RsV4Kernel which, const Params& p, int n, int d_in, int d_out, int r,
                      const void* const* ptrs, const char* const* names, int nptrs) {
    char msg[256];
    if (const char* why = rs_v4_refusal(which, n, d_in, d_out, r, ptrs, names, nptrs, msg, sizeof msg)) {
        std::fprintf(stderr, "refused: %s\n", why);
        std::exit(2);
    }
    const RsV4Launch l = rs_v4_launch(which);
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, l.smem_bytes));
    RS_LAUNCH_EX(kernel, dim3((unsigned)rs_v4_blocks(l, n, d_in, d_out)), dim3(l.threads), l.smem_bytes, p);
    CUDA_CHECK(cudaGetLastError());
}

template <typename T>
static int run_v4_case(const V4Case& c) {
    Dev d;
    const int n = c.n, di = c.d_in, dout = c.d_out, r = c.r, rp = (r + 7) & ~7;
    Mat<T> x = make_mat<T>(n, di, di, di), w = make_mat<T>(dout, di, di, di), b = make_mat<T>(1, dout, dout, dout);
    Mat<T> ug = make_mat<T>(n, r, rp, rp), bt = make_mat<T>(dout, r, rp, rp);
    Mat<T> dy = make_mat<T>(n, dout, dout, dout), vg = make_mat<T>(n, r, rp, rp), at = make_mat<T>(r, di, di, di);
    Mat<T> y0 = make_mat<T>(n, dout, dout, dout), dx0 = make_mat<T>(n, di, di, di);  // accumulate inputs
    for (Mat<T>* m : {&x, &w, &b, &dy, &ug, &bt, &vg, &at})
        if (!m->v.empty()) d.upload(*m);
    const RsDropout drop = make_dropout(0x243f6a8885a308d3ULL + (uint64_t)n, 11, 2, c.p_drop);
    const T* bias = c.bias ? b.dev : nullptr;
    const int acc = c.accumulate ? 1 : 0;
    // each output starts as the accumulate input, or NaN when assigned
    auto fresh = [&](const Mat<T>& init) {
        std::vector<float> v = init.v;
        if (!c.accumulate) std::fill(v.begin(), v.end(), std::nanf(""));
        return d.upload<T>(v);
    };
    T* y_fused = fresh(y0);
    T* y_lora = fresh(y0);
    T* dx_fused = fresh(dx0);
    T* dx_lora = fresh(dx0);

    const char* fnames[] = {"x", "w", "bias", "ug", "bt", "y"};
    const RsLoraForwardV4Params pf{x.dev, w.dev, bias, ug.dev, bt.dev, y_fused, n, di, dout, r, acc};
    const void* fptrs[] = {pf.x, pf.w, pf.bias, pf.ug, pf.bt, pf.y};
    launch_v4(V4K<T>::forward, RsV4Kernel::Forward, pf, n, di, dout, r, fptrs, fnames, 6);
    RsLoraForwardV4Params pu = pf;
    pu.x = nullptr;
    pu.w = nullptr;
    pu.d_in = 0;
    pu.y = y_lora;
    const void* uptrs[] = {pu.x, pu.w, pu.bias, pu.ug, pu.bt, pu.y};
    launch_v4(V4K<T>::up_add, RsV4Kernel::UpAdd, pu, n, 0, dout, r, uptrs, fnames, 6);
    const char* dnames[] = {"dy", "w", "vg", "at", "dx"};
    const RsLoraBackwardDxV4Params pd{dy.dev, w.dev, vg.dev, at.dev, dx_fused, n, di, dout, r, acc, drop};
    const void* dptrs[] = {pd.dy, pd.w, pd.vg, pd.at, pd.dx};
    launch_v4(V4K<T>::dx, RsV4Kernel::BackwardDx, pd, n, di, dout, r, dptrs, dnames, 5);
    RsLoraBackwardDxV4Params pa = pd;
    pa.dy = nullptr;
    pa.w = nullptr;
    pa.d_out = 0;
    pa.dx = dx_lora;
    const void* aptrs[] = {pa.dy, pa.w, pa.vg, pa.at, pa.dx};
    launch_v4(V4K<T>::dx_add, RsV4Kernel::DxAdd, pa, n, di, 0, r, aptrs, dnames, 5);
    CUDA_CHECK(cudaDeviceSynchronize());

    std::vector<double> ry((size_t)n * dout), my((size_t)n * dout), rl((size_t)n * dout), ml((size_t)n * dout);
    for (int i = 0; i < n; ++i)
        for (int o = 0; o < dout; ++o) {
            double s = 0, sa = 0, l = 0, la = 0;
            for (int k = 0; k < di; ++k) {
                const double t = (double)x.at(i, k) * w.at(o, k);
                s += t;
                sa += std::fabs(t);
            }
            for (int j = 0; j < r; ++j) {
                const double t = (double)ug.at(i, j) * bt.at(o, j);
                l += t;
                la += std::fabs(t);
            }
            const double bb = c.bias ? b.at(0, o) : 0.0, old = c.accumulate ? y0.at(i, o) : 0.0;
            ry[(size_t)i * dout + o] = old + bb + s + l;
            my[(size_t)i * dout + o] = std::fabs(old) + std::fabs(bb) + sa + la;
            rl[(size_t)i * dout + o] = old + bb + l;
            ml[(size_t)i * dout + o] = std::fabs(old) + std::fabs(bb) + la;
        }
    std::vector<double> rx((size_t)n * di), mx((size_t)n * di), rxl((size_t)n * di), mxl((size_t)n * di);
    for (int i = 0; i < n; ++i)
        for (int cc = 0; cc < di; ++cc) {
            double s = 0, sa = 0, l = 0, la = 0;
            for (int o = 0; o < dout; ++o) {
                const double t = (double)dy.at(i, o) * w.at(o, cc);
                s += t;
                sa += std::fabs(t);
            }
            for (int j = 0; j < r; ++j) {
                const double t = (double)vg.at(i, j) * at.at(j, cc);
                l += t;
                la += std::fabs(t);
            }
            const double m = rs_dropout_one(drop, (uint32_t)i, (uint32_t)cc);  // the harness's mask rule
            l = m == 0.0 ? 0.0 : l * m;
            la *= m;
            const double old = c.accumulate ? dx0.at(i, cc) : 0.0;
            rx[(size_t)i * di + cc] = old + s + l;
            mx[(size_t)i * di + cc] = std::fabs(old) + sa + la;
            rxl[(size_t)i * di + cc] = old + l;
            mxl[(size_t)i * di + cc] = std::fabs(old) + la;
        }
    int bad = 0;
    bad += compare<T>("Y (forward_v4)", download(y_fused, (size_t)n * dout), ry, my, di + r, dout, n, dout);
    bad += compare<T>("Y (up_add_v4)", download(y_lora, (size_t)n * dout), rl, ml, r, dout, n, dout);
    bad += compare<T>("dX (backward_dx_v4)", download(dx_fused, (size_t)n * di), rx, mx, dout + r, di, n, di);
    bad += compare<T>("dX (dx_add_v4)", download(dx_lora, (size_t)n * di), rxl, mxl, r, di, n, di);
    return bad;
}

static int v4(bool quick) {
    const V4Case cases[] = {
        {1, 8, 8, 1, 0.1f, true, false},       {7, 24, 40, 3, 0.5f, false, true},    {129, 264, 136, 16, 0.1f, true, false},
        {130, 136, 264, 64, 0.1f, false, false}, {64, 512, 256, 0, 0.1f, true, true}, {200, 64, 520, 33, 0.0f, true, false},
        {257, 128, 128, 256, 0.2f, false, true}, {33, 1032, 16, 9, 0.1f, true, true}, {128, 256, 256, 8, 0.9f, false, false},
        {300, 40, 72, 130, 0.1f, true, false},
    };
    int pass = 0, fail = 0, idx = 0;
    for (const V4Case& c : cases) {
        for (int dt = 0; dt < 2; ++dt, ++idx) {
            if (quick && (idx % 2) != (idx / 2) % 2) continue;
            g_rng.seed(5000 + idx);
            const int bad = dt == 0 ? run_v4_case<__nv_bfloat16>(c) : run_v4_case<__half>(c);
            std::printf("%s v4 %-4s n=%-4d d_in=%-4d d_out=%-4d r=%-3d p=%.2f%s%s (seed %d)\n", bad ? "FAIL" : "ok  ",
                        dt == 0 ? "bf16" : "f16", c.n, c.d_in, c.d_out, c.r, c.p_drop, c.bias ? " bias" : "",
                        c.accumulate ? " accumulate" : "", 5000 + idx);
            bad ? ++fail : ++pass;
        }
    }
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// the launch-side refusals (CPU only)
static int refuse() {
    int pass = 0, fail = 0;
    char buf[256];
    alignas(16) static unsigned char arena[64];
    const void* aligned[] = {arena, arena + 16};
    const void* skew[] = {arena, arena + 8};
    const char* names[] = {"x", "w"};
    struct Case {
        RsV4Kernel k;
        int n, d_in, d_out, r;
        const void* const* ptrs;
        const char* expect;  // substring of the message, or nullptr: accepted
    };
    const Case cases[] = {
        {RsV4Kernel::Forward, 128, 4096, 4096, 16, aligned, nullptr},
        {RsV4Kernel::Forward, 7, 12, 4096, 16, aligned, "d_in = 12"},
        {RsV4Kernel::Forward, 7, 4096, 4100, 16, aligned, "d_out = 4100"},
        {RsV4Kernel::BackwardDx, 7, 4104, 4097, 16, aligned, "d_out = 4097"},
        {RsV4Kernel::UpAdd, 7, 3, 64, 16, aligned, nullptr},      // d_in unused by up_add
        {RsV4Kernel::DxAdd, 7, 64, 3, 16, aligned, nullptr},      // d_out unused by dx_add
        {RsV4Kernel::DxAdd, 7, 66, 64, 16, aligned, "d_in = 66"},
        {RsV4Kernel::Forward, 0, 64, 64, 16, aligned, "n = 0"},
        {RsV4Kernel::Forward, 5, 64, 64, -1, aligned, "r = -1"},
        {RsV4Kernel::Forward, 5, 64, 64, 4, skew, "w = "},
    };
    // the grouped tile order visits every (tile_m, tile_n) exactly once
    const int grids[][2] = {{1, 1}, {7, 3}, {8, 16}, {64, 16}, {65, 5}, {17, 43}};
    for (const auto& tmn : grids) {
        const int tiles_m = tmn[0], tiles_n = tmn[1];
        std::vector<int> seen((size_t)tiles_m * tiles_n, 0);
        bool ok = true;
        for (int pid = 0; pid < tiles_m * tiles_n; ++pid) {
            int tm, tn;
            rs4::tile_of(pid, tiles_m, tiles_n, tm, tn);
            if (tm < 0 || tm >= tiles_m || tn < 0 || tn >= tiles_n || seen[(size_t)tm * tiles_n + tn]++) ok = false;
        }
        std::printf("%s tile order %d x %d tiles: each once\n", ok ? "ok  " : "FAIL", tiles_m, tiles_n);
        ok ? ++pass : ++fail;
    }
    for (const Case& c : cases) {
        const char* why = rs_v4_refusal(c.k, c.n, c.d_in, c.d_out, c.r, c.ptrs, names, 2, buf, sizeof buf);
        const bool ok = c.expect == nullptr ? why == nullptr : why != nullptr && std::strstr(why, c.expect) != nullptr;
        std::printf("%s refuse %s n=%d d_in=%d d_out=%d r=%d -> %s\n", ok ? "ok  " : "FAIL", rs_v4_launch(c.k).name, c.n,
                    c.d_in, c.d_out, c.r, why ? why : "accepted");
        ok ? ++pass : ++fail;
    }
    std::printf("%d passed, %d failed\n", pass, fail);
    return fail ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// n·d > 2^31 elements: the 64-bit index math of every v4 kernel, checked on the last row tile (the
// emulation runs only that tile's blocks; memory there is lazily backed, so only the rows written
// here cost anything). n = 2^31 / 256 + 200 rows of d_in = d_out = 256, r = 16, dropout 0.1.
template <typename T>
static T* upload_rows(std::vector<void*>& keep, size_t total_elems, size_t offset, const std::vector<float>& v) {
    void* p = nullptr;
    CUDA_CHECK(cudaMalloc(&p, total_elems * sizeof(T)));
    keep.push_back(p);
    std::vector<T> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) h[i] = Ty<T>::from(v[i]);
    CUDA_CHECK(cudaMemcpy(static_cast<T*>(p) + offset, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return static_cast<T*>(p);
}

static int bigindex() {
    typedef __nv_bfloat16 T;
    const int d = 256, r = 16, n = (int)((1LL << 31) / d + 200);
    const int row0 = (n - 1) / 128 * 128, rows = n - row0;  // the last row tile: rows [row0, n)
    std::vector<void*> keep;
    g_rng.seed(77);
    Mat<T> x = make_mat<T>(rows, d, d, d), dy = make_mat<T>(rows, d, d, d), ug = make_mat<T>(rows, r, r, r);
    Mat<T> vg = make_mat<T>(rows, r, r, r), w = make_mat<T>(d, d, d, d), bt = make_mat<T>(d, r, r, r);
    Mat<T> at = make_mat<T>(r, d, d, d), y0 = make_mat<T>(rows, d, d, d), dx0 = make_mat<T>(rows, d, d, d);
    const size_t big = (size_t)n * d, off = (size_t)row0 * d;
    T* X = upload_rows<T>(keep, big, off, x.v);
    T* DY = upload_rows<T>(keep, big, off, dy.v);
    T* UG = upload_rows<T>(keep, (size_t)n * r, (size_t)row0 * r, ug.v);
    T* VG = upload_rows<T>(keep, (size_t)n * r, (size_t)row0 * r, vg.v);
    T* W = upload_rows<T>(keep, (size_t)d * d, 0, w.v);
    T* BT = upload_rows<T>(keep, (size_t)d * r, 0, bt.v);
    T* AT = upload_rows<T>(keep, (size_t)r * d, 0, at.v);
    std::vector<float> nan_rows(x.v.size(), std::nanf(""));
    T* Y = upload_rows<T>(keep, big, off, nan_rows);
    T* DX = upload_rows<T>(keep, big, off, nan_rows);
    T* YA = upload_rows<T>(keep, big, off, y0.v);
    T* DXA = upload_rows<T>(keep, big, off, dx0.v);
    const RsDropout drop = make_dropout(99, 3, 1, 0.1f);
    const int tiles_m = (n + 127) / 128;
#if defined(RS_EMULATE)
    // only the blocks of the last row tile (both tile widths: d = 256 is one or two column tiles)
    rs_emu::st().block_filter = [tiles_m](uint3 b) {
        const int tiles_n = (int)rs_emu::st().grid_dim.x / tiles_m;
        int tm, tn;
        rs4::tile_of((int)b.x, tiles_m, tiles_n, tm, tn);
        return tm == tiles_m - 1;
    };
#endif
    const void* none[] = {nullptr};
    const char* names[] = {"-"};
    const RsLoraForwardV4Params pf{X, W, nullptr, UG, BT, Y, n, d, d, r, 0};
    launch_v4(V4K<T>::forward, RsV4Kernel::Forward, pf, n, d, d, r, none, names, 0);
    const RsLoraForwardV4Params pu{nullptr, nullptr, nullptr, UG, BT, YA, n, 0, d, r, 1};
    launch_v4(V4K<T>::up_add, RsV4Kernel::UpAdd, pu, n, 0, d, r, none, names, 0);
    const RsLoraBackwardDxV4Params pd{DY, W, VG, AT, DX, n, d, d, r, 0, drop};
    launch_v4(V4K<T>::dx, RsV4Kernel::BackwardDx, pd, n, d, d, r, none, names, 0);
    const RsLoraBackwardDxV4Params pa{nullptr, nullptr, VG, AT, DXA, n, d, 0, r, 1, drop};
    launch_v4(V4K<T>::dx_add, RsV4Kernel::DxAdd, pa, n, d, 0, r, none, names, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
#if defined(RS_EMULATE)
    rs_emu::st().block_filter = nullptr;
#endif
    std::vector<double> ry((size_t)rows * d), my(ry.size()), ru(ry.size()), mu(ry.size());
    std::vector<double> rx(ry.size()), mx(ry.size()), ra(ry.size()), ma(ry.size());
    for (int i = 0; i < rows; ++i)
        for (int c = 0; c < d; ++c) {
            double s = 0, sa = 0, l = 0, la = 0, b = 0, ba = 0, v = 0, va = 0;
            for (int k = 0; k < d; ++k) {
                s += (double)x.at(i, k) * w.at(c, k);
                sa += std::fabs((double)x.at(i, k) * w.at(c, k));
                b += (double)dy.at(i, k) * w.at(k, c);
                ba += std::fabs((double)dy.at(i, k) * w.at(k, c));
            }
            for (int j = 0; j < r; ++j) {
                l += (double)ug.at(i, j) * bt.at(c, j);
                la += std::fabs((double)ug.at(i, j) * bt.at(c, j));
                v += (double)vg.at(i, j) * at.at(j, c);
                va += std::fabs((double)vg.at(i, j) * at.at(j, c));
            }
            const double m = rs_dropout_one(drop, (uint32_t)(row0 + i), (uint32_t)c);
            v = m == 0.0 ? 0.0 : v * m;
            va *= m;
            const size_t e = (size_t)i * d + c;
            ry[e] = s + l;
            my[e] = sa + la;
            ru[e] = y0.at(i, c) + l;
            mu[e] = std::fabs(y0.at(i, c)) + la;
            rx[e] = b + v;
            mx[e] = ba + va;
            ra[e] = dx0.at(i, c) + v;
            ma[e] = std::fabs(dx0.at(i, c)) + va;
        }
    int bad = 0;
    bad += compare<T>("Y (forward_v4)", download(Y + off, (size_t)rows * d), ry, my, d + r, d, rows, d);
    bad += compare<T>("Y (up_add_v4)", download(YA + off, (size_t)rows * d), ru, mu, r, d, rows, d);
    bad += compare<T>("dX (backward_dx_v4)", download(DX + off, (size_t)rows * d), rx, mx, d + r, d, rows, d);
    bad += compare<T>("dX (dx_add_v4)", download(DXA + off, (size_t)rows * d), ra, ma, r, d, rows, d);
    for (void* p : keep) cudaFree(p);
    std::printf("%s bigindex v4 bf16 n=%d d_in=d_out=%d r=%d (n*d = %lld > 2^31), rows %d..%d\n", bad ? "FAIL" : "ok  ", n, d,
                r, (long long)n * d, row0, n - 1);
    std::printf("%d passed, %d failed\n", bad ? 0 : 1, bad ? 1 : 0);
    return bad ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// shared-memory bank model (CPU only): 32 banks of 4 bytes; a 16-byte access (cp.async, ld.shared.v4)
// is served 8 lanes per phase, an 8-byte one 16 lanes per phase, ldmatrix one 8×8 matrix (8 row
// addresses of 16 bytes) per phase. A phase is conflict-free when its lanes' accesses occupy distinct
// bank groups of the access width inside 128 bytes.
struct BankCheck {
    const char* what;
    int fail = 0, phases = 0;
    // offsets in bytes of one phase's lanes, each `width` bytes wide
    void phase(const std::vector<uint32_t>& off, int width, uint32_t limit) {
        ++phases;
        std::vector<int> seen(128 / width, 0);
        for (uint32_t o : off) {
            if (o % (uint32_t)width != 0 || o + (uint32_t)width > limit) {
                if (fail++ < 3) std::printf("    %s: offset %u misaligned or past %u\n", what, o, limit);
                continue;
            }
            if (seen[(o % 128) / width]++) {
                if (fail++ < 3) std::printf("    %s: bank conflict at offset %u\n", what, o);
            }
        }
    }
    int report() {
        std::printf("%s banks %-44s %6d phases%s\n", fail ? "FAIL" : "ok  ", what, phases, fail ? " CONFLICTS" : " conflict-free");
        return fail ? 1 : 0;
    }
};

template <class C>
static int banks_of(const char* cfg) {
    typedef rs4::Layout<C> L;
    int bad = 0;
    std::string tag;
    // cp.async writes of one stage: P and K-major Q (rows × 4 chunks), MN-major Q (32 × BN/8 chunks);
    // every chunk written exactly once
    for (int kind = 0; kind < 3; ++kind) {
        const int rows = kind == 0 ? C::BM : kind == 1 ? C::BN : C::BK;
        const int chunks = rows * (kind == 2 ? C::BN / 8 : 4);
        tag = std::string(cfg) + (kind == 0 ? " cp.async P" : kind == 1 ? " cp.async Q K-major" : " cp.async Q MN-major");
        BankCheck b{tag.c_str()};
        std::vector<int> hits((size_t)chunks, 0);
        for (int i = 0; i < chunks / C::THREADS; ++i)
            for (int t0 = 0; t0 < C::THREADS; t0 += 8) {
                std::vector<uint32_t> off;
                for (int t = t0; t < t0 + 8; ++t) {
                    int r, ch;
                    if (kind == 2) L::mnmajor_copy(t + i * C::THREADS, r, ch);
                    else L::kmajor_copy(t + i * C::THREADS, r, ch);
                    const uint32_t o = kind == 2 ? rs4::mnmajor_off<C::BN>(r, ch) : rs4::kmajor_off(r, ch);
                    off.push_back(o);
                    if (o / 16 < (uint32_t)chunks) ++hits[o / 16];
                }
                b.phase(off, 16, (uint32_t)chunks * 16);
            }
        for (int h : hits)
            if (h != 1) {
                std::printf("    %s: a chunk written %d times\n", tag.c_str(), h);
                ++b.fail;
                break;
            }
        bad += b.report();
    }
    // ldmatrix reads: one phase per matrix (lanes 8q .. 8q+7)
    for (int kind = 0; kind < 3; ++kind) {
        tag = std::string(cfg) + (kind == 0 ? " ldmatrix A" : kind == 1 ? " ldmatrix B K-major" : " ldmatrix.trans B MN-major");
        BankCheck b{tag.c_str()};
        const uint32_t limit = kind == 0 ? C::P_BYTES : C::Q_BYTES;
        for (int w = 0; w < C::WARPS_M * C::WARPS_N; ++w)
            for (int ks = 0; ks < 2; ++ks)
                for (int f = 0; f < (kind == 0 ? C::MT : C::NT / 2); ++f)
                    for (int q = 0; q < 4; ++q) {
                        std::vector<uint32_t> off;
                        for (int lane = 8 * q; lane < 8 * q + 8; ++lane)
                            off.push_back(kind == 0   ? L::a_row(w / C::WARPS_N, f, ks, lane)
                                          : kind == 1 ? L::b_row_kmajor(w % C::WARPS_N, f, ks, lane)
                                                      : L::b_row_mnmajor(w % C::WARPS_N, f, ks, lane));
                        b.phase(off, 16, limit);
                    }
        bad += b.report();
    }
    // epilogue: float2 writes of the fragments (16 lanes per phase), float4 reads (8 lanes per phase)
    {
        tag = std::string(cfg) + " epilogue float2 writes";
        BankCheck b{tag.c_str()};
        for (int wn = 0; wn < C::WARPS_N; ++wn)
            for (int i = 0; i < C::MT; ++i)
                for (int j = 0; j < C::NT; ++j)
                    for (int half = 0; half < 2; ++half)
                        for (int l0 = 0; l0 < 32; l0 += 16) {
                            std::vector<uint32_t> off;
                            for (int lane = l0; lane < l0 + 16; ++lane) off.push_back(4u * (uint32_t)L::frag_pair(i, j, half, wn, lane));
                            b.phase(off, 8, C::EPI_BYTES);
                        }
        bad += b.report();
    }
    {
        tag = std::string(cfg) + " epilogue float4 reads";
        BankCheck b{tag.c_str()};
        for (int it = 0; it < C::WTM * (C::BN / 8) / C::THREADS; ++it)
            for (int second = 0; second < 2; ++second)
                for (int t0 = 0; t0 < C::THREADS; t0 += 8) {
                    std::vector<uint32_t> off;
                    for (int t = t0; t < t0 + 8; ++t) {
                        int r, ch;
                        L::out_chunk(t + it * C::THREADS, r, ch);
                        off.push_back(4u * (uint32_t)L::out_read(r, ch, t & 31, second));
                    }
                    b.phase(off, 16, C::EPI_BYTES);
                }
        bad += b.report();
    }
    return bad;
}

static int banks() {
    const int bad = banks_of<rs4::BigTile>("128x256") + banks_of<rs4::SmallTile>("128x128");
    std::printf("%d passed, %d failed\n", 16 - bad, bad);
    return bad ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// frags: the PTX-level facts the core stands on, probed one instruction at a time against a model
// written from a second source. The emulation's ldmatrix / mma_16816 (emu/sm80_emu.h) and the core's
// addresses (rs4::Layout) were both written from the PTX ISA's fragment figures, so `core` and `v4`
// cannot catch a misreading the two share. The expectations here are evaluated from the
// (thread, value) → element maps that CUTLASS's CuTe states for these instructions (shape:stride
// pairs, colexicographic; MMA_Traits<SM80_16x8x16_*> ALayout/BLayout/CLayout and
// Copy_Traits<SM75_U32x4_LDSM_N>, <SM75_U16x8_LDSM_T> DstLayout), with a value v of a 16-bit
// fragment in register v / 2, low half first. On a GPU this tests the hardware, in the emulation
// the emulation's model; the mma inputs are small integers, so every result is exact and compared
// bit for bit. Also: cp.async.cg with src-size 16 copies, with src-size 0 zero-fills.
typedef std::vector<std::pair<int, int>> FragModes;  // (shape, stride) per mode, first mode fastest
static long frag_eval(const FragModes& m, int i) {
    long r = 0;
    for (const auto& p : m) {
        r += (long)(i % p.first) * p.second;
        i /= p.first;
    }
    return r;
}
static int frag_size(const FragModes& m) {
    int s = 1;
    for (const auto& p : m) s *= p.first;
    return s;
}
// m16n8k16, 16-bit A/B, f32 C/D: thread modes, value modes → index into A (M16 × K16, column-major:
// m + 16k), B (N8 × K16: n + 8k), C (M16 × N8: m + 16n)
static const FragModes kA_T = {{4, 32}, {8, 1}}, kA_V = {{2, 16}, {2, 8}, {2, 128}};
static const FragModes kB_T = {{4, 16}, {8, 1}}, kB_V = {{2, 8}, {2, 64}};
static const FragModes kC_T = {{4, 32}, {8, 1}}, kC_V = {{2, 16}, {2, 8}};
// ldmatrix.x4: thread, value → bit of the four 8×8 b16 matrices laid end to end (row-major each;
// lane l gives the address of row l % 8 of matrix l / 8); value v is bit v % 32 of register v / 32
static const FragModes kLdN_T = {{32, 32}}, kLdN_V = {{32, 1}, {4, 1024}};
static const FragModes kLdT_T = {{4, 256}, {8, 16}}, kLdT_V = {{16, 1}, {2, 128}, {4, 1024}};

struct FragArgs {
    const uint16_t* s;                   // 32 rows × 8 b16: the four matrices, row l at byte 16·l
    uint32_t *ld_n, *ld_t;               // [lane][4] registers of ldmatrix.x4 / .x4.trans
    const uint32_t *a, *b;               // [lane][4], [lane][2] mma A and B registers
    const float* c;                      // [lane][4]
    float* d;                            // [lane][4]
    const uint32_t* src;                 // 32 × 16 bytes
    uint32_t* cp;                        // [lane][4]: shared memory after the lane's cp.async
};

template <typename T>
__global__ void frag_kernel(FragArgs a) {
    RS_DYNAMIC_SMEM(smem);
    const int lane = (int)threadIdx.x;
    uint32_t* w = reinterpret_cast<uint32_t*>(smem);
    for (int e = 0; e < 4; ++e) {
        w[lane * 4 + e] = reinterpret_cast<const uint32_t*>(a.s)[lane * 4 + e];
        w[128 + lane * 4 + e] = 0xFFFFFFFFu;  // what the cp.async below must overwrite
    }
    __syncthreads();
    const uint32_t base = rsarch::smem_addr(smem);
    uint32_t r[4];
    rsarch::ldmatrix_x4(r, base + 16u * (uint32_t)lane);
    for (int e = 0; e < 4; ++e) a.ld_n[lane * 4 + e] = r[e];
    rsarch::ldmatrix_x4_trans(r, base + 16u * (uint32_t)lane);
    for (int e = 0; e < 4; ++e) a.ld_t[lane * 4 + e] = r[e];
    uint32_t fa[4], fb[2];
    float fc[4], fd[4];
    for (int e = 0; e < 4; ++e) {
        fa[e] = a.a[lane * 4 + e];
        fc[e] = a.c[lane * 4 + e];
    }
    for (int e = 0; e < 2; ++e) fb[e] = a.b[lane * 2 + e];
    rsarch::mma_16816<T>(fd, fa, fb, fc);
    for (int e = 0; e < 4; ++e) a.d[lane * 4 + e] = fd[e];
    // even lanes copy their 16 bytes, odd lanes issue a src-size-0 copy (from a valid address)
    const bool pred = (lane & 1) == 0;
    rsarch::cp_async_16(base + 512u + 16u * (uint32_t)lane, pred ? a.src + lane * 4 : a.src, pred);
    rsarch::cp_async_commit();
    rsarch::cp_async_wait<0>();
    __syncthreads();
    for (int e = 0; e < 4; ++e) a.cp[lane * 4 + e] = w[128 + lane * 4 + e];
}

template <typename T>
static uint16_t bits16(float v) {
    const T t = Ty<T>::from(v);
    uint16_t u;
    std::memcpy(&u, &t, 2);
    return u;
}

template <typename T>
static int frags_of() {
    int bad = 0;
    auto check = [&](const char* what, int wrong, int total) {
        std::printf("%s frags %s %-36s %5d values, %d wrong\n", wrong ? "FAIL" : "ok  ", Ty<T>::name, what, total, wrong);
        bad += wrong ? 1 : 0;
    };
    // inputs: S[row][col] = 0x4000 | (row·8 + col) (distinct patterns), random small-integer mma operands
    std::vector<uint16_t> s(256);
    for (int i = 0; i < 256; ++i) s[i] = (uint16_t)(0x4000 | i);
    std::vector<uint32_t> ra(128), rb(64), src(128);
    std::vector<float> rc(128);
    std::vector<int> Ai(256), Bi(128);  // A(m, k) at m + 16k, B(k, n) at n + 8k (the model's indices)
    auto ival = [] { return (int)std::uniform_int_distribution<int>(-4, 4)(g_rng); };
    for (int& v : Ai) v = ival();
    for (int& v : Bi) v = ival();
    for (int t = 0; t < 32; ++t)
        for (int v = 0; v < 8; ++v) {  // pack A's 8 values of lane t, then B's 4
            const int ia = (int)(frag_eval(kA_T, t) + frag_eval(kA_V, v));
            ra[t * 4 + v / 2] |= (uint32_t)bits16<T>((float)Ai[ia]) << (16 * (v % 2));
            if (v < 4) {
                const int ib = (int)(frag_eval(kB_T, t) + frag_eval(kB_V, v));
                rb[t * 2 + v / 2] |= (uint32_t)bits16<T>((float)Bi[ib]) << (16 * (v % 2));
            }
        }
    std::vector<float> Cm(128);  // C(m, n) at m + 16n
    for (float& v : Cm) v = (float)(ival() * 8);
    for (int t = 0; t < 32; ++t)
        for (int e = 0; e < 4; ++e) rc[t * 4 + e] = Cm[frag_eval(kC_T, t) + frag_eval(kC_V, e)];
    for (int i = 0; i < 128; ++i) src[i] = 0x01010101u * (uint32_t)(i + 1);

    auto up = [](const void* h, size_t bytes) {
        void* p = nullptr;
        CUDA_CHECK(cudaMalloc(&p, bytes));
        CUDA_CHECK(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice));
        return p;
    };
    FragArgs fa;
    fa.s = static_cast<const uint16_t*>(up(s.data(), 512));
    fa.a = static_cast<const uint32_t*>(up(ra.data(), 512));
    fa.b = static_cast<const uint32_t*>(up(rb.data(), 256));
    fa.c = static_cast<const float*>(up(rc.data(), 512));
    fa.src = static_cast<const uint32_t*>(up(src.data(), 512));
    std::vector<uint32_t> zeros(128, 0);
    fa.ld_n = static_cast<uint32_t*>(up(zeros.data(), 512));
    fa.ld_t = static_cast<uint32_t*>(up(zeros.data(), 512));
    fa.d = static_cast<float*>(up(zeros.data(), 512));
    fa.cp = static_cast<uint32_t*>(up(zeros.data(), 512));
    auto k = frag_kernel<T>;
    RS_LAUNCH_EX(k, dim3(1), dim3(32), 1024, fa);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<uint32_t> ldn(128), ldt(128), cp(128);
    std::vector<float> d(128);
    CUDA_CHECK(cudaMemcpy(ldn.data(), fa.ld_n, 512, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(ldt.data(), fa.ld_t, 512, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(d.data(), fa.d, 512, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(cp.data(), fa.cp, 512, cudaMemcpyDeviceToHost));
    for (const void* p : {(const void*)fa.s, (const void*)fa.a, (const void*)fa.b, (const void*)fa.c, (const void*)fa.src,
                          (const void*)fa.ld_n, (const void*)fa.ld_t, (const void*)fa.d, (const void*)fa.cp})
        cudaFree(const_cast<void*>(p));

    for (int trans = 0; trans < 2; ++trans) {
        const FragModes& T_ = trans ? kLdT_T : kLdN_T;
        const FragModes& V_ = trans ? kLdT_V : kLdN_V;
        const std::vector<uint32_t>& got = trans ? ldt : ldn;
        int wrong = 0;
        for (int t = 0; t < 32; ++t) {
            uint32_t want[4] = {0, 0, 0, 0};
            for (int v = 0; v < frag_size(V_); ++v) {
                const long bit = frag_eval(T_, t) + frag_eval(V_, v);
                want[v / 32] |= (uint32_t)((s[bit / 16] >> (bit % 16)) & 1u) << (v % 32);
            }
            for (int e = 0; e < 4; ++e)
                if (got[t * 4 + e] != want[e] && wrong++ < 3)
                    std::printf("    lane %d r[%d]: got %08x, model %08x\n", t, e, got[t * 4 + e], want[e]);
        }
        check(trans ? "ldmatrix.x4.trans registers" : "ldmatrix.x4 registers", wrong, 128);
    }
    {
        int wrong = 0;
        for (int t = 0; t < 32; ++t)
            for (int e = 0; e < 4; ++e) {
                const long ic = frag_eval(kC_T, t) + frag_eval(kC_V, e);
                const int m = (int)(ic % 16), n = (int)(ic / 16);
                long acc = (long)Cm[ic];
                for (int kk = 0; kk < 16; ++kk) acc += (long)Ai[m + 16 * kk] * Bi[n + 8 * kk];
                if (d[t * 4 + e] != (float)acc && wrong++ < 3)
                    std::printf("    lane %d d[%d] = D(%d, %d): got %g, model %ld\n", t, e, m, n, d[t * 4 + e], acc);
            }
        check("mma.m16n8k16 A/B/C/D fragments", wrong, 128);
    }
    {
        int wrong = 0;
        for (int t = 0; t < 32; ++t)
            for (int e = 0; e < 4; ++e) {
                const uint32_t want = (t & 1) ? 0u : src[t * 4 + e];
                if (cp[t * 4 + e] != want && wrong++ < 3)
                    std::printf("    lane %d word %d: got %08x, want %08x\n", t, e, cp[t * 4 + e], want);
            }
        check("cp.async src-size 16 / 0 (zero fill)", wrong, 128);
    }
    return bad;
}

static int frags() {
    g_rng.seed(80);
    const int bad = frags_of<__nv_bfloat16>() + frags_of<__half>();
    std::printf("%d passed, %d failed\n", 8 - bad, bad);
    return bad ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
#if !defined(RS_EMULATE)

static int bench(const char* jsonl) {
    typedef __nv_bfloat16 T;
    const int n = 8192, di = 4096, dout = 4096, reps = 20;
    FILE* json = jsonl ? std::fopen(jsonl, "w") : nullptr;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d, %d SMs), bf16, n=%d d_in=%d d_out=%d, dropout 0.1, median of %d\n", prop.name,
                prop.major, prop.minor, prop.multiProcessorCount, n, di, dout, reps);
    std::printf("%-22s %5s %10s %10s %10s\n", "kernel", "r", "ms", "TFLOP/s", "GB/s");
    for (int r : {0, 16, 64, 256}) {
        Dev d;
        g_rng.seed(42);
        const int rp = (r + 7) & ~7;
        auto rnd = [&](size_t count) {
            std::vector<float> v(count);
            for (float& e : v) e = uni(-1, 1);
            return v;
        };
        T* x = d.upload<T>(rnd((size_t)n * di));
        T* w = d.upload<T>(rnd((size_t)dout * di));
        T* dy = d.upload<T>(rnd((size_t)n * dout));
        T* ug = r ? d.upload<T>(rnd((size_t)n * rp)) : nullptr;  // pad columns random: timing only
        T* bt = r ? d.upload<T>(rnd((size_t)dout * rp)) : nullptr;
        T* vg = r ? d.upload<T>(rnd((size_t)n * rp)) : nullptr;
        T* at = r ? d.upload<T>(rnd((size_t)r * di)) : nullptr;
        T* y = d.upload<T>(rnd((size_t)n * dout));
        T* dx = d.upload<T>(rnd((size_t)n * di));
        const RsDropout drop = make_dropout(1234, 1, 0, 0.1f);
        struct Item {
            const char* name;
            double flop, bytes;
            float ms;
        };
        std::vector<Item> items;
        const RsLoraForwardV4Params pf{x, w, nullptr, ug, bt, y, n, di, dout, r, 0};
        const RsLoraBackwardDxV4Params pd{dy, w, vg, at, dx, n, di, dout, r, 0, drop};
        const RsV4Launch lf = rs_v4_launch(RsV4Kernel::Forward), lu = rs_v4_launch(RsV4Kernel::UpAdd);
        const RsV4Launch ld = rs_v4_launch(RsV4Kernel::BackwardDx), la = rs_v4_launch(RsV4Kernel::DxAdd);
        CUDA_CHECK(cudaFuncSetAttribute(V4K<T>::forward, cudaFuncAttributeMaxDynamicSharedMemorySize, lf.smem_bytes));
        CUDA_CHECK(cudaFuncSetAttribute(V4K<T>::dx, cudaFuncAttributeMaxDynamicSharedMemorySize, ld.smem_bytes));
        items.push_back({"forward_v4", 2.0 * n * dout * (di + r), 2.0 * ((double)n * di + (double)dout * di + (double)n * dout),
                         median_ms([&] { RS_LAUNCH_EX(V4K<T>::forward, dim3((unsigned)rs_v4_blocks(lf, n, di, dout)), dim3(lf.threads), lf.smem_bytes, pf); }, reps)});
        items.push_back({"backward_dx_v4", 2.0 * n * di * (dout + r), 2.0 * ((double)n * dout + (double)dout * di + (double)n * di),
                         median_ms([&] { RS_LAUNCH_EX(V4K<T>::dx, dim3((unsigned)rs_v4_blocks(ld, n, di, dout)), dim3(ld.threads), ld.smem_bytes, pd); }, reps)});
        if (r > 0) {
            RsLoraForwardV4Params pu = pf;
            pu.accumulate = 1;
            RsLoraBackwardDxV4Params pa = pd;
            pa.accumulate = 1;
            items.push_back({"up_add_v4", 2.0 * n * dout * r, 2.0 * (2.0 * n * dout + (double)n * rp + (double)dout * rp),
                             median_ms([&] { RS_LAUNCH_EX(V4K<T>::up_add, dim3((unsigned)rs_v4_blocks(lu, n, 0, dout)), dim3(lu.threads), lu.smem_bytes, pu); }, reps)});
            items.push_back({"dx_add_v4", 2.0 * n * di * r, 2.0 * (2.0 * n * di + (double)n * rp + (double)r * di),
                             median_ms([&] { RS_LAUNCH_EX(V4K<T>::dx_add, dim3((unsigned)rs_v4_blocks(la, n, di, 0)), dim3(la.threads), la.smem_bytes, pa); }, reps)});
        }
        for (const Item& it : items) {
            std::printf("%-22s %5d %10.4f %10.1f %10.1f\n", it.name, r, it.ms, it.flop / (it.ms * 1e-3) / 1e12,
                        it.bytes / (it.ms * 1e-3) / 1e9);
            if (json) {
                std::fprintf(json,
                             "{\"kind\": \"kernel\", \"device\": \"%s\", \"sm\": \"%d%d\", \"version\": 4, \"kernel\": \"%s\", "
                             "\"dtype\": \"bf16\", \"n\": %d, \"d_in\": %d, \"d_out\": %d, \"r\": %d, \"dropout\": 0.1, "
                             "\"reps\": %d, \"median_ms\": %.6f, \"flop\": %.0f, \"bytes\": %.0f}\n",
                             prop.name, prop.major, prop.minor, it.name, n, di, dout, r, reps, it.ms, it.flop, it.bytes);
                std::fflush(json);
            }
        }
    }
    if (json) std::fclose(json);
    return 0;
}
#endif

int main(int argc, char** argv) {
    const std::string cmd = argc > 1 ? argv[1] : "core";
    const bool quick = argc > 2 && std::string(argv[2]) == "quick";
    if (cmd == "refuse") return refuse();
    if (cmd == "banks") return banks();
#if defined(RS_EMULATE)
    if (cmd == "bench") {
        std::printf("bench needs a GPU (this is the CPU emulation build)\n");
        return 3;
    }
    std::printf("CPU emulation (cuda/dev/emu/cuda_emu.h), thread order %s between barriers\n", rs_emu::order_name());
#else
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device: '%s' needs a GPU (refuse runs without one)\n", cmd.c_str());
        return 3;
    }
    if (cmd == "bench") return bench(argc > 2 ? argv[2] : nullptr);
#endif
    if (cmd == "frags") return frags();
    if (cmd == "core") return core(quick);
    if (cmd == "v4") return v4(quick);
    if (cmd == "bigindex") return bigindex();
    std::fprintf(stderr, "usage: %s frags | core [quick] | v4 [quick] | bigindex | refuse | banks | bench [jsonl]\n", argv[0]);
    return 2;
}
