package dev.rslora.train;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The Vector API rows of {@link SeqLogprob} for F32 logits: max, Σ exp(x − max) and the backward's
 * −g·exp(x − lse), with {@link VectorExp} (within 2 ulp of Math.exp, the same bits in every compiler tier).
 * Loaded only when the {@code jdk.incubator.vector} module is present.
 */
final class SeqLogprobVector {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private SeqLogprobVector() {
    }

    /** log Σ_v exp(x_v) of the F32 row at element {@code row} of length {@code vocab}. */
    static double logSumExp(MemorySegment xs, long row, int vocab) {
        int l = S.length();
        int bound = vocab - vocab % l;
        long base = row * Float.BYTES;
        FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int v = 0; v < bound; v += l) {
            mv = mv.max(FloatVector.fromMemorySegment(S, xs, base + (long) v * Float.BYTES, LE));
        }
        float max = mv.reduceLanes(VectorOperators.MAX);
        for (int v = bound; v < vocab; v++) {
            max = Math.max(max, xs.getAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v));
        }
        if (max == Float.NEGATIVE_INFINITY || Float.isNaN(max)) {
            return max;
        }
        double sum = VectorExp.exp(xs, base, bound, max, null, 0f);
        for (int v = bound; v < vocab; v++) {
            sum += Math.exp(xs.getAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v) - max);
        }
        return max + Math.log(sum);
    }

    /** ds[row + v] = −(g·exp(x_v − lse)) for the F32 row (the label element is fixed by the caller). */
    static void backwardRow(MemorySegment xs, MemorySegment ds, long row, int vocab, float lse, float g) {
        int l = S.length();
        int bound = vocab - vocab % l;
        long base = row * Float.BYTES;
        VectorExp.exp(xs, base, bound, lse, ds, -g);
        for (int v = bound; v < vocab; v++) {
            float p = (float) Math.exp(xs.getAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v) - lse);
            ds.setAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v, -(g * p));
        }
    }
}
