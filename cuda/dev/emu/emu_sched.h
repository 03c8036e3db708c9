// The scheduler of the CPU emulation (included by cuda_emu.h): every CUDA thread of a block (of every
// block of a cluster) is a fiber on its own guarded stack; fibers run one after another and park
// with a wait reason, and are resumed when it is satisfied:
//   - Bar:  __syncthreads() (barrier 0, all threads of the block) or a named barrier (bar.sync id,
//           count: released when `count` threads have arrived, bar.arrive counts without waiting);
//   - Coll: a warp (32 lanes) or warpgroup (128 threads, 4 consecutive warps) collective: each
//           thread deposits pointers to its inputs and outputs, the LAST one to arrive runs the
//           operation for all of them (it reads every lane's inputs, writes every lane's outputs),
//           then all resume. Lanes of one warp at different collectives (another kind, or for
//           `.aligned` instructions another call site) are reported as divergence; a collective
//           needing a lane that has exited, or a partial warp, is reported;
//   - Ext:  a condition owned by another part of the emulation (an mbarrier phase, sm90_emu.h),
//           which wakes the fiber itself and says how to describe the wait.
// Rounds: each round runs every runnable fiber once, in forward, reverse or shuffled thread order
// (RS_EMU_ORDER=fwd|rev|shuffle), until it parks; a fiber whose wait is satisfied during a round
// runs in the next one (a fiber completing a barrier or collective yields too), so between two
// synchronisation points the threads run in the chosen order and a missing barrier shows up as a
// wrong result in at least one order. A round after which no fiber is runnable while some have not
// finished is a deadlock: it is reported with every thread's wait (who waits on what), never a hang.
#pragma once

#include <driver_types.h>
#include <vector_types.h>

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define RS_EMU_ASAN 1
#else
#define RS_EMU_ASAN 0
#endif

namespace rs_emu {

[[noreturn]] inline void die(const std::string& what) {
    std::fprintf(stderr, "cuda-emu: %s\n", what.c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    std::abort();
}

// The context switch. x86-64: six callee-saved registers and the stack pointer (a few ns; the
// emulation switches ~10^8 times per validate run). Elsewhere: ucontext (slower, same semantics).
#if defined(__x86_64__)
extern "C" void rs_emu_switch(void** save_sp, void* next_sp);
asm(R"(
    .text
    .globl rs_emu_switch
    .type rs_emu_switch, @function
rs_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size rs_emu_switch, .-rs_emu_switch
)");
struct Context {
    void* sp = nullptr;
};
inline void ctx_switch(Context& from, Context& to) { rs_emu_switch(&from.sp, to.sp); }
inline void ctx_make(Context& c, char* stack, size_t size, void (*entry)()) {
    // entered by the `ret` of rs_emu_switch: the slot holding `entry` must be 16-byte aligned so
    // that entry starts with rsp % 16 == 8, as after a call
    uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + size) & ~uintptr_t(15);
    void** slot = reinterpret_cast<void**>(top - 16);
    slot[1] = nullptr;  // entry's return address: entry never returns
    slot[0] = reinterpret_cast<void*>(entry);
    for (int r = 1; r <= 6; ++r) slot[-r] = nullptr;  // rbp rbx r12 r13 r14 r15
    c.sp = slot - 6;
}
#else
struct Context {
    ucontext_t uc;
};
inline void ctx_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }
inline void ctx_make(Context& c, char* stack, size_t size, void (*entry)()) {
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = size;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, entry, 0);
}
#endif

// Where an API function was called from (default arguments __builtin_FILE()/__builtin_LINE() of the
// emulated device functions), for messages and for the "same instruction" rule of .aligned collectives.
struct Site {
    const char* file = "";
    int line = 0;
};
inline bool same_site(Site a, Site b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }
inline std::string site_str(Site s) {
    const char* slash = std::strrchr(s.file, '/');
    return std::string(slash ? slash + 1 : s.file) + ":" + std::to_string(s.line);
}

