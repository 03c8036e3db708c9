// The kernel table (cuda/kernels.table) in the harness: one Kernel per row, each able to run its
// step of a layer on a Ctx (cuda/dev/steps.cuh) with the row's threads, dynamic shared memory,
// cluster and grid rule. A family is the set of its rows, so validate/bigindex/bench of a new
// family need its rows (and kernels), not new code; a kernel with a NEW params struct needs one
// fill() overload in steps.cuh (how its fields come from the layer's buffers).
#pragma once
#include <array>
#include <functional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace rsdev {

// One row of the table (the grammar and the field meanings are in cuda/kernels.table).
struct KernelRow {
    std::string family, step, dtype, name;
    int threads = 0;
    size_t smem = 0;
    dim3 cluster{1, 1, 1};
    std::string arch, image, grid;
    int rmax = 0;
    std::string validated;
};

// The layer-step roles, in launch order; the table's `reduce` step plays REDUCE_DB and REDUCE_DA.
enum class Role { PREP, DOWN, FORWARD, VDB, VDB_REDUCE, REDUCE_DB, DA, REDUCE_DA, DX, MERGE };
inline const char* role_step(Role r) {
    switch (r) {
        case Role::PREP: return "prep";
        case Role::DOWN: return "down";
        case Role::FORWARD: return "forward";
        case Role::VDB: return "vdb";
        case Role::VDB_REDUCE: return "vdb_reduce";
        case Role::REDUCE_DB: return "reduce";
        case Role::DA: return "da";
        case Role::REDUCE_DA: return "reduce";
        case Role::DX: return "dx";
        case Role::MERGE: return "merge";
    }
    return "?";
}
inline const char* role_name(Role r) {
    return r == Role::REDUCE_DB ? "reduce(dB)" : r == Role::REDUCE_DA ? "reduce(dA)" : role_step(r);
}
constexpr Role kStepRoles[] = {Role::PREP, Role::DOWN, Role::FORWARD, Role::VDB, Role::VDB_REDUCE,
                               Role::REDUCE_DB, Role::DA, Role::REDUCE_DA, Role::DX};

// What a fill() tells the grid rule beyond the layer's shape.
struct GridArgs {
    long long count = 0;  // elementwise rules: the element count
    int groups = 1;       // row groups (split over n)
    int chunks = 1;       // column chunks (split over d_out or d_in)
    int rchunks = 1;      // rank chunks of rmax
};

struct Ctx;  // steps.cuh

inline dim3 parse_cluster(const char* s) {
    unsigned x = 0, y = 0, z = 0;
    if (std::sscanf(s, "%ux%ux%u", &x, &y, &z) != 3 || x < 1 || y < 1 || z < 1) dev_die(std::string("bad cluster field '") + s + "'");
    return dim3(x, y, z);
}

// The grid of a row's rule for a layer of shape (n, d_in, d_out, r) (see the rule list in the table).
inline dim3 grid_of(const KernelRow& row, const Ctx& c, const GridArgs& g);
// The grid coordinate (0 x, 1 y, 2 z) that indexes row tiles or row groups under a rule, or -1 when
// the rule's blocks are not tied to rows (bigindex runs only the blocks of the last rows).
inline int row_coord(const std::string& rule);

struct Kernel {
    KernelRow row;
    std::string params_type;  // the C++ params struct (for messages)
    std::function<void(Ctx&, Role)> run;
};

// fill(P&, Ctx&, Role, const KernelRow&, CUtensorMap* maps) -> GridArgs is overloaded per params
// struct in steps.cuh; this fallback names a kernel that has no layer-step fill.
template <typename P>
GridArgs fill(P&, Ctx&, Role role, const KernelRow& row, CUtensorMap*) {
    dev_die("kernel " + row.name + " (step " + row.step + ") has no fill() for role " + role_name(role) +
            ": add one for its params struct in cuda/dev/steps.cuh");
}

inline bool role_needed(const Ctx& c, Role role);  // false: an earlier kernel already produced this role's output
inline void before_launch(Ctx& c, const KernelRow& row, Role role, const dim3& grid);
inline void after_launch(Ctx& c);

