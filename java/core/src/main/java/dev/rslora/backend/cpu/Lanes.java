package dev.rslora.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The lane permutations and masks of the in-register reductions ({@link AdapterRows}) and
 * transposes ({@link BlockTranspose}), for h = 1, 2, 4, 8 at the backend's species: the
 * permutation l → l ^ h, the lanes whose bit h is set or clear, and with 16 lanes the index
 * vectors of the two-vector selections that exchange a row pair's lanes. Null where h ≥ L or on the
 * scalar tile. For field initializers: hot code reads fields of its own class, since a call that
 * C2 leaves out of line at a cold call site (each accessor is 38 bytes of bytecode, over the
 * 35-byte limit there) returns a shuffle or mask of unknown class, and the vector operation using
 * it then runs in the Vector API's Java fallback ({@link AdapterRows}).
 */
final class Lanes {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final VectorShuffle<Float> XOR1 = xorShuffle(1);
    private static final VectorShuffle<Float> XOR2 = xorShuffle(2);
    private static final VectorShuffle<Float> XOR4 = xorShuffle(4);
    private static final VectorShuffle<Float> XOR8 = xorShuffle(8);
    private static final VectorMask<Float> SET1 = bit(1, true);
    private static final VectorMask<Float> SET2 = bit(2, true);
    private static final VectorMask<Float> SET4 = bit(4, true);
    private static final VectorMask<Float> SET8 = bit(8, true);
    private static final VectorMask<Float> CLEAR1 = bit(1, false);
    private static final VectorMask<Float> CLEAR2 = bit(2, false);
    private static final VectorMask<Float> CLEAR4 = bit(4, false);
    private static final VectorMask<Float> CLEAR8 = bit(8, false);

    private Lanes() {
    }

    private static VectorShuffle<Float> xorShuffle(int h) {
        return MicroKernel.SCALAR || h >= L ? null : VectorShuffle.fromOp(S, i -> i ^ h);
    }

    private static VectorMask<Float> bit(int h, boolean set) {
        if (MicroKernel.SCALAR || h >= L) {
            return null;
        }
        boolean[] lanes = new boolean[L];
        for (int i = 0; i < L; i++) {
            lanes[i] = ((i & h) != 0) == set;
        }
        return VectorMask.fromArray(S, lanes, 0);
    }

    /**
     * For L = 16 only (else null): the index vector that, as {@code pick.selectFrom(v, w)}, does one
     * row pair's exchange of a transpose stage ({@link BlockTranspose}): lane l takes, for row i
     * ({@code upper} false), v[l] where bit h of l is clear and w[l ^ h] where it is set; for row
     * i + h ({@code upper} true), v[l ^ h] where it is clear and w[l] where it is set. Indexes
     * below L name v's lanes, L and above w's.
     */
    static FloatVector pick(int h, boolean upper) {
        if (MicroKernel.SCALAR || L != 16) {
            return null;
        }
        float[] index = new float[L];
        for (int l = 0; l < L; l++) {
            boolean set = (l & h) != 0;
            index[l] = upper ? (set ? L + l : l ^ h) : (set ? L + (l ^ h) : l);
        }
        return FloatVector.fromArray(S, index, 0);
    }

    /** l → l ^ h. */
    static VectorShuffle<Float> xor(int h) {
        return h == 8 ? XOR8 : h == 4 ? XOR4 : h == 2 ? XOR2 : XOR1;
    }

    /** The lanes with bit h set. */
    static VectorMask<Float> set(int h) {
        return h == 8 ? SET8 : h == 4 ? SET4 : h == 2 ? SET2 : SET1;
    }

    /** The lanes with bit h clear. */
    static VectorMask<Float> clear(int h) {
        return h == 8 ? CLEAR8 : h == 4 ? CLEAR4 : h == 2 ? CLEAR2 : CLEAR1;
    }
}
