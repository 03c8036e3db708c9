// CPU emulation of the part of CUDA that the rsLoRA kernels and the cuda/dev programs use, so the
// UNCHANGED kernel sources run on a machine without a GPU (g++ host build, see cuda/dev/Makefile
// targets `emu`, `emu-selftest` and native-build/cpu-emulate.sh). Included first, before any
// kernel header, when RS_EMULATE is defined. Files:
//   cuda_emu.h     CUDA keywords, the runtime API subset, launches, nvcuda::wmma (this file)
//   emu_sched.h    fibers and the scheduler: barriers, named barriers, warp/warpgroup collectives,
//                  deadlock and divergence reports, the dynamic shared-memory window
//   common_emu.h   GPU-CONTRACT.md "Common": smem_addr, lane/warp id, syncwarp, shuffles, named barriers
//   sm80_emu.h     cp.async, ldmatrix, mma.sync m16n8k16
//   sm90_emu.h     mbarrier, TMA (cuTensorMapEncodeTiled, loads, stores, multicast), wgmma, setmaxnreg,
//                  fences, clusters
//   emu_selftest.cpp  the emulation's own tests (hand-derived expectations, death tests, mutations)
// Each header says exactly what it emulates and the semantics chosen where the PTX ISA leaves latitude.
//
// What it does:
//   - every CUDA thread of a block (of every block of a cluster) is a fiber on its own guarded stack
//     (x86-64: a 6-register context switch; elsewhere ucontext); blocks run one after another;
//     a thread parks at a synchronisation point with a wait reason and runs again when it is
//     satisfied; between two such points the threads run one after another in forward, reverse,
//     shuffled or "chaos" order (RS_EMU_ORDER=fwd|rev|shuffle|chaos, see emu_sched.h), so a missing
//     barrier shows up as a wrong result in at least one of the orders (the scripts run several);
//   - a block in which no thread can continue is a reported deadlock listing every thread's wait
//     (never a hang); lanes of a warp at different collectives are reported as divergence; a barrier
//     reached by some threads while others have exited is reported (undefined behaviour on hardware);
//   - __shared__ variables are function statics (one block runs at a time, so they are per block;
//     AddressSanitizer sees overruns of them); dynamic shared memory (RS_DYNAMIC_SMEM) is a heap block
//     of exactly the launch's size per block, filled with 0xFF garbage at block start, whose 32-bit
//     shared addresses start at 0x400 (1024-aligned, so swizzle and descriptor address bits are real);
//     an access outside it through the device-function API is reported, a plain one by ASan;
//   - launch configurations are checked like the driver does (block <= 1024 threads, gridDim.y and
//     .z <= 65535, every extent >= 1; dynamic shared memory above 48 KiB only with
//     cudaFuncAttributeMaxDynamicSharedMemorySize, at most 232448 B; clusters along x dividing the
//     grid): a bad one is an error from cudaGetLastError(), as on a GPU;
//   - "device" memory is host heap memory of exactly the requested size, so an AddressSanitizer
//     build (the default of the script) reports any out-of-bounds access at a tail, and an
//     UndefinedBehaviorSanitizer build reports signed-overflow in the index math; buffers of 1 GiB
//     and more are lazily backed mappings that end at a guard page (rslora_dev bigindex), and a
//     block filter runs only some blocks of a grid (the last row tile of an N·d > 2^31 problem);
//   - nvcuda::wmma: each thread loads the whole 16×16 operand tiles; accumulator elements are
//     shared out over the 32 lanes of the warp (each lane computes, fp32 fma in ascending k, and
//     stores only its own), so every lane must take part in mma/store as on the hardware;
//     load/store check the pointer alignment (32 bytes) and ldm rules that the hardware requires.
// What it does NOT do: real concurrency (threads switch only at synchronisation points, so a race
// between two such points, or one that needs true interleaving, is not found: "chaos" order only
// widens the interleavings at synchronisation granularity), timing and asynchronous progress
// (async results land at the wait, never earlier), the tensor cores' accumulation order and
// rounding (sums in fp32 in ascending k), register limits (setmaxnreg is a checked no-op, no spills),
// shared-memory bank conflicts, L2/TMA caching hints, the driver API beyond cuTensorMapEncodeTiled,
// JCuda and graphs. The GPU check settles what the emulation and the hardware might disagree on.
#pragma once

#define __device__
#define __host__
#define __global__
#define __shared__ static
#define __launch_bounds__(...)
#define __grid_constant__

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <driver_types.h>
#include <vector_types.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "emu_sched.h"

