package dev.rslora.train;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** {@link FiniteGrads}' vector probe over native F32; loaded only with the {@code jdk.incubator.vector} module. */
final class FiniteGradsVector {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private FiniteGradsVector() {
    }

    /** Elements the vector loop covers: n rounded down to whole vectors. */
    static long bound(long n) {
        return n - n % S.length();
    }

    /** Whether elements [0, bound) are finite: v − v is 0 for a finite v and NaN otherwise, and the sums keep a NaN. */
    static boolean allFinite(MemorySegment s, long bound) {
        FloatVector probe = FloatVector.zero(S);
        for (long i = 0; i < bound; i += S.length()) {
            FloatVector v = FloatVector.fromMemorySegment(S, s, i * Float.BYTES, ByteOrder.LITTLE_ENDIAN);
            probe = probe.add(v.sub(v));
        }
        return probe.reduceLanes(VectorOperators.ADD) == 0f;
    }
}