enum class Run : uint8_t { Ready, Waiting, Done };
enum class Wait : uint8_t { None, Bar, Coll, Ext };

struct Fiber;
typedef std::string (*WaitDescriber)(const Fiber&);

struct Cta;

struct Fiber {
    Context ctx;
    uint3 tid;
    unsigned lin = 0;  // linear thread index in its block (x fastest): warp = lin / 32
    unsigned idx = 0;  // index in State::fibers
    Cta* cta = nullptr;
    Run run = Run::Ready;
    Wait wait = Wait::None;
    uint32_t wa = 0, wb = 0;  // Bar: id, count; Coll: group size, kind; Ext: owner's arguments
    Site wsite;
    const char* wname = "";
    WaitDescriber wdesc = nullptr;
    char* stack = nullptr;
    void* fake_stack = nullptr;  // AddressSanitizer bookkeeping
};

struct NamedBar {
    unsigned arrived = 0, count = 0;
    std::vector<unsigned> waiters;  // fiber indices (named barriers; __syncthreads wakes the whole block)
};

// A warp or warpgroup collective being assembled: the lanes that arrived and their in/out pointers.
struct Coll {
    int kind = -1;
    const char* name = "";
    Site site;
    bool aligned = false;
    unsigned arrived = 0;
    const void* in[128];
    void* out[128];
};

struct Cta {
    uint3 idx;              // blockIdx
    unsigned rank = 0;      // %cluster_ctarank
    unsigned f0 = 0;        // its first fiber in State::fibers
    unsigned done = 0;      // its threads that have exited
    unsigned char* window = nullptr;  // dynamic shared memory: heap block of exactly window_bytes
    size_t window_bytes = 0;
    // the window as the async proxy (TMA, wgmma) sees it: generic stores reach it only through a
    // fence_proxy_async_shared(), async-proxy writes (TMA loads) go to both (sm90_emu.h)
    unsigned char* aview = nullptr;
    NamedBar bar[16];       // bar[0]: __syncthreads
    std::vector<Coll> warp, wgroup;
    std::vector<uint32_t> exited;  // per warp: mask of lanes that have exited
    unsigned colls_open = 0;       // collectives of this block with some but not all threads arrived
};

// Called by the parts of the emulation that keep per-thread or per-block state (sm80_emu.h, sm90_emu.h).
struct Hooks {
    void (*cluster_start)() = nullptr;     // fibers and CTAs are set up, nothing has run
    void (*thread_exit)(Fiber&) = nullptr;  // the thread returned from the kernel
    void (*cluster_end)() = nullptr;        // every thread of the cluster has exited
};

struct State {
    dim3 grid_dim, block_dim, cluster_dim{1, 1, 1};
    unsigned nt = 0;  // threads per block
    Fiber* cur = nullptr;
    Context sched;
    void* sched_fake_stack = nullptr;
    const void* main_bottom = nullptr;
    size_t main_size = 0;
    std::vector<Fiber> fibers;
    std::vector<Cta> ctas;
    unsigned runnable = 0, done = 0;
    char* stacks = nullptr;
    size_t stacks_bytes = 0;
    std::function<void()> body;
    const char* kernel = "";
    size_t dyn_smem = 0;  // this launch's dynamic shared memory per block
    std::vector<unsigned char*> windows, aviews;  // one per CTA of a cluster, dyn_smem bytes each (cuda_emu.h launch)
    int order = -1;       // 0 forward, 1 reverse, 2 shuffled
    std::mt19937 shuffle{12345};
    std::vector<unsigned> seq;
    cudaError_t pending = cudaSuccess;
    // when set, only the blocks it accepts run (rslora_dev bigindex: the last row tile of a huge grid)
    std::function<bool(uint3)> block_filter;
    std::vector<std::pair<char*, size_t>> big_maps;  // cudaMalloc'd regions >= 1 GiB (mmap, see there)
    std::vector<Hooks> hooks;
    uint64_t launches = 0, blocks = 0, barriers = 0, collectives = 0, rounds = 0;
};

inline State& st() {
    static State s;
    return s;
}

