// One layer step of any family, driven by the table: a Ctx holds the layer's device tensors and
// scalars; each params struct has one fill() that takes its fields from the Ctx (and allocates the
// workspaces it needs); the family's rows say which kernel runs each role. Adding a kernel with an
// existing params struct needs a table row only; a new params struct needs its fill() here.
#pragma once
#include <set>
#include "../kernels/lora_v4_launch.h"  // v4 launch rules (threads, smem, refusals)
#include <string>
#include "../kernels/lora_v3_launch.h"  // v3 launch rules (threads, smem, grid, maps, refusals)

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
    bool dry_run = false;          // `geometry`: fills run without device memory (workspaces stay null;
                                   // a fill that encodes TMA descriptors must skip them when set)
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
    if (c.dry_run) return nullptr;
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

// ---- v4 params (sm80: cuda/kernels/lora_forward_v4.cuh, lora_backward_dx_v4.cuh) ----------------
// The row must carry the kernel's own threads and dynamic shared memory (cuda/kernels/lora_v4_launch.h).
inline void check_v4_row(const KernelRow& row, RsV4Kernel k) {
    const RsV4Launch l = rs_v4_launch(k);
    if (row.threads != l.threads || row.smem != (size_t)l.smem_bytes)
        dev_die("table row " + row.name + ": threads " + std::to_string(row.threads) + " / smem " + std::to_string(row.smem) +
                " do not match " + l.name + " (" + std::to_string(l.threads) + " / " + std::to_string(l.smem_bytes) + ")");
}

// The shapes and pointers the v4 kernels refuse (registry.cuh refusal(), asked before fill(): a refused
// role runs v1's kernel of its step): rs_v4_refusal, i.e. d_in / d_out % 8 where touched, unaligned bases.
inline std::string v4_refusal(const Ctx& c, const KernelRow& row) {
    const RsV4Kernel k = row.step == "lora_up_add" ? RsV4Kernel::UpAdd
                         : row.step == "lora_dx_add" ? RsV4Kernel::DxAdd
                         : row.step == "dx"          ? RsV4Kernel::BackwardDx
                                                     : RsV4Kernel::Forward;
    const void* bases[] = {c.x, c.w, c.bias, c.dy, c.y, c.dx, c.ug, c.vg, c.at, c.bt};
    const char* names[] = {"x", "w", "bias", "dy", "y", "dx", "ug", "vg", "at", "bt"};
    char buf[256];
    const char* why = rs_v4_refusal(k, c.n, c.d_in, c.d_out, c.r, bases, names, 10, buf, sizeof buf);
    return why ? std::string(why) : std::string();
}
inline std::string refusal(const RsLoraForwardV4Params&, const Ctx& c, const KernelRow& row) { return v4_refusal(c, row); }
inline std::string refusal(const RsLoraBackwardDxV4Params&, const Ctx& c, const KernelRow& row) { return v4_refusal(c, row); }

// forward: Y = X·Wᵀ + bias + Ug·Btᵀ (lora_up_add: Y += bias + Ug·Btᵀ, the split step's LoRA term)
inline GridArgs fill(RsLoraForwardV4Params& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    const bool split = row.step == "lora_up_add";
    if (!split) need_role(role, Role::FORWARD, row);
    check_v4_row(row, split ? RsV4Kernel::UpAdd : RsV4Kernel::Forward);
    p = RsLoraForwardV4Params{c.x, c.w, c.bias, c.ug, c.bt, c.y, c.n, c.d_in, c.d_out, c.r, split ? 1 : 0};
    c.written.insert("Y");
    return {};
}

// ---- v3 GEMM params (cuda/kernels/lora_forward_v3.cuh, lora_backward_dx_v3.cuh) -----------------
// The tensors travel as TMA maps (kernels/lora_v3_launch.h: dims, boxes, 128-byte swizzle); Ug, Vg,
// Bt [*, r_pad] and At [r, d_in] are the mb kernels' T outputs, γ is in Ug and Vg.
inline std::string v3_refusal(const Ctx& c) {
    const void* bases[] = {c.x, c.w, c.bias, c.dy, c.y, c.dx, c.ug, c.vg, c.at, c.bt};
    const char* why = rs3launch::refuse(c.n, c.d_in, c.d_out, c.r, bases, 10);
    if (why) return why;
#if defined(RS_EMULATE)
    // a persistent grid's CTAs do not map to row tiles: the emulation cannot run only the last rows
    if (c.only_last_rows) return "v3: persistent tiles cannot be filtered to the last rows (emulated bigindex)";
#endif
    return std::string();
}
inline std::string refusal(const RsLoraForwardV3Params&, const Ctx& c, const KernelRow&) { return v3_refusal(c); }
inline std::string refusal(const RsLoraBackwardDxV3Params&, const Ctx& c, const KernelRow&) { return v3_refusal(c); }

