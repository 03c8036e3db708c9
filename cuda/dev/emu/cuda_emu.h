// CPU emulation of the small part of CUDA that the rsLoRA kernels and cuda/dev/rslora_dev.cu use,
// so the UNCHANGED kernel sources run on a machine without a GPU (g++ host build, see
// cuda/dev/Makefile target `emu` and native-build/cpu-emulate.sh). Included first, before any
// kernel header, when RS_EMULATE is defined.
//
// What it does:
//   - every CUDA thread of a block is a fiber on its own guarded stack (x86-64: a 6-register
//     context switch; elsewhere ucontext); blocks run one
//     after another; __syncthreads() parks the fiber until every thread of the block has reached
//     it. Between barriers the threads run one after another in forward, reverse or shuffled order
//     (RS_EMU_ORDER=fwd|rev|shuffle), so a missing barrier shows up as a wrong result in at least
//     one of the orders (the check script runs more than one);
//   - a barrier reached by some threads while others have exited is reported and aborts
//     (undefined behaviour on hardware);
//   - __shared__ variables are function statics (one block runs at a time, so they are per block);
//   - launch configurations are checked like the driver does (block <= 1024 threads, gridDim.y and
//     .z <= 65535, every extent >= 1): a bad one is a cudaErrorInvalidConfiguration from
//     cudaGetLastError(), as on a GPU;
//   - "device" memory is host heap memory of exactly the requested size, so an AddressSanitizer
//     build (the default of the script) reports any out-of-bounds access at a tail, and an
//     UndefinedBehaviorSanitizer build reports signed-overflow in the index math; buffers of 1 GiB
//     and more are lazily backed mappings that end at a guard page (rslora_dev bigindex), and a
//     block filter runs only some blocks of a grid (the last row tile of an N·d > 2^31 problem);
//   - nvcuda::wmma: each thread loads the whole 16×16 operand tiles; accumulator elements are
//     shared out over the 32 lanes of the warp (each lane computes, fp32 fma in ascending k, and
//     stores only its own), so every lane must take part in mma/store as on the hardware;
//     load/store check the pointer alignment (32 bytes) and ldm rules that the hardware requires.
// What it does NOT do: real concurrency (no data race between threads that run between the same
// two barriers is possible here, so a race that needs true interleaving is not found), warp
// semantics beyond wmma (no shuffles are used), the tensor-core accumulation order and
// rounding, timing, the driver API / JCuda / graphs, and device-specific limits (shared memory
// per block, registers). Shared memory is not poisoned between blocks.
#pragma once

#define __device__
#define __host__
#define __global__
#define __shared__ static
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <driver_types.h>
#include <vector_types.h>

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
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

struct Fiber {
    Context ctx;
    uint3 tid;
    bool done = false;
    bool waiting = false;
    char* stack = nullptr;
    void* fake_stack = nullptr;  // AddressSanitizer bookkeeping
};

struct State {
    dim3 grid_dim, block_dim;
    uint3 block_idx;
    Fiber* cur = nullptr;
    Context sched;
    void* sched_fake_stack = nullptr;
    const void* main_bottom = nullptr;
    size_t main_size = 0;
    std::vector<Fiber> fibers;
    char* stacks = nullptr;
    size_t stacks_bytes = 0;
    std::function<void()> body;
    const char* kernel = "";
    int order = -1;  // 0 forward, 1 reverse, 2 shuffled
    std::mt19937 shuffle{12345};
    cudaError_t pending = cudaSuccess;
    // when set, only the blocks it accepts run (rslora_dev bigindex: the last row tile of a huge grid)
    std::function<bool(uint3)> block_filter;
    std::vector<std::pair<char*, size_t>> big_maps;  // cudaMalloc'd regions >= 1 GiB (mmap, see there)
    uint64_t launches = 0, blocks = 0, barriers = 0;
};

inline State& st() {
    static State s;
    return s;
}

constexpr size_t kStack = 64 * 1024;  // per fiber (the kernels need a few KiB, sanitizer builds more)
constexpr size_t kGuard = 4096;        // PROT_NONE page below each stack: an overflow faults

inline int order() {
    State& s = st();
    if (s.order < 0) {
        const char* e = std::getenv("RS_EMU_ORDER");
        std::string o = e ? e : "fwd";
        s.order = o == "rev" ? 1 : o == "shuffle" ? 2 : 0;
        if (o != "fwd" && o != "rev" && o != "shuffle") die("RS_EMU_ORDER must be fwd, rev or shuffle, got " + o);
    }
    return s.order;
}

inline const char* order_name() {
    static const char* names[] = {"fwd", "rev", "shuffle"};
    return names[order()];
}

// Fiber → scheduler (at a barrier, or for good when the thread has finished).
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

