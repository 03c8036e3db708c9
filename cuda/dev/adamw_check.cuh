// The `adamw` command of rslora_dev (included by rslora_dev.cu after its helpers): the fused AdamW
// kernel and the two-pass gradient norm (cuda/kernels/adamw.cuh) against host references.
//
//   rslora_dev adamw [quick]   tensor mixes (single size-1 tensor; f32 / bf16 / f16 params with and
//                              without f32 masters; bf16 gradients; 40 tensors of random sizes; tails
//                              of a 256-thread block), each with the host's grid and with a 2-block grid
//                              (grid-stride: a thread crosses tensors), many steps, fresh random
//                              gradients every step, clipping on a third of the steps:
//     - bit for bit against the host mirror of dev.rslora.train.AdamWScalar (same fp32 operations in the
//       same order; this file is compiled without FMA contraction): param, master, m, v after EVERY step;
//     - the f32 (or master) values against a double-precision AdamW in torch's textbook form
//       (m = β1·m + (1−β1)·g, ...), |Δ| <= 1e-5·(|p| + lr·t): catches a formula both fp32 paths share;
//     - the norm bit for bit against the host mirror of the two-pass order, and within 1e-12 relative
//       of a plain sequential double sum; the clip coefficient bit for bit.
//   rslora_dev adamw bench     (GPU) median time of one AdamW launch and of norm + clip + AdamW over the
//                              adapters of 32 layers × (A [r, 4096], B [4096, r]), f32 and bf16 + master.
#pragma once

