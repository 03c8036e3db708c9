// (2) v4 — the forward on the sm_80-family GEMM core (cuda/cores/sm80_gemm.cuh), bf16/f16 only.
// NOT VALIDATED ON HARDWARE YET (CPU emulation only).
//   rslora_lora_forward_v4_*: Y [n, d_out] (=|+=) X·Wᵀ + bias + Ug·Btᵀ
//     X [n, d_in] T, W [d_out, d_in] T, bias [d_out] T (nullable), Ug [n, r_pad] T = T(γ·U),
//     Bt [d_out, r_pad] T = T(B) (γ is folded into Ug by the `down` kernel). ONE fp32 accumulator:
//     the d_in K-steps over (X, W), then ceil(r/32) K-steps over (Ug, Bt) (zero-filled past r),
//     bias in the epilogue, Y written (or read-modified-written) once.
//   rslora_lora_up_add_v4_*: Y (=|+=) bias + Ug·Btᵀ (x, w, d_in unused): the LoRA-only step that
//     follows cuBLASLt's Y = X·Wᵀ (+ bias) in the split path (issue 12), accumulate = 1.
// Launch (cuda/kernels/lora_v4_launch.h): 1-D grid of ceil(n/BM)·ceil(d_out/BN) blocks of
// C::THREADS threads, C::SMEM_BYTES dynamic shared memory; forward rs4::BigTile, up_add rs4::SmallTile.
#pragma once
#include "../cores/sm80_gemm.cuh"

template <class C, typename T, bool BASE>
__device__ __forceinline__ void lora_forward_v4(const RsLoraForwardV4Params& p) {
    RS_DYNAMIC_SMEM(smem);
    int tm, tn;
    rs4::tile_coords((p.n + C::BM - 1) / C::BM, (p.d_out + C::BN - 1) / C::BN, tm, tn);
    const int m0 = tm * C::BM, n0 = tn * C::BN;
    const int r_pad = (p.r + 7) & ~7;
    // k = c < d_in: P(i, c) = X[i, c], Q(o, c) = W[o, c]; then k = j < r: P(i, j) = Ug[i, j], Q(o, j) = Bt[o, j]
    const rs4::Segment<T> base{static_cast<const T*>(p.x), static_cast<const T*>(p.w), p.d_in, p.d_in, BASE ? p.d_in : 0};
    const rs4::Segment<T> lora{static_cast<const T*>(p.ug), static_cast<const T*>(p.bt), r_pad, r_pad, p.r};
    const RsDropout none = {0u, 0u, 0u, 0u, 0u, 1.0f, 0};
    float acc[C::MT][C::NT][4];
    rs4::mainloop<C, T, false, false>(acc, rsarch::smem_addr(smem), base, lora, p.n, p.d_out, m0, n0, none);
    rs4::epilogue<C, T>(acc, smem, static_cast<T*>(p.y), p.d_out, p.n, p.d_out, m0, n0, static_cast<const T*>(p.bias),
                        p.accumulate != 0);
}

#define RS_EXPORT_V4_FORWARD(name, C, BASE)                                                                    \
    extern "C" __global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) name##_bf16(RsLoraForwardV4Params p) { \
        lora_forward_v4<C, __nv_bfloat16, BASE>(p);                                                            \
    }                                                                                                          \
    extern "C" __global__ void __launch_bounds__(C::THREADS, C::MIN_BLOCKS) name##_f16(RsLoraForwardV4Params p) {  \
        lora_forward_v4<C, __half, BASE>(p);                                                                   \
    }

RS_EXPORT_V4_FORWARD(rslora_lora_forward_v4, rs4::BigTile, true)
RS_EXPORT_V4_FORWARD(rslora_lora_up_add_v4, rs4::SmallTile, false)
