// Problem generation and tolerances of the harness: the awkward shapes validate runs (tails in
// every dimension, r = 1 … 512), the seeded random inputs of one configuration, and the check of a
// kernel output against the double reference.
#pragma once
#include <vector>

struct Shape {
    int n, d_in, d_out, r;
};
// Every validate run walks these shapes × the family's dtypes × dropout {0, 0.1} × {assign,
// accumulate} × {most row groups, one row group}; seeds are consecutive over that walk, so a new
// shape goes at the END (earlier seeds, and so earlier failures, stay reproducible).
static const Shape kShapes[] = {
    {1, 1, 1, 1},      {7, 7, 9, 3},       {1, 64, 96, 8},   {127, 96, 64, 16}, {130, 130, 71, 64},
    {65, 200, 33, 100}, {300, 64, 127, 1}, {257, 33, 257, 256}, {64, 1000, 96, 512},
    // the v3/v4 memory-bound kernels: several column chunks and row groups, both load paths
    // (d multiple of 8: 16-byte vectors; not: element loads)
    {200, 520, 600, 40}, {333, 136, 1030, 24},
};
constexpr uint64_t kSeed0 = 0x5eed0001ULL;

// The configuration `run` (its index in the walk) of shape s at dtype dt: inputs in T (X, W, bias,
// dY) or f32 (A, B, the initial dA/dB of accumulate), uniform in [-1, 1), as validate always drew them.
static Problem make_problem(const Shape& s, DT dt, float pdrop, bool accumulate, int run, uint64_t seed) {
    std::mt19937_64 g(seed);
    Problem p;
    p.n = s.n;
    p.d_in = s.d_in;
    p.d_out = s.d_out;
    p.r = s.r;
    p.gamma = 2.0f / std::sqrt((float)s.r);
    p.drop = make_dropout(seed * 31 + 7, 5 + run, 3, pdrop, true);
    p.bias = (run & 1) == 0;
    p.accumulate = accumulate;
    p.x = rnd(g, (size_t)s.n * s.d_in, dt, -1, 1);
    p.w = rnd(g, (size_t)s.d_out * s.d_in, dt, -1, 1);
    p.b = rnd(g, s.d_out, dt, -1, 1);
    p.a = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
    p.bb = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
    p.dy = rnd(g, (size_t)s.n * s.d_out, dt, -1, 1);
    p.ga0 = rnd(g, (size_t)s.r * s.d_in, DT::F32, -1, 1);
    p.gb0 = rnd(g, (size_t)s.d_out * s.r, DT::F32, -1, 1);
    return p;
}

// pass when |got - ref| <= atol·sqrt(K) + rtol·|ref| + extra (K = the reduction length)
struct Tol {
    double atol, rtol;
};
static Tol tol_for(DT d, bool stored_in_dtype) {
    if (!stored_in_dtype || d == DT::F32) return {2e-6, 2e-5};
    if (d == DT::BF16) return {2e-3, 1e-2};
    return {5e-4, 2e-3};
}
static const Tol kExact = {0.0, 0.0};

// got[i] vs ref[i] for i < ref.size(); extra (optional) adds a per-element bound, scale multiplies
// the reference (Ug = T(γ·U) is checked against γ·U).
static int check(const char* what, const std::vector<float>& got, const std::vector<double>& ref, Tol t, int k,
                 const std::vector<double>* extra = nullptr, double scale = 1.0) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double want = scale * ref[i];
        const double lim = t.atol * std::sqrt((double)std::max(k, 1)) + t.rtol * std::fabs(want) +
                           (extra ? std::fabs(scale) * (*extra)[i] : 0.0);
        const double err = std::fabs((double)got[i] - want);
        if (!(err <= lim)) {  // NaN fails
            if (bad < 5) std::printf("    MISMATCH %s[%zu]: got %.9g ref %.9g (tol %.3g)\n", what, i, got[i], want, lim);
            ++bad;
        }
        if (err > worst) worst = err;
    }
    if (bad) std::printf("    %s: %d of %zu mismatches (max err %.3g)\n", what, bad, ref.size(), worst);
    return bad;
}

// A [rows, cols_pad] T tensor whose first cols columns must match ref [rows, cols] (scaled) and
// whose pad columns must be exactly zero (Ug, Vg, Bt).
static int check_padded(const char* what, const std::vector<float>& got, int rows, int cols, int cols_pad,
                        const std::vector<double>& ref, Tol t, int k, const std::vector<double>* extra, double scale) {
    std::vector<float> body((size_t)rows * cols);
    int bad_pad = 0;
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < cols; ++j) body[(size_t)i * cols + j] = got[(size_t)i * cols_pad + j];
        for (int j = cols; j < cols_pad; ++j)
            if (got[(size_t)i * cols_pad + j] != 0.0f || std::signbit(got[(size_t)i * cols_pad + j])) {
                if (bad_pad < 3) std::printf("    MISMATCH %s pad [%d][%d] = %.9g (must be +0)\n", what, i, j, got[(size_t)i * cols_pad + j]);
                ++bad_pad;
            }
    }
    return check(what, body, ref, t, k, extra, scale) + bad_pad;
}