namespace adamw_dev {

struct Coef {
    float decay, omb1, b2, omb2, step, bc2, eps;
};
// dev.rslora.train.AdamWCoefficients.of: double, rounded once
static Coef coef(double lr, double beta1, double beta2, double eps, double wd, long t) {
    const double bc1 = 1 - std::pow(beta1, (double)t), bc2 = 1 - std::pow(beta2, (double)t);
    return {(float)(1 - lr * wd), (float)(1 - beta1), (float)beta2, (float)(1 - beta2), (float)(lr / bc1),
            (float)std::sqrt(bc2), (float)eps};
}

static int code(DT d) { return d == DT::F32 ? 0 : d == DT::BF16 ? 1 : 2; }

struct Spec {
    long long count;
    DT pdt, gdt;
    bool master;
};

// one tensor: host state (values as floats, exact in their dtype) and device buffers
struct Slot {
    Spec s;
    std::vector<float> p, g, m, v, master;  // host mirror
    std::vector<double> pd, md, vd;         // double-precision textbook AdamW
    void *dp = nullptr, *dg = nullptr;
    float *dm = nullptr, *dv = nullptr, *dmaster = nullptr;
};

// The host's pass-1 grid of the norm (dev.rslora.backend.cuda.LaunchGeometry.gradNormBlocks).
static int norm_blocks(long long total) { return (int)std::min<long long>((total + 255) / 256, 1024); }

// Host mirror of rslora_grad_sumsq_v1 + rslora_grad_norm_finish_v1 with `blocks` pass-1 blocks.
static double mirror_norm(const std::vector<Slot>& slots, int blocks) {
    std::vector<float> flat;
    for (const Slot& s : slots) flat.insert(flat.end(), s.g.begin(), s.g.end());
    const long long total = (long long)flat.size(), stride = (long long)blocks * 256;
    std::vector<double> partials((size_t)blocks);
    double red[256];
    for (int b = 0; b < blocks; ++b) {
        for (int t = 0; t < 256; ++t) {
            double acc = 0;
            for (long long i = (long long)b * 256 + t; i < total; i += stride) acc += (double)flat[(size_t)i] * (double)flat[(size_t)i];
            red[t] = acc;
        }
        for (int h = 128; h > 0; h >>= 1)
            for (int t = 0; t < h; ++t) red[t] += red[t + h];
        partials[(size_t)b] = red[0];
    }
    for (int t = 0; t < 256; ++t) {
        double acc = 0;
        for (int b = t; b < blocks; b += 256) acc += partials[(size_t)b];
        red[t] = acc;
    }
    for (int h = 128; h > 0; h >>= 1)
        for (int t = 0; t < h; ++t) red[t] += red[t + h];
    return std::sqrt(red[0]);
}

static int bits_differ(const char* what, int tensor, int step, const std::vector<float>& got, const std::vector<float>& ref) {
    for (size_t i = 0; i < ref.size(); ++i) {
        uint32_t a, b;
        std::memcpy(&a, &got[i], 4);
        std::memcpy(&b, &ref[i], 4);
        if (a != b) {
            std::printf("    MISMATCH step %d tensor %d %s[%zu]: kernel %.9g (0x%08x) host %.9g (0x%08x)\n", step, tensor, what, i,
                        got[i], a, ref[i], b);
            return 1;
        }
    }
    return 0;
}

// Runs `steps` AdamW steps over `specs`; returns the number of failed checks.
static int run_mix(const char* name, const std::vector<Spec>& specs, int grid_override, int steps, uint64_t seed, double b1 = 0.9) {
    const double lr = 1e-2, b2 = 0.999, eps = 1e-8, wd = 0.1;
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    Dev d;
    std::vector<Slot> slots(specs.size());
    std::vector<RsAdamWTensor> table(specs.size());
    long long total = 0;
    for (size_t k = 0; k < specs.size(); ++k) {
        Slot& s = slots[k];
        s.s = specs[k];
        const size_t n = (size_t)s.s.count;
        s.p.resize(n);
        for (float& x : s.p) x = round_to(s.s.pdt, uni(g));
        s.m.assign(n, 0.0f);
        s.v.assign(n, 0.0f);
        s.pd.assign(s.p.begin(), s.p.end());
        s.md.assign(n, 0.0);
        s.vd.assign(n, 0.0);
        if (s.s.master) s.master = s.p;
        s.dp = d.upload(pack(s.s.pdt, s.p));
        s.dg = d.alloc(n * dt_size(s.s.gdt), 0xFF);
        s.dm = (float*)d.upload(pack(DT::F32, s.m));
        s.dv = (float*)d.upload(pack(DT::F32, s.v));
        s.dmaster = s.s.master ? (float*)d.upload(pack(DT::F32, s.master)) : nullptr;
        table[k] = RsAdamWTensor{s.dp, s.dg, s.dm, s.dv, s.dmaster, (int64_t)n, (int64_t)total, code(s.s.pdt), code(s.s.gdt)};
        total += (long long)n;
    }
    std::vector<unsigned char> tbytes(table.size() * sizeof(RsAdamWTensor));
    std::memcpy(tbytes.data(), table.data(), tbytes.size());
    const RsAdamWTensor* dtable = (const RsAdamWTensor*)d.upload(tbytes);
    const int grid = grid_override > 0 ? grid_override : (int)std::min<long long>((total + 255) / 256, 65536);
    const int nblocks = grid_override > 0 ? grid_override : norm_blocks(total);
    double* partials = (double*)d.alloc((size_t)nblocks * 8, 0xFF);
    double* dnorm = (double*)d.alloc(8, 0xFF);
    float* dcoef = (float*)d.alloc(4, 0xFF);
    int bad = 0;
    double worst_textbook = 0;
    for (int t = 1; t <= steps && !bad; ++t) {
        for (Slot& s : slots) {
            s.g.resize((size_t)s.s.count);
            const float scale = (t % 5 == 0) ? 1e-3f : 1.0f;  // some steps with small gradients (v decays)
            for (float& x : s.g) x = round_to(s.s.gdt, scale * uni(g));
            std::vector<unsigned char> gb = pack(s.s.gdt, s.g);
            CUDA_CHECK(cudaMemcpy(s.dg, gb.data(), gb.size(), cudaMemcpyHostToDevice));
        }
        // clipping: t % 3 == 0 none, == 1 active (max_norm below the norm), == 2 inactive (coefficient 1)
        const int clip = t % 3;
        float s_host = 1.0f;
        if (clip != 0) {
            double seq = 0;
            for (const Slot& s : slots)
                for (float x : s.g) seq += (double)x * x;
            seq = std::sqrt(seq);
            const double max_norm = clip == 1 ? 0.25 * seq : 4.0 * seq + 1.0;
            RsGradNormParams np{dtable, partials, dnorm, dcoef, (int64_t)total, (int32_t)slots.size(), nblocks, max_norm};
            RS_LAUNCH(rslora_grad_sumsq_v1, nblocks, 256, np);
            RS_LAUNCH(rslora_grad_norm_finish_v1, 1, 256, np);
            CUDA_CHECK(cudaGetLastError());
            CUDA_CHECK(cudaDeviceSynchronize());
            double norm;
            float c;
            CUDA_CHECK(cudaMemcpy(&norm, dnorm, 8, cudaMemcpyDeviceToHost));
            CUDA_CHECK(cudaMemcpy(&c, dcoef, 4, cudaMemcpyDeviceToHost));
            const double mirror = mirror_norm(slots, nblocks);
            const double cm = max_norm / (mirror + 1e-6);
            s_host = (float)(cm < 1.0 ? cm : 1.0);
            if (std::memcmp(&norm, &mirror, 8) != 0 || !(std::fabs(norm - seq) <= 1e-12 * seq) ||
                std::memcmp(&c, &s_host, 4) != 0 || (clip == 1) != (c < 1.0f)) {
                std::printf("    NORM step %d: kernel %.17g mirror %.17g sequential %.17g; coef kernel %.9g host %.9g\n", t, norm,
                            mirror, seq, c, s_host);
                ++bad;
            }
        }
        const Coef c = coef(lr, b1, b2, eps, wd, t);
        RsAdamWParams ap{dtable, clip != 0 ? dcoef : nullptr, (int64_t)total, (int32_t)slots.size(),
                         c.decay, c.omb1, c.b2, c.omb2, c.step, c.bc2, c.eps};
        RS_LAUNCH(rslora_adamw_v1, grid, 256, ap);
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaDeviceSynchronize());
        const double bc1d = 1 - std::pow(b1, (double)t), bc2d = 1 - std::pow(b2, (double)t);
        for (size_t k = 0; k < slots.size(); ++k) {
            Slot& s = slots[k];
            const size_t n = (size_t)s.s.count;
            for (size_t i = 0; i < n; ++i) {
                // host mirror of AdamWScalar (fp32, this order, no contraction)
                float gi = s.g[i];
                if (s_host != 1.0f) gi = round_to(s.s.gdt, gi * s_host);
                float x = (s.s.master ? s.master[i] : s.p[i]) * c.decay;
                float mi = s.m[i], vi = s.v[i];
                mi = c.omb1 < 0.5f ? mi + c.omb1 * (gi - mi) : gi - (gi - mi) * (1.0f - c.omb1);  // torch's lerp_
                vi = vi * c.b2 + (c.omb2 * gi) * gi;
                const float denom = std::sqrt(vi) / c.bc2 + c.eps;
                x = x - c.step * (mi / denom);
                s.m[i] = mi;
                s.v[i] = vi;
                if (s.s.master) s.master[i] = x;
                s.p[i] = round_to(s.s.pdt, x);
                // textbook AdamW in double from the same (clipped) gradient
                const double gd = gi;
                s.md[i] = b1 * s.md[i] + (1 - b1) * gd;
                s.vd[i] = b2 * s.vd[i] + (1 - b2) * gd * gd;
                s.pd[i] = s.pd[i] * (1 - lr * wd) - lr * (s.md[i] / bc1d) / (std::sqrt(s.vd[i] / bc2d) + eps);
                if (s.s.pdt == DT::F32 || s.s.master) {
                    const double err = std::fabs((double)x - s.pd[i]);
                    worst_textbook = std::max(worst_textbook, err);
                    if (!(err <= 1e-5 * (std::fabs(s.pd[i]) + lr * t))) {
                        std::printf("    TEXTBOOK step %d tensor %zu [%zu]: fp32 %.9g double %.12g\n", t, k, i, x, s.pd[i]);
                        ++bad;
                        break;
                    }
                }
            }
            bad += bits_differ("param", (int)k, t, unpack(s.s.pdt, download(s.dp, n * dt_size(s.s.pdt)), n), s.p);
            bad += bits_differ("exp_avg", (int)k, t, unpack(DT::F32, download(s.dm, n * 4), n), s.m);
            bad += bits_differ("exp_avg_sq", (int)k, t, unpack(DT::F32, download(s.dv, n * 4), n), s.v);
            if (s.s.master) bad += bits_differ("master", (int)k, t, unpack(DT::F32, download(s.dmaster, n * 4), n), s.master);
            if (bad) break;
        }
        if (bad) std::printf("    (%s: first failure at step %d)\n", name, t);
    }
    std::printf("%s adamw %-26s tensors=%zu elements=%lld grid=%d steps=%d (max |fp32 - double| %.3g) seed=%llu\n",
                bad ? "FAIL" : "ok  ", name, specs.size(), total, grid, steps, worst_textbook, (unsigned long long)seed);
    return bad;
}