inline GridArgs fill(RsLoraForwardV3Params& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap* maps) {
    need_role(role, Role::FORWARD, row);
    p = RsLoraForwardV3Params{c.bias, c.n, c.d_in, c.d_out, c.r};
    if (!c.dry_run) {
        const CUtensorMapSwizzle sw = CU_TENSOR_MAP_SWIZZLE_128B;
        maps[0] = tensor_map_2d(c.x, c.dt, c.n, c.d_in, (uint64_t)c.d_in * 2, 128, 64, sw);          // X  box {64, 128}
        maps[1] = tensor_map_2d(c.w, c.dt, c.d_out, c.d_in, (uint64_t)c.d_in * 2, 256, 64, sw);      // W  box {64, 256}
        maps[2] = tensor_map_2d(c.ug, c.dt, c.n, c.r_pad, (uint64_t)c.r_pad * 2, 128, 64, sw);      // Ug box {64, 128}
        maps[3] = tensor_map_2d(c.bt, c.dt, c.d_out, c.r_pad, (uint64_t)c.r_pad * 2, 256, 64, sw);  // Bt box {64, 256}
        maps[4] = tensor_map_2d(c.y, c.dt, c.n, c.d_out, (uint64_t)c.d_out * 2, 64, 64, sw);        // Y  box {64, 64}
    }
    c.written.insert("Y");
    return {};
}

// dX = dY·W + D'(Vg·At) (lora_dx_add: dX += D'(Vg·At))
inline GridArgs fill(RsLoraBackwardDxV4Params& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap*) {
    const bool split = row.step == "lora_dx_add";
    if (!split) need_role(role, Role::DX, row);
    check_v4_row(row, split ? RsV4Kernel::DxAdd : RsV4Kernel::BackwardDx);
    p = RsLoraBackwardDxV4Params{c.dy, c.w, c.vg, c.at, c.dx, c.n, c.d_in, c.d_out, c.r, split ? 1 : 0, c.drop};
    c.written.insert("dX");
    return {};
}

inline GridArgs fill(RsLoraBackwardDxV3Params& p, Ctx& c, Role role, const KernelRow& row, CUtensorMap* maps) {
    need_role(role, Role::DX, row);
    p = RsLoraBackwardDxV3Params{c.n, c.d_in, c.d_out, c.r, c.drop};
    if (!c.dry_run) {
        const CUtensorMapSwizzle sw = CU_TENSOR_MAP_SWIZZLE_128B;
        maps[0] = tensor_map_2d(c.vg, c.dt, c.n, c.r_pad, (uint64_t)c.r_pad * 2, 128, 64, sw);   // Vg box {64, 128}
        maps[1] = tensor_map_2d(c.at, c.dt, c.r, c.d_in, (uint64_t)c.d_in * 2, 64, 64, sw);      // At box {64, 64} (MN-major)
        maps[2] = tensor_map_2d(c.dy, c.dt, c.n, c.d_out, (uint64_t)c.d_out * 2, 128, 64, sw);   // dY box {64, 128}
        maps[3] = tensor_map_2d(c.w, c.dt, c.d_out, c.d_in, (uint64_t)c.d_in * 2, 64, 64, sw);   // W  box {64, 64} (MN-major)
        maps[4] = tensor_map_2d(c.dx, c.dt, c.n, c.d_in, (uint64_t)c.d_in * 2, 64, 64, sw);      // dX box {64, 64}
    }
    c.written.insert("dX");
    return {};
}

// The v4 grid rules: 1-D, ⌈n/128⌉·⌈cols/tile_n⌉ blocks (the kernel orders the tiles itself).
inline bool v4_flat_rule(const std::string& rule, long long& cols_of_dout, int& tile_n) {
    if (rule == "flat_dout_128x256") return cols_of_dout = 1, tile_n = 256, true;
    if (rule == "flat_din_128x256") return cols_of_dout = 0, tile_n = 256, true;
    if (rule == "flat_dout_128x128") return cols_of_dout = 1, tile_n = 128, true;
    if (rule == "flat_din_128x128") return cols_of_dout = 0, tile_n = 128, true;
    return false;
}

