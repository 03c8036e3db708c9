package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Refuses a step over a gradient holding NaN or ±Inf, before any parameter or state is written. AdamW
 * writes NaN into that element and its moments; Adafactor's row, column and RMS terms spread one NaN over
 * the whole parameter and keep it in the factored state for good, so a later clean step does not recover.
 * PyTorch steps through them silently; mixed-precision loops skip such a step instead
 * ({@code torch.amp.GradScaler}), which is what the message suggests.
 */
final class FiniteGrads {
    private static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    private FiniteGrads() {
    }

    /**
     * @throws IllegalArgumentException naming the first parameter whose gradient holds a non-finite value, the
     *                                  element (flat index) and the value
     */
    static void require(List<Parameter> params) {
        for (Parameter p : params) {
            Tensor g = p.grad();
            if (allFinite(g)) {
                continue;
            }
            long i = firstNonFinite(g, 0);
            throw new IllegalArgumentException("parameter '" + p.name() + "': its gradient holds " + g.get(i) + " at element " + i
                    + " (flat index): nothing was updated; skip this step (as torch.amp.GradScaler does after an overflow)"
                    + " or find where the value came from");
        }
    }

    /** Whether every element is finite: a vector probe for native F32, else {@link #firstNonFinite}. */
    static boolean allFinite(Tensor g) {
        if (VECTOR && g.dtype() == DType.F32 && VectorAccess.ok(g)) {
            MemorySegment s = g.readOnlySegment();  // only read: the gradient's version stamp stays
            long n = g.numel();
            long bound = FiniteGradsVector.bound(n);
            return FiniteGradsVector.allFinite(s, bound) && firstNonFinite(g, bound) < 0;
        }
        return firstNonFinite(g, 0) < 0;
    }

    /** The first element at or after {@code from} that is NaN or ±Inf, or −1. */
    static long firstNonFinite(Tensor g, long from) {
        MemorySegment s = g.readOnlySegment();
        DType d = g.dtype();
        for (long i = from, n = g.numel(); i < n; i++) {
            if (!Float.isFinite(d.load(s, i))) {
                return i;
            }
        }
        return -1;
    }
}
