package dev.rslora.train;

import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The Vector API AdamW update for an F32 target and an F32 gradient: the same operations in the
 * same order as {@link AdamWScalar} (no FMA), so both give bit-identical results. Loaded only when
 * the {@code jdk.incubator.vector} module is present (see {@link AdamW}).
 */
final class AdamWVector {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private AdamWVector() {
    }

    /** Updates all elements of the F32 {@code target} from the F32 {@code grad}. */
    static void update(Tensor target, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c) {
        MemorySegment ps = target.segment();
        MemorySegment gs = grad.readOnlySegment();  // only read: the gradient's version stamp stays
        MemorySegment ms = m.segment();
        MemorySegment vs = v.segment();
        long n = target.numel();
        long bound = n - n % S.length();
        FloatVector decay = FloatVector.broadcast(S, c.decay());
        FloatVector omb1 = FloatVector.broadcast(S, c.oneMinusB1());
        boolean smallWeight = c.oneMinusB1() < 0.5f;  // torch's lerp picks its formula by |weight| < 0.5
        FloatVector omw = FloatVector.broadcast(S, 1f - c.oneMinusB1());
        FloatVector b2 = FloatVector.broadcast(S, c.beta2());
        FloatVector omb2 = FloatVector.broadcast(S, c.oneMinusB2());
        FloatVector stepSize = FloatVector.broadcast(S, c.stepSize());
        FloatVector bc2Sqrt = FloatVector.broadcast(S, c.bc2Sqrt());
        FloatVector eps = FloatVector.broadcast(S, c.eps());
        for (long i = 0; i < bound; i += S.length()) {
            long off = i * Float.BYTES;
            FloatVector g = FloatVector.fromMemorySegment(S, gs, off, LE);
            FloatVector p = FloatVector.fromMemorySegment(S, ps, off, LE).mul(decay);
            FloatVector mi = FloatVector.fromMemorySegment(S, ms, off, LE);
            FloatVector vi = FloatVector.fromMemorySegment(S, vs, off, LE);
            FloatVector diff = g.sub(mi);
            mi = smallWeight ? mi.add(omb1.mul(diff)) : g.sub(diff.mul(omw));
            vi = vi.mul(b2).add(omb2.mul(g).mul(g));
            FloatVector denom = vi.sqrt().div(bc2Sqrt).add(eps);
            p = p.sub(stepSize.mul(mi.div(denom)));
            mi.intoMemorySegment(ms, off, LE);
            vi.intoMemorySegment(vs, off, LE);
            p.intoMemorySegment(ps, off, LE);
        }
        AdamWScalar.update(target, grad, m, v, c, bound, n);
    }
}
