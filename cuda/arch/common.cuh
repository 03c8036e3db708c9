// Device functions shared by every architecture family (GPU-CONTRACT.md "Common"), the GPU side:
// namespace rsarch, all __device__ __forceinline__. Under RS_EMULATE the CPU emulation
// (cuda/dev/emu/, included before any kernel) defines the same names and signatures, so this file
// compiles to nothing there. sm80.cuh and sm90.cuh include it; kernels reach these only through them.
// (GPU-CONTRACT.md lies outside this repository: see cuda/REVIEW.md, "The CPU emulation".)
// Blocks are 1-D (threadIdx.y = threadIdx.z = 0) wherever lane_id()/warp_id() are used.
#pragma once
#include <stdint.h>

#if !defined(RS_EMULATE)
// The block's dynamic shared memory (GPU-CONTRACT.md shared-memory rule: all of it in one
// 1024-byte aligned array), declared in a kernel body as `RS_DYNAMIC_SMEM(smem);`. The emulation
// defines the same macro as a pointer to the block's shared window.
#define RS_DYNAMIC_SMEM(name) extern __shared__ __align__(1024) unsigned char name[]

namespace rsarch {

// The 32-bit address of a shared-memory object in the .shared state space (what ldmatrix,
// cp.async, mbarrier and the matrix descriptors take), from its generic pointer.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ unsigned lane_id() { return threadIdx.x & 31u; }
__device__ __forceinline__ unsigned warp_id() { return threadIdx.x >> 5; }

__device__ __forceinline__ void syncwarp() { __syncwarp(0xffffffffu); }

// Full-warp shuffles: every lane of the warp must execute them.
__device__ __forceinline__ float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
__device__ __forceinline__ uint32_t shfl_idx(uint32_t v, int src) { return __shfl_sync(0xffffffffu, v, src); }

// bar.sync / bar.arrive on named barrier id (1..15; 0 is __syncthreads) with nthreads a multiple of 32.
__device__ __forceinline__ void named_bar_sync(int id, int nthreads) {
    asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(nthreads) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int nthreads) {
    asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(nthreads) : "memory");
}

}  // namespace rsarch
#endif  // !RS_EMULATE
