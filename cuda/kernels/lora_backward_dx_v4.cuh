// (5) v4 — dX on the sm_80-family GEMM core (cuda/cores/sm80_gemm.cuh), bf16/f16 only.
// NOT VALIDATED ON HARDWARE YET (CPU emulation only).
//   rslora_lora_backward_dx_v4_*: dX [n, d_in] (=|+=) dY·W + D'(Vg·At)
//     dY [n, d_out] T, W [d_out, d_in] T (MN-major operand), Vg [n, r_pad] T = T(γ·V) (γ folded in by
//     the `vdb` kernel), At [r, d_in] T = T(A) (MN-major operand). ONE fp32 accumulator: the LoRA
//     K-steps first (k = j < r over (Vg, At)), then the forward's dropout mask of element (i, c),
//     regenerated with rs_dropout_quad (SPEC.md §4, the same (row, col) rule as v1), is applied to
//     the accumulator registers (a dropped element is 0, NaN included), then the d_out K-steps over
//     (dY, W) accumulate on top; dX written (or read-modified-written) once.
//   rslora_lora_dx_add_v4_*: dX (=|+=) D'(Vg·At) (dy, w, d_out unused): the LoRA-only step that
//     follows cuBLASLt's dX = dY·W in the split path (issue 12), accumulate = 1.
// Launch (cuda/kernels/lora_v4_launch.h): 1-D grid of ceil(n/BM)·ceil(d_in/BN) blocks of
// C::THREADS threads, C::SMEM_BYTES dynamic shared memory; dx rs4::BigTile, dx_add rs4::SmallTile.
#pragma once
#include "../cores/sm80_gemm.cuh"

template <class C, typename T, bool BASE>
__device__ __forceinline__ void lora_backward_dx_v4(const RsLoraBackwardDxV4Params& p) {
    RS_DYNAMIC_SMEM(smem);
    int tm, tn;
    rs4::tile_coords((p.n + C::BM - 1) / C::BM, (p.d_in + C::BN - 1) / C::BN, tm, tn);
    const int m0 = tm * C::BM, n0 = tn * C::BN;
    const int r_pad = (p.r + 7) & ~7;
    // k = j < r: P(i, j) = Vg[i, j], Q(c, j) = At[j, c]; then k = o < d_out: P(i, o) = dY[i, o], Q(c, o) = W[o, c]
    const rs4::Segment<T> lora{static_cast<const T*>(p.vg), static_cast<const T*>(p.at), r_pad, p.d_in, p.r};
    const rs4::Segment<T> base{static_cast<const T*>(p.dy), static_cast<const T*>(p.w), p.d_out, p.d_in,
                               BASE ? p.d_out : 0};
    float acc[C::MT][C::NT][4];
    rs4::mainloop<C, T, true, true>(acc, rsarch::smem_addr(smem), lora, base, p.n, p.d_in, m0, n0, p.drop);
    rs4::epilogue<C, T>(acc, smem, static_cast<T*>(p.dx), p.d_in, p.n, p.d_in, m0, n0, static_cast<const T*>(nullptr),
                        p.accumulate != 0);
}

#define RS_EXPORT_V4_DX(name, C, BASE)                                                                            \
    extern "C" __global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) name##_bf16(RsLoraBackwardDxV4Params p) { \
        lora_backward_dx_v4<C, __nv_bfloat16, BASE>(p);                                                           \
    }                                                                                                             \
    extern "C" __global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) name##_f16(RsLoraBackwardDxV4Params p) {  \
        lora_backward_dx_v4<C, __half, BASE>(p);                                                                  \
    }

RS_EXPORT_V4_DX(rslora_lora_backward_dx_v4, rs4::BigTile, true)
RS_EXPORT_V4_DX(rslora_lora_dx_add_v4, rs4::SmallTile, false)
