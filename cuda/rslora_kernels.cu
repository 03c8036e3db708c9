// The one translation unit of the kernel fatbin (native-build/build-kernels.sh): every kernel
// family of cuda/kernels/, version 1 (plain tiled SIMT, the GPU-side oracle). Each header states
// its shapes, γ and launch geometry; rslora_params.h holds the parameter structs.
#include "kernels/lora_down.cuh"
#include "kernels/lora_forward.cuh"
#include "kernels/lora_backward_vdb.cuh"
#include "kernels/lora_backward_da.cuh"
#include "kernels/reduce_groups.cuh"
#include "kernels/lora_backward_dx.cuh"
#include "kernels/lora_merge.cuh"
#include "kernels/convert.cuh"
#include "kernels/dropout_elementwise.cuh"  // the unfused cuBLAS baseline only
#include "kernels/adamw.cuh"                // fused AdamW over all adapter tensors, grad norm for clipping
#include "kernels/adafactor.cuh"            // fused Adafactor over all adapter tensors (five passes, deterministic)
#include "kernels/seq_logprob.cuh"          // per-sequence log-probs of labels and their backward (DPO)
// version 2 (tensor cores, bf16/fp16; opt-in, not yet validated on hardware)
#include "kernels/lora_forward_v2.cuh"
#include "kernels/lora_backward_dx_v2.cuh"
// the memory-bound LoRA kernels of the v3 and v4 families (family-neutral names rslora_mb_*;
// cuda/kernels.table maps both families to them)
#include "kernels/mb_prep.cuh"
#include "kernels/mb_down.cuh"
#include "kernels/mb_vdb.cuh"
#include "kernels/mb_vdb_reduce.cuh"
#include "kernels/mb_da.cuh"
// version 4 (sm_80-family mma.sync GEMM core, bf16/fp16; not yet validated on hardware)
#include "kernels/lora_forward_v4.cuh"
#include "kernels/lora_backward_dx_v4.cuh"