constexpr size_t kStack = 64 * 1024;  // per fiber (the kernels need a few KiB, sanitizer builds more)
constexpr size_t kGuard = 4096;        // PROT_NONE page below each stack: an overflow faults

// 0 fwd, 1 rev, 2 shuffle (a new random order every round), 3 chaos (shuffle, and every runnable
// thread sits a round out with probability 1/4, so a warp can fall behind the others by several
// synchronisation points: races across warps that the regular orders never interleave show up).
// RS_EMU_SEED (default 12345) seeds shuffle and chaos.
inline int order() {
    State& s = st();
    if (s.order < 0) {
        const char* e = std::getenv("RS_EMU_ORDER");
        std::string o = e ? e : "fwd";
        s.order = o == "rev" ? 1 : o == "shuffle" ? 2 : o == "chaos" ? 3 : 0;
        if (o != "fwd" && o != "rev" && o != "shuffle" && o != "chaos") die("RS_EMU_ORDER must be fwd, rev, shuffle or chaos, got " + o);
        if (const char* seed = std::getenv("RS_EMU_SEED")) s.shuffle.seed((unsigned)std::strtoul(seed, nullptr, 0));
    }
    return s.order;
}

inline const char* order_name() {
    static const char* names[] = {"fwd", "rev", "shuffle", "chaos"};
    return names[order()];
}

inline std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
    return buf;
}

