package dev.rslora.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/** Small vector helpers on register-tile rows and fp32 rows. */
final class TileOps {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;

    private TileOps() {
    }

    /** a[aOff + c] += b[bOff + c] for c &lt; n (n a multiple of L: tile rows, padded rows). */
    static void addPadded(float[] a, int aOff, float[] b, int bOff, int n) {
        if (MicroKernel.SCALAR) {
            for (int c = 0; c < n; c++) {
                a[aOff + c] += b[bOff + c];
            }
            return;
        }
        for (int c = 0; c < n; c += L) {
            FloatVector.fromArray(S, a, aOff + c).add(FloatVector.fromArray(S, b, bOff + c)).intoArray(a, aOff + c);
        }
    }
}