// The device's SM count for the persistent grid rules (no device: 132, an H100/H200's).
inline int sm_count_or_default() {
    static int sms = [] {
        int n = 0;
        if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, 0) == cudaSuccess && n > 0) return n;
        (void)cudaGetLastError();  // no device: clear the error for whoever checks next
        return 132;
    }();
    return sms;
}

// The v1 kernel that runs a role whose table kernel refuses the layer's shape (registry.cuh refusal()).
inline const Kernel* refused_fallback(const std::string& why, const KernelRow& row, const Ctx& c, Role role) {
    const Kernel* v1 = find_kernel("v1", role_step(role), c.dt, c.r);
    if (!v1 || v1->row.family == row.family) dev_die("kernel " + row.name + " refuses the shape (" + why + ") and v1 has no " + role_step(role) + " row");
    static std::set<std::string> said;
    const std::string key = row.name + " " + std::to_string(c.n) + "x" + std::to_string(c.d_in) + "x" + std::to_string(c.d_out) + "x" +
                            std::to_string(c.r);
    if (!c.dry_run && said.insert(key).second)
        std::printf("    %s: %s refuses n=%d d_in=%d d_out=%d r=%d (%s) -> %s\n", role_name(role), row.name.c_str(), c.n, c.d_in,
                    c.d_out, c.r, why.c_str(), v1->row.name.c_str());
    return v1;
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
    long long of_dout;
    int tile_n;
    if (v4_flat_rule(rule, of_dout, tile_n)) return dim3((unsigned)(cdiv(c.n, 128) * cdiv(of_dout ? c.d_out : c.d_in, tile_n)));
    if (rule == "persistent_dout_n") return dim3((unsigned)rs3launch::grid(sm_count_or_default(), c.n, c.d_out));
    if (rule == "persistent_din_n") return dim3((unsigned)rs3launch::grid(sm_count_or_default(), c.n, c.d_in));
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
    long long of_dout;
    int tile_n;
    if (c.only_last_rows && v4_flat_rule(row.grid, of_dout, tile_n)) {  // 1-D grid in grouped tile order
        const int tiles_m = (int)cdiv(c.n, 128), tiles_n = (int)grid.x / tiles_m;
        ::rs_emu::st().block_filter = [tiles_m, tiles_n](uint3 b) {
            int tm, tn;
            rs4::tile_of((int)b.x, tiles_m, tiles_n, tm, tn);
            return tm == tiles_m - 1;
        };
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

// `geometry FAMILY DTYPE N D_IN D_OUT R [CAP]`: the launches of the family's step at that shape, one
// line each ("role kernel grid.x grid.y grid.z threads smem"), without a device. The Java tests
// compare these grids with dev.rslora.backend.cuda.LaunchGeometry, so the grid rules of the table
// have one meaning on both sides.
inline int print_geometry(int argc, char** argv) {
    if (argc < 8) {
        std::fprintf(stderr, "usage: %s geometry FAMILY DTYPE N D_IN D_OUT R [CAP_BYTES]\n", argv[0]);
        return 2;
    }
    const std::string family = family_arg(argv[2]);
    if (family.empty()) dev_die(std::string("family ") + argv[2] + " is not in the kernel table (" + family_list() + ")");
    Ctx c;
    const std::string dts = argv[3];
    c.dt = dts == "f32" ? DT::F32 : dts == "bf16" ? DT::BF16 : dts == "f16" ? DT::F16 : (dev_die("dtype " + dts), DT::F32);
    c.n = std::atoi(argv[4]);
    c.d_in = std::atoi(argv[5]);
    c.d_out = std::atoi(argv[6]);
    c.r = std::atoi(argv[7]);
    if (c.n < 1 || c.d_in < 1 || c.d_out < 1 || c.r < 1) dev_die("shapes must be >= 1");
    c.r_pad = round_up8(c.r);
    c.ws_cap = argc > 8 ? std::atoll(argv[8]) : 256LL << 20;
    c.dry_run = true;
    for (const auto& rk : step_plan(family, c.dt, c.r)) {
        if (!role_needed(c, rk.first)) continue;
        std::printf("%s\n", rk.second->describe(c, rk.first).c_str());
    }
    return 0;
}

inline void run_merge(const std::string& family, Ctx& c) {
    const Kernel* k = find_kernel(family, "merge", c.dt, c.r);
    if (!k) dev_die("family " + family + " has no merge row at " + dt_name(c.dt));
    k->run(c, Role::MERGE);
}

}  // namespace rsdev
