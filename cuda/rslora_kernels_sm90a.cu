// The sm_90a translation unit of the kernel fatbins (native-build/build-kernels.sh compiles it with
// -gencode arch=compute_90a,code=sm_90a only, into rslora_kernels_sm90a.fatbin): the kernels that
// need the `a` features (wgmma, setmaxnreg) — the v3 Hopper GEMM core. cuda/kernels.table says which
// kernel lives in which image (its `image` column). The dev harness includes this file next to
// rslora_kernels.cu and builds for sm_80 too, so every kernel body here is guarded:
//   #if defined(__CUDA_ARCH_FEAT_SM90_ALL) ... #else __trap(); #endif
#include "rslora_params.h"