inline std::string dim_str(uint3 v) {
    return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

inline Fiber& cur() {
    Fiber* f = st().cur;
    if (f == nullptr) die("a device function was called outside a kernel");
    return *f;
}

// "kernel K block (x,y,z) thread t" for the current thread
inline std::string where() {
    const State& s = st();
    if (s.cur == nullptr) return std::string("host code");
    return std::string("kernel ") + s.kernel + " block " + dim_str(s.cur->cta->idx) + " thread " + std::to_string(s.cur->lin);
}

// Fiber → scheduler (parked, yielded, or for good when the thread has finished).
inline void to_scheduler(bool exiting) {
    State& s = st();
    Fiber* f = s.cur;
#if RS_EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f->fake_stack, s.main_bottom, s.main_size);
#endif
    ctx_switch(f->ctx, s.sched);
#if RS_EMU_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &s.main_bottom, &s.main_size);
#endif
    (void)exiting;
}

// The current fiber stops here until wake(); the wait is what the deadlock report shows.
inline void park(Wait w, uint32_t a, uint32_t b, Site site, const char* name, WaitDescriber desc = nullptr) {
    State& s = st();
    Fiber& f = cur();
    f.run = Run::Waiting;
    f.wait = w;
    f.wa = a;
    f.wb = b;
    f.wsite = site;
    f.wname = name;
    f.wdesc = desc;
    --s.runnable;
    to_scheduler(false);
}

// The current fiber stays runnable but lets the others run first (it resumes in the next round).
inline void yield() { to_scheduler(false); }

inline void wake(Fiber& f) {
    if (f.run != Run::Waiting) return;
    f.run = Run::Ready;
    f.wait = Wait::None;
    ++st().runnable;
}

inline void thread_finished();

inline void trampoline() {
    State& s = st();
#if RS_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.main_bottom, &s.main_size);
#endif
    s.body();
    thread_finished();
    to_scheduler(true);
    die("a finished fiber was resumed");
}

// Scheduler → fiber f, until it parks, yields or finishes.
inline void run_fiber(Fiber& f) {
    State& s = st();
    s.cur = &f;
#if RS_EMU_ASAN
    __sanitizer_start_switch_fiber(&s.sched_fake_stack, f.stack, kStack);
#endif
    ctx_switch(s.sched, f.ctx);
#if RS_EMU_ASAN
    __sanitizer_finish_switch_fiber(s.sched_fake_stack, nullptr, nullptr);
#endif
    s.cur = nullptr;
}

inline void ensure_stacks(size_t threads) {
    State& s = st();
    size_t need = threads * (kStack + kGuard);
    if (s.stacks_bytes >= need) return;
    if (s.stacks) munmap(s.stacks, s.stacks_bytes);
    void* m = mmap(nullptr, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("cannot map fiber stacks");
    s.stacks = static_cast<char*>(m);
    s.stacks_bytes = need;
    for (size_t t = 0; t < threads; ++t) mprotect(s.stacks + t * (kStack + kGuard), kGuard, PROT_NONE);
}

// ---- block barrier and named barriers -----------------------------------------------------------

inline void block_barrier(Site site) {
    State& s = st();
    Fiber& f = cur();
    Cta& c = *f.cta;
    NamedBar& b = c.bar[0];
    if (++b.arrived == s.nt) {
        // every other thread of the block is parked here (nt arrivals): release them all
        b.arrived = 0;
        Fiber* fs = &s.fibers[c.f0];
        for (unsigned t = 0; t < s.nt; ++t) {
            if (fs[t].run == Run::Waiting) {
                fs[t].run = Run::Ready;
                fs[t].wait = Wait::None;
            }
        }
        s.runnable += s.nt - 1;
        ++s.barriers;
        yield();
    } else {
        park(Wait::Bar, 0, s.nt, site, "__syncthreads()");
    }
}

// bar.sync id, count (wait) / bar.arrive id, count (no wait); ids 1..15, count a multiple of 32 up to
// the block size. Threads are counted one by one (a kernel lets whole warps execute these).
inline void named_barrier(int id, int count, bool wait, Site site) {
    State& s = st();
    Fiber& f = cur();
    const char* what = wait ? "named_bar_sync" : "named_bar_arrive";
    if (id < 1 || id > 15) die(std::string(what) + ": barrier id " + std::to_string(id) + " is not in 1..15 (0 is __syncthreads) in " + where() + " at " + site_str(site));
    if (count <= 0 || count % 32 != 0 || (unsigned)count > s.nt) {
        die(std::string(what) + ": thread count " + std::to_string(count) + " must be a positive multiple of 32 and at most the block's " +
            std::to_string(s.nt) + " threads, in " + where() + " at " + site_str(site));
    }
    NamedBar& b = f.cta->bar[id];
    if (b.arrived == 0) {
        b.count = (unsigned)count;
    } else if (b.count != (unsigned)count) {
        die(std::string(what) + ": barrier " + std::to_string(id) + " used with thread count " + std::to_string(count) + " while " +
            std::to_string(b.arrived) + " thread(s) arrived with count " + std::to_string(b.count) + ", in " + where() + " at " + site_str(site));
    }
    if (++b.arrived == b.count) {
        b.arrived = 0;
        for (unsigned w : b.waiters) wake(s.fibers[w]);
        b.waiters.clear();
        if (wait) yield();
    } else if (wait) {
        b.waiters.push_back(f.idx);
        park(Wait::Bar, (uint32_t)id, (uint32_t)count, site, "named_bar_sync");
    }
}

// ---- warp and warpgroup collectives -------------------------------------------------------------

inline std::string lane_list(const std::vector<unsigned>& lanes) {
    std::string out;
    for (size_t i = 0; i < lanes.size();) {
        size_t j = i;
        while (j + 1 < lanes.size() && lanes[j + 1] == lanes[j] + 1) ++j;
        if (!out.empty()) out += ",";
        out += std::to_string(lanes[i]);
        if (j > i) out += "-" + std::to_string(lanes[j]);
        i = j + 1;
    }
    return out;
}

// Every thread of the group (the 32 lanes of a warp, or the 128 threads of an aligned warpgroup)
// calls this with the same kind; the last to arrive runs exec(coll) for all of them. `in`/`out`
// point into the caller's frame, which stays alive while it is parked here.
template <class Exec>
inline void collective(unsigned group, int kind, const char* name, bool aligned, Site site, const void* in, void* out, Exec&& exec) {
    State& s = st();
    Fiber& f = cur();
    Cta& c = *f.cta;
    const unsigned g = f.lin / group, lane = f.lin % group;
    const char* unit = group == 32 ? "warp" : "warpgroup";
    if ((g + 1) * group > s.nt) {
        die(std::string(name) + " is a " + unit + "-collective but " + unit + " " + std::to_string(g) + " of the block has only " +
            std::to_string(s.nt - g * group) + " thread(s) (block of " + std::to_string(s.nt) + "), in " + where() + " at " + site_str(site));
    }
    for (unsigned w = g * group / 32; w < (g + 1) * group / 32; ++w) {
        if (c.exited[w] != 0) {
            std::vector<unsigned> ex;
            for (unsigned l = 0; l < 32; ++l)
                if (c.exited[w] >> l & 1) ex.push_back(w * 32 + l);
            die(std::string(name) + " needs all threads of " + unit + " " + std::to_string(g) + " but thread(s) " + lane_list(ex) +
                " have exited, in " + where() + " at " + site_str(site));
        }
    }
    Coll& co = group == 32 ? c.warp[g] : c.wgroup[g];
    if (co.arrived == 0) {
        co.kind = kind;
        co.name = name;
        co.site = site;
        co.aligned = aligned;
        ++c.colls_open;
    } else if (co.kind != kind || ((aligned || co.aligned) && !same_site(co.site, site))) {
        std::vector<unsigned> there;
        for (unsigned l = 0; l < group; ++l) {
            const Fiber& o = s.fibers[c.f0 + g * group + l];
            if (o.wait == Wait::Coll && o.wa == group) there.push_back(g * group + l);
        }
        die(std::string("divergence in ") + unit + " " + std::to_string(g) + " of kernel " + s.kernel + " block " + dim_str(c.idx) +
            ": thread " + std::to_string(f.lin) + " reached " + name + " at " + site_str(site) + " while thread(s) " + lane_list(there) +
            " wait at " + co.name + " at " + site_str(co.site) + (co.aligned || aligned ? " (.aligned: all threads must execute the same instruction)" : ""));
    }
    co.in[lane] = in;
    co.out[lane] = out;
    if (++co.arrived == group) {
        exec(co);
        co.arrived = 0;
        co.kind = -1;
        --c.colls_open;
        for (unsigned l = 0; l < group; ++l) {
            Fiber& o = s.fibers[c.f0 + g * group + l];
            if (o.wait == Wait::Coll && o.wa == group) wake(o);
        }
        ++s.collectives;
        yield();
    } else {
        park(Wait::Coll, group, (uint32_t)kind, site, name);
    }
}

// Kinds of collectives (a warp's lanes must all be at the same kind).
enum CollKind : int {
    kCollSyncwarp = 1,
    kCollShflIdx,
    kCollShflXor,
    kCollShflUp,
    kCollShflDown,
    kCollLdmatrix,
    kCollMma,
    kCollWgmmaFence,
    kCollWgmma,
    kCollWgmmaCommit,
    kCollWgmmaWait,
    kCollSetmaxnreg,
};

// ---- the dynamic shared-memory window ------------------------------------------------------------
// 32-bit shared-state-space addresses of the window start at kSharedBase (1024-aligned, as on sm_90
// where the first KiB is reserved), so address bits 4..9 (swizzle) and 4..17 (matrix descriptors)
// are those a GPU sees for the same offsets.
constexpr uint32_t kSharedBase = 0x400;

inline uint32_t shared_addr_of(const void* p, Site site) {
    const Cta& c = *cur().cta;
    const unsigned char* q = static_cast<const unsigned char*>(p);
    if (c.window == nullptr || q < c.window || q >= c.window + c.window_bytes) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%p", p);
        die(std::string("smem_addr(") + buf + "): not inside this block's dynamic shared memory (" + std::to_string(c.window_bytes) +
            " bytes; static __shared__ arrays and global memory have no address in the emulated window), in " + where() + " at " + site_str(site));
    }
    return kSharedBase + (uint32_t)(q - c.window);
}

// The bytes [addr, addr + n) of a CTA's window; outside it: reported (what = the API that accessed it).
inline unsigned char* shared_ptr(Cta& c, uint32_t addr, size_t n, const char* what, Site site) {
    if (addr < kSharedBase || (uint64_t)addr + n > kSharedBase + (uint64_t)c.window_bytes) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "%s: shared address 0x%x (+%zu bytes) is outside the dynamic shared memory window 0x%x..0x%llx (%zu bytes)",
                      what, addr, n, kSharedBase, (unsigned long long)(kSharedBase + c.window_bytes), c.window_bytes);
        die(std::string(buf) + " of block " + dim_str(c.idx) + ", in " + where() + " at " + site_str(site));
    }
    return c.window + (addr - kSharedBase);
}
inline unsigned char* shared_ptr(uint32_t addr, size_t n, const char* what, Site site) { return shared_ptr(*cur().cta, addr, n, what, site); }