static int validate(bool quick) {
    const int steps = quick ? 30 : 100;
    struct Mix {
        const char* name;
        std::vector<Spec> specs;
    };
    std::vector<Mix> mixes;
    mixes.push_back({"one-element", {{1, DT::F32, DT::F32, false}}});
    mixes.push_back({"mixed-dtypes", {{257, DT::F32, DT::F32, false}, {1000, DT::BF16, DT::F32, true}, {1, DT::F32, DT::F32, false},
                                      {1, DT::BF16, DT::F32, true}, {33, DT::F16, DT::F32, true}, {300, DT::BF16, DT::F32, false},
                                      {255, DT::F16, DT::F32, false}}});
    mixes.push_back({"bf16-grads", {{5000, DT::F32, DT::BF16, false}, {3001, DT::BF16, DT::BF16, true}, {7, DT::F16, DT::F16, true}}});
    std::vector<Spec> many;
    std::mt19937_64 g(0xADA3);
    const Spec kinds[] = {{0, DT::F32, DT::F32, false}, {0, DT::BF16, DT::F32, true}, {0, DT::BF16, DT::F32, false},
                          {0, DT::F16, DT::F32, true}, {0, DT::F32, DT::BF16, false}};
    for (int k = 0; k < 40; ++k) {
        Spec s = kinds[g() % 5];
        s.count = k % 7 == 0 ? 1 : 1 + (long long)(g() % 300);
        many.push_back(s);
    }
    mixes.push_back({"40-tensors", many});
    int failures = 0, runs = 0;
    for (const Mix& m : mixes)
        for (int grid : {0, 2}) {
            failures += run_mix(m.name, m.specs, grid, steps, 0xADA0000ULL + (uint64_t)runs) ? 1 : 0;
            ++runs;
        }
    // β1 below 0.5: torch's lerp_ takes its other formula (1−β1 ≥ 0.5); at β1 = 0, m is the gradient exactly
    for (double b1 : {0.3, 0.0}) {
        failures += run_mix(b1 == 0.0 ? "mixed-dtypes, beta1 0" : "mixed-dtypes, beta1 0.3", mixes[1].specs, 0, steps,
                            0xADB0000ULL + (uint64_t)runs, b1) ? 1 : 0;
        ++runs;
    }
    std::printf("%d passed, %d failed\n", runs - failures, failures);
    return failures ? 1 : 0;
}

