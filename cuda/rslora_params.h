// Launch parameter structs of the rsLoRA kernels: one struct per kernel family, passed BY VALUE
// as the kernel's only argument. The Java side (dev.rslora.backend.cuda.KernelParams) packs the
// same bytes; the static_asserts below are the contract, and a Java unit test reads them from this
// file and compares them with its own layout, so a change here that is not mirrored there fails
// the Java build.
//
// Names and shapes (row-major everywhere, SPEC.md §1):
//   X [n, d_in], W [d_out, d_in], bias [d_out], A [r, d_in], B [d_out, r],
//   U [n, r] = D(X)·Aᵀ (no γ), V [n, r] = dY·B, Y/dY [n, d_out], dX [n, d_in],
//   dA [r, d_in], dB [d_out, r];  γ = α/√r (rsLoRA) or α/r (LoRA), computed by the caller.
// Storage: "T" tensors (X, W, bias, Y, dY, dX) are f32, bf16 or f16 per exported kernel suffix;
// adapter-side tensors (A, B, U, V, dA, dB, workspaces) are always f32 on the device.
// Pointers are device addresses (8 bytes); every int32 shape is >= 1 unless said otherwise.
#pragma once
#include <stdint.h>
#include <stddef.h>

// The dropout mask of one (seed, step, layer) (dev.rslora.dropout.DropoutMask, bit for bit):
//   counter = (col >> 2, row, layer, step), key = (key_lo, key_hi),
//   bits = Philox4x32-10(counter, key)[col & 3], keep iff (bits >> 8) >= threshold,
//   D(x) = keep ? x * scale : 0.
// threshold = ceil(p_f * 2^24) and scale = fp32(1 / (1 - p_f)) are computed by the host, so no
// result depends on device division. enabled = 0 means D is the identity (eval or p = 0).
struct RsDropout {
    uint32_t key_lo;     // low 32 bits of the seed
    uint32_t key_hi;     // high 32 bits of the seed
    uint32_t layer;      // layer id
    uint32_t step;       // low 32 bits of the step
    uint32_t threshold;  // keep iff (bits >> 8) >= threshold
    float scale;         // 1/(1-p) in fp32
    int32_t enabled;     // 0: identity
};
static_assert(sizeof(RsDropout) == 28, "RsDropout size");
static_assert(offsetof(RsDropout, key_lo) == 0, "RsDropout.key_lo");
static_assert(offsetof(RsDropout, key_hi) == 4, "RsDropout.key_hi");
static_assert(offsetof(RsDropout, layer) == 8, "RsDropout.layer");
static_assert(offsetof(RsDropout, step) == 12, "RsDropout.step");
static_assert(offsetof(RsDropout, threshold) == 16, "RsDropout.threshold");
static_assert(offsetof(RsDropout, scale) == 20, "RsDropout.scale");
static_assert(offsetof(RsDropout, enabled) == 24, "RsDropout.enabled");

// (1) U = D(X)·Aᵀ  [n, r] f32, no γ.
struct RsLoraDownParams {
    const void* x;        // X [n, d_in] T
    const float* lora_a;  // A [r, d_in] f32
    float* u;             // U [n, r] f32 (assigned)
    int32_t n, d_in, r;
    RsDropout drop;
};
static_assert(offsetof(RsLoraDownParams, x) == 0, "RsLoraDownParams.x");
static_assert(offsetof(RsLoraDownParams, lora_a) == 8, "RsLoraDownParams.lora_a");
static_assert(offsetof(RsLoraDownParams, u) == 16, "RsLoraDownParams.u");
static_assert(offsetof(RsLoraDownParams, n) == 24, "RsLoraDownParams.n");
static_assert(offsetof(RsLoraDownParams, d_in) == 28, "RsLoraDownParams.d_in");
static_assert(offsetof(RsLoraDownParams, r) == 32, "RsLoraDownParams.r");
static_assert(offsetof(RsLoraDownParams, drop) == 36, "RsLoraDownParams.drop");
static_assert(sizeof(RsLoraDownParams) == 64, "RsLoraDownParams size");

// (2) Y = X·Wᵀ + bias + γ·U·Bᵀ  [n, d_out] T. r = 0: base layer only (u, lora_b unused).
struct RsLoraForwardParams {
    const void* x;        // X [n, d_in] T
    const void* w;        // W [d_out, d_in] T
    const void* bias;     // bias [d_out] T, or null
    const float* u;       // U [n, r] f32
    const float* lora_b;  // B [d_out, r] f32
    void* y;              // Y [n, d_out] T (assigned)
    int32_t n, d_in, d_out, r;  // r >= 0
    float gamma;
};
static_assert(offsetof(RsLoraForwardParams, x) == 0, "RsLoraForwardParams.x");
static_assert(offsetof(RsLoraForwardParams, w) == 8, "RsLoraForwardParams.w");
static_assert(offsetof(RsLoraForwardParams, bias) == 16, "RsLoraForwardParams.bias");
static_assert(offsetof(RsLoraForwardParams, u) == 24, "RsLoraForwardParams.u");
static_assert(offsetof(RsLoraForwardParams, lora_b) == 32, "RsLoraForwardParams.lora_b");
static_assert(offsetof(RsLoraForwardParams, y) == 40, "RsLoraForwardParams.y");
static_assert(offsetof(RsLoraForwardParams, n) == 48, "RsLoraForwardParams.n");
static_assert(offsetof(RsLoraForwardParams, d_in) == 52, "RsLoraForwardParams.d_in");
static_assert(offsetof(RsLoraForwardParams, d_out) == 56, "RsLoraForwardParams.d_out");
static_assert(offsetof(RsLoraForwardParams, r) == 60, "RsLoraForwardParams.r");
static_assert(offsetof(RsLoraForwardParams, gamma) == 64, "RsLoraForwardParams.gamma");
static_assert(sizeof(RsLoraForwardParams) == 72, "RsLoraForwardParams size");

