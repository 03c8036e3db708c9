// The `seqlogprob` command of rslora_dev (included by rslora_dev.cu after its helpers): the sequence
// log-prob kernels (cuda/kernels/seq_logprob.cuh) against a double-precision reference.
//
//   rslora_dev seqlogprob [quick]  shapes (B, T, V) with awkward V (1, 7, 255, 1025, 32003) and long T, labels with
//                                  ignored positions (−100; one sequence entirely ignored), logits of spread ±12,
//                                  f32 / bf16 / f16, outputs poisoned first; backward into a separate buffer and in
//                                  place over the logits:
//     - lse [B·T] and logp [B] against the reference over the same (dtype-rounded) logits in double:
//       |Δlse| <= 2e-6·(1 + |lse|), |Δlogp| <= 2e-6·Σ_t (1 + |x_label| + |lse|) (expf is within 2 ulp on the device);
//     - dlogits against g·(1[v = label] − exp(x − lse)) in double: |Δ| <= |g|·(2e-6 + 2^-p·|ref/g|) with p = 8 (bf16),
//       11 (f16), 24 (f32): one rounding to the storage dtype plus the exp error; ignored rows exactly 0.
//   rslora_dev seqlogprob bench    (GPU) median time of forward (rows + sum) and backward at B·T = 1024, V = 32000 and
//                                  128256, bf16, and the bandwidth they reach.
#pragma once

