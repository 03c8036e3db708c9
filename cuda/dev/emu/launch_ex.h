// Minimal emulation of what the table-driven harness and the memory-bound kernels need beyond
// cuda_emu.h: a variadic launch with dynamic shared memory and a cluster shape, the block's
// dynamic shared memory window (RS_DYNAMIC_SMEM in cuda/arch/common.cuh), __trap(), and wmma's
// accumulator load from memory. Each piece stands aside when cuda_emu.h provides its own (it then
// defines RS_EMU_HAS_LAUNCH_EX, RS_EMU_HAS_TRAP, RS_EMU_HAS_WMMA_ACC_LOAD).
//   - the window is one buffer of exactly dyn_smem bytes (AddressSanitizer sees one byte past it),
//     1024-byte aligned, filled with 0xFF (NaN for f32/bf16/f16) before every block, so a kernel
//     that reads shared memory it did not write in this block gets poison, not a neighbour's data;
//   - cluster dims must divide the grid (as cudaLaunchKernelEx requires); blocks of a cluster run
//     one after another like any other blocks (no distributed shared memory here).
#pragma once
#if !defined(RS_EMU_HAS_LAUNCH_EX)
#define RS_EMU_HAS_LAUNCH_EX 1

namespace rs_emu {

struct DynSmem {
    unsigned char* base = nullptr;
    size_t bytes = 0;
};
inline DynSmem& dyn() {
    static DynSmem d;
    return d;
}
inline unsigned char* dynamic_smem() {
    if (st().cur == nullptr) die("dynamic shared memory used outside a kernel");
    if (dyn().base == nullptr) die(std::string("kernel ") + st().kernel + " uses dynamic shared memory but was launched with 0 bytes");
    return dyn().base;
}

template <typename... Args>
void launch_ex(const char* name, void (*kernel)(Args...), dim3 grid, dim3 block, size_t dyn_smem, dim3 cluster, Args... args) {
    State& s = st();
    const unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    const bool bad_cluster = cluster.x < 1 || cluster.y < 1 || cluster.z < 1 || grid.x % cluster.x || grid.y % cluster.y ||
                             grid.z % cluster.z || cluster.x * cluster.y * cluster.z > 16;
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || block.x < 1 ||
        block.y < 1 || block.z < 1 || threads > 1024 || block.z > 64 || dyn_smem > 232448 || bad_cluster) {
        std::fprintf(stderr, "cuda-emu: invalid launch of %s: grid (%u,%u,%u) block (%u,%u,%u) smem %zu cluster (%u,%u,%u)\n",
                     name, grid.x, grid.y, grid.z, block.x, block.y, block.z, dyn_smem, cluster.x, cluster.y, cluster.z);
        s.pending = cudaErrorInvalidConfiguration;
        return;
    }
    unsigned char* window = nullptr;
    if (dyn_smem > 0) {
        // exactly dyn_smem bytes at a 1024-byte aligned address
        if (posix_memalign(reinterpret_cast<void**>(&window), 1024, dyn_smem) != 0) die("cannot allocate dynamic shared memory");
    }
    dyn().base = window;
    dyn().bytes = dyn_smem;
    s.grid_dim = grid;
    s.block_dim = block;
    s.kernel = name;
    s.body = [kernel, args...] { kernel(args...); };
    for (unsigned z = 0; z < grid.z; ++z)
        for (unsigned y = 0; y < grid.y; ++y)
            for (unsigned x = 0; x < grid.x; ++x) {
                const uint3 b = make_uint3(x, y, z);
                if (s.block_filter && !s.block_filter(b)) continue;
                if (window) std::memset(window, 0xFF, dyn_smem);
                run_block(b);
            }
    ++s.launches;
    dyn().base = nullptr;
    dyn().bytes = 0;
    std::free(window);
}

}  // namespace rs_emu
#endif

#if !defined(RS_EMU_HAS_TRAP)
#define RS_EMU_HAS_TRAP 1
inline void __trap() { ::rs_emu::die(std::string("__trap() in kernel ") + ::rs_emu::st().kernel); }
#endif

#if !defined(RS_EMU_HAS_WMMA_ACC_LOAD)
#define RS_EMU_HAS_WMMA_ACC_LOAD 1
namespace nvcuda {
namespace wmma {
// load_matrix_sync(accumulator, float*, ldm, layout): every lane holds the whole tile, as the
// other fragments of cuda_emu.h (mma_sync then updates and store_matrix_sync writes the lane's share)
template <int M, int N, int K>
inline void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t layout) {
    check_ptr(p, ldm, sizeof(float), "load_matrix_sync(accumulator)");
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) f.v[i][j] = layout == mem_row_major ? p[(size_t)i * ldm + j] : p[(size_t)j * ldm + i];
}
}  // namespace wmma
}  // namespace nvcuda
#endif