// (3) V = dY·B [n, r] f32 (assigned) and, per row group g of rows_per_group rows,
//     ws[g][o][j] = Σ_{i in group g} dY[i,o]·U[i,j]  (ws [groups, d_out, r] f32, no γ);
//     rslora_reduce_groups_v1 then forms dB (=|+=) γ·Σ_g ws[g].
struct RsLoraBackwardVdbParams {
    const void* dy;       // dY [n, d_out] T
    const float* lora_b;  // B [d_out, r] f32
    const float* u;       // U [n, r] f32
    float* v;             // V [n, r] f32
    float* ws;            // ws [ceil(n / rows_per_group), d_out, r] f32
    int32_t n, d_out, r;
    int32_t rows_per_group;  // a multiple of 64
};
static_assert(offsetof(RsLoraBackwardVdbParams, dy) == 0, "RsLoraBackwardVdbParams.dy");
static_assert(offsetof(RsLoraBackwardVdbParams, lora_b) == 8, "RsLoraBackwardVdbParams.lora_b");
static_assert(offsetof(RsLoraBackwardVdbParams, u) == 16, "RsLoraBackwardVdbParams.u");
static_assert(offsetof(RsLoraBackwardVdbParams, v) == 24, "RsLoraBackwardVdbParams.v");
static_assert(offsetof(RsLoraBackwardVdbParams, ws) == 32, "RsLoraBackwardVdbParams.ws");
static_assert(offsetof(RsLoraBackwardVdbParams, n) == 40, "RsLoraBackwardVdbParams.n");
static_assert(offsetof(RsLoraBackwardVdbParams, d_out) == 44, "RsLoraBackwardVdbParams.d_out");
static_assert(offsetof(RsLoraBackwardVdbParams, r) == 48, "RsLoraBackwardVdbParams.r");
static_assert(offsetof(RsLoraBackwardVdbParams, rows_per_group) == 52, "RsLoraBackwardVdbParams.rows_per_group");
static_assert(sizeof(RsLoraBackwardVdbParams) == 56, "RsLoraBackwardVdbParams size");

// (4) ws[g][j][c] = Σ_{i in group g} V[i,j]·D(X)[i,c]  (ws [groups, r, d_in] f32, no γ);
//     rslora_reduce_groups_v1 then forms dA (=|+=) γ·Σ_g ws[g].
struct RsLoraBackwardDaParams {
    const float* v;   // V [n, r] f32
    const void* x;    // X [n, d_in] T
    float* ws;        // ws [ceil(n / rows_per_group), r, d_in] f32
    int32_t n, d_in, r;
    int32_t rows_per_group;  // a multiple of 64
    RsDropout drop;
};
static_assert(offsetof(RsLoraBackwardDaParams, v) == 0, "RsLoraBackwardDaParams.v");
static_assert(offsetof(RsLoraBackwardDaParams, x) == 8, "RsLoraBackwardDaParams.x");
static_assert(offsetof(RsLoraBackwardDaParams, ws) == 16, "RsLoraBackwardDaParams.ws");
static_assert(offsetof(RsLoraBackwardDaParams, n) == 24, "RsLoraBackwardDaParams.n");
static_assert(offsetof(RsLoraBackwardDaParams, d_in) == 28, "RsLoraBackwardDaParams.d_in");
static_assert(offsetof(RsLoraBackwardDaParams, r) == 32, "RsLoraBackwardDaParams.r");
static_assert(offsetof(RsLoraBackwardDaParams, rows_per_group) == 36, "RsLoraBackwardDaParams.rows_per_group");
static_assert(offsetof(RsLoraBackwardDaParams, drop) == 40, "RsLoraBackwardDaParams.drop");
static_assert(sizeof(RsLoraBackwardDaParams) == 72, "RsLoraBackwardDaParams size");

// Second pass of (3) and (4): out[i] (=|+=) γ·Σ_{g=0..groups-1} ws[g·count + i], g in fixed
// ascending order (deterministic: the same bits on every run and in graph replay).
struct RsReduceParams {
    const float* ws;   // ws [groups, count] f32
    float* out;        // out [count] f32
    int64_t count;
    int32_t groups;
    float gamma;
    int32_t accumulate;  // 0: out = γ·Σ;  1: out = out + γ·Σ
};
static_assert(offsetof(RsReduceParams, ws) == 0, "RsReduceParams.ws");
static_assert(offsetof(RsReduceParams, out) == 8, "RsReduceParams.out");
static_assert(offsetof(RsReduceParams, count) == 16, "RsReduceParams.count");
static_assert(offsetof(RsReduceParams, groups) == 24, "RsReduceParams.groups");
static_assert(offsetof(RsReduceParams, gamma) == 28, "RsReduceParams.gamma");
static_assert(offsetof(RsReduceParams, accumulate) == 32, "RsReduceParams.accumulate");
static_assert(sizeof(RsReduceParams) == 40, "RsReduceParams size");

// (5) dX = dY·W + γ·D'(V·A)  [n, d_in] T (assigned). r = 0: dX = dY·W only.
struct RsLoraBackwardDxParams {
    const void* dy;       // dY [n, d_out] T
    const void* w;        // W [d_out, d_in] T
    const float* v;       // V [n, r] f32
    const float* lora_a;  // A [r, d_in] f32
    void* dx;             // dX [n, d_in] T
    int32_t n, d_in, d_out, r;  // r >= 0
    float gamma;
    RsDropout drop;
};
static_assert(offsetof(RsLoraBackwardDxParams, dy) == 0, "RsLoraBackwardDxParams.dy");
static_assert(offsetof(RsLoraBackwardDxParams, w) == 8, "RsLoraBackwardDxParams.w");
static_assert(offsetof(RsLoraBackwardDxParams, v) == 16, "RsLoraBackwardDxParams.v");
static_assert(offsetof(RsLoraBackwardDxParams, lora_a) == 24, "RsLoraBackwardDxParams.lora_a");
static_assert(offsetof(RsLoraBackwardDxParams, dx) == 32, "RsLoraBackwardDxParams.dx");
static_assert(offsetof(RsLoraBackwardDxParams, n) == 40, "RsLoraBackwardDxParams.n");
static_assert(offsetof(RsLoraBackwardDxParams, d_in) == 44, "RsLoraBackwardDxParams.d_in");
static_assert(offsetof(RsLoraBackwardDxParams, d_out) == 48, "RsLoraBackwardDxParams.d_out");
static_assert(offsetof(RsLoraBackwardDxParams, r) == 52, "RsLoraBackwardDxParams.r");
static_assert(offsetof(RsLoraBackwardDxParams, gamma) == 56, "RsLoraBackwardDxParams.gamma");
static_assert(offsetof(RsLoraBackwardDxParams, drop) == 60, "RsLoraBackwardDxParams.drop");
static_assert(sizeof(RsLoraBackwardDxParams) == 88, "RsLoraBackwardDxParams size");

