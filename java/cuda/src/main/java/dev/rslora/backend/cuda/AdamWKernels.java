package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.optim.AdamWConfig;

import java.util.List;

/**
 * Packing and launches of the fused AdamW kernels of {@code cuda/kernels/adamw.cuh}: the device-side
 * tensor table ({@code RsAdamWTensor[]}), the per-step params ({@code RsAdamWParams}) with the fp32
 * step scalars, and the two-pass gradient norm ({@code RsGradNormParams}). Pure packing plus calls to
 * a {@link KernelLauncher}, so everything here is tested without a device.
 */
final class AdamWKernels {
    static final String ADAMW = "rslora_adamw_v1";
    static final String GRAD_SUMSQ = "rslora_grad_sumsq_v1";
    static final String GRAD_NORM_FINISH = "rslora_grad_norm_finish_v1";

    /**
     * The fp32 scalars of AdamW step t, computed exactly as {@code dev.rslora.train.AdamWCoefficients}
     * (double, rounded once): decay = 1 − lr·λ, 1 − β1, β2, 1 − β2, stepSize = lr / (1 − β1^t),
     * bc2Sqrt = √(1 − β2^t), eps. The CPU AdamW and the kernel then run the same fp32 operations.
     */
    record Scalars(float decay, float oneMinusB1, float beta2, float oneMinusB2, float stepSize, float bc2Sqrt, float eps) {
        static Scalars of(AdamWConfig c, long t) {
            if (t < 1) {
                throw new IllegalArgumentException("AdamW step must be >= 1, got t=" + t);
            }
            double bc1 = 1 - Math.pow(c.beta1(), t);
            double bc2 = 1 - Math.pow(c.beta2(), t);
            return new Scalars((float) (1 - c.lr() * c.weightDecay()), (float) (1 - c.beta1()), (float) c.beta2(),
                    (float) (1 - c.beta2()), (float) (c.lr() / bc1), (float) Math.sqrt(bc2), (float) c.eps());
        }
    }

    /**
     * One tensor of the table: device addresses (master 0 = none) and the element count. The kernel
     * updates {@code param} (of {@code paramType}) from {@code grad} (of {@code gradType}) with f32
     * moments; with a master the update runs on the master and param gets its rounded value.
     */
    record Entry(long param, DType paramType, long grad, DType gradType, long expAvg, long expAvgSq, long master, long count) {
        Entry {
            if (count < 1) {
                throw new IllegalArgumentException("AdamW tensor with " + count + " elements");
            }
            if (param == 0 || grad == 0 || expAvg == 0 || expAvgSq == 0) {
                throw new IllegalArgumentException("AdamW tensor with a null param, grad or moment address");
            }
        }
    }

    /** The kernel's dtype code: 0 f32, 1 bf16, 2 f16 (adamw.cuh). */
    static int code(DType t) {
        return switch (t) {
            case F32 -> 0;
            case BF16 -> 1;
            case F16 -> 2;
        };
    }

    /** Σ count. */
    static long total(List<Entry> entries) {
        long n = 0;
        for (Entry e : entries) {
            n = Math.addExact(n, e.count());
        }
        return n;
    }

    /** The table bytes: one RsAdamWTensor per entry, offsets the running sum of the counts. */
    static byte[] table(List<Entry> entries) {
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("AdamW needs at least one tensor");
        }
        if (entries.size() > Integer.MAX_VALUE / KernelParams.ADAMW_TENSOR.size()) {
            throw new IllegalArgumentException("too many AdamW tensors: " + entries.size());
        }
        int size = KernelParams.ADAMW_TENSOR.size();
        byte[] out = new byte[entries.size() * size];
        long offset = 0;
        for (int k = 0; k < entries.size(); k++) {
            Entry e = entries.get(k);
            byte[] one = KernelParams.ADAMW_TENSOR.packer()
                    .ptr("param", e.param()).ptr("grad", e.grad()).ptr("exp_avg", e.expAvg()).ptr("exp_avg_sq", e.expAvgSq())
                    .ptr("master", e.master()).i64("count", e.count()).i64("offset", offset)
                    .i32("param_dtype", code(e.paramType())).i32("grad_dtype", code(e.gradType()))
                    .bytes();
            System.arraycopy(one, 0, out, k * size, size);
            offset = Math.addExact(offset, e.count());
        }
        return out;
    }

    /** RsAdamWParams of one step; {@code gradScale} is the device address of the clip coefficient, or 0. */
    static byte[] stepParams(long table, long gradScale, long total, int numTensors, Scalars s) {
        return KernelParams.ADAMW.packer()
                .ptr("tensors", table).ptr("grad_scale", gradScale).i64("total", total).i32("num_tensors", numTensors)
                .f32("decay", s.decay()).f32("one_minus_beta1", s.oneMinusB1()).f32("beta2", s.beta2())
                .f32("one_minus_beta2", s.oneMinusB2()).f32("step_size", s.stepSize()).f32("bc2_sqrt", s.bc2Sqrt())
                .f32("eps", s.eps())
                .bytes();
    }

    /** RsGradNormParams; clipCoef 0 = compute the norm only (maxNorm unused). */
    static byte[] normParams(long table, long partials, long normOut, long clipCoef, long total, int numTensors,
                             double maxNorm) {
        return KernelParams.GRAD_NORM.packer()
                .ptr("tensors", table).ptr("partials", partials).ptr("norm_out", normOut).ptr("clip_coef", clipCoef)
                .i64("total", total).i32("num_tensors", numTensors).i32("num_partials", LaunchGeometry.gradNormBlocks(total))
                .f64("max_norm", maxNorm)
                .bytes();
    }

    private final KernelLauncher launcher;

    AdamWKernels(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** The exported kernels of this family, in launch order of a clipped step. */
    static final List<String> KERNELS = List.of(GRAD_SUMSQ, GRAD_NORM_FINISH, ADAMW);

    /** Looks every kernel up now (with lazy module loading: loads their code outside any graph capture). */
    void resolveAll() {
        for (String k : KERNELS) {
            launcher.resolve(k);
        }
    }

    /** Queues one AdamW step over every tensor of the table (one launch). */
    void step(long table, long gradScale, long total, int numTensors, Scalars s) {
        launcher.launch(ADAMW, LaunchGeometry.elementwise(total), LaunchGeometry.THREADS,
                stepParams(table, gradScale, total, numTensors, s));
    }

    /**
     * Queues the two norm passes: *normOut = the global 2-norm of all gradients (f64) and, when
     * {@code clipCoef} != 0, *clipCoef = f32(min(maxNorm / (norm + 1e-6), 1)). {@code partials} holds
     * {@link LaunchGeometry#gradNormBlocks}(total) doubles.
     */
    void gradNorm(long table, long partials, long normOut, long clipCoef, long total, int numTensors, double maxNorm) {
        if (clipCoef != 0 && (!(maxNorm > 0) || Double.isInfinite(maxNorm))) {
            throw new IllegalArgumentException("maxNorm must be finite and > 0, got maxNorm=" + maxNorm);
        }
        byte[] params = normParams(table, partials, normOut, clipCoef, total, numTensors, maxNorm);
        launcher.launch(GRAD_SUMSQ, new LaunchGeometry.Grid(LaunchGeometry.gradNormBlocks(total), 1, 1), LaunchGeometry.THREADS, params);
        launcher.launch(GRAD_NORM_FINISH, new LaunchGeometry.Grid(1, 1, 1), LaunchGeometry.THREADS, params);
    }
}
