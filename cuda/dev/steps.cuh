// One layer step of any family, driven by the table: a Ctx holds the layer's device tensors and
// scalars; each params struct has one fill() that takes its fields from the Ctx (and allocates the
// workspaces it needs); the family's rows say which kernel runs each role. Adding a kernel with an
// existing params struct needs a table row only; a new params struct needs its fill() here.
#pragma once
#include <set>
#include <string>

namespace rsdev {

struct Ctx {
    DT dt = DT::F32;
    int n = 0, d_in = 0, d_out = 0, r = 0, r_pad = 0;  // r_pad = round_up(r, 8)
    float gamma = 1.0f;
    float merge_sign = 1.0f;  // +1 merge, -1 unmerge
    RsDropout drop{};
    bool accumulate = false;
    long long ws_cap = 1LL << 40;  // cap on split-over-n partial bytes (1: one row group)
    int force_rows_per_group = 0;  // > 0: every split over n uses this (bigindex: 64 = one group per row tile)
    bool raw_workspaces = false;   // allocate workspaces unfilled (bigindex: lazily backed multi-GB buffers)
    bool only_last_rows = false;   // emulation: run only the blocks of the last row tile / group (bigindex)
    bool skip_reductions = false;  // leave dB/dA as partials (bigindex checks the last group's partial)
    Dev* dev = nullptr;
    // the layer (device): T = dt
    void *x = nullptr, *w = nullptr, *bias = nullptr, *dy = nullptr, *y = nullptr, *dx = nullptr;  // T
    float *a = nullptr, *b = nullptr;    // A [r, d_in], B [d_out, r] f32
    float *u = nullptr, *v = nullptr;    // U, V [n, r] f32
    float *ga = nullptr, *gb = nullptr;  // dA [r, d_in], dB [d_out, r] f32
    void *at = nullptr, *bt = nullptr;   // At [r, d_in], Bt [d_out, r_pad] T (v3/v4)
    void *ug = nullptr, *vg = nullptr;   // Ug = T(γ·U), Vg = T(γ·V) [n, r_pad] T (v3/v4)
    // workspaces (allocated by the fills that use them, reused while large enough)
    float *ws_db = nullptr, *ws_da = nullptr, *ws_v = nullptr;
    size_t ws_db_bytes = 0, ws_da_bytes = 0, ws_v_bytes = 0;
    // what the step did: outputs written ("U", "Ug", ...), partials waiting for their reduce
    std::set<std::string> written;
    bool db_pending = false, da_pending = false;
    int db_groups = 0, da_groups = 0, v_chunks = 0;
    float db_scale = 1.0f, da_scale = 1.0f;  // the reduce's multiplier (γ when the partials carry none)
};

inline int round_up8(int r) { return (r + 7) / 8 * 8; }

inline float* workspace(Ctx& c, float*& buf, size_t& have, size_t bytes) {
    if (bytes == 0) bytes = 4;
    if (have < bytes) {
        buf = (float*)(c.raw_workspaces ? c.dev->alloc_raw(bytes) : c.dev->alloc(bytes, 0xFF));
        have = bytes;
    }
    return buf;
}

inline void need_role(Role got, Role want, const KernelRow& row) {
    if (got != want)
        dev_die("table row " + row.family + "/" + row.step + "/" + row.dtype + " names " + row.name + ", whose params belong to step " +
                role_name(want) + ", not " + role_name(got));
}

inline bool role_needed(const Ctx& c, Role role) {
    if (role == Role::REDUCE_DB) return c.db_pending && !c.skip_reductions;
    if (role == Role::REDUCE_DA) return c.da_pending && !c.skip_reductions;
    return true;
}

// ---- v1/v2 params ----------------------------------------------------------------------------
inline GridArgs fill(RsLoraDownParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::DOWN, row);
    p = RsLoraDownParams{c.x, c.a, c.u, c.n, c.d_in, c.r, c.drop};
    c.written.insert("U");
    return {};
}