// ---- thread exit, deadlock report, the block loop --------------------------------------------

inline std::string describe(const Fiber& f) {
    const State& s = st();
    if (f.run == Run::Done) return "exited";
    if (f.run == Run::Ready) return "runnable";
    switch (f.wait) {
        case Wait::Bar: {
            if (f.wa == 0) return "__syncthreads() at " + site_str(f.wsite);
            const NamedBar& b = f.cta->bar[f.wa];
            return "named_bar_sync(" + std::to_string(f.wa) + ", " + std::to_string(f.wb) + ") at " + site_str(f.wsite) + " (" +
                   std::to_string(b.arrived) + " of " + std::to_string(b.count) + " arrived)";
        }
        case Wait::Coll:
            return std::string(f.wname) + " (" + (f.wa == 32 ? "warp" : "warpgroup") + "-collective) at " + site_str(f.wsite);
        case Wait::Ext:
            return f.wdesc ? f.wdesc(f) : std::string(f.wname);
        default:
            break;
    }
    (void)s;
    return "?";
}

[[noreturn]] inline void deadlock() {
    State& s = st();
    std::string msg = std::string("deadlock in kernel ") + s.kernel + ": no thread can continue";
    // the case of the original emulation: a __syncthreads() that threads which exited never reach
    for (const Cta& c : s.ctas) {
        unsigned at_bar0 = 0;
        for (unsigned t = 0; t < s.nt; ++t) {
            const Fiber& f = s.fibers[c.f0 + t];
            at_bar0 += f.run == Run::Waiting && f.wait == Wait::Bar && f.wa == 0;
        }
        if (c.done > 0 && at_bar0 > 0 && at_bar0 + c.done == s.nt) {
            die("__syncthreads() reached by " + std::to_string(at_bar0) + " thread(s) of kernel " + s.kernel + " block " + dim_str(c.idx) +
                " while " + std::to_string(c.done) + " had exited (undefined behaviour on a GPU)");
        }
    }
    for (const Cta& c : s.ctas) {
        msg += "\n  block " + dim_str(c.idx) + ":";
        for (unsigned t = 0; t < s.nt;) {
            std::string d = describe(s.fibers[c.f0 + t]);
            unsigned u = t + 1;
            while (u < s.nt && describe(s.fibers[c.f0 + u]) == d) ++u;
            msg += "\n    thread" + std::string(u - t > 1 ? "s " : " ") + std::to_string(t) + (u - t > 1 ? "-" + std::to_string(u - 1) : "") +
                   ": " + d;
            t = u;
        }
    }
    die(msg);
}

