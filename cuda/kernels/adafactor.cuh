// Fused Adafactor (transformers.optimization.Adafactor semantics) over ALL adapter tensors: five
// launches per step over one table (RsAdafactorTensor[]) and two work lists (RsAdafactorWork[]),
// both uploaded once. Structs in rslora_params.h. The fp32 operations, their order and the double
// reduction order are those of dev.rslora.optim.AdafactorSpec, so that parameters, masters and state
// are bit for bit those of the CPU dev.rslora.train.Adafactor (which the harness's host mirror copies):
// every operation is a round-to-nearest intrinsic (no FMA contraction, no approximate division,
// square root or reciprocal square root), reductions run in double in a fixed order, no atomics.
//
// Per tensor p [rows, cols] (factored) or [count] (unfactored); sq = g·g + eps1 (f32):
//   1 rslora_adafactor_stats_v1   (work list 1, one warp per item, grid-stride over items)
//       row segment  (row i, segment s):  row_part[i, s] = flat sum of sq over columns [2048 s, 2048 s + 2048)
//       column chunk (chunk c, columns j0..j0+31): col_part[c, j] = Σ_{rows i in [64 c, 64 c + 64)} sq_ij (ascending i)
//       p² segment   (segment s):         p_part[s] = flat sum of p² (p widened, squared in double)
//   2 rslora_adafactor_factors_v1 (one block per tensor)
//       row_i ← row_i·β2 + f32(Σ_s row_part[i, s] / cols)·(1−β2);  col_j ← col_j·β2 + f32(Σ_c col_part[c, j] / rows)·(1−β2)
//       m̄ = f32(flat sum of row / rows);  rfac_i = 1/√(row_i/m̄);  cfac_j = 1/√col_j
//       lr_t = (scale_parameter ? max(eps2, √(Σ p_part)/√count) : 1)·rho;  scalars = f32(lr_t), f32(−wd·lr_t)
//   3 rslora_adafactor_update_v1  (work list 2: one update segment per item)
//       u = (rfac_i·cfac_j)·g, or for unfactored tensors v ← v·β2 + sq·(1−β2) (stored) and u = (1/√v)·g;
//       u_part[s] = flat sum of u² over the segment
//   4 rslora_adafactor_clip_v1    (one thread per tensor): divisor = f32(max(√(Σ u_part)/√count / clip, 1))
//   5 rslora_adafactor_apply_v1   (grid-stride over the global element space, like rslora_adamw_v1)
//       u (recomputed, same operations) / divisor · f32(lr_t); beta1: m ← m·β1 + u·(1−β1), u ← m;
//       x = master or param; wd: x ← x + x·f32(−wd·lr_t); x ← x − u; store master, param ← round(x)
// A "flat sum": segments of 2048 elements; within a segment lane l of the warp sums the elements
// k ≡ l (mod 32) in ascending order from 0; the 32 lane sums are combined by the butterfly
// s_l ← s_l + s_{l+h}, h = 16, 8, 4, 2, 1 (through shared memory with block-wide barriers that every
// thread reaches the same number of times, so the item loop is uniform over the block); segment sums
// are added in ascending order from 0 by the next pass.
// Launch: stats and update: 1-D grid of any size (the host uses min(ceil(items/8), 4096)), block 256;
// factors: one block of 256 per tensor; clip: ceil(tensors/256) blocks of 256; apply: as rslora_adamw_v1.
#pragma once
#include "adamw.cuh"  // rs_adamw::load / store (dtype codes 0 f32, 1 bf16, 2 f16)