inline GridArgs fill(RsLoraForwardParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::FORWARD, row);
    p = RsLoraForwardParams{c.x, c.w, c.bias, c.u, c.b, c.y, c.n, c.d_in, c.d_out, c.r, c.gamma};
    c.written.insert("Y");
    return {};
}

inline int v1_rows_per_group(const Ctx& c, long long out_elems) {
    return c.force_rows_per_group > 0 ? c.force_rows_per_group : rows_per_group(c.n, out_elems, c.ws_cap);
}

inline GridArgs fill(RsLoraBackwardVdbParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::VDB, row);
    GridArgs g;
    const int rpg = v1_rows_per_group(c, (long long)c.d_out * c.r);
    g.groups = (int)cdiv(c.n, rpg);
    float* ws = workspace(c, c.ws_db, c.ws_db_bytes, (size_t)g.groups * c.d_out * c.r * 4);
    p = RsLoraBackwardVdbParams{c.dy, c.b, c.u, c.v, ws, c.n, c.d_out, c.r, rpg};
    c.written.insert("V");
    c.db_pending = true;
    c.db_groups = g.groups;
    c.db_scale = c.gamma;
    return g;
}

inline GridArgs fill(RsLoraBackwardDaParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::DA, row);
    GridArgs g;
    const int rpg = v1_rows_per_group(c, (long long)c.r * c.d_in);
    g.groups = (int)cdiv(c.n, rpg);
    float* ws = workspace(c, c.ws_da, c.ws_da_bytes, (size_t)g.groups * c.r * c.d_in * 4);
    p = RsLoraBackwardDaParams{c.v, c.x, ws, c.n, c.d_in, c.r, rpg, c.drop};
    c.da_pending = true;
    c.da_groups = g.groups;
    c.da_scale = c.gamma;
    return g;
}

inline GridArgs fill(RsReduceParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    GridArgs g;
    if (role == Role::REDUCE_DB) {
        g.count = (long long)c.d_out * c.r;
        p = RsReduceParams{c.ws_db, c.gb, (int64_t)g.count, c.db_groups, c.db_scale, c.accumulate ? 1 : 0};
        c.db_pending = false;
        c.written.insert("dB");
    } else if (role == Role::REDUCE_DA) {
        g.count = (long long)c.r * c.d_in;
        p = RsReduceParams{c.ws_da, c.ga, (int64_t)g.count, c.da_groups, c.da_scale, c.accumulate ? 1 : 0};
        c.da_pending = false;
        c.written.insert("dA");
    } else {
        need_role(role, Role::REDUCE_DB, row);
    }
    return g;
}

inline GridArgs fill(RsLoraBackwardDxParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::DX, row);
    p = RsLoraBackwardDxParams{c.dy, c.w, c.v, c.a, c.dx, c.n, c.d_in, c.d_out, c.r, c.gamma, c.drop};
    c.written.insert("dX");
    return {};
}

inline GridArgs fill(RsMergeParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::MERGE, row);
    p = RsMergeParams{c.w, c.b, c.a, c.d_out, c.d_in, c.r, c.merge_sign * c.gamma};
    c.written.insert("Wmerged");
    return {};
}

// ---- v3/v4 memory-bound params (cuda/kernels/mb_*.cuh) -----------------------------------------
// The row groups of a split over n (grid rules mb_vdb, mb_da in cuda/kernels.table): about `want`
// groups (at least 1, at most one per 64-row tile), at most what the partials' byte budget allows.
inline int mb_rows_per_group(const Ctx& c, long long want, long long out_elems) {
    if (c.force_rows_per_group > 0) return c.force_rows_per_group;
    const long long tiles = (c.n + 63) / 64;
    long long groups = std::min(std::max(want, 1LL), tiles);
    groups = std::min(groups, std::max(1LL, c.ws_cap / (out_elems * 4)));
    return (int)(((tiles + groups - 1) / groups) * 64);
}
constexpr long long kMbTargetBlocks = 128;  // the mb grid rules aim at about this many blocks (device independent)

inline int rank_chunks(const Ctx& c, const KernelRow& row) { return row.rmax > 0 ? (int)cdiv(c.r, row.rmax) : 1; }