#if !defined(RS_EMULATE)
static int bench() {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d), AdamW over 32 layers x (A [r, 4096], B [4096, r]), median of 50\n", prop.name, prop.major,
                prop.minor);
    std::printf("%-12s %5s %10s %12s %10s %10s\n", "params", "r", "elements", "adamw ms", "GB/s", "+norm ms");
    for (int r : {16, 64})
        for (int master = 0; master < 2; ++master) {
            Dev d;
            std::mt19937_64 g(7);
            const DT pdt = master ? DT::BF16 : DT::F32;
            const long long per = (long long)r * 4096;
            std::vector<RsAdamWTensor> table;
            long long total = 0;
            for (int k = 0; k < 64; ++k) {
                void* p = d.upload(pack(pdt, rnd(g, (size_t)per, pdt, -1, 1)));
                void* gr = d.upload(pack(DT::F32, rnd(g, (size_t)per, DT::F32, -1, 1)));
                float* m = (float*)d.alloc((size_t)per * 4, 0);
                float* v = (float*)d.alloc((size_t)per * 4, 0);
                float* ms = master ? (float*)d.upload(pack(DT::F32, rnd(g, (size_t)per, DT::F32, -1, 1))) : nullptr;
                table.push_back(RsAdamWTensor{p, gr, m, v, ms, per, total, code(pdt), 0});
                total += per;
            }
            std::vector<unsigned char> tb(table.size() * sizeof(RsAdamWTensor));
            std::memcpy(tb.data(), table.data(), tb.size());
            const RsAdamWTensor* dt = (const RsAdamWTensor*)d.upload(tb);
            const int nb = norm_blocks(total);
            double* partials = (double*)d.alloc((size_t)nb * 8, 0);
            double* norm = (double*)d.alloc(8, 0);
            float* cf = (float*)d.alloc(4, 0);
            const Coef c = coef(1e-4, 0.9, 0.999, 1e-8, 0.01, 10);
            const int grid = (int)std::min<long long>((total + 255) / 256, 65536);
            RsAdamWParams ap{dt, nullptr, (int64_t)total, 64, c.decay, c.omb1, c.b2, c.omb2, c.step, c.bc2, c.eps};
            RsGradNormParams np{dt, partials, norm, cf, (int64_t)total, 64, nb, 1.0};
            const float ms1 = median_ms([&] { RS_LAUNCH(rslora_adamw_v1, grid, 256, ap); }, 50);
            RsAdamWParams apc = ap;
            apc.grad_scale = cf;
            const float ms2 = median_ms([&] {
                RS_LAUNCH(rslora_grad_sumsq_v1, nb, 256, np);
                RS_LAUNCH(rslora_grad_norm_finish_v1, 1, 256, np);
                RS_LAUNCH(rslora_adamw_v1, grid, 256, apc);
            }, 50);
            // bytes per element: read target, g, m, v; write target, m, v (+ the bf16 param with a master)
            const double bytes = (double)total * (master ? 4 + 4 + 8 + 4 + 8 + 2 : 4 + 4 + 8 + 4 + 8);
            std::printf("%-12s %5d %10lld %12.4f %10.1f %10.4f\n", master ? "bf16+master" : "f32", r, total, ms1,
                        bytes / (ms1 * 1e-3) / 1e9, ms2);
        }
    return 0;
}
#endif

}  // namespace adamw_dev
