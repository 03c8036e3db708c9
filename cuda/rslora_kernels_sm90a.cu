// The sm_90a translation unit of the kernel fatbin (native-build/build-kernels.sh compiles it with
// -gencode arch=compute_90a,code=sm_90a only: wgmma and setmaxnreg need the `a` target). Version 3:
// the Hopper GEMM core (cores/sm90_gemm.cuh: TMA + mbarrier ring, warp-specialised producer and two
// wgmma consumer warpgroups, persistent grid, TMA-store epilogue) under the forward and dX GEMMs.
// Launch facts: kernels/lora_v3_launch.h; params: rslora_params.h.
#include "kernels/lora_forward_v3.cuh"
#include "kernels/lora_backward_dx_v3.cuh"