// v4 (sm_80-family tensor-core GEMMs, bf16/f16 only; GPU-CONTRACT.md data contract, a document
// outside this repository: cuda/REVIEW.md, "The CPU emulation"). T = the
// dtype of X and W; r_pad = round_up(r, 8) is the row stride of Ug, Bt and Vg, whose pad columns
// are 0. Every T tensor row must start 16-byte aligned: d_in % 8 == 0, d_out % 8 == 0, 16-byte
// aligned bases (cuda/kernels/lora_v4_launch.h refuses anything else).
//   rslora_lora_forward_v4_*: Y (=|+=) X·Wᵀ + bias + Ug·Btᵀ, ONE fp32 accumulator (the LoRA term is
//     a K-extension over (Ug, Bt)), rounded once.
//   rslora_lora_up_add_v4_*:  Y (=|+=) bias + Ug·Btᵀ (x, w, d_in unused): the cuBLASLt split step.
struct RsLoraForwardV4Params {
    const void* x;     // X [n, d_in] T
    const void* w;     // W [d_out, d_in] T
    const void* bias;  // bias [d_out] T, or null
    const void* ug;    // Ug [n, r_pad] T = T(γ·U), pad columns 0 (unused when r == 0)
    const void* bt;    // Bt [d_out, r_pad] T = T(B), pad columns 0 (unused when r == 0)
    void* y;           // Y [n, d_out] T
    int32_t n, d_in, d_out, r;  // r >= 0
    int32_t accumulate;         // 0: Y = ...;  1: Y = T(Y + ...) (fp32 add, one rounding)
};
static_assert(offsetof(RsLoraForwardV4Params, x) == 0, "RsLoraForwardV4Params.x");
static_assert(offsetof(RsLoraForwardV4Params, w) == 8, "RsLoraForwardV4Params.w");
static_assert(offsetof(RsLoraForwardV4Params, bias) == 16, "RsLoraForwardV4Params.bias");
static_assert(offsetof(RsLoraForwardV4Params, ug) == 24, "RsLoraForwardV4Params.ug");
static_assert(offsetof(RsLoraForwardV4Params, bt) == 32, "RsLoraForwardV4Params.bt");
static_assert(offsetof(RsLoraForwardV4Params, y) == 40, "RsLoraForwardV4Params.y");
static_assert(offsetof(RsLoraForwardV4Params, n) == 48, "RsLoraForwardV4Params.n");
static_assert(offsetof(RsLoraForwardV4Params, d_in) == 52, "RsLoraForwardV4Params.d_in");
static_assert(offsetof(RsLoraForwardV4Params, d_out) == 56, "RsLoraForwardV4Params.d_out");
static_assert(offsetof(RsLoraForwardV4Params, r) == 60, "RsLoraForwardV4Params.r");
static_assert(offsetof(RsLoraForwardV4Params, accumulate) == 64, "RsLoraForwardV4Params.accumulate");
static_assert(sizeof(RsLoraForwardV4Params) == 72, "RsLoraForwardV4Params size");

//   rslora_lora_backward_dx_v4_*: dX (=|+=) dY·W + D'(Vg·At): the LoRA product first into the fp32
//     accumulators, the forward's mask (regenerated from drop) applied to them in registers, then
//     the dY·W K-steps on top; rounded once. D' uses the same (row, col) mask as X's dropout.
//   rslora_lora_dx_add_v4_*: dX (=|+=) D'(Vg·At) (dy, w, d_out unused): the cuBLASLt split step.
struct RsLoraBackwardDxV4Params {
    const void* dy;  // dY [n, d_out] T
    const void* w;   // W [d_out, d_in] T
    const void* vg;  // Vg [n, r_pad] T = T(γ·V), pad columns 0 (unused when r == 0)
    const void* at;  // At [r, d_in] T = T(A) (unused when r == 0)
    void* dx;        // dX [n, d_in] T
    int32_t n, d_in, d_out, r;  // r >= 0
    int32_t accumulate;         // 0: dX = ...;  1: dX = T(dX + ...) (fp32 add, one rounding)
    RsDropout drop;             // the forward's dropout of X (enabled = 0: identity)
};
static_assert(offsetof(RsLoraBackwardDxV4Params, dy) == 0, "RsLoraBackwardDxV4Params.dy");
static_assert(offsetof(RsLoraBackwardDxV4Params, w) == 8, "RsLoraBackwardDxV4Params.w");
static_assert(offsetof(RsLoraBackwardDxV4Params, vg) == 16, "RsLoraBackwardDxV4Params.vg");
static_assert(offsetof(RsLoraBackwardDxV4Params, at) == 24, "RsLoraBackwardDxV4Params.at");
static_assert(offsetof(RsLoraBackwardDxV4Params, dx) == 32, "RsLoraBackwardDxV4Params.dx");
static_assert(offsetof(RsLoraBackwardDxV4Params, n) == 40, "RsLoraBackwardDxV4Params.n");
static_assert(offsetof(RsLoraBackwardDxV4Params, d_in) == 44, "RsLoraBackwardDxV4Params.d_in");
static_assert(offsetof(RsLoraBackwardDxV4Params, d_out) == 48, "RsLoraBackwardDxV4Params.d_out");
static_assert(offsetof(RsLoraBackwardDxV4Params, r) == 52, "RsLoraBackwardDxV4Params.r");
static_assert(offsetof(RsLoraBackwardDxV4Params, accumulate) == 56, "RsLoraBackwardDxV4Params.accumulate");
static_assert(offsetof(RsLoraBackwardDxV4Params, drop) == 60, "RsLoraBackwardDxV4Params.drop");
static_assert(sizeof(RsLoraBackwardDxV4Params) == 88, "RsLoraBackwardDxV4Params size");

// (2) v3, sm_90a (kernels/lora_forward_v3.cuh): Y = X·Wᵀ + bias + Ug·Btᵀ  [n, d_out] T (assigned),
//     one fp32 accumulator over k = d_in steps of (X, W) then ceil(r/64) steps of (Ug, Bt).
//     The tensors reach the kernel as TMA maps (const __grid_constant__ CUtensorMap params after
//     this struct: X, W, Ug, Bt, Y; kernels/lora_v3_launch.h); Ug [n, r_pad] = T(γ·U) and
//     Bt [d_out, r_pad] = T(B) with zero pad columns (r_pad = round_up(r, 8)). r = 0: base layer.
struct RsLoraForwardV3Params {
    const void* bias;           // bias [d_out] T, or null
    int32_t n, d_in, d_out, r;  // r >= 0
};
static_assert(offsetof(RsLoraForwardV3Params, bias) == 0, "RsLoraForwardV3Params.bias");
static_assert(offsetof(RsLoraForwardV3Params, n) == 8, "RsLoraForwardV3Params.n");
static_assert(offsetof(RsLoraForwardV3Params, d_in) == 12, "RsLoraForwardV3Params.d_in");
static_assert(offsetof(RsLoraForwardV3Params, d_out) == 16, "RsLoraForwardV3Params.d_out");
static_assert(offsetof(RsLoraForwardV3Params, r) == 20, "RsLoraForwardV3Params.r");
static_assert(sizeof(RsLoraForwardV3Params) == 24, "RsLoraForwardV3Params size");

