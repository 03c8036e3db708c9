package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;

import java.util.List;

/**
 * The params structs of {@code cuda/rslora_params.h}, field for field (see that file for the
 * shapes and γ of each kernel), and the packing of the dropout mask. Field order and types here
 * must match the C declarations; {@code KernelParamsTest} checks every offset and size against the
 * header's static_asserts.
 */
final class KernelParams {
    private KernelParams() {
    }

    static final CStruct DROPOUT = CStruct.builder("RsDropout")
            .u32("key_lo").u32("key_hi").u32("layer").u32("step").u32("threshold").f32("scale").i32("enabled")
            .build();

    static final CStruct DOWN = CStruct.builder("RsLoraDownParams")
            .ptr("x").ptr("lora_a").ptr("u").i32("n").i32("d_in").i32("r").struct("drop", DROPOUT)
            .build();

    static final CStruct FORWARD = CStruct.builder("RsLoraForwardParams")
            .ptr("x").ptr("w").ptr("bias").ptr("u").ptr("lora_b").ptr("y")
            .i32("n").i32("d_in").i32("d_out").i32("r").f32("gamma")
            .build();

    static final CStruct BACKWARD_VDB = CStruct.builder("RsLoraBackwardVdbParams")
            .ptr("dy").ptr("lora_b").ptr("u").ptr("v").ptr("ws").i32("n").i32("d_out").i32("r").i32("rows_per_group")
            .build();

    static final CStruct BACKWARD_DA = CStruct.builder("RsLoraBackwardDaParams")
            .ptr("v").ptr("x").ptr("ws").i32("n").i32("d_in").i32("r").i32("rows_per_group").struct("drop", DROPOUT)
            .build();

    static final CStruct REDUCE = CStruct.builder("RsReduceParams")
            .ptr("ws").ptr("out").i64("count").i32("groups").f32("gamma").i32("accumulate")
            .build();

    static final CStruct BACKWARD_DX = CStruct.builder("RsLoraBackwardDxParams")
            .ptr("dy").ptr("w").ptr("v").ptr("lora_a").ptr("dx").i32("n").i32("d_in").i32("d_out").i32("r").f32("gamma")
            .struct("drop", DROPOUT)
            .build();

    /** v4 forward and its LoRA-only split variant (up_add): Y (=|+=) X·Wᵀ + bias + Ug·Btᵀ. */
    static final CStruct FORWARD_V4 = CStruct.builder("RsLoraForwardV4Params")
            .ptr("x").ptr("w").ptr("bias").ptr("ug").ptr("bt").ptr("y").i32("n").i32("d_in").i32("d_out").i32("r")
            .i32("accumulate")
            .build();

    /** v4 dX and its LoRA-only split variant (dx_add): dX (=|+=) dY·W + D'(Vg·At). */
    static final CStruct BACKWARD_DX_V4 = CStruct.builder("RsLoraBackwardDxV4Params")
            .ptr("dy").ptr("w").ptr("vg").ptr("at").ptr("dx").i32("n").i32("d_in").i32("d_out").i32("r")
            .i32("accumulate").struct("drop", DROPOUT)
            .build();

    /** v3 (sm_90a) forward; the tensors travel as TMA maps after the struct (cuda/kernels/lora_v3_launch.h). */
    static final CStruct FORWARD_V3 = CStruct.builder("RsLoraForwardV3Params")
            .ptr("bias").i32("n").i32("d_in").i32("d_out").i32("r")
            .build();

    /** v3 (sm_90a) dX; the tensors travel as TMA maps after the struct. */
    static final CStruct BACKWARD_DX_V3 = CStruct.builder("RsLoraBackwardDxV3Params")
            .i32("n").i32("d_in").i32("d_out").i32("r").struct("drop", DROPOUT)
            .build();

    static final CStruct MERGE = CStruct.builder("RsMergeParams")
            .ptr("w").ptr("lora_b").ptr("lora_a").i32("d_out").i32("d_in").i32("r").f32("signed_gamma")
            .build();

    static final CStruct CONVERT = CStruct.builder("RsConvertParams")
            .ptr("src").ptr("dst").i64("count")
            .build();

    static final CStruct DROPOUT_ELEMENTWISE = CStruct.builder("RsDropoutElementwiseParams")
            .ptr("src").ptr("dst").i32("n").i32("d").struct("drop", DROPOUT)
            .build();

    /** One entry of the fused AdamW's device-side tensor table (not a params struct: an array of them is uploaded). */
    static final CStruct ADAMW_TENSOR = CStruct.builder("RsAdamWTensor")
            .ptr("param").ptr("grad").ptr("exp_avg").ptr("exp_avg_sq").ptr("master").i64("count").i64("offset")
            .i32("param_dtype").i32("grad_dtype")
            .build();

    static final CStruct ADAMW = CStruct.builder("RsAdamWParams")
            .ptr("tensors").ptr("grad_scale").i64("total").i32("num_tensors")
            .f32("decay").f32("one_minus_beta1").f32("beta2").f32("one_minus_beta2").f32("step_size").f32("bc2_sqrt").f32("eps")
            .build();

