package dev.rslora.bench;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.Tensor;

/**
 * Host-side checks a benchmark runs on the outputs of one measured step before timing it, so a
 * fast but wrong (or all-zero) kernel cannot produce a number:
 * <ul>
 *   <li>{@link #requireFiniteNonZero}: no NaN/Inf and at most 1 % exact zeros;</li>
 *   <li>{@link #requireRows}: sampled rows of Y and dX against a double-precision recomputation:
 *   <pre>
 *   Y[i]  = X[i]·Wᵀ + γ·(D(X[i])·Aᵀ)·Bᵀ                 X [n, d_in], W [d_out, d_in], A [r, d_in], B [d_out, r]
 *   dX[i] = dY[i]·W + γ·D'((dY[i]·B)·A)                 dY [n, d_out]; D = dropout mask of (row, col) of X
 *   </pre>
 *   (with {@code lora == false}: Y = X·Wᵀ and dX = dY·W).</li>
 * </ul>
 */
final class StepCheck {
    /** Largest tolerated fraction of exact zeros in an output of random inputs. */
    static final double MAX_ZERO_FRACTION = 0.01;

    private StepCheck() {
    }

    /** Throws when {@code t} holds a NaN or infinity, or more than 1 % exact zeros. */
    static void requireFiniteNonZero(String what, Tensor t) {
        long zeros = 0;
        for (long i = 0; i < t.numel(); i++) {
            float v = t.get(i);
            if (!Float.isFinite(v)) {
                throw new IllegalStateException(what + " " + t.shapeString() + " holds " + v + " at flat index " + i);
            }
            if (v == 0f) {
                zeros++;
            }
        }
        if (zeros > MAX_ZERO_FRACTION * t.numel()) {
            throw new IllegalStateException(what + " " + t.shapeString() + " has " + zeros + " exact zeros of " + t.numel()
                    + " (more than " + (int) (MAX_ZERO_FRACTION * 100) + " %): the step did not write it?");
        }
    }

    /**
     * Compares rows {@code rows} of {@code y} and {@code dx} with the recomputation (see the class
     * comment); element (i, j) passes when {@code |got − ref| <= atolFactor·max|ref[i]| + rtol·|ref|}.
     * {@code mask} is null for no dropout; a, b and gamma are ignored when {@code lora} is false.
     */
    static void requireRows(Tensor x, Tensor w, Tensor a, Tensor b, Tensor dy, double gamma, DropoutMask mask,
                            boolean lora, Tensor y, Tensor dx, int[] rows, double rtol, double atolFactor) {
        int dIn = (int) w.dim(1);
        int dOut = (int) w.dim(0);
        int r = lora ? (int) a.dim(0) : 0;
        for (int i : rows) {
            double[] keep = new double[dIn];
            for (int k = 0; k < dIn; k++) {
                keep[k] = mask == null ? 1.0 : mask.keep(i, k) ? mask.scale() : 0.0;
            }
            double[] yRef = new double[dOut];
            double[] u = new double[r];
            for (int q = 0; q < r; q++) {
                double s = 0;
                for (int k = 0; k < dIn; k++) {
                    // D(x) = x·scale in fp32, as the SPEC defines it
                    s += (double) (float) (x.get(i, k) * (float) keep[k]) * a.get(q, k);
                }
                u[q] = s;
            }
            for (int j = 0; j < dOut; j++) {
                double s = 0;
                for (int k = 0; k < dIn; k++) {
                    s += (double) x.get(i, k) * w.get(j, k);
                }
                double l = 0;
                for (int q = 0; q < r; q++) {
                    l += u[q] * b.get(j, q);
                }
                yRef[j] = s + gamma * l;
            }
            compare("Y", y, i, yRef, rtol, atolFactor);

            double[] v = new double[r];
            for (int q = 0; q < r; q++) {
                double s = 0;
                for (int j = 0; j < dOut; j++) {
                    s += (double) dy.get(i, j) * b.get(j, q);
                }
                v[q] = s;
            }
            double[] dxRef = new double[dIn];
            for (int j = 0; j < dOut; j++) {
                double g = dy.get(i, j);
                for (int k = 0; k < dIn; k++) {
                    dxRef[k] += g * w.get(j, k);
                }
            }
            for (int k = 0; k < dIn; k++) {
                double l = 0;
                for (int q = 0; q < r; q++) {
                    l += v[q] * a.get(q, k);
                }
                dxRef[k] += gamma * keep[k] * l;
            }
            compare("dX", dx, i, dxRef, rtol, atolFactor);
        }
    }

    private static void compare(String what, Tensor got, int row, double[] ref, double rtol, double atolFactor) {
        double max = 0;
        for (double v : ref) {
            max = Math.max(max, Math.abs(v));
        }
        double atol = atolFactor * max;
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int j = 0; j < ref.length; j++) {
            double g = got.get(row, j);
            if (!(Math.abs(g - ref[j]) <= atol + rtol * Math.abs(ref[j]))) {
                if (bad++ < 4) {
                    first.append(" [").append(row).append(", ").append(j).append("] got ").append(g).append(" ref ")
                            .append(ref[j]);
                }
            }
        }
        if (bad > 0) {
            throw new IllegalStateException(what + " row " + row + ": " + bad + " of " + ref.length + " elements outside atol "
                    + atol + " + rtol " + rtol + "·|ref|:" + first);
        }
    }
}
