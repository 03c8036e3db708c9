// `bigindex FAMILY`: a problem whose X, dX [n, d_in] and Y, dY [n, d_out] hold more than 2^31
// elements, so every element index and byte offset must be computed in 64 bits. The family's step
// (without the final reductions: the partials of the unchecked groups are garbage) runs with one
// row group per 64-row tile; checked against the double reference: the last row tile (a 37-row
// tail) of every row-indexed output and the last row group's dB and dA partials. A GPU runs the
// whole grids (~25 GB of device memory); the CPU emulation runs only the blocks of the last row
// tile / group (the grid rule says which grid coordinate indexes rows).
#pragma once

namespace rsdev {

inline int bigindex(const std::string& family) {
    const DT dt = DT::BF16;
    const std::vector<DT> dts = family_dtypes(family);
    if (std::find(dts.begin(), dts.end(), dt) == dts.end()) dev_die("bigindex runs bf16; family " + family + " has no bf16 rows");
    const int n = 600037, di = 4104, dout = 4101, r = 16;  // d_in a multiple of 8 (16-byte X loads), d_out not (element loads)
    const int last = (n - 1) / 64, row0 = last * 64, rows = n - row0;  // the last row tile: 37 rows
    const int groups = last + 1;                                      // one row group per row tile
    const bool lora_t = family != "v1";
    std::printf("bigindex: n=%d d_in=%d d_out=%d r=%d bf16: n*d_in = %.3g, n*d_out = %.3g elements (2^31 = %.3g); "
                "checking rows %d..%d, family %s\n", n, di, dout, r, (double)n * di, (double)n * dout, 2147483648.0, row0, n - 1,
                family.c_str());
    std::mt19937_64 g(0xB16);
    std::vector<float> x = rnd(g, (size_t)rows * di, dt, -1, 1), dy = rnd(g, (size_t)rows * dout, dt, -1, 1);
    std::vector<float> w = rnd(g, (size_t)dout * di, dt, -1, 1), b = rnd(g, dout, dt, -1, 1);
    std::vector<float> a = rnd(g, (size_t)r * di, DT::F32, -1, 1), bb = rnd(g, (size_t)dout * r, DT::F32, -1, 1);
    Dev d;
    Ctx c;
    c.dev = &d;
    c.dt = dt;
    c.n = n;
    c.d_in = di;
    c.d_out = dout;
    c.r = r;
    c.r_pad = round_up8(r);
    c.gamma = 2.0f / std::sqrt((float)r);
    c.drop = make_dropout(0xB16B16B16ULL, 0x100000003ULL, 7, 0.1f, true);
    c.force_rows_per_group = 64;
    c.raw_workspaces = true;
    c.only_last_rows = true;
    c.skip_reductions = true;
    const int rp = c.r_pad;
    char* X = (char*)d.alloc_raw((size_t)n * di * 2);
    char* DY = (char*)d.alloc_raw((size_t)n * dout * 2);
    char* Y = (char*)d.alloc_raw((size_t)n * dout * 2);
    char* DX = (char*)d.alloc_raw((size_t)n * di * 2);
    c.x = X;
    c.dy = DY;
    c.y = Y;
    c.dx = DX;
    c.w = d.upload(pack(dt, w));
    c.bias = d.upload(pack(dt, b));
    c.a = (float*)d.upload(pack(DT::F32, a));
    c.b = (float*)d.upload(pack(DT::F32, bb));
    c.u = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    c.v = (float*)d.alloc((size_t)n * r * 4, 0xFF);
    c.ug = d.alloc((size_t)n * rp * 2, 0xFF);
    c.vg = d.alloc((size_t)n * rp * 2, 0xFF);
    c.at = d.alloc((size_t)r * di * 2, 0xFF);
    c.bt = d.alloc((size_t)dout * rp * 2, 0xFF);
    c.ga = (float*)d.alloc((size_t)r * di * 4, 0xFF);
    c.gb = (float*)d.alloc((size_t)dout * r * 4, 0xFF);
    // the partials (layouts [groups, d_out, r] and [groups, r, d_in] in every family): the last
    // group's slot poisoned, the fills reuse these buffers
    c.ws_db = (float*)d.alloc_raw((size_t)groups * dout * r * 4);
    c.ws_db_bytes = (size_t)groups * dout * r * 4;
    c.ws_da = (float*)d.alloc_raw((size_t)groups * r * di * 4);
    c.ws_da_bytes = (size_t)groups * r * di * 4;
    CUDA_CHECK(cudaMemset(c.ws_db + (size_t)last * dout * r, 0xFF, (size_t)dout * r * 4));
    CUDA_CHECK(cudaMemset(c.ws_da + (size_t)last * r * di, 0xFF, (size_t)r * di * 4));
    // the checked rows: inputs uploaded, outputs poisoned (NaN)
    const std::vector<unsigned char> xb = pack(dt, x), dyb = pack(dt, dy);
    CUDA_CHECK(cudaMemcpy(X + (size_t)row0 * di * 2, xb.data(), xb.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(DY + (size_t)row0 * dout * 2, dyb.data(), dyb.size(), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(Y + (size_t)row0 * dout * 2, 0xFF, (size_t)rows * dout * 2));
    CUDA_CHECK(cudaMemset(DX + (size_t)row0 * di * 2, 0xFF, (size_t)rows * di * 2));

    run_layer_step(family, c);
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());

    // double reference on the last rows (mask of the absolute row)
    const double gamma = c.gamma, unit = dt_unit(dt), kt = lora_t ? 4 * unit : 0.0;
    std::vector<double> mk((size_t)rows * di);
    for (int i = 0; i < rows; ++i)
        for (int c2 = 0; c2 < di; ++c2) mk[(size_t)i * di + c2] = rs_dropout_one(c.drop, (uint32_t)(row0 + i), (uint32_t)c2);
    auto xd = [&](int i, int c2) { double m = mk[(size_t)i * di + c2]; return m == 0.0 ? 0.0 : (double)(x[(size_t)i * di + c2] * (float)m); };
    std::vector<double> eu((size_t)rows * r), su((size_t)rows * r), ev((size_t)rows * r), sv((size_t)rows * r);
    std::vector<double> ey((size_t)rows * dout), by((size_t)rows * dout), edx((size_t)rows * di), bdx((size_t)rows * di);
    for (int i = 0; i < rows; ++i) {
        for (int j = 0; j < r; ++j) {
            double s = 0, m = 0, s2 = 0, m2 = 0;
            for (int c2 = 0; c2 < di; ++c2) {
                const double t = xd(i, c2) * a[(size_t)j * di + c2];
                s += t;
                m += std::fabs(t);
            }
            for (int o = 0; o < dout; ++o) {
                const double t = (double)dy[(size_t)i * dout + o] * bb[(size_t)o * r + j];
                s2 += t;
                m2 += std::fabs(t);
            }
            eu[(size_t)i * r + j] = s;
            su[(size_t)i * r + j] = m;
            ev[(size_t)i * r + j] = s2;
            sv[(size_t)i * r + j] = m2;
        }
        for (int o = 0; o < dout; ++o) {
            double s = b[o], l = 0, mag = 0;
            for (int c2 = 0; c2 < di; ++c2) s += (double)x[(size_t)i * di + c2] * w[(size_t)o * di + c2];
            for (int j = 0; j < r; ++j) {
                l += eu[(size_t)i * r + j] * bb[(size_t)o * r + j];
                mag += su[(size_t)i * r + j] * std::fabs(bb[(size_t)o * r + j]);
            }
            ey[(size_t)i * dout + o] = s + gamma * l;
            by[(size_t)i * dout + o] = kt * gamma * mag;
        }
        for (int c2 = 0; c2 < di; ++c2) {
            double s = 0, l = 0, mag = 0;
            for (int o = 0; o < dout; ++o) s += (double)dy[(size_t)i * dout + o] * w[(size_t)o * di + c2];
            for (int j = 0; j < r; ++j) {
                l += ev[(size_t)i * r + j] * a[(size_t)j * di + c2];
                mag += sv[(size_t)i * r + j] * std::fabs(a[(size_t)j * di + c2]);
            }
            edx[(size_t)i * di + c2] = s + gamma * l * mk[(size_t)i * di + c2];
            bdx[(size_t)i * di + c2] = kt * gamma * mk[(size_t)i * di + c2] * mag;
        }
    }
    std::vector<double> bu(su.size()), bv(sv.size());
    for (size_t q = 0; q < su.size(); ++q) {
        bu[q] = (kt + 0x1p-24 * std::sqrt((double)di)) * su[q];  // T rounding + the fp32 sum (reference.cuh bounds())
        bv[q] = (kt + 0x1p-24 * std::sqrt((double)dout)) * sv[q];
    }
    int bad = 0;
    const std::set<std::string>& wr = c.written;
    // U and V as the kernels wrote them: the partials are checked against sums over these
    const std::vector<float> gu = unpack(DT::F32, download(c.u + (size_t)row0 * r, (size_t)rows * r * 4), (size_t)rows * r);
    const std::vector<float> gv = unpack(DT::F32, download(c.v + (size_t)row0 * r, (size_t)rows * r * 4), (size_t)rows * r);
    if (wr.count("U")) bad += check("U", gu, eu, tol_for(dt, false), di, &bu);
    if (wr.count("Ug"))
        bad += check_padded("Ug", unpack(dt, download((char*)c.ug + (size_t)row0 * rp * 2, (size_t)rows * rp * 2), (size_t)rows * rp), rows,
                            r, rp, eu, tol_for(dt, true), di, &bu, gamma);
    bad += check("Y", unpack(dt, download(Y + (size_t)row0 * dout * 2, (size_t)rows * dout * 2), (size_t)rows * dout), ey,
                 tol_for(dt, true), di + r, &by);
    if (wr.count("V")) bad += check("V", gv, ev, tol_for(dt, false), dout, &bv);
    if (wr.count("Vg"))
        bad += check_padded("Vg", unpack(dt, download((char*)c.vg + (size_t)row0 * rp * 2, (size_t)rows * rp * 2), (size_t)rows * rp), rows,
                            r, rp, ev, tol_for(dt, true), dout, &bv, gamma);
    bad += check("dX", unpack(dt, download(DX + (size_t)row0 * di * 2, (size_t)rows * di * 2), (size_t)rows * di), edx,
                 tol_for(dt, true), dout + r, &bdx);
    // the last group's partials: db_scale·P ≈ γ·Σ_i dY·U, da_scale·P ≈ γ·Σ_i V·D(X), over the
    // kernels' own U and V; bound: the fp32 sum of `rows` products (rows·2^-24·Σ|t|) and, when the
    // family rounds γ·U / γ·V to T, 4·u_T·Σ|t|
    const double fb = gamma / c.db_scale, fa = gamma / c.da_scale;
    std::vector<double> ewb((size_t)dout * r, 0.0), ewa((size_t)r * di, 0.0), bound_b((size_t)dout * r, 0.0), bound_a((size_t)r * di, 0.0);
    for (int o = 0; o < dout; ++o)
        for (int j = 0; j < r; ++j)
            for (int i = 0; i < rows; ++i) {
                const double t = fb * (double)dy[(size_t)i * dout + o] * gu[(size_t)i * r + j];
                ewb[(size_t)o * r + j] += t;
                bound_b[(size_t)o * r + j] += (rows * 0x1p-24 + kt) * std::fabs(t);
            }
    for (int j = 0; j < r; ++j)
        for (int c2 = 0; c2 < di; ++c2)
            for (int i = 0; i < rows; ++i) {
                const double t = fa * (double)gv[(size_t)i * r + j] * xd(i, c2);
                ewa[(size_t)j * di + c2] += t;
                bound_a[(size_t)j * di + c2] += (rows * 0x1p-24 + kt) * std::fabs(t);
            }
    bad += check("dB partial", unpack(DT::F32, download(c.ws_db + (size_t)last * dout * r, (size_t)dout * r * 4), (size_t)dout * r), ewb,
                 tol_for(dt, false), rows, &bound_b);
    bad += check("dA partial", unpack(DT::F32, download(c.ws_da + (size_t)last * r * di, (size_t)r * di * 4), (size_t)r * di), ewa,
                 tol_for(dt, false), rows, &bound_a);
    std::printf("%s bigindex %s\n%d passed, %d failed\n", bad ? "FAIL" : "ok  ", family.c_str(), bad ? 0 : 1, bad ? 1 : 0);
    return bad ? 1 : 0;
}

}  // namespace rsdev