inline void trampoline() {
    State& s = st();
#if RS_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &s.main_bottom, &s.main_size);
#endif
    s.body();
    s.cur->done = true;
    to_scheduler(true);
    die("a finished fiber was resumed");
}

// Scheduler → fiber f, until it parks at a barrier or finishes.
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

inline void run_block(uint3 b) {
    State& s = st();
    const unsigned nt = s.block_dim.x * s.block_dim.y * s.block_dim.z;
    s.block_idx = b;
    ensure_stacks(nt);
    s.fibers.assign(nt, Fiber{});
    for (unsigned t = 0; t < nt; ++t) {
        Fiber& f = s.fibers[t];
        f.tid = make_uint3(t % s.block_dim.x, (t / s.block_dim.x) % s.block_dim.y, t / (s.block_dim.x * s.block_dim.y));
        f.stack = s.stacks + t * (kStack + kGuard) + kGuard;
#if RS_EMU_ASAN
        __asan_unpoison_memory_region(f.stack, kStack);  // frames of the previous block's fibers never unwound
#endif
        ctx_make(f.ctx, f.stack, kStack, trampoline);
    }
    std::vector<unsigned> seq(nt);
    for (;;) {
        for (unsigned t = 0; t < nt; ++t) seq[t] = t;
        if (order() == 1) std::reverse(seq.begin(), seq.end());
        if (order() == 2) std::shuffle(seq.begin(), seq.end(), s.shuffle);
        for (unsigned t : seq) {
            Fiber& f = s.fibers[t];
            if (!f.done) {
                f.waiting = false;
                run_fiber(f);
                if (!f.done) f.waiting = true;
            }
        }
        unsigned done = 0;
        for (const Fiber& f : s.fibers) done += f.done ? 1 : 0;
        if (done == nt) break;
        if (done > 0) {
            die(std::string("__syncthreads() reached by ") + std::to_string(nt - done) + " thread(s) of kernel " + s.kernel +
                " block (" + std::to_string(b.x) + "," + std::to_string(b.y) + "," + std::to_string(b.z) + ") while " +
                std::to_string(done) + " had exited (undefined behaviour on a GPU)");
        }
        ++s.barriers;
    }
    ++s.blocks;
}

// kernel<<<grid, block>>>(p): checks the configuration like the driver, then runs every block.
template <typename Params>
void launch(const char* name, void (*kernel)(Params), dim3 grid, dim3 block, Params p) {
    State& s = st();
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 ||
        block.x < 1 || block.y < 1 || block.z < 1 || threads > 1024 || block.z > 64) {
        std::fprintf(stderr, "cuda-emu: invalid launch of %s: grid (%u,%u,%u) block (%u,%u,%u)\n", name, grid.x, grid.y,
                     grid.z, block.x, block.y, block.z);
        s.pending = cudaErrorInvalidConfiguration;
        return;
    }
    s.grid_dim = grid;
    s.block_dim = block;
    s.kernel = name;
    s.body = [kernel, p] { kernel(p); };
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                const uint3 b = make_uint3(x, y, z);
                if (!s.block_filter || s.block_filter(b)) run_block(b);
            }
    ++s.launches;
}

}  // namespace rs_emu

// ---- device-side names used by the kernels -------------------------------------------------
#define threadIdx (::rs_emu::st().cur->tid)
#define blockIdx (::rs_emu::st().block_idx)
#define blockDim (::rs_emu::st().block_dim)
#define gridDim (::rs_emu::st().grid_dim)

inline void __syncthreads() {
    if (::rs_emu::st().cur == nullptr) ::rs_emu::die("__syncthreads() outside a kernel");
    ::rs_emu::to_scheduler(false);
}