inline GridArgs fill(RsMbPrepParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::PREP, row);
    p = RsMbPrepParams{c.a, c.b, c.at, c.bt, c.r, c.r_pad, c.d_in, c.d_out};
    c.written.insert("At");
    c.written.insert("Bt");
    GridArgs g;
    g.count = (long long)c.r * c.d_in + (long long)c.d_out * c.r_pad;
    return g;
}

inline GridArgs fill(RsMbDownParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::DOWN, row);
    p = RsMbDownParams{c.x, c.at, c.u, c.ug, c.n, c.d_in, c.r, c.r_pad, c.gamma, c.drop};
    c.written.insert("U");
    c.written.insert("Ug");
    GridArgs g;
    g.rchunks = rank_chunks(c, row);
    return g;
}

inline GridArgs fill(RsMbVdbParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::VDB, row);
    const int rc = row.rmax;
    if ((rc != 16 && rc != 64) || row.smem < (size_t)rsmb::vdb_smem_bytes(rc))
        dev_die("table row " + row.name + ": rmax " + std::to_string(rc) + " / smem " + std::to_string(row.smem) +
                " do not match the vdb kernel (rmax 16 or 64, smem " + std::to_string(rsmb::vdb_smem_bytes(rc)) + ")");
    GridArgs g;
    g.rchunks = rank_chunks(c, row);
    const int cpc = rsmb::vdb_chunk_cols(rc);
    g.chunks = (int)cdiv(c.d_out, cpc);
    const int rpg = mb_rows_per_group(c, (long long)cdiv(kMbTargetBlocks, (long long)g.chunks * g.rchunks), (long long)c.d_out * c.r);
    g.groups = (int)cdiv(c.n, rpg);
    float* wv = workspace(c, c.ws_v, c.ws_v_bytes, (size_t)g.chunks * c.n * c.r * 4);
    float* wb = workspace(c, c.ws_db, c.ws_db_bytes, (size_t)g.groups * c.d_out * c.r * 4);
    p = RsMbVdbParams{c.dy, c.bt, c.ug, wv, wb, c.n, c.d_out, c.r, c.r_pad, rpg, cpc};
    c.v_chunks = g.chunks;
    c.db_groups = g.groups;
    c.db_pending = true;  // reduced by vdb_reduce, which also forms V and Vg
    c.db_scale = 1.0f;    // γ is in Ug
    return g;
}

inline GridArgs fill(RsMbVdbReduceParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::VDB_REDUCE, row);
    const bool db = !c.skip_reductions;
    p = RsMbVdbReduceParams{c.ws_v, db ? c.ws_db : nullptr, c.v, c.vg, c.gb, c.n, c.d_out, c.r, c.r_pad, c.v_chunks,
                            c.db_groups, c.gamma, c.accumulate ? 1 : 0};
    c.written.insert("V");
    c.written.insert("Vg");
    if (db) {
        c.written.insert("dB");
        c.db_pending = false;
    }
    GridArgs g;
    g.count = (long long)c.n * c.r_pad + (db ? (long long)c.d_out * c.r : 0);
    return g;
}

inline GridArgs fill(RsMbDaParams& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    need_role(role, Role::DA, row);
    GridArgs g;
    g.rchunks = rank_chunks(c, row);
    g.chunks = (int)cdiv(c.d_in, 64);
    const int rpg = mb_rows_per_group(c, (long long)cdiv(kMbTargetBlocks, (long long)g.chunks * g.rchunks), (long long)c.r * c.d_in);
    g.groups = (int)cdiv(c.n, rpg);
    float* ws = workspace(c, c.ws_da, c.ws_da_bytes, (size_t)g.groups * c.r * c.d_in * 4);
    p = RsMbDaParams{c.x, c.vg, ws, c.n, c.d_in, c.r, c.r_pad, rpg, c.drop};
    c.da_pending = true;
    c.da_groups = g.groups;
    c.da_scale = 1.0f;  // γ is in Vg, the dropout scale in the partials
    return g;
}

