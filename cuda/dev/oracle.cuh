// `oracle FAMILY [quick]` (GPU): the family's layer step against v1 ON THE DEVICE at large shapes,
// v1 (validated on hardware) as the oracle where the double reference would take minutes. Per
// shape it runs three steps on the same inputs: the family, v1, and v1 on magnitudes (|X|, W = 0,
// |A|, |B|, |dY|, the same mask), whose outputs are exactly the sums of |expanded terms| that bound
// the T-rounding of the LoRA operands (S_U, γ·S_U·|B|ᵀ, S_V, γ·|dY|ᵀ·S_U, γ·S_Vᵀ·|D(X)|,
// γ·D'(S_V·|A|)). Each output of the family must satisfy
//   |family - v1| <= atol·sqrt(K) + rtol·|v1| + (4·u_T + 2·2^-24·sqrt(K))·magnitude
// (the harness tolerances of problems.cuh; Ug and Vg against T(γ·U), T(γ·V) of v1).
#pragma once
#if !defined(RS_EMULATE)

namespace rsdev {

struct OracleShape {
    int n, d_in, d_out, r;
    DT dt;
    float p;
    bool accumulate;
};

inline int oracle_compare(const char* what, const std::vector<float>& got, const std::vector<float>& ref, const std::vector<float>& mag,
                          Tol t, int k, double unit, double scale, double* worst_ratio) {
    int bad = 0;
    double worst = 0;
    const double f32 = 2 * 0x1p-24 * std::sqrt((double)k);
    for (size_t i = 0; i < ref.size(); ++i) {
        const double want = scale * ref[i];
        const double lim = t.atol * std::sqrt((double)k) + t.rtol * std::fabs(want) + std::fabs(scale) * (4 * unit + f32) * mag[i];
        const double err = std::fabs((double)got[i] - want);
        if (!(err <= lim)) {
            if (bad < 5) std::printf("    MISMATCH %s[%zu]: got %.9g v1 %.9g (tol %.3g)\n", what, i, got[i], want, lim);
            ++bad;
        }
        if (lim > 0 && err / lim > worst) worst = err / lim;
    }
    if (bad) std::printf("    %s: %d of %zu mismatches\n", what, bad, ref.size());
    *worst_ratio = std::max(*worst_ratio, worst);
    return bad;
}

// drops the pad columns of a [rows, cols_pad] tensor
inline std::vector<float> unpad(const std::vector<float>& v, int rows, int cols, int cols_pad) {
    std::vector<float> out((size_t)rows * cols);
    for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) out[(size_t)i * cols + j] = v[(size_t)i * cols_pad + j];
    return out;
}