namespace seqlp_dev {

struct Kern {
    void (*rows)(RsSeqLogprobParams);
    void (*backward)(RsSeqLogprobParams);
};
static Kern kern(DT d) {
    if (d == DT::BF16) return {rslora_seq_logprob_rows_v1_bf16, rslora_seq_logprob_backward_v1_bf16};
    if (d == DT::F16) return {rslora_seq_logprob_rows_v1_f16, rslora_seq_logprob_backward_v1_f16};
    return {rslora_seq_logprob_rows_v1_f32, rslora_seq_logprob_backward_v1_f32};
}

static int run_case(int B, int T, int V, DT dt, uint64_t seed) {
    std::mt19937_64 g(seed);
    const int rows = B * T;
    std::vector<float> x = rnd(g, (size_t)rows * V, dt, -12.0f, 12.0f);
    std::vector<int32_t> labels((size_t)rows);
    for (int r = 0; r < rows; ++r) {
        const int b = r / T, t = r % T;
        const bool ignored = (b == 1 && B > 2) || (t < T / 3) || (g() % 5 == 0);  // prompt part, a fully ignored sequence
        labels[(size_t)r] = ignored ? -100 : (int32_t)(g() % (uint64_t)V);
    }
    if (labels[(size_t)rows - 1] == -100) labels[(size_t)rows - 1] = V - 1;  // the last column as a label
    std::vector<float> grad((size_t)B);
    for (float& v : grad) v = std::uniform_real_distribution<float>(-2.0f, 2.0f)(g);
    // reference
    std::vector<double> lse((size_t)rows, 0.0), logp((size_t)B, 0.0), scale((size_t)B, 0.0);
    for (int r = 0; r < rows; ++r) {
        if (labels[(size_t)r] == -100) continue;
        double m = -INFINITY;
        for (int v = 0; v < V; ++v) m = std::max(m, (double)x[(size_t)r * V + v]);
        double s = 0;
        for (int v = 0; v < V; ++v) s += std::exp((double)x[(size_t)r * V + v] - m);
        lse[(size_t)r] = m + std::log(s);
        const double xl = x[(size_t)r * V + labels[(size_t)r]];
        logp[(size_t)(r / T)] += xl - lse[(size_t)r];
        scale[(size_t)(r / T)] += 1 + std::fabs(xl) + std::fabs(lse[(size_t)r]);
    }
    Dev d;
    void* dx = d.upload(pack(dt, x));
    std::vector<unsigned char> lb((size_t)rows * 4);
    std::memcpy(lb.data(), labels.data(), lb.size());
    const int32_t* dl = (const int32_t*)d.upload(lb);
    float* dlse = (float*)d.alloc((size_t)rows * 4, 0xFF);
    double* dtok = (double*)d.alloc((size_t)rows * 8, 0xFF);
    float* dlogp = (float*)d.alloc((size_t)B * 4, 0xFF);
    std::vector<unsigned char> gb((size_t)B * 4);
    std::memcpy(gb.data(), grad.data(), gb.size());
    const float* dg = (const float*)d.upload(gb);
    void* dd = d.alloc((size_t)rows * V * dt_size(dt), 0xFF);
    RsSeqLogprobParams p = {dx, dl, dlse, dtok, dlogp, dg, dd, rows, V, B, T};
    const Kern k = kern(dt);
    RS_LAUNCH(k.rows, rows, 256, p);
    RS_LAUNCH(rslora_seq_logprob_sum_v1, (B + 255) / 256, 256, p);
    RS_LAUNCH(k.backward, rows, 256, p);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    int bad = 0;
    const std::vector<float> glse = unpack(DT::F32, download(dlse, (size_t)rows * 4), (size_t)rows);
    const std::vector<float> glogp = unpack(DT::F32, download(dlogp, (size_t)B * 4), (size_t)B);
    double worst = 0;
    for (int r = 0; r < rows && bad < 3; ++r) {
        const double tol = 2e-6 * (1 + std::fabs(lse[(size_t)r]));
        const double err = std::fabs((double)glse[(size_t)r] - lse[(size_t)r]);
        worst = std::max(worst, err / tol);
        if (!(err <= tol)) {
            std::printf("    lse[%d]: kernel %.9g reference %.12g\n", r, glse[(size_t)r], lse[(size_t)r]);
            ++bad;
        }
    }
    for (int b = 0; b < B && bad < 3; ++b) {
        const double tol = 2e-6 * scale[(size_t)b] + 1e-30;
        const double err = std::fabs((double)glogp[(size_t)b] - logp[(size_t)b]);
        if (scale[(size_t)b] > 0) worst = std::max(worst, err / tol);
        if (!(err <= tol) && !(scale[(size_t)b] == 0 && glogp[(size_t)b] == 0.0f)) {
            std::printf("    logp[%d]: kernel %.9g reference %.12g\n", b, glogp[(size_t)b], logp[(size_t)b]);
            ++bad;
        }
    }
    const double unit = dt == DT::BF16 ? 0x1p-8 : dt == DT::F16 ? 0x1p-11 : 0x1p-24;
    auto check_grad = [&](const std::vector<float>& got, const char* what) {
        for (int r = 0; r < rows && bad < 3; ++r) {
            const double gr = grad[(size_t)(r / T)];
            for (int v = 0; v < V; ++v) {
                const float gv = got[(size_t)r * V + v];
                double ref = 0;
                if (labels[(size_t)r] != -100) {
                    const double pv = std::exp((double)x[(size_t)r * V + v] - lse[(size_t)r]);
                    ref = gr * ((v == labels[(size_t)r] ? 1.0 : 0.0) - pv);
                }
                const double tol = std::fabs(gr) * 2e-6 + unit * std::fabs(ref) + (labels[(size_t)r] == -100 ? 0 : 1e-37);
                const double err = std::fabs((double)gv - ref);
                if (labels[(size_t)r] != -100 && tol > 0) worst = std::max(worst, err / tol);
                if (!(err <= tol)) {
                    std::printf("    %s[%d, %d]: kernel %.9g reference %.12g (label %d)\n", what, r, v, gv, ref, labels[(size_t)r]);
                    ++bad;
                    break;
                }
            }
        }
    };
    check_grad(unpack(dt, download(dd, (size_t)rows * V * dt_size(dt)), (size_t)rows * V), "dlogits");
    // in place: dlogits over the logits buffer
    p.dlogits = dx;
    RS_LAUNCH(k.backward, rows, 256, p);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    check_grad(unpack(dt, download(dx, (size_t)rows * V * dt_size(dt)), (size_t)rows * V), "dlogits(in place)");
    std::printf("%s seqlogprob B=%d T=%d V=%-6d %-4s (worst |error|/tol %.3g) seed=%llu\n", bad ? "FAIL" : "ok  ", B, T, V,
                dt_name(dt), worst, (unsigned long long)seed);
    return bad;
}

static int validate(bool quick) {
    struct Shape {
        int b, t, v;
    };
    std::vector<Shape> shapes = {{1, 1, 1}, {2, 3, 7}, {3, 5, 255}, {4, 9, 1025}, {2, 2, 32003}};
    if (!quick) shapes.push_back({3, 40, 4099});
    int failures = 0, runs = 0;
    for (size_t si = 0; si < shapes.size(); ++si)
        for (DT dt : {DT::F32, DT::BF16, DT::F16}) {
            if (quick && shapes[si].v > 30000 && dt != DT::BF16) continue;
            failures += run_case(shapes[si].b, shapes[si].t, shapes[si].v, dt, 0x5E910000ULL + si * 3 + (uint64_t)dt) ? 1 : 0;
            ++runs;
        }
    std::printf("%d passed, %d failed\n", runs - failures, failures);
    return failures ? 1 : 0;
}

#if !defined(RS_EMULATE)
static int bench() {
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (sm_%d%d), bf16 logits, median of 20\n", prop.name, prop.major, prop.minor);
    std::printf("%8s %8s %12s %10s %12s %10s\n", "rows", "vocab", "forward ms", "GB/s", "backward ms", "GB/s");
    for (int V : {32000, 128256}) {
        const int B = 8, T = 128, rows = B * T;
        Dev d;
        std::mt19937_64 g(3);
        void* dx = d.upload(pack(DT::BF16, rnd(g, (size_t)rows * V, DT::BF16, -8, 8)));
        std::vector<int32_t> labels((size_t)rows);
        for (auto& l : labels) l = (int32_t)(g() % (uint64_t)V);
        std::vector<unsigned char> lb((size_t)rows * 4);
        std::memcpy(lb.data(), labels.data(), lb.size());
        RsSeqLogprobParams p = {dx, (const int32_t*)d.upload(lb), (float*)d.alloc((size_t)rows * 4, 0),
                                (double*)d.alloc((size_t)rows * 8, 0), (float*)d.alloc((size_t)B * 4, 0),
                                (const float*)d.alloc((size_t)B * 4, 0), dx, rows, V, B, T};
        const float fwd = median_ms([&] {
            RS_LAUNCH(rslora_seq_logprob_rows_v1_bf16, rows, 256, p);
            RS_LAUNCH(rslora_seq_logprob_sum_v1, 1, 256, p);
        }, 20);
        const float bwd = median_ms([&] { RS_LAUNCH(rslora_seq_logprob_backward_v1_bf16, rows, 256, p); }, 20);
        const double bytes = (double)rows * V * 2;
        std::printf("%8d %8d %12.4f %10.1f %12.4f %10.1f\n", rows, V, fwd, bytes / (fwd * 1e-3) / 1e9, bwd,
                    2 * bytes / (bwd * 1e-3) / 1e9);
    }
    return 0;
}
#endif

}  // namespace seqlp_dev
