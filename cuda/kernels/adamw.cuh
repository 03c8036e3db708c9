// Fused AdamW (torch.optim.AdamW semantics) over ALL adapter tensors in one launch, and the global
// gradient 2-norm for clipping (two deterministic passes). Structs: RsAdamWTensor, RsAdamWParams,
// RsGradNormParams in rslora_params.h.
//
// rslora_adamw_v1: the tensors form one global element space [0, total) (tensor k: elements
// [offset_k, offset_k + count_k)). Grid-stride loop over it; a thread's element indices only grow,
// so it keeps the tensor of its previous element and binary-searches the offsets of the table
// only when it leaves that tensor (once per thread for large tensors; log2(num_tensors) cached
// loads per element when many tiny tensors are packed together). Per element, in fp32, EXACTLY the
// operations and order of dev.rslora.train.AdamWScalar (so results are bit-identical to the CPU
// AdamW, whose Java arithmetic never contracts), written with __fmul_rn/__fadd_rn/__fsub_rn/
// __fdiv_rn/__fsqrt_rn so that nvcc cannot fuse a multiply and an add into an FMA nor use an
// approximate division or square root:
//   g ← grad (widened exactly);  if s ≠ 1: g ← round_G(g·s)     (s = *grad_scale, the clip coefficient:
//                                                                torch/GradClip scale the gradient in place)
//   p ← target·decay                                            (target: the f32 master, else the param)
//   m ← m + (1−β1)·(g − m)                                      (exp_avg.lerp_(g, 1−β1))
//   v ← v·β2 + ((1−β2)·g)·g                                     (exp_avg_sq.mul_(β2).addcmul_(g, g, 1−β2))
//   p ← p − step_size·(m / (√v / bc2_sqrt + eps))
//   store m, v; master ← p and param ← round_P(p) (nearest even), or param ← round_P(p)
// Denormals are kept (the kernels are built without -ftz / fast math).
// Launch: 1-D grid of any size (the host uses min(ceil(total/256), 65536)), block 256.
//
// rslora_grad_sumsq_v1 / rslora_grad_norm_finish_v1: see RsGradNormParams. Pass 1 is launched with
// exactly num_partials blocks of 256 threads; pass 2 with one block of 256 threads. Squares and
// sums in f64 with __dmul_rn/__dadd_rn (no FMA), so the result is a fixed function of the inputs and
// pass 1's grid: bit-identical on every run and device, and equal to the harness's host mirror.
#pragma once
#include "../rslora_tile.cuh"

