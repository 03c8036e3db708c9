package dev.rslora.train;

import dev.rslora.backend.BackendChecks;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Overlap;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Collection;
import java.util.Optional;

/**
 * Global gradient-norm clipping with the semantics of {@code torch.nn.utils.clip_grad_norm_}
 * (2-norm, {@code error_if_nonfinite=False}): the total norm is the 2-norm of all gradient
 * elements together; every gradient is multiplied by {@code min(1, maxNorm / (total + 1e-6))}.
 * Squares are accumulated in double and the coefficient is computed in double and rounded to fp32
 * once (PyTorch takes per-tensor norms in fp32 and computes the coefficient in the norm's dtype), so
 * the scaled gradients can differ from PyTorch's in the last bit. A NaN or
 * infinite total is returned as is and propagates into the gradients, as in PyTorch.
 */
public final class GradClip {
    /** The constant PyTorch adds to the total norm before dividing. */
    public static final double EPS = 1e-6;

    private GradClip() {
    }

    /**
     * The 2-norm of all elements of {@code grads} together.
     *
     * @param grads the gradient tensors (any shapes; F32, BF16 or F16), each in its own memory
     * @return √(Σ g²) accumulated in double; 0 for no tensors, NaN if any element is NaN
     * @throws IllegalArgumentException if grads or one of them is null, or two of them share memory
     */
    public static double globalNorm(Collection<Tensor> grads) {
        return norm(checked(grads));
    }

    private static double norm(Tensor[] grads) {
        double sum = 0;
        for (Tensor g : grads) {
            sum += sumOfSquares(g);
        }
        return Math.sqrt(sum);
    }

    /**
     * Scales {@code grads} in place so that their global 2-norm is at most about {@code maxNorm};
     * returns the norm before clipping.
     *
     * @param grads   the gradient tensors, scaled in place when their norm exceeds maxNorm; each in its
     *                own memory (a tensor listed twice would be counted twice and scaled twice)
     * @param maxNorm the largest global norm to keep (finite, &gt; 0)
     * @return the global norm before clipping
     * @throws IllegalArgumentException if maxNorm is not finite and &gt; 0, grads or one of them is null
     *                                  or read-only, or two of them share memory (nothing is scaled then)
     */

    public static double clipGlobalNorm(Collection<Tensor> grads, double maxNorm) {
        if (!(maxNorm > 0) || Double.isInfinite(maxNorm)) {
            throw new IllegalArgumentException("maxNorm must be finite and > 0, got maxNorm=" + maxNorm);
        }
        Tensor[] all = checked(grads);
        for (int i = 0; i < all.length; i++) {
            if (all[i].isReadOnly()) {
                // checked before any scaling: a partial clip would leave the gradients inconsistent
                throw new IllegalArgumentException("grads[" + i + "] " + all[i] + " is read-only and cannot be scaled in place");
            }
        }
        double total = norm(all);
        double coef = Math.min(maxNorm / (total + EPS), 1.0);
        if (!(coef == 1.0)) { // also NaN: PyTorch multiplies by the NaN coefficient
            float f = (float) coef;
            for (Tensor g : all) {
                scale(g, f);
            }
        }
        return total;
    }

    /**
     * The gradients as an array, refusing a null and two that share memory: once per call, by
     * {@link Overlap#find} (a sort of the k start and end addresses, O(k log k)).
     */
    private static Tensor[] checked(Collection<Tensor> grads) {
        if (grads == null) {
            throw new IllegalArgumentException("grads is null");
        }
        Tensor[] all = grads.toArray(new Tensor[0]);
        for (int i = 0; i < all.length; i++) {
            if (all[i] == null) {
                throw new IllegalArgumentException("grads[" + i + "] is null");
            }
            BackendChecks.usable("grads[" + i + "]", all[i]);  // a freed tensor named here, not as a bare "Already closed"
        }
        Optional<Overlap> clash = Overlap.find(Arrays.asList(all));
        if (clash.isPresent()) {
            throw shared(all, clash.get().first(), clash.get().second());
        }
        return all;
    }

    private static IllegalArgumentException shared(Tensor[] all, int first, int second) {
        return new IllegalArgumentException("grads[" + second + "] " + all[second] + " shares memory with grads[" + first + "] "
                + all[first] + ": each gradient must be listed once, in its own memory (it would be counted twice in the"
                + " norm and scaled twice)");
    }

    private static double sumOfSquares(Tensor t) {
        MemorySegment s = t.readOnlySegment();  // only read: not a write of t (its version stamp stays)
        long n = t.numel();
        double sum = 0;
        if (t.dtype() == DType.F32) {
            for (long i = 0; i < n; i++) {
                double v = s.getAtIndex(DType.LE_FLOAT, i);
                sum += v * v;
            }
        } else {
            DType d = t.dtype();
            for (long i = 0; i < n; i++) {
                double v = d.load(s, i);
                sum += v * v;
            }
        }
        return sum;
    }

    /** g ← round(g·f) in g's dtype. */
    private static void scale(Tensor t, float f) {
        MemorySegment s = t.segment();
        DType d = t.dtype();
        long n = t.numel();
        for (long i = 0; i < n; i++) {
            d.store(s, i, d.load(s, i) * f);
        }
    }
}