namespace rs_emu {

constexpr size_t kMaxDynSmemDefault = 232448;  // sm_90 opt-in maximum per block (227 KiB)
constexpr size_t kDynSmemNoOptIn = 48 * 1024;  // above this a kernel needs cudaFuncAttributeMaxDynamicSharedMemorySize

inline std::map<const void*, int>& func_max_dyn_smem() {
    static std::map<const void*, int> m;
    return m;
}

inline void free_windows() {
    State& s = st();
    for (unsigned char* w : s.windows) std::free(w);
    for (unsigned char* w : s.aviews) std::free(w);
    s.windows.clear();
    s.aviews.clear();
}

// kernel<<<grid, block, smem>>>(args...) with clusters of cluster.x blocks along x: checks the
// configuration like the driver, then runs every block (every cluster: its blocks together).
// opt_in: as if cudaFuncSetAttribute(MaxDynamicSharedMemorySize) had been set to smem (the harness's
// launcher does that on a GPU); otherwise, as for kernel<<<>>>, above 48 KiB it must have been set.
template <typename... Params, typename... Args>
void launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, dim3 cluster, bool opt_in, Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args), "RS_LAUNCH: argument count differs from the kernel's parameters");
    State& s = st();
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 ||
        block.x < 1 || block.y < 1 || block.z < 1 || threads > 1024 || block.z > 64) {
        std::fprintf(stderr, "cuda-emu: invalid launch of %s: grid (%u,%u,%u) block (%u,%u,%u)\n", name, grid.x, grid.y,
                     grid.z, block.x, block.y, block.z);
        s.pending = cudaErrorInvalidConfiguration;
        return;
    }
    const char* env = std::getenv("RS_EMU_MAX_DYN_SMEM");
    const size_t max_smem = env ? (size_t)std::strtoull(env, nullptr, 0) : kMaxDynSmemDefault;
    auto it = func_max_dyn_smem().find(reinterpret_cast<const void*>(kernel));
    const size_t allowed = opt_in ? max_smem : it == func_max_dyn_smem().end() ? kDynSmemNoOptIn : std::max(kDynSmemNoOptIn, (size_t)it->second);
    if (smem > max_smem || smem > allowed) {
        std::fprintf(stderr, "cuda-emu: invalid launch of %s: %zu bytes of dynamic shared memory, %s %zu\n", name, smem,
                     smem > max_smem ? "above the device maximum" : "above the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize",
                     smem > max_smem ? max_smem : allowed);
        s.pending = cudaErrorInvalidValue;
        return;
    }
    if (cluster.x < 1 || cluster.y != 1 || cluster.z != 1 || cluster.x > 8 || grid.x % cluster.x != 0) {
        std::fprintf(stderr, "cuda-emu: invalid launch of %s: cluster (%u,%u,%u) (the emulation takes clusters along x of at most 8 "
                     "blocks that divide gridDim.x %u)\n", name, cluster.x, cluster.y, cluster.z, grid.x);
        s.pending = cudaErrorInvalidValue;
        return;
    }
    s.grid_dim = grid;
    s.block_dim = block;
    s.cluster_dim = cluster;
    s.nt = (unsigned)threads;
    s.kernel = name;
    s.dyn_smem = smem;
    free_windows();
    if (smem > 0) {
        for (unsigned k = 0; k < cluster.x; ++k) {
            void* w = nullptr;
            // exactly `smem` bytes (AddressSanitizer sees one past the end), 1024-aligned like the shared window base
            if (posix_memalign(&w, 1024, smem) != 0) die("cannot allocate the dynamic shared memory window");
            s.windows.push_back(static_cast<unsigned char*>(w));
            s.aviews.push_back(static_cast<unsigned char*>(std::malloc(smem)));
        }
    }
    auto params = std::make_shared<std::tuple<typename std::decay<Params>::type...>>(std::forward<Args>(args)...);
    s.body = [kernel, params] { std::apply(kernel, *params); };
    std::vector<uint3> blocks(cluster.x);
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; x += cluster.x) {
                bool any = !s.block_filter;
                for (unsigned k = 0; k < cluster.x; ++k) {
                    blocks[k] = make_uint3(x + k, y, z);
                    any = any || s.block_filter(blocks[k]);
                }
                if (any) run_cluster(blocks);
            }
    free_windows();
    s.body = nullptr;
    ++s.launches;
}