inline void thread_finished() {
    State& s = st();
    Fiber& f = cur();
    for (const Hooks& h : s.hooks)
        if (h.thread_exit) h.thread_exit(f);
    Cta& c = *f.cta;
    const unsigned w = f.lin / 32;
    c.exited[w] |= 1u << (f.lin % 32);
    // lanes parked at a collective of this warp or warpgroup can never complete it
    for (unsigned group : {32u, 128u}) {
        if (c.colls_open == 0) break;
        const unsigned g = f.lin / group;
        if (group == 128 && (g + 1) * 128 > s.nt) continue;
        const Coll& co = group == 32 ? c.warp[g] : c.wgroup[g];
        if (co.arrived > 0) {
            std::vector<unsigned> there;
            for (unsigned l = 0; l < group; ++l) {
                const Fiber& o = s.fibers[c.f0 + g * group + l];
                if (o.wait == Wait::Coll && o.wa == group) there.push_back(g * group + l);
            }
            die("thread " + std::to_string(f.lin) + " of kernel " + s.kernel + " block " + dim_str(c.idx) + " exited while thread(s) " +
                lane_list(there) + " wait for it at " + co.name + " at " + site_str(co.site) + " (" + (group == 32 ? "warp" : "warpgroup") +
                "-collective: every thread must take part)");
        }
    }
    f.run = Run::Done;
    ++c.done;
    ++s.done;
    --s.runnable;
}

