// The sm_90a translation unit of the kernel fatbins (native-build/build-kernels.sh compiles it with
// -gencode arch=compute_90a,code=sm_90a only, into rslora_kernels_sm90a.fatbin): the kernels that
// need the `a` features (wgmma, setmaxnreg). Version 3: the Hopper GEMM core (cores/sm90_gemm.cuh:
// TMA + mbarrier ring, warp-specialised producer and two wgmma consumer warpgroups, persistent grid,
// TMA-store epilogue) under the forward and dX GEMMs. cuda/kernels.table says which kernel lives in
// which image (its `image` column); launch facts: kernels/lora_v3_launch.h; params: rslora_params.h.
// The dev harness includes this file next to rslora_kernels.cu and builds for sm_80 too, so every
// kernel body here is guarded (RS_SM90A_BODY: the real body for compute_90a and the CPU emulation,
// __trap() elsewhere).
#include "rslora_params.h"
#include "kernels/lora_forward_v3.cuh"
#include "kernels/lora_backward_dx_v3.cuh"
