// `validate FAMILY [quick]`: the whole layer step of a family (the kernels its table rows name)
// against the double reference, at every shape of problems.cuh × the family's dtypes × dropout
// {0, 0.1} × {assign, accumulate} × {most row groups, one row group}, outputs poisoned (NaN) first.
// Tolerance: atol·sqrt(K) + rtol·|ref| (problems.cuh) + the sum-of-|terms| bounds of reference.cuh
// (fp32 sums; and for every family but v1, which rounds the LoRA operands to T somewhere,
// 4·u_T·Σ|expanded terms|).
#pragma once

namespace rsdev {

// Uploads problem p at dtype dt into c (inputs), outputs poisoned; workspaces come later (fills).
inline void upload_problem(Ctx& c, Dev& d, const Problem& p, DT dt) {
    c.dev = &d;
    c.dt = dt;
    c.n = p.n;
    c.d_in = p.d_in;
    c.d_out = p.d_out;
    c.r = p.r;
    c.r_pad = round_up8(p.r);
    c.gamma = p.gamma;
    c.drop = p.drop;
    c.accumulate = p.accumulate;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r, rp = c.r_pad;
    const size_t ts = dt_size(dt);
    c.x = d.upload(pack(dt, p.x));
    c.w = d.upload(pack(dt, p.w));
    c.bias = p.bias ? d.upload(pack(dt, p.b)) : nullptr;
    c.a = (float*)d.upload(pack(DT::F32, p.a));
    c.b = (float*)d.upload(pack(DT::F32, p.bb));
    c.dy = d.upload(pack(dt, p.dy));
    c.u = (float*)d.alloc((size_t)n * r * 4, 0xFF);  // 0xFF.. = NaN poison
    c.v = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    c.y = d.alloc((size_t)n * dout * ts, 0xFF);
    c.dx = d.alloc((size_t)n * di * ts, 0xFF);
    c.ga = p.accumulate ? (float*)d.upload(pack(DT::F32, p.ga0)) : (float*)d.alloc((size_t)r * di * 4, 0xFF);
    c.gb = p.accumulate ? (float*)d.upload(pack(DT::F32, p.gb0)) : (float*)d.alloc((size_t)dout * r * 4, 0xFF);
    c.at = d.alloc((size_t)r * di * ts, 0xFF);
    c.bt = d.alloc((size_t)dout * rp * ts, 0xFF);
    c.ug = d.alloc((size_t)n * rp * ts, 0xFF);
    c.vg = d.alloc((size_t)n * rp * ts, 0xFF);
}

// Checks every output the step wrote against e (and the T-rounding bounds bd when lora_t).
inline int check_outputs(const Ctx& c, const Problem& p, const Expected& e, const Bounds* bd) {
    const DT dt = c.dt;
    const int n = p.n, di = p.d_in, dout = p.d_out, r = p.r, rp = c.r_pad;
    const size_t ts = dt_size(dt);
    const std::set<std::string>& w = c.written;
    int bad = 0;
    for (const char* must : {"Y", "dB", "dA", "dX"})
        if (!w.count(must)) {
            std::printf("    the step wrote no %s (its family lacks the kernel)\n", must);
            ++bad;
        }
    auto dl = [&](DT t, const void* ptr, size_t count) { return unpack(t, download(ptr, count * dt_size(t)), count); };
    if (w.count("At")) {
        std::vector<double> ref(p.a.size());
        for (size_t q = 0; q < ref.size(); ++q) ref[q] = round_to(dt, p.a[q]);
        bad += check("At", dl(dt, c.at, (size_t)r * di), ref, kExact, 1);
    }
    if (w.count("Bt")) {
        std::vector<double> ref(p.bb.size());
        for (size_t q = 0; q < ref.size(); ++q) ref[q] = round_to(dt, p.bb[q]);
        bad += check_padded("Bt", dl(dt, c.bt, (size_t)dout * rp), dout, r, rp, ref, kExact, 1, nullptr, 1.0);
    }
    if (w.count("U")) bad += check("U", dl(DT::F32, c.u, (size_t)n * r), e.u, tol_for(dt, false), di, bd ? &bd->u : nullptr);
    if (w.count("Ug"))
        bad += check_padded("Ug", dl(dt, c.ug, (size_t)n * rp), n, r, rp, e.u, tol_for(dt, true), di, bd ? &bd->u : nullptr, p.gamma);
    if (w.count("Y")) bad += check("Y", dl(dt, c.y, (size_t)n * dout), e.y, tol_for(dt, true), di + r, bd ? &bd->y : nullptr);
    if (w.count("V")) bad += check("V", dl(DT::F32, c.v, (size_t)n * r), e.v, tol_for(dt, false), dout, bd ? &bd->v : nullptr);
    if (w.count("Vg"))
        bad += check_padded("Vg", dl(dt, c.vg, (size_t)n * rp), n, r, rp, e.v, tol_for(dt, true), dout, bd ? &bd->v : nullptr, p.gamma);
    if (w.count("dB")) bad += check("dB", dl(DT::F32, c.gb, (size_t)dout * r), e.db, tol_for(dt, false), n * 4, bd ? &bd->db : nullptr);
    if (w.count("dA")) bad += check("dA", dl(DT::F32, c.ga, (size_t)r * di), e.da, tol_for(dt, false), n * 4, bd ? &bd->da : nullptr);
    if (w.count("dX")) bad += check("dX", dl(dt, c.dx, (size_t)n * di), e.dx, tol_for(dt, true), dout + r, bd ? &bd->dx : nullptr);
    (void)ts;
    return bad;
}

// One configuration: the family's step, then merge (W is T; merged values vs W + γ·B·A).
inline int validate_one(const std::string& family, const Problem& p, DT dt, long long cap) {
    const bool lora_t = family != "v1";
    const Expected e = reference(p);
    const Bounds bd = bounds(p, e, lora_t ? dt_unit(dt) : 0.0);
    Dev d;
    Ctx c;
    upload_problem(c, d, p, dt);
    c.ws_cap = cap;
    run_layer_step(family, c);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    int bad = check_outputs(c, p, e, &bd);
    run_merge(family, c);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    bad += check("Wmerged", unpack(dt, download(c.w, (size_t)p.d_out * p.d_in * dt_size(dt)), (size_t)p.d_out * p.d_in), e.wm,
                 tol_for(dt, true), p.r);
    return bad;
}

// quick: per (shape, dtype) two of the eight (dropout, assign/accumulate, groups) combinations, one
// with dropout 0 and one with 0.1, rotating over shapes (for the CPU emulation in CI); the seeds
// are those of the full run, so a quick failure reproduces in the full run.
inline int validate(const std::string& family, bool quick) {
    const std::vector<DT> dts = family_dtypes(family);
    int failures = 0, runs = 0, checked = 0;
    for (const Shape& s : kShapes)
        for (int di = 0; di < 3; ++di)
            for (float pdrop : {0.0f, 0.1f})
                for (int acc = 0; acc < 2; ++acc)
                    for (long long cap : {1LL << 40, 1LL}) {  // the most groups (one per 64-row tile), and one group
                        const DT dt = (DT)di;
                        const int combo = acc * 2 + (cap == 1 ? 1 : 0);
                        const int shape_i = (int)(&s - kShapes);
                        const bool skip = (quick && combo != (shape_i + di + (pdrop > 0 ? 2 : 0)) % 4) ||
                                          std::find(dts.begin(), dts.end(), dt) == dts.end();
                        const uint64_t seed = kSeed0 + runs;
                        const int run = runs++;
                        if (skip) continue;
                        ++checked;
                        const Problem p = make_problem(s, dt, pdrop, acc == 1, run, seed);
                        const int bad = validate_one(family, p, dt, cap);
                        std::printf("%s %s %-4s n=%d d_in=%d d_out=%d r=%d p=%.1f %s %s seed=%llu\n", bad ? "FAIL" : "ok  ",
                                    family.c_str(), dt_name(dt), s.n, s.d_in, s.d_out, s.r, pdrop, acc ? "accumulate" : "assign",
                                    cap == 1 ? "groups=1" : "groups=max", (unsigned long long)seed);
                        std::fflush(stdout);
                        failures += bad ? 1 : 0;
                    }
    std::printf("%d passed, %d failed\n", checked - failures, failures);
    return failures ? 1 : 0;
}

}  // namespace rsdev
