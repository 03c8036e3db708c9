// One way to launch any kernel of the table from the harness, on the GPU and in the CPU emulation:
// dynamic shared memory (> 48 KB opted in with cudaFuncSetAttribute), a thread-block cluster
// (cudaLaunchKernelEx's cluster attribute), and CUtensorMap arguments passed by value after the
// params struct (TMA kernels: `const __grid_constant__ CUtensorMap` params). Also the TMA
// descriptor encoder: the driver's cuTensorMapEncodeTiled through cudaGetDriverEntryPointByVersion
// on a GPU (the harness does not link libcuda), the emulation's function of the same signature
// otherwise (cuda/dev/emu).
#pragma once
#include <cuda.h>  // CUtensorMap and the cuTensorMapEncodeTiled types (no libcuda link)
#include <set>

namespace rsdev {

struct LaunchShape {
    dim3 grid, block;
    size_t smem;   // dynamic shared memory bytes
    dim3 cluster;  // 1x1x1: none
};

#if defined(RS_EMULATE)
template <typename... P, typename... A>
void launch_raw(const char* name, void (*kernel)(P...), const LaunchShape& s, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "argument count");
    ::rs_emu::launch_ex(name, kernel, s.grid, s.block, s.smem, s.cluster, P(args)...);
}
#else
template <typename... P, typename... A>
void launch_raw(const char* name, void (*kernel)(P...), const LaunchShape& s, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "argument count");
    static std::set<const void*> opted;  // cudaFuncSetAttribute once per kernel
    if (s.smem > 48 * 1024 && opted.insert((const void*)kernel).second) {
        cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)s.smem);
        if (e != cudaSuccess) {
            std::fprintf(stderr, "%s: cannot opt in to %zu bytes of dynamic shared memory: %s\n", name, s.smem,
                         cudaGetErrorString(e));
            std::exit(2);
        }
    }
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = s.grid;
    cfg.blockDim = s.block;
    cfg.dynamicSmemBytes = s.smem;
    cfg.stream = 0;
    cudaLaunchAttribute attr[1];
    if (s.cluster.x * s.cluster.y * s.cluster.z > 1) {
        attr[0].id = cudaLaunchAttributeClusterDimension;
        attr[0].val.clusterDim.x = s.cluster.x;
        attr[0].val.clusterDim.y = s.cluster.y;
        attr[0].val.clusterDim.z = s.cluster.z;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
    }
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, P(args)...);
    if (e != cudaSuccess) {
        std::fprintf(stderr, "launch of %s, grid (%u,%u,%u) block %u smem %zu cluster (%u,%u,%u) failed: %s\n", name, s.grid.x,
                     s.grid.y, s.grid.z, s.block.x, s.smem, s.cluster.x, s.cluster.y, s.cluster.z, cudaGetErrorString(e));
        std::exit(2);
    }
}
#endif

// A 2-D tiled TMA descriptor over a row-major [rows, cols] tensor of dtype dt with a row stride
// of row_bytes (a multiple of 16), boxes of box_rows × box_cols elements, out-of-bounds elements
// read as zero. The driver validates every argument; a refusal is fatal here with its numbers.
inline CUtensorMap tensor_map_2d(const void* base, DT dt, uint64_t rows, uint64_t cols, uint64_t row_bytes, uint32_t box_rows,
                                 uint32_t box_cols, CUtensorMapSwizzle swizzle) {
    typedef CUresult (*EncodeTiled)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                    const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                    CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
#if defined(RS_EMULATE)
    static const EncodeTiled encode = &::cuTensorMapEncodeTiled;  // the emulation's (cuda/dev/emu)
#else
    static const EncodeTiled encode = [] {
        void* fn = nullptr;
        cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
        CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
        if (q != cudaDriverEntryPointSuccess || fn == nullptr) dev_die("the driver has no cuTensorMapEncodeTiled (needs CUDA 12)");
        return reinterpret_cast<EncodeTiled>(fn);
    }();
#endif
    const CUtensorMapDataType type = dt == DT::F32 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT32
                                   : dt == DT::BF16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
    CUtensorMap map;
    const cuuint64_t dims[2] = {cols, rows};
    const cuuint64_t strides[1] = {row_bytes};
    const cuuint32_t box[2] = {box_cols, box_rows};
    const cuuint32_t estride[2] = {1, 1};
    CUresult r = encode(&map, type, 2, const_cast<void*>(base), dims, strides, box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                        swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        dev_die("cuTensorMapEncodeTiled refused rows=" + std::to_string(rows) + " cols=" + std::to_string(cols) +
                " row_bytes=" + std::to_string(row_bytes) + " box=" + std::to_string(box_rows) + "x" + std::to_string(box_cols) +
                " base=" + std::to_string((unsigned long long)(uintptr_t)base) + " (CUresult " + std::to_string((int)r) + ")");
    }
    return map;
}

}  // namespace rsdev

// The plain launch of the single-params kernels (adamw_check.cuh and the commands outside the table).
#if !defined(RS_LAUNCH)
#define RS_LAUNCH(kernel, grid, block, ...) \
    ::rsdev::launch_raw(#kernel, kernel, ::rsdev::LaunchShape{dim3(grid), dim3(block), 0, dim3(1, 1, 1)}, __VA_ARGS__)
#endif