// (5) v3, sm_90a (kernels/lora_backward_dx_v3.cuh): dX = D'(Vg·At) + dY·W  [n, d_in] T (assigned):
//     the ceil(r/64) steps over (Vg, At) first, then D' applied to the fp32 accumulators (keep ?
//     ·scale : 0, the forward's mask of X element (i, c)), then the d_out steps over (dY, W) on top.
//     TMA maps after this struct: Vg, At, dY, W, dX; Vg [n, r_pad] = T(γ·V) with zero pad columns,
//     At [r, d_in] = T(A). r = 0: dX = dY·W.
struct RsLoraBackwardDxV3Params {
    int32_t n, d_in, d_out, r;  // r >= 0
    RsDropout drop;
};
static_assert(offsetof(RsLoraBackwardDxV3Params, n) == 0, "RsLoraBackwardDxV3Params.n");
static_assert(offsetof(RsLoraBackwardDxV3Params, d_in) == 4, "RsLoraBackwardDxV3Params.d_in");
static_assert(offsetof(RsLoraBackwardDxV3Params, d_out) == 8, "RsLoraBackwardDxV3Params.d_out");
static_assert(offsetof(RsLoraBackwardDxV3Params, r) == 12, "RsLoraBackwardDxV3Params.r");
static_assert(offsetof(RsLoraBackwardDxV3Params, drop) == 16, "RsLoraBackwardDxV3Params.drop");
static_assert(sizeof(RsLoraBackwardDxV3Params) == 44, "RsLoraBackwardDxV3Params size");

// (6) W ← round(W + signed_gamma·B·A), computed in fp32, rounded once (merge: +γ, unmerge: −γ).
struct RsMergeParams {
    void* w;              // W [d_out, d_in] T (updated in place)
    const float* lora_b;  // B [d_out, r] f32
    const float* lora_a;  // A [r, d_in] f32
    int32_t d_out, d_in, r;
    float signed_gamma;   // +γ to merge, −γ to unmerge
};
static_assert(offsetof(RsMergeParams, w) == 0, "RsMergeParams.w");
static_assert(offsetof(RsMergeParams, lora_b) == 8, "RsMergeParams.lora_b");
static_assert(offsetof(RsMergeParams, lora_a) == 16, "RsMergeParams.lora_a");
static_assert(offsetof(RsMergeParams, d_out) == 24, "RsMergeParams.d_out");
static_assert(offsetof(RsMergeParams, d_in) == 28, "RsMergeParams.d_in");
static_assert(offsetof(RsMergeParams, r) == 32, "RsMergeParams.r");
static_assert(offsetof(RsMergeParams, signed_gamma) == 36, "RsMergeParams.signed_gamma");
static_assert(sizeof(RsMergeParams) == 40, "RsMergeParams size");

// dtype conversion: dst[i] = convert(src[i]) for i < count (to bf16/f16: round to nearest even,
// NaN stays NaN, as __float2bfloat16_rn / __float2half_rn; to f32: exact).
struct RsConvertParams {
    const void* src;
    void* dst;
    int64_t count;
};
static_assert(offsetof(RsConvertParams, src) == 0, "RsConvertParams.src");
static_assert(offsetof(RsConvertParams, dst) == 8, "RsConvertParams.dst");
static_assert(offsetof(RsConvertParams, count) == 16, "RsConvertParams.count");
static_assert(sizeof(RsConvertParams) == 24, "RsConvertParams size");

// Elementwise dropout of the unfused (PEFT-equivalent) cuBLAS baseline, on T [n, d]:
//   rslora_dropout_apply_v1_*: dst = D(src)          (PEFT's nn.Dropout output, rounded to T)
//   rslora_dropout_add_v1_*:   dst = dst + D'(src)   (its backward, added into dX; fp32 add, rounded once)
struct RsDropoutElementwiseParams {
    const void* src;  // [n, d] T
    void* dst;        // [n, d] T
    int32_t n, d;
    RsDropout drop;
};
static_assert(offsetof(RsDropoutElementwiseParams, src) == 0, "RsDropoutElementwiseParams.src");
static_assert(offsetof(RsDropoutElementwiseParams, dst) == 8, "RsDropoutElementwiseParams.dst");
static_assert(offsetof(RsDropoutElementwiseParams, n) == 16, "RsDropoutElementwiseParams.n");
static_assert(offsetof(RsDropoutElementwiseParams, d) == 20, "RsDropoutElementwiseParams.d");
static_assert(offsetof(RsDropoutElementwiseParams, drop) == 24, "RsDropoutElementwiseParams.drop");
static_assert(sizeof(RsDropoutElementwiseParams) == 56, "RsDropoutElementwiseParams size");

// Fused AdamW over every adapter tensor in ONE launch (kernels/adamw.cuh). The tensors are one
// global element space [0, total): tensor k holds elements [offset, offset + count), offsets
// ascending and contiguous (offset_0 = 0, offset_{k+1} = offset_k + count_k). The table lives in
// device memory (uploaded once, re-used every step); only RsAdamWParams changes per step.
// dtype codes: 0 = f32, 1 = bf16, 2 = f16.
struct RsAdamWTensor {
    void* param;          // [count] param_dtype, updated in place (the rounded master when master != null)
    const void* grad;     // [count] grad_dtype, read only
    float* exp_avg;       // m [count] f32
    float* exp_avg_sq;    // v [count] f32
    float* master;        // [count] f32 master weights (the update runs on them), or null
    int64_t count;        // >= 1
    int64_t offset;       // first element in the global index space
    int32_t param_dtype;
    int32_t grad_dtype;
};
static_assert(offsetof(RsAdamWTensor, param) == 0, "RsAdamWTensor.param");
static_assert(offsetof(RsAdamWTensor, grad) == 8, "RsAdamWTensor.grad");
static_assert(offsetof(RsAdamWTensor, exp_avg) == 16, "RsAdamWTensor.exp_avg");
static_assert(offsetof(RsAdamWTensor, exp_avg_sq) == 24, "RsAdamWTensor.exp_avg_sq");
static_assert(offsetof(RsAdamWTensor, master) == 32, "RsAdamWTensor.master");
static_assert(offsetof(RsAdamWTensor, count) == 40, "RsAdamWTensor.count");
static_assert(offsetof(RsAdamWTensor, offset) == 48, "RsAdamWTensor.offset");
static_assert(offsetof(RsAdamWTensor, param_dtype) == 56, "RsAdamWTensor.param_dtype");
static_assert(offsetof(RsAdamWTensor, grad_dtype) == 60, "RsAdamWTensor.grad_dtype");
static_assert(sizeof(RsAdamWTensor) == 64, "RsAdamWTensor size");