// Runs the blocks of one cluster (one block without clusters) to completion.
inline void run_cluster(const std::vector<uint3>& blocks) {
    State& s = st();
    const unsigned nt = s.nt, nc = (unsigned)blocks.size(), total = nt * nc;
    ensure_stacks(total);
    s.ctas.resize(nc);  // reused from block to block: no allocation on the v1/v2 hot path
    s.fibers.assign(total, Fiber{});
    const unsigned nw = (nt + 31) / 32;
    for (unsigned k = 0; k < nc; ++k) {
        Cta& c = s.ctas[k];
        c.idx = blocks[k];
        c.rank = k;
        c.f0 = k * nt;
        c.done = 0;
        c.window = k < s.windows.size() ? s.windows[k] : nullptr;
        c.aview = k < s.aviews.size() ? s.aviews[k] : nullptr;
        c.window_bytes = s.dyn_smem;
        for (NamedBar& b : c.bar) {
            b.arrived = b.count = 0;
            b.waiters.clear();
        }
        c.warp.resize(nw);
        c.wgroup.resize((nt + 127) / 128);
        for (Coll& co : c.warp) co.arrived = 0, co.kind = -1;
        for (Coll& co : c.wgroup) co.arrived = 0, co.kind = -1;
        c.exited.assign(nw, 0);
        c.colls_open = 0;
        if (c.window) std::memset(c.window, 0xFF, s.dyn_smem);  // garbage (NaN in every float format), never zeros
        if (c.aview) std::memset(c.aview, 0xFF, s.dyn_smem);
    }
    for (unsigned t = 0; t < total; ++t) {
        Fiber& f = s.fibers[t];
        const unsigned l = t % nt;
        f.lin = l;
        f.idx = t;
        f.cta = &s.ctas[t / nt];
        f.tid = make_uint3(l % s.block_dim.x, (l / s.block_dim.x) % s.block_dim.y, l / (s.block_dim.x * s.block_dim.y));
        f.stack = s.stacks + t * (kStack + kGuard) + kGuard;
#if RS_EMU_ASAN
        __asan_unpoison_memory_region(f.stack, kStack);  // frames of the previous block's fibers never unwound
#endif
        ctx_make(f.ctx, f.stack, kStack, trampoline);
    }
    s.runnable = total;
    s.done = 0;
    for (const Hooks& h : s.hooks)
        if (h.cluster_start) h.cluster_start();
    s.seq.resize(total);
    for (;;) {
        for (unsigned t = 0; t < total; ++t) s.seq[t] = t;
        if (order() == 1) std::reverse(s.seq.begin(), s.seq.end());
        const int ord = order();
        if (ord >= 2) std::shuffle(s.seq.begin(), s.seq.end(), s.shuffle);
        for (unsigned t : s.seq) {
            Fiber& f = s.fibers[t];
            if (f.run != Run::Ready) continue;
            if (ord == 3 && (s.shuffle() & 3) == 0) continue;  // chaos: this one waits a round
            run_fiber(f);
        }
        ++s.rounds;
        if (s.done == total) break;
        if (s.runnable == 0) deadlock();
    }
    for (const Hooks& h : s.hooks)
        if (h.cluster_end) h.cluster_end();
    s.blocks += nc;
}

}  // namespace rs_emu
