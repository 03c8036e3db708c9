package dev.rslora.optim;

/**
 * The exact arithmetic of one Adafactor step, shared by every implementation (the CPU
 * {@code dev.rslora.train.Adafactor}, the fused CUDA kernels of {@code cuda/kernels/adafactor.cuh}
 * and the harness's host mirror), so that they agree bit for bit. The semantics are those of
 * {@code transformers.optimization.Adafactor}; what Hugging Face leaves to PyTorch (the order of
 * its fp32 reductions) is fixed here, and reductions accumulate in double.
 *
 * <h2>Per parameter p of shape [..., R, C] (factored) or rank ≤ 1 (unfactored), step t</h2>
 * In fp32, in this order, no fused multiply-add (g is the gradient widened to fp32; B = the
 * product of the leading dimensions; row i runs over B·R rows, column j over C within its batch):
 * <pre>
 *   sq      = g·g + eps1
 *   factored:   row_i ← row_i·β2 + f32(Σ_j sq_ij / C)·(1−β2)       (Σ in double, order {@link #SEGMENT})
 *               col_j ← col_j·β2 + f32(Σ_i sq_ij / R)·(1−β2)       (Σ in double, order {@link #COL_CHUNK})
 *               m̄_b   = f32(Σ_{i in batch b} row_i / R)
 *               u     = ((1/√(row_i/m̄_b)) · (1/√col_j)) · g
 *   unfactored: v ← v·β2 + sq·(1−β2);   u = (1/√v) · g
 *   u ← u / f32(max(RMS(u)/clipThreshold, 1));  u ← u · f32(lr_t)
 *   beta1:      m ← m·β1 + u·(1−β1);  u ← m
 *   p ← p + p·f32(−weightDecay·lr_t)   (only when weightDecay ≠ 0)
 *   p ← p − u
 * </pre>
 * with 1/√x = fp32 division of 1 by the correctly rounded fp32 square root, β2 = f32(1 − t^decayRate),
 * (1−β2) = f32(1 − (1 − t^decayRate)), β1 and (1−β1) rounded from double. In double:
 * RMS(x) = √(Σ x²)/√numel (x widened, squares exact), lr_t = (scaleParameter ? max(eps2, RMS(p)) : 1)·ρ_t
 * with RMS(p) of the parameter (or its fp32 master) before the step, and ρ_t as in {@link AdafactorConfig}.
 *
 * <h2>Reduction order (double)</h2>
 * A <em>flat sum</em> of x_0..x_{L−1}: split into segments of {@link #SEGMENT} elements; within a
 * segment, lane l ∈ [0, 32) sums the elements k ≡ l (mod 32) in ascending k starting from 0; the 32 lane
 * sums are combined by the butterfly s_l ← s_l + s_{l+h} for h = 16, 8, 4, 2, 1 (lane 0 holds the
 * result); the segment sums are added in ascending order starting from 0. Row sums are flat sums over
 * the row; RMS sums are flat sums over the whole tensor; m̄_b is a flat sum over the rows of batch b.
 * A <em>column sum</em> over R rows: chunks of {@link #COL_CHUNK} rows, each summed in ascending row
 * order from 0, chunk sums added in ascending order from 0. This is the order a warp-per-segment,
 * thread-per-column GPU kernel computes naturally, and the CPU follows it exactly.
 */
public final class AdafactorSpec {
    /** Elements per segment of a flat sum. */
    public static final int SEGMENT = 2048;
    /** Lanes of a segment (one warp). */
    public static final int LANES = 32;
    /** Rows per chunk of a column sum. */
    public static final int COL_CHUNK = 64;

    private AdafactorSpec() {
    }