// One AdamW step t over the table. The fp32 scalars are computed on the host in double and rounded
// once (dev.rslora.train.AdamWCoefficients): decay = 1 − lr·λ, one_minus_beta1 = 1 − β1, beta2,
// one_minus_beta2 = 1 − β2, step_size = lr / (1 − β1^t), bc2_sqrt = √(1 − β2^t), eps.
// grad_scale: null, or a device f32 s (the clip coefficient of rslora_grad_norm_finish_v1) by which
// every gradient is multiplied (and rounded to its dtype) before the update.
struct RsAdamWParams {
    const RsAdamWTensor* tensors;  // [num_tensors] device table
    const float* grad_scale;       // device scalar, or null (= 1)
    int64_t total;                 // Σ count
    int32_t num_tensors;
    float decay, one_minus_beta1, beta2, one_minus_beta2, step_size, bc2_sqrt, eps;
};
static_assert(offsetof(RsAdamWParams, tensors) == 0, "RsAdamWParams.tensors");
static_assert(offsetof(RsAdamWParams, grad_scale) == 8, "RsAdamWParams.grad_scale");
static_assert(offsetof(RsAdamWParams, total) == 16, "RsAdamWParams.total");
static_assert(offsetof(RsAdamWParams, num_tensors) == 24, "RsAdamWParams.num_tensors");
static_assert(offsetof(RsAdamWParams, decay) == 28, "RsAdamWParams.decay");
static_assert(offsetof(RsAdamWParams, one_minus_beta1) == 32, "RsAdamWParams.one_minus_beta1");
static_assert(offsetof(RsAdamWParams, beta2) == 36, "RsAdamWParams.beta2");
static_assert(offsetof(RsAdamWParams, one_minus_beta2) == 40, "RsAdamWParams.one_minus_beta2");
static_assert(offsetof(RsAdamWParams, step_size) == 44, "RsAdamWParams.step_size");
static_assert(offsetof(RsAdamWParams, bc2_sqrt) == 48, "RsAdamWParams.bc2_sqrt");
static_assert(offsetof(RsAdamWParams, eps) == 52, "RsAdamWParams.eps");
static_assert(sizeof(RsAdamWParams) == 56, "RsAdamWParams size");

// Global gradient 2-norm over the same table (deterministic two passes, f64 accumulation):
//   rslora_grad_sumsq_v1:       partials[b] = Σ g² over the elements block b visits (grid-stride,
//                               each thread in ascending order, then a fixed tree over the block);
//   rslora_grad_norm_finish_v1: one block: norm = √(Σ_b partials[b]) (fixed order), *norm_out = norm,
//                               and when clip_coef != null: *clip_coef = f32(min(max_norm / (norm + 1e-6), 1))
//                               (a NaN norm gives a NaN coefficient, as torch.nn.utils.clip_grad_norm_).
// The result depends only on the table and pass 1's grid, which the host fixes from total alone.
struct RsGradNormParams {
    const RsAdamWTensor* tensors;  // [num_tensors] device table (grad, grad_dtype, count, offset used)
    double* partials;              // [num_partials] f64 workspace
    double* norm_out;              // pass 2: the norm, f64
    float* clip_coef;              // pass 2: the clip coefficient, or null
    int64_t total;
    int32_t num_tensors;
    int32_t num_partials;          // = pass 1's gridDim.x
    double max_norm;               // > 0 when clip_coef != null
};
static_assert(offsetof(RsGradNormParams, tensors) == 0, "RsGradNormParams.tensors");
static_assert(offsetof(RsGradNormParams, partials) == 8, "RsGradNormParams.partials");
static_assert(offsetof(RsGradNormParams, norm_out) == 16, "RsGradNormParams.norm_out");
static_assert(offsetof(RsGradNormParams, clip_coef) == 24, "RsGradNormParams.clip_coef");
static_assert(offsetof(RsGradNormParams, total) == 32, "RsGradNormParams.total");
static_assert(offsetof(RsGradNormParams, num_tensors) == 40, "RsGradNormParams.num_tensors");
static_assert(offsetof(RsGradNormParams, num_partials) == 44, "RsGradNormParams.num_partials");
static_assert(offsetof(RsGradNormParams, max_norm) == 48, "RsGradNormParams.max_norm");
static_assert(sizeof(RsGradNormParams) == 56, "RsGradNormParams size");

