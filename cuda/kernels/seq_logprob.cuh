// Per-sequence log-probabilities of labels under logits, and their backward, without a softmax copy
// (dev.rslora.train.SeqLogprob on the GPU; what DPO needs for the chosen and rejected responses at a
// vocabulary of 32k–128k). Struct RsSeqLogprobParams in rslora_params.h.
//
//   logits [rows = B·T, V] T (f32 / bf16 / f16 by suffix), labels [rows] int32 (−100 = ignored)
//   rslora_seq_logprob_rows_v1_<T>:   one block per row. Each thread runs an online softmax over the
//       columns v ≡ tid (mod 256) in ascending order (m = running max in f32, s = Σ exp(x − m) in double,
//       rescaled by exp(m_old − m_new) when the max grows); the 256 (m, s) pairs are merged by a fixed
//       tree through shared memory; lse = m + log(s) (double). Writes lse[row] = f32(lse) and
//       tok[row] = x[label] − lse (double); ignored rows write 0 and 0 (the whole block returns together).
//   rslora_seq_logprob_sum_v1:        one thread per sequence: logp[b] = f32(Σ_t tok[b·T + t]) (ascending t).
//   rslora_seq_logprob_backward_v1_<T>: one block per row: dlogits[row, v] = −(g·p) for v ≠ label and
//       g·(1 − p) at the label, p = exp(x − lse[row]) (f32), g = grad[row / T]; 0 on ignored rows.
//       Every element is read and then written by the same thread, so dlogits may be logits itself.
// exp is expf (≤ 2 ulp on the device): results are not bit-identical to the CPU's Math.exp path;
// the harness compares both against a double reference with a tolerance.
// Launch: rows and backward: grid (rows, 1, 1) (rows <= 2^31 − 1), block 256; sum: ceil(B/256) blocks of 256.
#pragma once
#include "../rslora_tile.cuh"

namespace rs_seqlp {

// (m1, s1) ⊕ (m2, s2) = (max, s1·e^(m1−max) + s2·e^(m2−max)); an empty side (m = −∞) leaves the other.
__device__ __forceinline__ void merge(float& m1, double& s1, float m2, double s2) {
    if (m2 == -INFINITY) return;
    if (m1 == -INFINITY) {
        m1 = m2;
        s1 = s2;
        return;
    }
    if (m2 > m1) {
        s1 = s1 * (double)expf(m1 - m2) + s2;
        m1 = m2;
    } else {
        s1 = s1 + s2 * (double)expf(m2 - m1);
    }
}

template <typename T>
__device__ __forceinline__ void rows_body(const RsSeqLogprobParams& p) {
    __shared__ float sm[rs::kThreads];
    __shared__ double ss[rs::kThreads];
    const int row = (int)blockIdx.x, tid = (int)threadIdx.x;
    const int label = p.labels[row];
    if (label == -100) {  // uniform over the block
        if (tid == 0) {
            p.lse[row] = 0.0f;
            p.tok[row] = 0.0;
        }
        return;
    }
    const T* x = static_cast<const T*>(p.logits) + (int64_t)row * p.vocab;
    float m = -INFINITY;
    double s = 0.0;
    for (int v = tid; v < p.vocab; v += rs::kThreads) {
        const float xv = rs::to_f32<T>(x[v]);
        if (xv > m) {
            s = (m == -INFINITY ? 0.0 : s * (double)expf(m - xv)) + 1.0;
            m = xv;
        } else if (m != -INFINITY) {
            s = s + (double)expf(xv - m);  // a NaN logit after a finite one makes s NaN
        }
    }
    sm[tid] = m;
    ss[tid] = s;
    __syncthreads();
    for (int h = rs::kThreads / 2; h > 0; h >>= 1) {
        if (tid < h) {
            float a = sm[tid];
            double b = ss[tid];
            merge(a, b, sm[tid + h], ss[tid + h]);
            sm[tid] = a;
            ss[tid] = b;
        }
        __syncthreads();
    }
    if (tid == 0) {
        const double lse = (double)sm[0] + log(ss[0]);
        p.lse[row] = (float)lse;
        p.tok[row] = (double)rs::to_f32<T>(x[label]) - lse;
    }
}

template <typename T>
__device__ __forceinline__ void backward_body(const RsSeqLogprobParams& p) {
    const int row = (int)blockIdx.x, tid = (int)threadIdx.x;
    const int label = p.labels[row];
    const T* x = static_cast<const T*>(p.logits) + (int64_t)row * p.vocab;
    T* d = static_cast<T*>(p.dlogits) + (int64_t)row * p.vocab;
    if (label == -100) {
        for (int v = tid; v < p.vocab; v += rs::kThreads) d[v] = rs::from_f32<T>(0.0f);
        return;
    }
    const float g = p.grad[row / p.time];
    const float lse = p.lse[row];
    for (int v = tid; v < p.vocab; v += rs::kThreads) {
        const float pv = expf(rs::to_f32<T>(x[v]) - lse);
        d[v] = rs::from_f32<T>(v == label ? g * (1.0f - pv) : -(g * pv));
    }
}

}  // namespace rs_seqlp

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_rows_v1_f32(RsSeqLogprobParams p) {
    rs_seqlp::rows_body<float>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_rows_v1_bf16(RsSeqLogprobParams p) {
    rs_seqlp::rows_body<__nv_bfloat16>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_rows_v1_f16(RsSeqLogprobParams p) {
    rs_seqlp::rows_body<__half>(p);
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_sum_v1(RsSeqLogprobParams p) {
    const int b = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (b >= p.batch) return;
    double s = 0.0;
    for (int t = 0; t < p.time; ++t) s = s + p.tok[(int64_t)b * p.time + t];
    p.logp[b] = (float)s;
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_backward_v1_f32(RsSeqLogprobParams p) {
    rs_seqlp::backward_body<float>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_backward_v1_bf16(RsSeqLogprobParams p) {
    rs_seqlp::backward_body<__nv_bfloat16>(p);
}
extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_seq_logprob_backward_v1_f16(RsSeqLogprobParams p) {
    rs_seqlp::backward_body<__half>(p);
}