    static final CStruct GRAD_NORM = CStruct.builder("RsGradNormParams")
            .ptr("tensors").ptr("partials").ptr("norm_out").ptr("clip_coef").i64("total").i32("num_tensors").i32("num_partials")
            .f64("max_norm")
            .build();

    /** One entry of the fused Adafactor's device-side tensor table. */
    static final CStruct ADAFACTOR_TENSOR = CStruct.builder("RsAdafactorTensor")
            .ptr("param").ptr("grad").ptr("master").ptr("row").ptr("col").ptr("v").ptr("exp_avg").ptr("row_part")
            .ptr("col_part").ptr("p_part").ptr("u_part").ptr("rfac").ptr("cfac").ptr("scalars").i64("count").i64("offset")
            .i32("rows").i32("cols").i32("row_segs").i32("col_chunks").i32("segs").i32("param_dtype").i32("grad_dtype")
            .i32("factored")
            .build();

    /** One reduction item of the fused Adafactor's work lists. */
    static final CStruct ADAFACTOR_WORK = CStruct.builder("RsAdafactorWork")
            .i32("kind").i32("tensor").i32("a").i32("b")
            .build();

    static final CStruct ADAFACTOR = CStruct.builder("RsAdafactorParams")
            .ptr("tensors").ptr("work").i64("total").i32("num_tensors").i32("num_work")
            .f32("beta2").f32("one_minus_beta2").f32("eps1").f32("beta1").f32("one_minus_beta1")
            .i32("first_moment").i32("scale_parameter").i32("weight_decay_on")
            .f64("rho").f64("eps2").f64("clip_threshold").f64("weight_decay")
            .build();

    static final CStruct SEQ_LOGPROB = CStruct.builder("RsSeqLogprobParams")
            .ptr("logits").ptr("labels").ptr("lse").ptr("tok").ptr("logp").ptr("grad").ptr("dlogits")
            .i32("rows").i32("vocab").i32("batch").i32("time")
            .build();

    // the memory-bound kernels of the v3/v4 families (cuda/kernels/mb_*.cuh)
    static final CStruct MB_PREP = CStruct.builder("RsMbPrepParams")
            .ptr("lora_a").ptr("lora_b").ptr("at").ptr("bt").i32("r").i32("r_pad").i32("d_in").i32("d_out")
            .build();

    static final CStruct MB_DOWN = CStruct.builder("RsMbDownParams")
            .ptr("x").ptr("at").ptr("u").ptr("ug").i32("n").i32("d_in").i32("r").i32("r_pad").f32("gamma")
            .struct("drop", DROPOUT)
            .build();

    static final CStruct MB_VDB = CStruct.builder("RsMbVdbParams")
            .ptr("dy").ptr("bt").ptr("ug").ptr("v_ws").ptr("db_ws").i32("n").i32("d_out").i32("r").i32("r_pad")
            .i32("rows_per_group").i32("cols_per_chunk")
            .build();

    static final CStruct MB_VDB_REDUCE = CStruct.builder("RsMbVdbReduceParams")
            .ptr("v_ws").ptr("db_ws").ptr("v").ptr("vg").ptr("db").i32("n").i32("d_out").i32("r").i32("r_pad")
            .i32("chunks").i32("groups").f32("gamma").i32("accumulate")
            .build();

    static final CStruct MB_DA = CStruct.builder("RsMbDaParams")
            .ptr("x").ptr("vg").ptr("ws").i32("n").i32("d_in").i32("r").i32("r_pad").i32("rows_per_group")
            .struct("drop", DROPOUT)
            .build();

    /** Every struct of the header, for the layout test. */
    static final List<CStruct> ALL = List.of(DROPOUT, DOWN, FORWARD, BACKWARD_VDB, BACKWARD_DA, REDUCE, BACKWARD_DX,
            MERGE, CONVERT, DROPOUT_ELEMENTWISE, ADAMW_TENSOR, ADAMW, GRAD_NORM, MB_PREP, MB_DOWN, MB_VDB, MB_VDB_REDUCE, MB_DA,
            FORWARD_V4, BACKWARD_DX_V4, FORWARD_V3, BACKWARD_DX_V3, ADAFACTOR_TENSOR, ADAFACTOR_WORK, ADAFACTOR, SEQ_LOGPROB);

    /**
     * Writes the dropout struct into {@code prefix.*} of {@code p}: the mask's key, layer, step,
     * threshold = ceil(p·2^24) and scale = fp32 1/(1-p), exactly as {@link DropoutMask} defines them;
     * {@code mask == null} (eval or p = 0) writes enabled = 0.
     */
    static CStruct.Packer dropout(CStruct.Packer p, String prefix, DropoutMask mask, long seed, long step, int layer) {
        p.i32(prefix + ".key_lo", (int) seed).i32(prefix + ".key_hi", (int) (seed >>> 32))
                .i32(prefix + ".layer", layer).i32(prefix + ".step", (int) step);
        if (mask == null) {
            return p.i32(prefix + ".threshold", 0).f32(prefix + ".scale", 1.0f).i32(prefix + ".enabled", 0);
        }
        return p.i32(prefix + ".threshold", mask.threshold()).f32(prefix + ".scale", mask.scale()).i32(prefix + ".enabled", 1);
    }
}