// Fused Adafactor over every adapter tensor (kernels/adafactor.cuh; transformers.optimization.Adafactor
// semantics with the exact arithmetic and reduction order of dev.rslora.optim.AdafactorSpec). The table
// and two work lists are uploaded once; per step only RsAdafactorParams changes. Tensors form one global
// element space [0, total) for the element-wise apply pass (offset_k = Σ_{j<k} count_j). A factored
// tensor is [rows, cols] (rank 2); an unfactored one is rank 0/1 (rows = 1, cols = 0).
// dtype codes as RsAdamWTensor: 0 = f32, 1 = bf16, 2 = f16.
struct RsAdafactorTensor {
    void* param;          // [count] param_dtype, updated in place (rounded from the master when there is one)
    const void* grad;     // [count] grad_dtype, read only
    float* master;        // [count] f32 master weights (the update runs on them), or null
    float* row;           // factored: exp_avg_sq_row [rows]; else null
    float* col;           // factored: exp_avg_sq_col [cols]; else null
    float* v;             // unfactored: exp_avg_sq [count]; else null
    float* exp_avg;       // [count] first moment (beta1), or null
    double* row_part;     // factored: [rows * row_segs] segment sums of grad² + eps1 per row
    double* col_part;     // factored: [col_chunks * cols] row-chunk sums of grad² + eps1 per column
    double* p_part;       // [segs] segment sums of p² (RMS(p))
    double* u_part;       // [segs] segment sums of u² (RMS(update))
    float* rfac;          // factored: [rows] 1/√(row_i / mean(row)); else null
    float* cfac;          // factored: [cols] 1/√col_j; else null
    float* scalars;       // [4]: f32(lr_t), f32(−weight_decay·lr_t), clip divisor, unused (written each step)
    int64_t count;        // >= 1
    int64_t offset;       // first element in the global index space
    int32_t rows;         // factored: >= 1; unfactored: 1
    int32_t cols;         // factored: >= 1; unfactored: 0
    int32_t row_segs;     // factored: ceil(cols / 2048)
    int32_t col_chunks;   // factored: ceil(rows / 64)
    int32_t segs;         // ceil(count / 2048)
    int32_t param_dtype;
    int32_t grad_dtype;
    int32_t factored;     // 1: rank 2, 0: rank 0/1
};
static_assert(offsetof(RsAdafactorTensor, param) == 0, "RsAdafactorTensor.param");
static_assert(offsetof(RsAdafactorTensor, grad) == 8, "RsAdafactorTensor.grad");
static_assert(offsetof(RsAdafactorTensor, master) == 16, "RsAdafactorTensor.master");
static_assert(offsetof(RsAdafactorTensor, row) == 24, "RsAdafactorTensor.row");
static_assert(offsetof(RsAdafactorTensor, col) == 32, "RsAdafactorTensor.col");
static_assert(offsetof(RsAdafactorTensor, v) == 40, "RsAdafactorTensor.v");
static_assert(offsetof(RsAdafactorTensor, exp_avg) == 48, "RsAdafactorTensor.exp_avg");
static_assert(offsetof(RsAdafactorTensor, row_part) == 56, "RsAdafactorTensor.row_part");
static_assert(offsetof(RsAdafactorTensor, col_part) == 64, "RsAdafactorTensor.col_part");
static_assert(offsetof(RsAdafactorTensor, p_part) == 72, "RsAdafactorTensor.p_part");
static_assert(offsetof(RsAdafactorTensor, u_part) == 80, "RsAdafactorTensor.u_part");
static_assert(offsetof(RsAdafactorTensor, rfac) == 88, "RsAdafactorTensor.rfac");
static_assert(offsetof(RsAdafactorTensor, cfac) == 96, "RsAdafactorTensor.cfac");
static_assert(offsetof(RsAdafactorTensor, scalars) == 104, "RsAdafactorTensor.scalars");
static_assert(offsetof(RsAdafactorTensor, count) == 112, "RsAdafactorTensor.count");
static_assert(offsetof(RsAdafactorTensor, offset) == 120, "RsAdafactorTensor.offset");
static_assert(offsetof(RsAdafactorTensor, rows) == 128, "RsAdafactorTensor.rows");
static_assert(offsetof(RsAdafactorTensor, cols) == 132, "RsAdafactorTensor.cols");
static_assert(offsetof(RsAdafactorTensor, row_segs) == 136, "RsAdafactorTensor.row_segs");
static_assert(offsetof(RsAdafactorTensor, col_chunks) == 140, "RsAdafactorTensor.col_chunks");
static_assert(offsetof(RsAdafactorTensor, segs) == 144, "RsAdafactorTensor.segs");
static_assert(offsetof(RsAdafactorTensor, param_dtype) == 148, "RsAdafactorTensor.param_dtype");
static_assert(offsetof(RsAdafactorTensor, grad_dtype) == 152, "RsAdafactorTensor.grad_dtype");
static_assert(offsetof(RsAdafactorTensor, factored) == 156, "RsAdafactorTensor.factored");
static_assert(sizeof(RsAdafactorTensor) == 160, "RsAdafactorTensor size");

// One reduction item of the stats / update passes, done by one warp (kind: 0 row segment (a = row,
// b = segment), 1 column chunk (a = row chunk, b = first of 32 columns), 2 p² segment (a = segment),
// 3 update segment (a = segment)).
struct RsAdafactorWork {
    int32_t kind;
    int32_t tensor;
    int32_t a;
    int32_t b;
};
static_assert(offsetof(RsAdafactorWork, kind) == 0, "RsAdafactorWork.kind");
static_assert(offsetof(RsAdafactorWork, tensor) == 4, "RsAdafactorWork.tensor");
static_assert(offsetof(RsAdafactorWork, a) == 8, "RsAdafactorWork.a");
static_assert(offsetof(RsAdafactorWork, b) == 12, "RsAdafactorWork.b");
static_assert(sizeof(RsAdafactorWork) == 16, "RsAdafactorWork size");

// One Adafactor step t (all five kernels take it; `work` is the stats list or the update list). The
// fp32 scalars are rounded once on the host from double (dev.rslora.optim.AdafactorSpec.step):
// beta2 = f32(1 − t^decay_rate), one_minus_beta2 = f32(1 − (1 − t^decay_rate)), eps1, beta1, 1 − beta1;
// rho = the relative step or the lr, and eps2, clip_threshold, weight_decay stay double.
struct RsAdafactorParams {
    const RsAdafactorTensor* tensors;  // [num_tensors] device table
    const RsAdafactorWork* work;       // [num_work] device work list of this pass (null for the others)
    int64_t total;                     // Σ count
    int32_t num_tensors;
    int32_t num_work;
    float beta2, one_minus_beta2, eps1, beta1, one_minus_beta1;
    int32_t first_moment;              // 1: beta1 is set (exp_avg kept)
    int32_t scale_parameter;           // 1: lr_t = max(eps2, RMS(p))·rho
    int32_t weight_decay_on;           // 1: weight_decay != 0
    double rho, eps2, clip_threshold, weight_decay;
};
static_assert(offsetof(RsAdafactorParams, tensors) == 0, "RsAdafactorParams.tensors");
static_assert(offsetof(RsAdafactorParams, work) == 8, "RsAdafactorParams.work");
static_assert(offsetof(RsAdafactorParams, total) == 16, "RsAdafactorParams.total");
static_assert(offsetof(RsAdafactorParams, num_tensors) == 24, "RsAdafactorParams.num_tensors");
static_assert(offsetof(RsAdafactorParams, num_work) == 28, "RsAdafactorParams.num_work");
static_assert(offsetof(RsAdafactorParams, beta2) == 32, "RsAdafactorParams.beta2");
static_assert(offsetof(RsAdafactorParams, one_minus_beta2) == 36, "RsAdafactorParams.one_minus_beta2");
static_assert(offsetof(RsAdafactorParams, eps1) == 40, "RsAdafactorParams.eps1");
static_assert(offsetof(RsAdafactorParams, beta1) == 44, "RsAdafactorParams.beta1");
static_assert(offsetof(RsAdafactorParams, one_minus_beta1) == 48, "RsAdafactorParams.one_minus_beta1");
static_assert(offsetof(RsAdafactorParams, first_moment) == 52, "RsAdafactorParams.first_moment");
static_assert(offsetof(RsAdafactorParams, scale_parameter) == 56, "RsAdafactorParams.scale_parameter");
static_assert(offsetof(RsAdafactorParams, weight_decay_on) == 60, "RsAdafactorParams.weight_decay_on");
static_assert(offsetof(RsAdafactorParams, rho) == 64, "RsAdafactorParams.rho");
static_assert(offsetof(RsAdafactorParams, eps2) == 72, "RsAdafactorParams.eps2");
static_assert(offsetof(RsAdafactorParams, clip_threshold) == 80, "RsAdafactorParams.clip_threshold");
static_assert(offsetof(RsAdafactorParams, weight_decay) == 88, "RsAdafactorParams.weight_decay");
static_assert(sizeof(RsAdafactorParams) == 96, "RsAdafactorParams size");