template <typename P, typename... M, size_t... I>
void launch_with_maps(const KernelRow& row, void (*k)(P, M...), const LaunchShape& s, const P& p,
                      const std::array<CUtensorMap, sizeof...(M)>& maps, std::index_sequence<I...>) {
    launch_raw(row.name.c_str(), k, s, p, maps[I]...);
}

template <typename P, typename... M>
Kernel make_kernel(KernelRow row, void (*k)(P, M...)) {
    static_assert((std::is_same<typename std::decay<M>::type, CUtensorMap>::value && ...),
                  "a table kernel takes its params struct, then only CUtensorMap arguments");
    Kernel out;
    out.row = row;
    out.params_type = typeid(P).name();
    out.run = [row, k](Ctx& c, Role role) {
        if (!role_needed(c, role)) return;
        P p;
        std::memset(static_cast<void*>(&p), 0, sizeof p);
        std::array<CUtensorMap, sizeof...(M)> maps{};
        const GridArgs g = fill(p, c, role, row, maps.data());
        const LaunchShape s{grid_of(row, c, g), dim3(row.threads), row.smem, row.cluster};
        before_launch(c, row, role, s.grid);
        launch_with_maps(row, k, s, p, maps, std::index_sequence_for<M...>{});
        after_launch(c);
    };
    return out;
}

const std::vector<Kernel>& registry();

// The row of (family, step, dtype) for rank r: among the exact-dtype rows (else the `any` rows),
// the one with rmax 0, else the smallest rmax >= r, else the largest rmax (rank chunks). Null: none.
inline const Kernel* find_kernel(const std::string& family, const std::string& step, DT dt, int r) {
    std::vector<const Kernel*> exact, any;
    for (const Kernel& k : registry()) {
        if (k.row.family != family || k.row.step != step) continue;
        if (k.row.dtype == dt_name(dt)) exact.push_back(&k);
        if (k.row.dtype == "any") any.push_back(&k);
    }
    const std::vector<const Kernel*>& c = exact.empty() ? any : exact;
    const Kernel *fit = nullptr, *largest = nullptr;
    for (const Kernel* k : c) {
        if (k->row.rmax == 0) return k;
        if (k->row.rmax >= r && (!fit || k->row.rmax < fit->row.rmax)) fit = k;
        if (!largest || k->row.rmax > largest->row.rmax) largest = k;
    }
    return fit ? fit : largest;
}

// The layer-step families of the table, in table order (families with a `down` row).
inline std::vector<std::string> families() {
    std::vector<std::string> out;
    for (const Kernel& k : registry())
        if (k.row.step == "down" && std::find(out.begin(), out.end(), k.row.family) == out.end()) out.push_back(k.row.family);
    return out;
}

// The dtypes a family runs the layer step in (those with a `down` row), as f32, bf16, f16 order.
inline std::vector<DT> family_dtypes(const std::string& family) {
    std::vector<DT> out;
    for (DT d : {DT::F32, DT::BF16, DT::F16})
        for (const Kernel& k : registry())
            if (k.row.family == family && k.row.step == "down" && k.row.dtype == dt_name(d)) {
                out.push_back(d);
                break;
            }
    return out;
}

// "3" or "v3" → "v3"; empty when the table has no such family.
inline std::string family_arg(const std::string& s) {
    const std::string f = (!s.empty() && s[0] == 'v') ? s : "v" + s;
    for (const std::string& x : families())
        if (x == f) return f;
    return "";
}

inline std::string family_list() {
    std::string out;
    for (const std::string& f : families()) out += (out.empty() ? "" : ", ") + f;
    return out;
}

}  // namespace rsdev

// The table as X-macro rows; expanded once, in registry() (rslora_dev.cu, after steps.cuh).
#define RS_KERNEL(family, step, dtype, name, threads, smem, cluster, arch, image, grid, rmax, validated)               \
    ::rsdev::make_kernel(::rsdev::KernelRow{#family, #step, #dtype, #name, threads, smem, ::rsdev::parse_cluster(#cluster), \
                                            #arch, #image, #grid, rmax, #validated},                                 \
                         name),