// The harness's launcher (cuda/dev/launch.cuh): cudaLaunchKernelEx after cudaFuncSetAttribute on a GPU.
template <typename... Params, typename... Args>
void launch_ex(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, dim3 cluster, Args&&... args) {
    launch(name, kernel, grid, block, smem, cluster, true, std::forward<Args>(args)...);
}

// The window of the current CTA (RS_DYNAMIC_SMEM): a launch without dynamic shared memory has none,
// and any access through this pointer is then an AddressSanitizer report.
inline unsigned char* dynamic_smem() {
    Cta& c = *cur().cta;
    if (c.window) return c.window;
    alignas(1024) static unsigned char none[1024];
#if RS_EMU_ASAN
    __asan_poison_memory_region(none, sizeof none);
#endif
    return none;
}

}  // namespace rs_emu

// ---- device-side names used by the kernels -------------------------------------------------
#define threadIdx (::rs_emu::st().cur->tid)
#define blockIdx (::rs_emu::st().cur->cta->idx)
#define blockDim (::rs_emu::st().block_dim)
#define gridDim (::rs_emu::st().grid_dim)

inline void __syncthreads(const char* rs_file_ = __builtin_FILE(), int rs_line_ = __builtin_LINE()) {
    if (::rs_emu::st().cur == nullptr) ::rs_emu::die("__syncthreads() outside a kernel");
    ::rs_emu::block_barrier(::rs_emu::Site{rs_file_, rs_line_});
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
// cudaFuncAttributeMaxDynamicSharedMemorySize is recorded per kernel and checked at launch.
inline cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
    const char* env = std::getenv("RS_EMU_MAX_DYN_SMEM");
    const long long max = env ? std::strtoll(env, nullptr, 0) : (long long)::rs_emu::kMaxDynSmemDefault;
    if (value < 0 || value > max) return cudaErrorInvalidValue;
    ::rs_emu::func_max_dyn_smem()[func] = value;
    return cudaSuccess;
}
template <typename T>
inline cudaError_t cudaFuncSetAttribute(T* func, cudaFuncAttribute attr, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void*>(func), attr, value);
}
// The emulated device: an sm_90 with RS_EMU_SM_COUNT (default 132) multiprocessors.
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    const char* sms = std::getenv("RS_EMU_SM_COUNT");
    switch (attr) {
        case cudaDevAttrMultiProcessorCount: *value = sms ? std::atoi(sms) : 132; return cudaSuccess;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)::rs_emu::kMaxDynSmemDefault; return cudaSuccess;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = 49152; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
        case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
        case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
        default: return cudaErrorInvalidValue;
    }
}
inline cudaError_t cudaGetDevice(int* device) {
    *device = 0;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : cudaErrorInvalidDevice; }
inline const char* cudaGetErrorName(cudaError_t e) {
    return e == cudaSuccess ? "cudaSuccess"
         : e == cudaErrorInvalidConfiguration ? "cudaErrorInvalidConfiguration"
         : e == cudaErrorInvalidValue ? "cudaErrorInvalidValue"
         : e == cudaErrorInvalidDevice ? "cudaErrorInvalidDevice"
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
inline unsigned lane() { return ::rs_emu::cur().lin % 32u; }

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

// <<<>>> does not exist in a host compiler: cuda/dev/rslora_dev.cu launches through these (its nvcc
// build defines them as kernel<<<grid, block[, smem]>>>(args...)).
#define RS_LAUNCH(kernel, grid, block, ...) \
    ::rs_emu::launch(#kernel, kernel, dim3(grid), dim3(block), size_t(0), dim3(1, 1, 1), false, __VA_ARGS__)
#define RS_LAUNCH_EX(kernel, grid, block, smem, ...) \
    ::rs_emu::launch(#kernel, kernel, dim3(grid), dim3(block), size_t(smem), dim3(1, 1, 1), false, __VA_ARGS__)

// Dynamic shared memory of a kernel (GPU: extern __shared__ __align__(1024) unsigned char name[],
// cuda/arch/common.cuh): here the current block's window. (The same token sequence as any other
// emulation-side definition, so a second identical #define is no error.)
#define RS_DYNAMIC_SMEM(name) unsigned char* const name = ::rs_emu::dynamic_smem()

// What the harness's cuda/dev/emu/launch_ex.h supplies until the emulation does: it stands aside.
#define RS_EMU_HAS_LAUNCH_EX 1
#define RS_EMU_HAS_TRAP 1
inline void __trap() { ::rs_emu::die(std::string("__trap() in ") + ::rs_emu::where()); }

#include "common_emu.h"
#include "sm80_emu.h"
#include "sm90_emu.h"
