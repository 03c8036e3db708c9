package dev.rslora.train;

import dev.rslora.optim.AdafactorSpec;

/**
 * A double sum in the flat order of {@link AdafactorSpec}: segments of {@link AdafactorSpec#SEGMENT}
 * elements, 32 lane sums per segment (element k goes to lane k mod 32, ascending), combined by the
 * butterfly s_l ← s_l + s_{l+h} for h = 16, 8, 4, 2, 1, segment sums added in order. This is the
 * order of one warp per segment with {@code __shfl_xor_sync}, so the CUDA kernels reproduce it bit
 * for bit. Reusable: {@link #reset()} starts a new sum.
 */
final class FlatSum {
    private static final int LANES = AdafactorSpec.LANES;
    private static final int SEGMENT = AdafactorSpec.SEGMENT;

    private final double[] lanes = new double[LANES];
    private double total;
    private int inSegment;

    /** Starts a new sum. */
    void reset() {
        java.util.Arrays.fill(lanes, 0.0);
        total = 0.0;
        inSegment = 0;
    }

    /** Adds the next element of the sequence. */
    void add(double x) {
        int l = inSegment & (LANES - 1);
        lanes[l] = lanes[l] + x;
        if (++inSegment == SEGMENT) {
            flush();
        }
    }

    private void flush() {
        total = total + butterfly(lanes);
        java.util.Arrays.fill(lanes, 0.0);
        inSegment = 0;
    }

    /** The sum of everything added since the last reset (an empty sum is 0). */
    double finish() {
        if (inSegment > 0) {
            flush();
        }
        return total;
    }

    /** The warp butterfly over 32 lane sums (destroys {@code s}); returns lane 0. */
    static double butterfly(double[] s) {
        for (int h = LANES / 2; h > 0; h >>= 1) {
            for (int l = 0; l < h; l++) {
                s[l] = s[l] + s[l + h];
            }
        }
        return s[0];
    }
}