inline int oracle_one(const std::string& family, const OracleShape& s, uint64_t seed) {
    const DT dt = s.dt;
    std::mt19937_64 g(seed);
    Problem p;
    p.n = s.n;
    p.d_in = s.d_in;
    p.d_out = s.d_out;
    p.r = s.r;
    p.gamma = 2.0f / std::sqrt((float)s.r);
    p.drop = make_dropout(seed * 31 + 7, 9, 2, s.p, true);
    p.bias = true;
    p.accumulate = s.accumulate;
    p.x = rnd(g, (size_t)s.n * s.d_in, dt, -1, 1);
    p.w = rnd(g, (size_t)s.d_out * s.d_in, dt, -1, 1);
    p.b = rnd(g, s.d_out, dt, -1, 1);
    p.a = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
    p.bb = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
    p.dy = rnd(g, (size_t)s.n * s.d_out, dt, -1, 1);
    p.ga0 = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
    p.gb0 = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
    Problem m = p;  // the magnitude problem
    for (auto* v : {&m.x, &m.a, &m.bb, &m.dy})
        for (float& e : *v) e = std::fabs(e);
    std::fill(m.w.begin(), m.w.end(), 0.0f);
    m.bias = false;
    m.accumulate = false;
    const long long cap = 256LL << 20;  // the Java default
    Dev d;
    Ctx cf, c1, cm;
    upload_problem(cf, d, p, dt);
    upload_problem(c1, d, p, dt);
    upload_problem(cm, d, m, dt);
    for (Ctx* c : {&cf, &c1, &cm}) c->ws_cap = cap;
    run_layer_step(family, cf);
    run_layer_step("v1", c1);
    run_layer_step("v1", cm);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    const int n = s.n, di = s.d_in, dout = s.d_out, r = s.r, rp = cf.r_pad;
    const double unit = dt_unit(dt);
    auto dl = [&](DT t, const void* ptr, size_t count) { return unpack(t, download(ptr, count * dt_size(t)), count); };
    auto abs_of = [](std::vector<float> v) {
        for (float& e : v) e = std::fabs(e);
        return v;
    };
    const std::set<std::string>& w = cf.written;
    int bad = 0;
    double worst = 0;
    const Tol tf = tol_for(dt, false), tt = tol_for(dt, true);
    const std::vector<float> mu = dl(DT::F32, cm.u, (size_t)n * r), mv = dl(DT::F32, cm.v, (size_t)n * r);
    const std::vector<float> u1 = dl(DT::F32, c1.u, (size_t)n * r), v1 = dl(DT::F32, c1.v, (size_t)n * r);
    if (w.count("U")) bad += oracle_compare("U", dl(DT::F32, cf.u, (size_t)n * r), u1, mu, tf, di, unit, 1.0, &worst);
    if (w.count("Ug")) bad += oracle_compare("Ug", unpad(dl(dt, cf.ug, (size_t)n * rp), n, r, rp), u1, mu, tt, di, unit, p.gamma, &worst);
    // Y: the base part is exact-input in both, so its magnitude (|X|·|W|) only enters through atol/rtol
    bad += oracle_compare("Y", dl(dt, cf.y, (size_t)n * dout), dl(dt, c1.y, (size_t)n * dout), abs_of(dl(dt, cm.y, (size_t)n * dout)), tt,
                          di + r, unit, 1.0, &worst);
    if (w.count("V")) bad += oracle_compare("V", dl(DT::F32, cf.v, (size_t)n * r), v1, mv, tf, dout, unit, 1.0, &worst);
    if (w.count("Vg")) bad += oracle_compare("Vg", unpad(dl(dt, cf.vg, (size_t)n * rp), n, r, rp), v1, mv, tt, dout, unit, p.gamma, &worst);
    bad += oracle_compare("dB", dl(DT::F32, cf.gb, (size_t)dout * r), dl(DT::F32, c1.gb, (size_t)dout * r), dl(DT::F32, cm.gb, (size_t)dout * r),
                          tf, n + di, unit, 1.0, &worst);
    bad += oracle_compare("dA", dl(DT::F32, cf.ga, (size_t)r * di), dl(DT::F32, c1.ga, (size_t)r * di), dl(DT::F32, cm.ga, (size_t)r * di), tf,
                          n + dout, unit, 1.0, &worst);
    bad += oracle_compare("dX", dl(dt, cf.dx, (size_t)n * di), dl(dt, c1.dx, (size_t)n * di), abs_of(dl(dt, cm.dx, (size_t)n * di)), tt,
                          dout + r, unit, 1.0, &worst);
    std::printf("%s %s vs v1 %-4s n=%d d_in=%d d_out=%d r=%d p=%.1f %s seed=%llu (worst err/tol %.3f)\n", bad ? "FAIL" : "ok  ",
                family.c_str(), dt_name(dt), n, di, dout, r, s.p, s.accumulate ? "accumulate" : "assign", (unsigned long long)seed, worst);
    std::fflush(stdout);
    return bad;
}

// The large shapes: the PERFORMANCE.md reference at every rank, the MLP width, and tails everywhere
// (../shared/docs/PERFORMANCE.md, outside this repository).
inline int oracle(const std::string& family, bool quick) {
    const std::vector<DT> dts = family_dtypes(family);
    const OracleShape shapes[] = {
        {8192, 4096, 4096, 16, DT::BF16, 0.1f, false},  {8192, 4096, 4096, 64, DT::BF16, 0.1f, true},
        {8192, 4096, 4096, 256, DT::BF16, 0.1f, false}, {4096, 11008, 4096, 64, DT::F16, 0.0f, true},
        {2048, 4096, 11008, 128, DT::BF16, 0.1f, false}, {3001, 4104, 4097, 100, DT::BF16, 0.1f, true},
        {1031, 1030, 2050, 512, DT::F16, 0.1f, false},
    };
    int failures = 0, checked = 0, i = 0;
    for (const OracleShape& s : shapes) {
        const uint64_t seed = 0x0AC1E000ULL + (uint64_t)i++;
        if (quick && i > 2) break;
        if (std::find(dts.begin(), dts.end(), s.dt) == dts.end()) continue;
        ++checked;
        failures += oracle_one(family, s, seed) ? 1 : 0;
    }
    std::printf("%d passed, %d failed\n", checked - failures, failures);
    return failures ? 1 : 0;
}

}  // namespace rsdev
#endif