// Sequence log-probabilities (kernels/seq_logprob.cuh): logits [B, T, V] of dtype T (f32/bf16/f16 per
// exported kernel suffix), labels [B·T] int32 (−100 = ignored). Forward: lse [B·T] f32 and the token
// terms tok [B·T] f64 (x[label] − lse, 0 where ignored) per row, then logp [B] f32 = Σ_t tok (ascending t,
// double). Backward: dlogits[b,t,v] = g_b·(1[v = label] − exp(x − lse)) (0 on ignored rows), dlogits may
// alias logits.
struct RsSeqLogprobParams {
    const void* logits;   // [rows, vocab] T
    const int32_t* labels;// [rows]
    float* lse;           // [rows] f32 (forward: written; backward: read)
    double* tok;          // [rows] f64 (forward rows pass: written; sum pass: read)
    float* logp;          // [batch] f32 (sum pass)
    const float* grad;    // [batch] f32 ∂L/∂logp (backward)
    void* dlogits;        // [rows, vocab] T (backward; may equal logits)
    int32_t rows;         // B·T
    int32_t vocab;        // V
    int32_t batch;        // B
    int32_t time;         // T
};
static_assert(offsetof(RsSeqLogprobParams, logits) == 0, "RsSeqLogprobParams.logits");
static_assert(offsetof(RsSeqLogprobParams, labels) == 8, "RsSeqLogprobParams.labels");
static_assert(offsetof(RsSeqLogprobParams, lse) == 16, "RsSeqLogprobParams.lse");
static_assert(offsetof(RsSeqLogprobParams, tok) == 24, "RsSeqLogprobParams.tok");
static_assert(offsetof(RsSeqLogprobParams, logp) == 32, "RsSeqLogprobParams.logp");
static_assert(offsetof(RsSeqLogprobParams, grad) == 40, "RsSeqLogprobParams.grad");
static_assert(offsetof(RsSeqLogprobParams, dlogits) == 48, "RsSeqLogprobParams.dlogits");
static_assert(offsetof(RsSeqLogprobParams, rows) == 56, "RsSeqLogprobParams.rows");
static_assert(offsetof(RsSeqLogprobParams, vocab) == 60, "RsSeqLogprobParams.vocab");
static_assert(offsetof(RsSeqLogprobParams, batch) == 64, "RsSeqLogprobParams.batch");
static_assert(offsetof(RsSeqLogprobParams, time) == 68, "RsSeqLogprobParams.time");
static_assert(sizeof(RsSeqLogprobParams) == 72, "RsSeqLogprobParams size");

// ---- v3/v4 memory-bound LoRA kernels (cuda/kernels/mb_*.cuh), shared by both families ----------
// T = the GEMM dtype (bf16 or f16). r_pad = round_up(r, 8): rows of 16 bytes. γ folded into the
// T copies: Ug = T(γ·U), Vg = T(γ·V), so dB = dYᵀ·Ug and dA = Vgᵀ·D(X) need no γ afterwards.

// (prep) once per step after an optimizer update: At [r, d_in] T = T(A); Bt [d_out, r_pad] T = T(B),
// pad columns 0. Elementwise over r·d_in + d_out·r_pad elements.
struct RsMbPrepParams {
    const float* lora_a;  // A [r, d_in] f32
    const float* lora_b;  // B [d_out, r] f32
    void* at;             // At [r, d_in] T
    void* bt;             // Bt [d_out, r_pad] T
    int32_t r, r_pad, d_in, d_out;
};
static_assert(offsetof(RsMbPrepParams, lora_a) == 0, "RsMbPrepParams.lora_a");
static_assert(offsetof(RsMbPrepParams, lora_b) == 8, "RsMbPrepParams.lora_b");
static_assert(offsetof(RsMbPrepParams, at) == 16, "RsMbPrepParams.at");
static_assert(offsetof(RsMbPrepParams, bt) == 24, "RsMbPrepParams.bt");
static_assert(offsetof(RsMbPrepParams, r) == 32, "RsMbPrepParams.r");
static_assert(offsetof(RsMbPrepParams, r_pad) == 36, "RsMbPrepParams.r_pad");
static_assert(offsetof(RsMbPrepParams, d_in) == 40, "RsMbPrepParams.d_in");
static_assert(offsetof(RsMbPrepParams, d_out) == 44, "RsMbPrepParams.d_out");
static_assert(sizeof(RsMbPrepParams) == 48, "RsMbPrepParams size");

// (down) U = D(X)·Atᵀ [n, r] f32 (no γ; written when u != null) and Ug [n, r_pad] T = T(γ·U), pad
// columns 0. Reads X once; the dropout mask comes from Philox in registers.
struct RsMbDownParams {
    const void* x;   // X [n, d_in] T
    const void* at;  // At [r, d_in] T
    float* u;        // U [n, r] f32, or null
    void* ug;        // Ug [n, r_pad] T
    int32_t n, d_in, r, r_pad;
    float gamma;
    RsDropout drop;
};
static_assert(offsetof(RsMbDownParams, x) == 0, "RsMbDownParams.x");
static_assert(offsetof(RsMbDownParams, at) == 8, "RsMbDownParams.at");
static_assert(offsetof(RsMbDownParams, u) == 16, "RsMbDownParams.u");
static_assert(offsetof(RsMbDownParams, ug) == 24, "RsMbDownParams.ug");
static_assert(offsetof(RsMbDownParams, n) == 32, "RsMbDownParams.n");
static_assert(offsetof(RsMbDownParams, d_in) == 36, "RsMbDownParams.d_in");
static_assert(offsetof(RsMbDownParams, r) == 40, "RsMbDownParams.r");
static_assert(offsetof(RsMbDownParams, r_pad) == 44, "RsMbDownParams.r_pad");
static_assert(offsetof(RsMbDownParams, gamma) == 48, "RsMbDownParams.gamma");
static_assert(offsetof(RsMbDownParams, drop) == 52, "RsMbDownParams.drop");
static_assert(sizeof(RsMbDownParams) == 80, "RsMbDownParams size");