namespace rs_adafactor {

constexpr int kRowSeg = 0, kColChunk = 1, kPSeg = 2, kUSeg = 3;
constexpr int kSegment = 2048;       // dev.rslora.optim.AdafactorSpec.SEGMENT
constexpr int kColChunkRows = 64;    // dev.rslora.optim.AdafactorSpec.COL_CHUNK
constexpr int kWarps = rs::kThreads / 32;

__device__ __forceinline__ float sq(float g, float eps1) { return __fadd_rn(__fmul_rn(g, g), eps1); }

// the tensor's update target: the f32 master, else the parameter widened
__device__ __forceinline__ float target(const RsAdafactorTensor& t, int64_t e) {
    return t.master ? t.master[e] : rs_adamw::load(t.param, t.param_dtype, e);
}

// 1/√x with a correctly rounded square root and division (torch's CPU rsqrt, AdafactorSpec)
__device__ __forceinline__ float rsqrt_rn(float x) { return __fdiv_rn(1.0f, __fsqrt_rn(x)); }

// u of element e before clipping: (rfac_i·cfac_j)·g (factored) or (1/√v)·g with v already updated
__device__ __forceinline__ float update_of(const RsAdafactorTensor& t, int64_t e, float g) {
    if (t.factored) {
        const int64_t i = e / t.cols, j = e - i * t.cols;
        return __fmul_rn(__fmul_rn(t.rfac[i], t.cfac[j]), g);
    }
    return __fmul_rn(rsqrt_rn(t.v[e]), g);
}

// The butterfly over the 32 lane sums of each warp (red: blockDim.x doubles). Every thread of the
// block must call it (it holds block-wide barriers); returns lane 0's result to every lane of the warp.
__device__ __forceinline__ double butterfly(double* red, int warp, int lane, double v) {
    double* w = red + warp * 32;
    w[lane] = v;
    __syncthreads();
    for (int h = 16; h > 0; h >>= 1) {
        if (lane < h) {
            w[lane] = __dadd_rn(w[lane], w[lane + h]);
        }
        __syncthreads();
    }
    const double r = w[0];
    __syncthreads();
    return r;
}

// The tensor k in [lo, hi) with offset_k <= i < offset_k + count_k (offsets ascending, contiguous).
__device__ __forceinline__ int find(const RsAdafactorTensor* t, int lo, int hi, int64_t i) {
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

}  // namespace rs_adafactor

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adafactor_stats_v1(RsAdafactorParams p) {
    using namespace rs_adafactor;
    __shared__ double red[rs::kThreads];
    const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32;
    const int per_round = (int)gridDim.x * kWarps;
    const int rounds = (p.num_work + per_round - 1) / per_round;  // the same for every thread of the grid
    for (int round = 0; round < rounds; ++round) {
        const int item = round * per_round + (int)blockIdx.x * kWarps + warp;
        const bool active = item < p.num_work;
        RsAdafactorWork w = {-1, 0, 0, 0};
        double acc = 0.0;
        if (active) {
            w = p.work[item];
            const RsAdafactorTensor& t = p.tensors[w.tensor];
            if (w.kind == kRowSeg) {
                const int64_t base = (int64_t)w.a * t.cols;
                const int j0 = w.b * kSegment, j1 = min(t.cols, j0 + kSegment);
                for (int j = j0 + lane; j < j1; j += 32) {
                    acc = __dadd_rn(acc, (double)sq(rs_adamw::load(t.grad, t.grad_dtype, base + j), p.eps1));
                }
            } else if (w.kind == kColChunk) {
                const int j = w.b + lane;
                if (j < t.cols) {
                    const int i0 = w.a * kColChunkRows, i1 = min(t.rows, i0 + kColChunkRows);
                    double s = 0.0;
                    for (int i = i0; i < i1; ++i) {
                        s = __dadd_rn(s, (double)sq(rs_adamw::load(t.grad, t.grad_dtype, (int64_t)i * t.cols + j), p.eps1));
                    }
                    t.col_part[(int64_t)w.a * t.cols + j] = s;
                }
            } else {  // kPSeg
                const int64_t e0 = (int64_t)w.a * kSegment;
                const int64_t e1 = e0 + kSegment < t.count ? e0 + kSegment : t.count;
                for (int64_t e = e0 + lane; e < e1; e += 32) {
                    const double x = target(t, e);
                    acc = __dadd_rn(acc, __dmul_rn(x, x));
                }
            }
        }
        const double s = butterfly(red, warp, lane, acc);
        if (active && lane == 0) {
            const RsAdafactorTensor& t = p.tensors[w.tensor];
            if (w.kind == kRowSeg) {
                t.row_part[(int64_t)w.a * t.row_segs + w.b] = s;
            } else if (w.kind == kPSeg) {
                t.p_part[w.a] = s;
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adafactor_factors_v1(RsAdafactorParams p) {
    using namespace rs_adafactor;
    __shared__ double red[rs::kThreads];
    __shared__ float row_mean;
    const RsAdafactorTensor t = p.tensors[blockIdx.x];
    const int tid = (int)threadIdx.x, warp = tid / 32, lane = tid % 32;
    if (t.factored) {  // uniform over the block
        for (int i = tid; i < t.rows; i += (int)blockDim.x) {
            double s = 0.0;
            for (int k = 0; k < t.row_segs; ++k) s = __dadd_rn(s, t.row_part[(int64_t)i * t.row_segs + k]);
            const float mean = (float)(__ddiv_rn(s, (double)t.cols));
            t.row[i] = __fadd_rn(__fmul_rn(t.row[i], p.beta2), __fmul_rn(mean, p.one_minus_beta2));
        }
        for (int j = tid; j < t.cols; j += (int)blockDim.x) {
            double s = 0.0;
            for (int c = 0; c < t.col_chunks; ++c) s = __dadd_rn(s, t.col_part[(int64_t)c * t.cols + j]);
            const float mean = (float)(__ddiv_rn(s, (double)t.rows));
            const float cv = __fadd_rn(__fmul_rn(t.col[j], p.beta2), __fmul_rn(mean, p.one_minus_beta2));
            t.col[j] = cv;
            t.cfac[j] = rsqrt_rn(cv);
        }
        __syncthreads();
        // m̄: the flat sum of the row states (warp 0 sums, every thread takes the barriers)
        double total = 0.0;
        const int segs = (t.rows + kSegment - 1) / kSegment;
        for (int s = 0; s < segs; ++s) {
            double acc = 0.0;
            if (warp == 0) {
                const int i1 = min(t.rows, (s + 1) * kSegment);
                for (int i = s * kSegment + lane; i < i1; i += 32) acc = __dadd_rn(acc, (double)t.row[i]);
            }
            total = __dadd_rn(total, butterfly(red, warp, lane, acc));
        }
        if (tid == 0) row_mean = (float)(__ddiv_rn(total, (double)t.rows));
        __syncthreads();
        const float m = row_mean;
        for (int i = tid; i < t.rows; i += (int)blockDim.x) t.rfac[i] = rsqrt_rn(__fdiv_rn(t.row[i], m));
    }
    if (tid == 0) {
        double lr = p.rho;
        if (p.scale_parameter) {
            double s = 0.0;
            for (int k = 0; k < t.segs; ++k) s = __dadd_rn(s, t.p_part[k]);
            const double rms = __ddiv_rn(__dsqrt_rn(s), __dsqrt_rn((double)t.count));
            lr = __dmul_rn(rms > p.eps2 ? rms : p.eps2, p.rho);  // Python's max(eps2, RMS)
        }
        t.scalars[0] = (float)lr;
        t.scalars[1] = (float)(__dmul_rn(-p.weight_decay, lr));
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adafactor_update_v1(RsAdafactorParams p) {
    using namespace rs_adafactor;
    __shared__ double red[rs::kThreads];
    const int warp = (int)threadIdx.x / 32, lane = (int)threadIdx.x % 32;
    const int per_round = (int)gridDim.x * kWarps;
    const int rounds = (p.num_work + per_round - 1) / per_round;
    for (int round = 0; round < rounds; ++round) {
        const int item = round * per_round + (int)blockIdx.x * kWarps + warp;
        const bool active = item < p.num_work;
        RsAdafactorWork w = {-1, 0, 0, 0};
        double acc = 0.0;
        if (active) {
            w = p.work[item];
            const RsAdafactorTensor& t = p.tensors[w.tensor];
            const int64_t e0 = (int64_t)w.a * kSegment;
            const int64_t e1 = e0 + kSegment < t.count ? e0 + kSegment : t.count;
            for (int64_t e = e0 + lane; e < e1; e += 32) {
                const float g = rs_adamw::load(t.grad, t.grad_dtype, e);
                if (!t.factored) {
                    t.v[e] = __fadd_rn(__fmul_rn(t.v[e], p.beta2), __fmul_rn(sq(g, p.eps1), p.one_minus_beta2));
                }
                const double u = update_of(t, e, g);
                acc = __dadd_rn(acc, __dmul_rn(u, u));
            }
        }
        const double s = butterfly(red, warp, lane, acc);
        if (active && lane == 0) p.tensors[w.tensor].u_part[w.a] = s;
    }
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adafactor_clip_v1(RsAdafactorParams p) {
    const int k = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (k >= p.num_tensors) return;
    const RsAdafactorTensor& t = p.tensors[k];
    double s = 0.0;
    for (int i = 0; i < t.segs; ++i) s = __dadd_rn(s, t.u_part[i]);
    const double d = __ddiv_rn(__ddiv_rn(__dsqrt_rn(s), __dsqrt_rn((double)t.count)), p.clip_threshold);
    t.scalars[2] = (float)(d < 1.0 ? 1.0 : d);  // round to nearest; NaN stays NaN (torch clamp_)
}

extern "C" __global__ void __launch_bounds__(rs::kThreads) rslora_adafactor_apply_v1(RsAdafactorParams p) {
    using namespace rs_adafactor;
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    RsAdafactorTensor t = {};  // register copy of the current tensor's descriptor
    int k = 0;
    int64_t end = 0;
    float lr = 0.0f, decay = 0.0f, divisor = 1.0f;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += stride) {
        if (i >= end) {
            k = find(p.tensors, end == 0 ? 0 : k + 1, p.num_tensors, i);
            t = p.tensors[k];
            end = t.offset + t.count;
            lr = t.scalars[0];
            decay = t.scalars[1];
            divisor = t.scalars[2];
        }
        const int64_t e = i - t.offset;
        const float g = rs_adamw::load(t.grad, t.grad_dtype, e);
        float u = __fmul_rn(__fdiv_rn(update_of(t, e, g), divisor), lr);
        if (p.first_moment) {
            u = __fadd_rn(__fmul_rn(t.exp_avg[e], p.beta1), __fmul_rn(u, p.one_minus_beta1));
            t.exp_avg[e] = u;
        }
        float x = target(t, e);
        if (p.weight_decay_on) x = __fadd_rn(x, __fmul_rn(x, decay));
        x = __fsub_rn(x, u);
        if (t.master) t.master[e] = x;
        rs_adamw::store(t.param, t.param_dtype, e, x);
    }
}