namespace rs_adamw {

constexpr int kF32 = 0, kBF16 = 1, kF16 = 2;

__device__ __forceinline__ float load(const void* base, int dtype, int64_t i) {
    if (dtype == kBF16) return rs::to_f32<__nv_bfloat16>(static_cast<const __nv_bfloat16*>(base)[i]);
    if (dtype == kF16) return rs::to_f32<__half>(static_cast<const __half*>(base)[i]);
    return static_cast<const float*>(base)[i];
}

__device__ __forceinline__ void store(void* base, int dtype, int64_t i, float v) {
    if (dtype == kBF16) {
        static_cast<__nv_bfloat16*>(base)[i] = rs::from_f32<__nv_bfloat16>(v);
    } else if (dtype == kF16) {
        static_cast<__half*>(base)[i] = rs::from_f32<__half>(v);
    } else {
        static_cast<float*>(base)[i] = v;
    }
}

// v rounded to dtype and widened back (identity for f32)
__device__ __forceinline__ float round_to(int dtype, float v) {
    if (dtype == kBF16) return rs::to_f32<__nv_bfloat16>(rs::from_f32<__nv_bfloat16>(v));
    if (dtype == kF16) return rs::to_f32<__half>(rs::from_f32<__half>(v));
    return v;
}

// The tensor k in [lo, hi) with offset_k <= i < offset_k + count_k (offsets ascending, contiguous).
__device__ __forceinline__ int find(const RsAdamWTensor* t, int lo, int hi, int64_t i) {
    while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        if (t[mid].offset <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

}  // namespace rs_adamw

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adamw_v1(RsAdamWParams p) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const float s = p.grad_scale ? *p.grad_scale : 1.0f;
    RsAdamWTensor t = {};  // register copy of the current tensor's descriptor (k)
    int k = 0;
    int64_t end = 0;       // t.offset + t.count; 0 before the first search
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += stride) {
        if (i >= end) {
            k = rs_adamw::find(p.tensors, end == 0 ? 0 : k + 1, p.num_tensors, i);
            t = p.tensors[k];
            end = t.offset + t.count;
        }
        const int64_t e = i - t.offset;
        float g = rs_adamw::load(t.grad, t.grad_dtype, e);
        if (s != 1.0f) {  // also NaN: as GradClip / torch, which scale by a NaN coefficient
            g = rs_adamw::round_to(t.grad_dtype, __fmul_rn(g, s));
        }
        float x = t.master ? t.master[e] : rs_adamw::load(t.param, t.param_dtype, e);
        x = __fmul_rn(x, p.decay);
        float m = t.exp_avg[e];
        float v = t.exp_avg_sq[e];
        // torch's exp_avg.lerp_(g, 1−β1): m + w·(g − m) for a weight w < 0.5, else g − (g − m)·(1 − w)
        // (m = g exactly at β1 = 0), as dev.rslora.train.AdamWScalar
        const float diff = __fsub_rn(g, m);
        m = p.one_minus_beta1 < 0.5f ? __fadd_rn(m, __fmul_rn(p.one_minus_beta1, diff))
                                     : __fsub_rn(g, __fmul_rn(diff, __fsub_rn(1.0f, p.one_minus_beta1)));
        v = __fadd_rn(__fmul_rn(v, p.beta2), __fmul_rn(__fmul_rn(p.one_minus_beta2, g), g));
        const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), p.bc2_sqrt), p.eps);
        x = __fsub_rn(x, __fmul_rn(p.step_size, __fdiv_rn(m, denom)));
        t.exp_avg[e] = m;
        t.exp_avg_sq[e] = v;
        if (t.master) {
            t.master[e] = x;
        }
        rs_adamw::store(t.param, t.param_dtype, e, x);
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_grad_sumsq_v1(RsGradNormParams p) {
    __shared__ double red[rs::kThreads];
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    double acc = 0.0;
    RsAdamWTensor t = {};
    int k = 0;
    int64_t end = 0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += stride) {
        if (i >= end) {
            k = rs_adamw::find(p.tensors, end == 0 ? 0 : k + 1, p.num_tensors, i);
            t = p.tensors[k];
            end = t.offset + t.count;
        }
        const double g = rs_adamw::load(t.grad, t.grad_dtype, i - t.offset);
        acc = __dadd_rn(acc, __dmul_rn(g, g));
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (int h = rs::kThreads / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) {
            red[threadIdx.x] = __dadd_rn(red[threadIdx.x], red[threadIdx.x + h]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        p.partials[blockIdx.x] = red[0];
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_grad_norm_finish_v1(RsGradNormParams p) {
    __shared__ double red[rs::kThreads];
    double acc = 0.0;
    for (int b = threadIdx.x; b < p.num_partials; b += rs::kThreads) {
        acc = __dadd_rn(acc, p.partials[b]);
    }
    red[threadIdx.x] = acc;
    __syncthreads();
    for (int h = rs::kThreads / 2; h > 0; h >>= 1) {
        if ((int)threadIdx.x < h) {
            red[threadIdx.x] = __dadd_rn(red[threadIdx.x], red[threadIdx.x + h]);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const double norm = __dsqrt_rn(red[0]);
        *p.norm_out = norm;
        if (p.clip_coef) {
            const double c = __ddiv_rn(p.max_norm, __dadd_rn(norm, 1e-6));
            *p.clip_coef = (float)(c < 1.0 || c != c ? c : 1.0);  // Math.min(c, 1.0): NaN stays NaN
        }
    }
}