// IEEE round-to-nearest arithmetic intrinsics (kernels/adamw.cuh): on the host plain operators
// (the emulation is built with -ffp-contract=off, so nothing is fused) and the correctly rounded
// std::sqrt.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// ---- runtime API subset used by cuda/dev/rslora_dev.cu ---------------------------------------
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
    if (bytes == 0) return cudaErrorMemoryAllocation;
    if (bytes >= (size_t(1) << 30)) {
        // huge (rslora_dev bigindex): a lazily backed mapping, so only the pages a test touches cost
        // memory; not tracked by AddressSanitizer, so it ends at a PROT_NONE page instead (the end of
        // the buffer is placed within 255 bytes of it; the start stays 256-byte aligned)
        const size_t span = (bytes + 4095) & ~size_t(4095), used = (bytes + 255) & ~size_t(255);
        void* m = mmap(nullptr, span + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return cudaErrorMemoryAllocation;
        char* base = static_cast<char*>(m);
        mprotect(base + span, 4096, PROT_NONE);
        *p = base + (span - used);
        ::rs_emu::st().big_maps.push_back({base, span + 4096});
        return cudaSuccess;
    }
    // exactly `bytes` (AddressSanitizer sees one byte past the end), 256-byte aligned like the driver
    if (posix_memalign(p, 256, bytes) != 0) return cudaErrorMemoryAllocation;
    std::memset(*p, 0xA5, bytes);  // cudaMalloc'd memory is garbage, never zero by promise
    return cudaSuccess;
}
inline cudaError_t cudaFree(void* p) {
    auto& maps = ::rs_emu::st().big_maps;
    for (size_t i = 0; i < maps.size(); ++i) {
        char* c = static_cast<char*>(p);
        if (c >= maps[i].first && c < maps[i].first + maps[i].second) {
            munmap(maps[i].first, maps[i].second);
            maps.erase(maps.begin() + (long)i);
            return cudaSuccess;
        }
    }
    std::free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int v, size_t bytes) {
    std::memset(p, v, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaGetLastError() {
    cudaError_t e = ::rs_emu::st().pending;
    ::rs_emu::st().pending = cudaSuccess;
    return e;
}
inline cudaError_t cudaDeviceSynchronize() { return ::rs_emu::st().pending; }
inline cudaError_t cudaGetDeviceCount(int* n) {
    *n = 1;
    return cudaSuccess;
}
inline const char* cudaGetErrorName(cudaError_t e) {
    return e == cudaSuccess ? "cudaSuccess"
         : e == cudaErrorInvalidConfiguration ? "cudaErrorInvalidConfiguration"
         : e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation"
                                          : "cudaError(emulated)";
}
inline const char* cudaGetErrorString(cudaError_t e) { return cudaGetErrorName(e); }

// ---- nvcuda::wmma, one whole 16×16 tile per thread ----------------------------------------
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    // matrix_a: [M][K], matrix_b: [K][N], accumulator: [M][N]; values held as float (exact for T)
    static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
    float v[rows][cols];
};

inline void check_ptr(const void* p, unsigned ldm, size_t elem, const char* what) {
    if (reinterpret_cast<uintptr_t>(p) % 32 != 0) {
        ::rs_emu::die(std::string(what) + ": pointer not 256-bit aligned (wmma requires it) in kernel " + ::rs_emu::st().kernel);
    }
    if ((ldm * elem) % 16 != 0) {
        ::rs_emu::die(std::string(what) + ": ldm " + std::to_string(ldm) + " is not a multiple of 16 bytes in kernel " +
                      ::rs_emu::st().kernel);
    }
}

template <typename T> inline float wf(T v) { return static_cast<float>(v); }
template <> inline float wf<__half>(__half v) { return __half2float(v); }
template <> inline float wf<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename Use, int M, int N, int K, typename T, typename L, typename F>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, F value) {
    for (auto& row : f.v)
        for (float& e : row) e = static_cast<float>(value);
}

// matrix_a / matrix_b with a compile-time layout: element (r, c) of the fragment's tile
template <typename Use, int M, int N, int K, typename T, typename L>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const T* p, unsigned ldm) {
    check_ptr(p, ldm, sizeof(T), "load_matrix_sync");
    typedef fragment<Use, M, N, K, T, L> F;
    for (int r = 0; r < F::rows; ++r)
        for (int c = 0; c < F::cols; ++c)
            f.v[r][c] = wf<T>(std::is_same<L, row_major>::value ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r]);
}

// Accumulator element (i, j) belongs to lane (i·N + j) % 32 of the warp, as on the hardware each
// lane holds a share of the tile: mma_sync computes and store_matrix_sync writes only the calling
// lane's elements, so a lane that skips a collective leaves a hole in the result.
inline unsigned lane() {
    const ::rs_emu::State& s = ::rs_emu::st();
    const uint3 t = s.cur->tid;
    return (t.x + t.y * s.block_dim.x + t.z * s.block_dim.x * s.block_dim.y) % 32u;
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB>
inline void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, float>& c) {
    const unsigned l = lane();
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            if ((unsigned)(i * N + j) % 32u != l) continue;
            float s = c.v[i][j];
            for (int k = 0; k < K; ++k) s = std::fmaf(a.v[i][k], b.v[k][j], s);
            d.v[i][j] = s;
        }
}

template <int M, int N, int K>
inline void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
    check_ptr(p, ldm, sizeof(float), "store_matrix_sync");
    const unsigned l = lane();
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            if ((unsigned)(i * N + j) % 32u != l) continue;
            (layout == mem_row_major ? p[(size_t)i * ldm + j] : p[(size_t)j * ldm + i]) = f.v[i][j];
        }
}

}  // namespace wmma
}  // namespace nvcuda

// <<<>>> does not exist in a host compiler: cuda/dev/rslora_dev.cu launches through RS_LAUNCH
#define RS_LAUNCH(kernel, grid, block, ...) ::rs_emu::launch(#kernel, kernel, dim3(grid), dim3(block), __VA_ARGS__)
