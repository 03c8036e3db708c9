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
    /** Vectors summed in fp32 before the block sum is added in double (512 elements at 16 lanes). */
    private static final int BLOCK = 32;

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
        FloatVector m = FloatVector.broadcast(S, max);
        double sum = 0;
        float[] lanes = new float[l];
        int v = 0;
        while (v < bound) {
            FloatVector acc = FloatVector.zero(S);
            int end = Math.min(bound, v + BLOCK * l);
            for (; v < end; v += l) {
                acc = acc.add(VectorExp.exp(FloatVector.fromMemorySegment(S, xs, base + (long) v * Float.BYTES, LE).sub(m)));
            }
            // the lanes in lane order: reduceLanes(ADD) leaves the order to the JIT, and the interpreter's differs
            // from C2's, so a run's bits would depend on when the method was compiled (TierBitsTest)
            acc.intoArray(lanes, 0);
            for (float x : lanes) {
                sum += x;
            }
        }
        for (; v < vocab; v++) {
            sum += Math.exp(xs.getAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v) - max);
        }
        return max + Math.log(sum);
    }

    /** ds[row + v] = −(g·exp(x_v − lse)) for the F32 row (the label element is fixed by the caller). */
    static void backwardRow(MemorySegment xs, MemorySegment ds, long row, int vocab, float lse, float g) {
        int l = S.length();
        int bound = vocab - vocab % l;
        long base = row * Float.BYTES;
        FloatVector lv = FloatVector.broadcast(S, lse);
        FloatVector ng = FloatVector.broadcast(S, -g);
        for (int v = 0; v < bound; v += l) {
            long off = base + (long) v * Float.BYTES;
            FloatVector p = VectorExp.exp(FloatVector.fromMemorySegment(S, xs, off, LE).sub(lv));
            ng.mul(p).intoMemorySegment(ds, off, LE);
        }
        for (int v = bound; v < vocab; v++) {
            float p = (float) Math.exp(xs.getAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v) - lse);
            ds.setAtIndex(dev.rslora.tensor.DType.LE_FLOAT, row + v, -(g * p));
        }
    }
}