// ---- grid rules (the list in cuda/kernels.table) ----------------------------------------------
inline dim3 grid_of(const KernelRow& row, const Ctx& c, const GridArgs& g) {
    const std::string& rule = row.grid;
    auto t = [](long long e) { return cdiv(e, 64); };
    if (rule == "tiles_r_n") return dim3(t(c.r), t(c.n));
    if (rule == "tiles_dout_n") return dim3(t(c.d_out), t(c.n));
    if (rule == "tiles_din_n") return dim3(t(c.d_in), t(c.n));
    if (rule == "tiles_din_dout") return dim3(t(c.d_in), t(c.d_out));
    if (rule == "tiles_r_groups") return dim3(t(c.r), (unsigned)g.groups);
    if (rule == "tiles_din_r_groups") return dim3(t(c.d_in), t(c.r), (unsigned)g.groups);
    if (rule == "elementwise") return dim3((unsigned)std::min<long long>(cdiv(g.count, 256), 65536));
    if (rule == "gradnorm") return dim3((unsigned)std::min<long long>(cdiv(g.count, 256), 1024));
    if (rule == "one") return dim3(1);
    if (rule == "mb_rows") return dim3(t(c.n), (unsigned)g.rchunks);
    if (rule == "mb_vdb") return dim3((unsigned)g.rchunks, (unsigned)g.chunks, (unsigned)g.groups);
    if (rule == "mb_da") return dim3((unsigned)g.rchunks, (unsigned)g.chunks, (unsigned)g.groups);
    dev_die("table row " + row.name + ": unknown grid rule '" + rule + "' (cuda/dev/steps.cuh grid_of)");
}

inline int row_coord(const std::string& rule) {
    if (rule == "tiles_r_n" || rule == "tiles_dout_n" || rule == "tiles_din_n" || rule == "tiles_r_groups") return 1;
    if (rule == "tiles_din_r_groups" || rule == "mb_vdb" || rule == "mb_da") return 2;
    if (rule == "mb_rows") return 0;
    return -1;
}

inline void before_launch(Ctx& c, const KernelRow& row, Role role, const dim3& grid) {
    (void)role;
#if defined(RS_EMULATE)
    const int coord = c.only_last_rows ? row_coord(row.grid) : -1;
    if (coord >= 0) {
        const unsigned last = (coord == 0 ? grid.x : coord == 1 ? grid.y : grid.z) - 1;
        ::rs_emu::st().block_filter = [coord, last](uint3 b) { return (coord == 0 ? b.x : coord == 1 ? b.y : b.z) == last; };
    }
#else
    (void)c;
    (void)row;
    (void)grid;
#endif
}

inline void after_launch(Ctx&) {
#if defined(RS_EMULATE)
    ::rs_emu::st().block_filter = nullptr;
#endif
}

// ---- the step ---------------------------------------------------------------------------------
// The kernel of each role of `family` at c.dt, in launch order (absent roles skipped).
inline std::vector<std::pair<Role, const Kernel*>> step_plan(const std::string& family, DT dt, int r) {
    std::vector<std::pair<Role, const Kernel*>> plan;
    for (Role role : kStepRoles) {
        const Kernel* k = find_kernel(family, role_step(role), dt, r);
        if (k) plan.push_back({role, k});
    }
    return plan;
}

// Forward and backward of one layer (no merge): every role of the family, in order.
inline void run_layer_step(const std::string& family, Ctx& c) {
    c.written.clear();
    c.db_pending = c.da_pending = false;
    for (const auto& rk : step_plan(family, c.dt, c.r)) rk.second->run(c, rk.first);
    if ((c.db_pending || c.da_pending) && !c.skip_reductions)
        dev_die("family " + family + " at " + dt_name(c.dt) + " leaves " + (c.db_pending ? "dB" : "dA") +
                " partials unreduced: the table has no reduce row for it");
}

inline void run_merge(const std::string& family, Ctx& c) {
    const Kernel* k = find_kernel(family, "merge", c.dt, c.r);
    if (!k) dev_die("family " + family + " has no merge row at " + dt_name(c.dt));
    k->run(c, Role::MERGE);
}

}  // namespace rsdev
