// `bench FAMILY [JSONL|-] [NxDINxDOUT,...]`: the median time (CUDA events, 20 reps after 3 warm-ups)
// of each part of the family's layer step at bf16, dropout 0.1, r = 16, 64, 256, by default at the
// PERFORMANCE.md reference shape 8192x4096x4096 (../shared/docs/PERFORMANCE.md, outside this
// repository). Parts (the grouping the results report sums):
// prep, down, forward, vdb (+ vdb_reduce + reduce(dB)), da (+ reduce(dA)), dx. Prints per part
// ms, TFLOP/s, the roofline floor of ../shared/tools/floor.py (790 TFLOP/s, 4.3 TB/s) and
// floor/measured; with JSONL, one "kernel" line per part and one "launch" line per kernel (bench/
// RESULTS.md is generated from them: jmh/bench.sh gpu-import).
#pragma once
#if !defined(RS_EMULATE)

namespace rsdev {

struct BenchPart {
    const char* name;
    std::vector<Role> roles;
};

inline int bench(const std::string& family, const char* jsonl, const char* shapes_arg) {
    FILE* json = nullptr;
    if (jsonl && std::string(jsonl) != "-") {
        json = std::fopen(jsonl, "w");
        if (!json) dev_die(std::string("cannot write ") + jsonl);
    }
    const DT dt = DT::BF16;
    const std::vector<DT> dts = family_dtypes(family);
    if (std::find(dts.begin(), dts.end(), dt) == dts.end()) dev_die("bench runs bf16; family " + family + " has no bf16 rows");
    std::vector<Shape> shapes;
    const std::string sa = shapes_arg ? shapes_arg : "8192x4096x4096";
    for (size_t pos = 0; pos < sa.size();) {
        size_t end = sa.find(',', pos);
        if (end == std::string::npos) end = sa.size();
        Shape s{0, 0, 0, 0};
        if (std::sscanf(sa.substr(pos, end - pos).c_str(), "%dx%dx%d", &s.n, &s.d_in, &s.d_out) != 3 || s.n < 1 || s.d_in < 1 || s.d_out < 1)
            dev_die("bad shape '" + sa.substr(pos, end - pos) + "' (want NxDINxDOUT)");
        shapes.push_back(s);
        pos = end + 1;
    }
    const int version = std::atoi(family.c_str() + 1);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    const int reps = 20;
    std::printf("device: %s (sm_%d%d), bf16, dropout 0.1, median of %d, family %s\n", prop.name, prop.major, prop.minor, reps,
                family.c_str());
    std::printf("%-10s %6s %6s %6s %5s %10s %9s %9s %6s  %s\n", "part", "n", "d_in", "d_out", "r", "ms", "TFLOP/s", "floor_ms",
                "floor%", "kernels");
    const std::vector<BenchPart> parts = {{"prep", {Role::PREP}},
                                          {"down", {Role::DOWN}},
                                          {"forward", {Role::FORWARD}},
                                          {"vdb", {Role::VDB, Role::VDB_REDUCE, Role::REDUCE_DB}},
                                          {"da", {Role::DA, Role::REDUCE_DA}},
                                          {"dx", {Role::DX}}};
    for (const Shape& sh : shapes)
        for (int r : {16, 64, 256}) {
            const int n = sh.n, di = sh.d_in, dout = sh.d_out;
            Dev d;
            Ctx c;
            std::mt19937_64 g(42);
            Problem p;
            p.n = n;
            p.d_in = di;
            p.d_out = dout;
            p.r = r;
            p.gamma = 16.0f / std::sqrt((float)r);
            p.drop = make_dropout(1234, 1, 0, 0.1f, true);
            p.bias = false;
            p.accumulate = false;
            p.x = rnd(g, (size_t)n * di, dt, -1, 1);
            p.w = rnd(g, (size_t)dout * di, dt, -1, 1);
            p.dy = rnd(g, (size_t)n * dout, dt, -1, 1);
            p.a = rnd(g, (size_t)r * di, DT::F32, -1, 1);
            p.bb = rnd(g, (size_t)dout * r, DT::F32, -1, 1);
            upload_problem(c, d, p, dt);
            c.ws_cap = 256LL << 20;  // the Java default (-Drslora.cuda.workspaceMiB)
            run_layer_step(family, c);  // allocates the workspaces
            CUDA_CHECK(cudaDeviceSynchronize());
            const auto plan = step_plan(family, dt, r);
            const double E = 2, X = (double)n * di * E, Y = (double)n * dout * E, W = (double)di * dout * E;
            const double A = (double)r * di * E, B = (double)dout * r * E, U = (double)n * r * E;
            for (const BenchPart& part : parts) {
                std::vector<std::pair<Role, const Kernel*>> mine;
                for (const auto& rk : plan)
                    if (std::find(part.roles.begin(), part.roles.end(), rk.first) != part.roles.end()) mine.push_back(rk);
                if (mine.empty()) continue;
                std::string names;
                for (const auto& rk : mine) names += (names.empty() ? "" : "+") + rk.second->row.name;
                const float ms = median_ms([&] {
                    for (const auto& rk : mine) rk.second->run(c, rk.first);
                }, reps);
                const std::string pn = part.name;
                const double flop = pn == "down" || pn == "da" ? 2.0 * n * di * r
                                  : pn == "forward" ? 2.0 * n * dout * ((double)di + r)
                                  : pn == "vdb" ? 4.0 * n * dout * r
                                  : pn == "dx" ? 2.0 * n * di * ((double)dout + r) : 0.0;
                const double bytes = pn == "down" ? X + A + U : pn == "forward" ? X + W + U + B + Y : pn == "vdb" ? Y + 2 * B + 2 * U
                                   : pn == "da" ? X + U + A : pn == "dx" ? Y + W + U + A + X : A + B;
                const double floor_ms = std::max(flop / 790e12, bytes / 4.3e12) * 1e3;
                std::printf("%-10s %6d %6d %6d %5d %10.4f %9.2f %9.4f %5.0f%%  %s\n", part.name, n, di, dout, r, ms,
                            flop / (ms * 1e-3) / 1e12, floor_ms, 100.0 * floor_ms / ms, names.c_str());
                if (json) {
                    std::fprintf(json,
                                 "{\"kind\": \"kernel\", \"device\": \"%s\", \"sm\": \"%d%d\", \"family\": \"%s\", \"version\": %d, "
                                 "\"kernel\": \"%s\", \"kernels\": \"%s\", \"dtype\": \"bf16\", \"n\": %d, \"d_in\": %d, \"d_out\": %d, "
                                 "\"r\": %d, \"dropout\": 0.1, \"reps\": %d, \"median_ms\": %.6f, \"flop\": %.0f, \"bytes\": %.0f, "
                                 "\"floor_ms\": %.6f}\n",
                                 prop.name, prop.major, prop.minor, family.c_str(), version, part.name, names.c_str(), n, di, dout, r,
                                 reps, ms, flop, bytes, floor_ms);
                    std::fflush(json);  // whole lines survive a run cut short by its timeout
                }
            }
            if (json) {  // each kernel alone (the finer view; the report sums the "kernel" lines)
                for (const auto& rk : plan) {
                    if (rk.first == Role::REDUCE_DB || rk.first == Role::REDUCE_DA) continue;  // needs its producer first
                    const float ms = median_ms([&] { rk.second->run(c, rk.first); }, reps);
                    std::fprintf(json,
                                 "{\"kind\": \"launch\", \"device\": \"%s\", \"family\": \"%s\", \"role\": \"%s\", \"name\": \"%s\", "
                                 "\"n\": %d, \"d_in\": %d, \"d_out\": %d, \"r\": %d, \"median_ms\": %.6f}\n",
                                 prop.name, family.c_str(), role_name(rk.first), rk.second->row.name.c_str(), n, di, dout, r, ms);
                    std::fflush(json);
                }
            }
        }
    if (json) std::fclose(json);
    return 0;
}

}  // namespace rsdev
#endif