    /**
     * The scalars of step t that do not depend on the parameter: fp32 β2, 1−β2, eps1, β1, 1−β1, and in
     * double the relative step ρ_t, eps2, clipThreshold and weightDecay, with the config's flags.
     *
     * @param t              the step number, ≥ 1 (the first step is 1, as in Hugging Face)
     * @param beta2          f32(1 − t^decayRate), the second-moment decay of this step
     * @param oneMinusBeta2  f32(1 − (1 − t^decayRate)), rounded separately from {@code beta2}
     * @param eps1           f32(eps1), added to grad² before the averages
     * @param beta1          f32(beta1), or 0 when there is no first moment
     * @param oneMinusBeta1  f32(1 − beta1), or 1 when there is no first moment
     * @param firstMoment    whether an exp_avg is kept (the config's beta1 is set)
     * @param rho            ρ_t in double: the relative step, or the config's lr
     * @param scaleParameter whether lr_t is multiplied by max(eps2, RMS(p))
     * @param eps2           the lower bound of RMS(p) in that product
     * @param clipThreshold  the RMS above which the update is scaled down (&gt; 0)
     * @param weightDecay    the decoupled weight decay (≥ 0; 0 skips the decay step)
     */
    public record Step(long t, float beta2, float oneMinusBeta2, float eps1, float beta1, float oneMinusBeta1,
                       boolean firstMoment, double rho, boolean scaleParameter, double eps2, double clipThreshold,
                       double weightDecay) {

        /**
         * lr_t of a parameter whose RMS before the step is {@code rms} (double).
         *
         * @param rms RMS(p) of the parameter (or its fp32 master) before this step; ignored without
         *            scaleParameter; NaN gives eps2·ρ_t, as Python's {@code max(eps2, nan)}
         * @return ρ_t, times max(eps2, rms) when scaleParameter is set
         */
        public double lr(double rms) {
            if (!scaleParameter) {
                return rho;
            }
            // Python's max(eps2, RMS): RMS when RMS > eps2, else eps2 (also when RMS is NaN)
            return (rms > eps2 ? rms : eps2) * rho;
        }

        /**
         * f32(−weightDecay·lr_t).
         *
         * @param lr lr_t of the parameter, from {@link #lr(double)}
         * @return the factor f with p ← p + p·f, 0 when weightDecay is 0
         */
        public float decay(double lr) {
            return (float) (-weightDecay * lr);
        }

        /**
         * f32(max(rmsUpdate/clipThreshold, 1)); NaN stays NaN (torch clamp_).
         *
         * @param rmsUpdate RMS of the unclipped update u, in double
         * @return the divisor of u, ≥ 1 (or NaN when rmsUpdate is NaN)
         */
        public float clipDivisor(double rmsUpdate) {
            double d = rmsUpdate / clipThreshold;
            return (float) (d < 1.0 ? 1.0 : d);
        }
    }

    /**
     * The scalars of step t ≥ 1 under {@code c}.
     *
     * @param c the hyper-parameters
     * @param t the step number, ≥ 1
     * @return the step's scalars, rounded as {@link Step} documents
     * @throws IllegalArgumentException if t &lt; 1
     */
    public static Step step(AdafactorConfig c, long t) {
        if (t < 1) {
            throw new IllegalArgumentException("Adafactor step must be >= 1, got t=" + t);
        }
        double rho;
        if (c.relativeStep()) {
            double minStep = c.warmupInit() ? 1e-6 * t : 1e-2;
            rho = Math.min(minStep, 1.0 / Math.sqrt(t));
        } else {
            rho = c.lr();
        }
        double beta2t = 1.0 - Math.pow(t, c.decayRate());
        boolean first = c.usesFirstMoment();
        double b1 = first ? c.beta1() : 0.0;
        return new Step(t, (float) beta2t, (float) (1.0 - beta2t), (float) c.eps1(), (float) b1, (float) (1 - b1), first, rho,
                c.scaleParameter(), c.eps2(), c.clipThreshold(), c.weightDecay());
    }

    /**
     * √(sumSq)/√n in double, as Hugging Face's {@code tensor.norm(2) / numel ** 0.5}.
     *
     * @param sumSq the sum of squares, a flat sum in the order above
     * @param n     the number of elements summed (n = 0 gives NaN, as torch)
     * @return the root mean square
     */
    public static double rms(double sumSq, long n) {
        return Math.sqrt(sumSq) / Math.sqrt((double) n);
    }

    /**
     * Number of segments of a flat sum over n elements (at least 1).
     *
     * @param n the element count, ≥ 0
     * @return ⌈n / {@link #SEGMENT}⌉, or 1 when n is 0
     */
    public static long segments(long n) {
        return Math.max(1, (n + SEGMENT - 1) / SEGMENT);
    }

    /**
     * Number of row chunks of a column sum over r rows (at least 1).
     *
     * @param r the row count R, ≥ 0
     * @return ⌈r / {@link #COL_CHUNK}⌉, or 1 when r is 0
     */
    public static long colChunks(long r) {

        return Math.max(1, (r + COL_CHUNK - 1) / COL_CHUNK);
    }
}
