// The CPU reference of one layer step: double accumulation over the (already dtype-rounded)
// inputs, SPEC.md §1 shapes:
//   U = D(X)·Aᵀ, Y = X·Wᵀ + bias + γ·U·Bᵀ, V = dY·B, dB (=|+=) γ·dYᵀ·U, dA (=|+=) γ·Vᵀ·D(X),
//   dX = dY·W + γ·D'(V·A), merged W + γ·B·A.
// It also returns the sums of |terms| the error bounds need (bounds()): S_U = |D(X)|·|A|ᵀ and
// S_V = |dY|·|B| [n, r].
#pragma once
#include <vector>

struct Problem {
    int n, d_in, d_out, r;
    float gamma;
    RsDropout drop;
    bool bias, accumulate;
    std::vector<float> x, w, b, a, bb, dy, ga0, gb0;  // ga0/gb0: initial dA/dB for accumulate
};

struct Expected {
    std::vector<double> u, y, v, db, da, dx, wm;
    std::vector<float> mk;  // the mask multiplier of X [n, d_in]: scale or 0 (1 when dropout is off)
    std::vector<double> su, sv;  // S_U, S_V [n, r]
};

static Expected reference(const Problem& p) {
    Expected e;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r;
    e.mk.resize((size_t)n * di);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < di; ++c) e.mk[(size_t)i * di + c] = rs_dropout_one(p.drop, (uint32_t)i, (uint32_t)c);
    // D(X) as the kernels see it: x·m rounded to f32 (m = 0: exactly 0, even for a NaN x)
    std::vector<double> xd((size_t)n * di);
    for (size_t k = 0; k < xd.size(); ++k) xd[k] = e.mk[k] == 0.0f ? 0.0 : (double)(p.x[k] * e.mk[k]);
    e.u.assign((size_t)n * r, 0.0);
    e.su.assign((size_t)n * r, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < r; ++j) {
            double s = 0, m = 0;
            for (int c = 0; c < di; ++c) {
                const double t = xd[(size_t)i * di + c] * p.a[(size_t)j * di + c];
                s += t;
                m += std::fabs(t);
            }
            e.u[(size_t)i * r + j] = s;
            e.su[(size_t)i * r + j] = m;
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
    e.sv.assign((size_t)n * r, 0.0);
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < r; ++j) {
            double s = 0, m = 0;
            for (int o = 0; o < dout; ++o) {
                const double t = (double)p.dy[(size_t)i * dout + o] * p.bb[(size_t)o * r + j];
                s += t;
                m += std::fabs(t);
            }
            e.v[(size_t)i * r + j] = s;
            e.sv[(size_t)i * r + j] = m;
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
            for (int i = 0; i < n; ++i) s += e.v[(size_t)i * r + j] * xd[(size_t)i * di + c];
            e.da[(size_t)j * di + c] = (p.accumulate ? p.ga0[(size_t)j * di + c] : 0.0) + p.gamma * s;
        }
    e.dx.assign((size_t)n * di, 0.0);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < di; ++c) {
            double s = 0;
            for (int o = 0; o < dout; ++o) s += (double)p.dy[(size_t)i * dout + o] * p.w[(size_t)o * di + c];
            double l = 0;
            for (int j = 0; j < r; ++j) l += e.v[(size_t)i * r + j] * p.a[(size_t)j * di + c];
            e.dx[(size_t)i * di + c] = s + p.gamma * l * e.mk[(size_t)i * di + c];
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

// Per-element error bounds added to the check's atol/rtol (Tol), from sums of |terms|:
//   - fp32 sums (every family): an fp32 sum of K terms is off by about sqrt(K)·2^-24·Σ|terms|; U, V
//     are one sum (K = d_in, d_out), dB and dA two chained ones (the outer over n of |dY·U| or
//     |V·D(X)|, the inner the U or V inside each term: K = d_in or d_out over the expanded terms);
//   - t_unit > 0 (every family but v1, which rounds the LoRA operands γ·U, B, γ·V, A to T):
//     4·u_T·Σ|fully expanded terms| of each output's LoRA part (u_T = 2^-8 bf16, 2^-11 f16). Two
//     roundings per expanded term at most (an operand, and the rounded intermediate γ·U or γ·V).
struct Bounds {
    std::vector<double> u, v, y, db, da, dx;
};
static Bounds bounds(const Problem& p, const Expected& e, double t_unit) {
    Bounds b;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r;
    const double g = std::fabs(p.gamma), k = 4 * t_unit, u32 = 0x1p-24;
    b.u.resize(e.su.size());
    b.v.resize(e.sv.size());
    for (size_t q = 0; q < e.su.size(); ++q) {
        b.u[q] = (k + u32 * std::sqrt((double)di)) * e.su[q];
        b.v[q] = (k + u32 * std::sqrt((double)dout)) * e.sv[q];
    }
    b.y.assign((size_t)n * dout, 0.0);
    for (int i = 0; i < n; ++i)
        for (int o = 0; o < dout; ++o) {
            double s = 0;
            for (int j = 0; j < r; ++j) s += e.su[(size_t)i * r + j] * std::fabs(p.bb[(size_t)o * r + j]);
            b.y[(size_t)i * dout + o] = k * g * s;
        }
    b.db.assign((size_t)dout * r, 0.0);
    for (int o = 0; o < dout; ++o)
        for (int j = 0; j < r; ++j) {
            double direct = 0, expanded = 0;
            for (int i = 0; i < n; ++i) {
                const double dy = std::fabs((double)p.dy[(size_t)i * dout + o]);
                direct += dy * std::fabs(e.u[(size_t)i * r + j]);
                expanded += dy * e.su[(size_t)i * r + j];
            }
            b.db[(size_t)o * r + j] = g * (u32 * (std::sqrt((double)n) * direct + std::sqrt((double)di) * expanded) + k * expanded);
        }
    b.da.assign((size_t)r * di, 0.0);
    for (int j = 0; j < r; ++j)
        for (int c = 0; c < di; ++c) {
            double direct = 0, expanded = 0;
            for (int i = 0; i < n; ++i) {
                const double xd = std::fabs((double)p.x[(size_t)i * di + c] * e.mk[(size_t)i * di + c]);
                direct += std::fabs(e.v[(size_t)i * r + j]) * xd;
                expanded += e.sv[(size_t)i * r + j] * xd;
            }
            b.da[(size_t)j * di + c] = g * (u32 * (std::sqrt((double)n) * direct + std::sqrt((double)dout) * expanded) + k * expanded);
        }
    b.dx.assign((size_t)n * di, 0.0);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < di; ++c) {
            double s = 0;
            for (int j = 0; j < r; ++j) s += e.sv[(size_t)i * r + j] * std::fabs(p.a[(size_t)j * di + c]);
            b.dx[(size_t)i * di + c] = k * g * e.mk[(size_t)i * di + c] * s;
        }
    return b;
}