// (vdb) one read of dY, split over a grid of row groups × d_out column chunks:
//   v_ws [chunks, n, r] f32: v_ws[c][i][j] = Σ_{o in chunk c} dY[i,o]·Bt[o,j]
//   db_ws [groups, d_out, r] f32: db_ws[g][o][j] = Σ_{i in group g} dY[i,o]·Ug[i,j]  (γ included)
// rslora_mb_vdb_reduce_* then forms V, Vg and dB in fixed order (deterministic, no atomics).
struct RsMbVdbParams {
    const void* dy;  // dY [n, d_out] T
    const void* bt;  // Bt [d_out, r_pad] T
    const void* ug;  // Ug [n, r_pad] T
    float* v_ws;     // [chunks, n, r] f32
    float* db_ws;    // [groups, d_out, r] f32
    int32_t n, d_out, r, r_pad;
    int32_t rows_per_group;  // a multiple of 64
    int32_t cols_per_chunk;  // a multiple of 64, at most the kernel's chunk capacity (table header)
};
static_assert(offsetof(RsMbVdbParams, dy) == 0, "RsMbVdbParams.dy");
static_assert(offsetof(RsMbVdbParams, bt) == 8, "RsMbVdbParams.bt");
static_assert(offsetof(RsMbVdbParams, ug) == 16, "RsMbVdbParams.ug");
static_assert(offsetof(RsMbVdbParams, v_ws) == 24, "RsMbVdbParams.v_ws");
static_assert(offsetof(RsMbVdbParams, db_ws) == 32, "RsMbVdbParams.db_ws");
static_assert(offsetof(RsMbVdbParams, n) == 40, "RsMbVdbParams.n");
static_assert(offsetof(RsMbVdbParams, d_out) == 44, "RsMbVdbParams.d_out");
static_assert(offsetof(RsMbVdbParams, r) == 48, "RsMbVdbParams.r");
static_assert(offsetof(RsMbVdbParams, r_pad) == 52, "RsMbVdbParams.r_pad");
static_assert(offsetof(RsMbVdbParams, rows_per_group) == 56, "RsMbVdbParams.rows_per_group");
static_assert(offsetof(RsMbVdbParams, cols_per_chunk) == 60, "RsMbVdbParams.cols_per_chunk");
static_assert(sizeof(RsMbVdbParams) == 64, "RsMbVdbParams size");

// (vdb_reduce) V [n, r] f32 = Σ_c v_ws[c] (written when v != null), Vg [n, r_pad] T = T(γ·V) with pad
// columns 0, and, when db_ws != null, dB (=|+=) Σ_g db_ws[g]; sums in ascending c and g.
struct RsMbVdbReduceParams {
    const float* v_ws;   // [chunks, n, r]
    const float* db_ws;  // [groups, d_out, r], or null (V and Vg only)
    float* v;            // V [n, r] f32, or null
    void* vg;            // Vg [n, r_pad] T
    float* db;           // dB [d_out, r] f32
    int32_t n, d_out, r, r_pad, chunks, groups;
    float gamma;
    int32_t accumulate;  // 0: dB = Σ;  1: dB = dB + Σ
};
static_assert(offsetof(RsMbVdbReduceParams, v_ws) == 0, "RsMbVdbReduceParams.v_ws");
static_assert(offsetof(RsMbVdbReduceParams, db_ws) == 8, "RsMbVdbReduceParams.db_ws");
static_assert(offsetof(RsMbVdbReduceParams, v) == 16, "RsMbVdbReduceParams.v");
static_assert(offsetof(RsMbVdbReduceParams, vg) == 24, "RsMbVdbReduceParams.vg");
static_assert(offsetof(RsMbVdbReduceParams, db) == 32, "RsMbVdbReduceParams.db");
static_assert(offsetof(RsMbVdbReduceParams, n) == 40, "RsMbVdbReduceParams.n");
static_assert(offsetof(RsMbVdbReduceParams, d_out) == 44, "RsMbVdbReduceParams.d_out");
static_assert(offsetof(RsMbVdbReduceParams, r) == 48, "RsMbVdbReduceParams.r");
static_assert(offsetof(RsMbVdbReduceParams, r_pad) == 52, "RsMbVdbReduceParams.r_pad");
static_assert(offsetof(RsMbVdbReduceParams, chunks) == 56, "RsMbVdbReduceParams.chunks");
static_assert(offsetof(RsMbVdbReduceParams, groups) == 60, "RsMbVdbReduceParams.groups");
static_assert(offsetof(RsMbVdbReduceParams, gamma) == 64, "RsMbVdbReduceParams.gamma");
static_assert(offsetof(RsMbVdbReduceParams, accumulate) == 68, "RsMbVdbReduceParams.accumulate");
static_assert(sizeof(RsMbVdbReduceParams) == 72, "RsMbVdbReduceParams size");

// (da) one read of X: ws [groups, r, d_in] f32, ws[g][j][c] = Σ_{i in group g} Vg[i,j]·D(X)[i,c]
// (γ included through Vg); rslora_reduce_groups_v1 with gamma = 1 then forms dA (=|+=) Σ_g ws[g].
struct RsMbDaParams {
    const void* x;   // X [n, d_in] T
    const void* vg;  // Vg [n, r_pad] T
    float* ws;       // [groups, r, d_in] f32
    int32_t n, d_in, r, r_pad;
    int32_t rows_per_group;  // a multiple of 64
    RsDropout drop;
};
static_assert(offsetof(RsMbDaParams, x) == 0, "RsMbDaParams.x");
static_assert(offsetof(RsMbDaParams, vg) == 8, "RsMbDaParams.vg");
static_assert(offsetof(RsMbDaParams, ws) == 16, "RsMbDaParams.ws");
static_assert(offsetof(RsMbDaParams, n) == 24, "RsMbDaParams.n");
static_assert(offsetof(RsMbDaParams, d_in) == 28, "RsMbDaParams.d_in");
static_assert(offsetof(RsMbDaParams, r) == 32, "RsMbDaParams.r");
static_assert(offsetof(RsMbDaParams, r_pad) == 36, "RsMbDaParams.r_pad");
static_assert(offsetof(RsMbDaParams, rows_per_group) == 40, "RsMbDaParams.rows_per_group");
static_assert(offsetof(RsMbDaParams, drop) == 44, "RsMbDaParams.drop");
static_assert(sizeof(RsMbDaParams) == 72, "RsMbDaParams size");
