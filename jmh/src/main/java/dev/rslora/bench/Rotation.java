package dev.rslora.bench;

/**
 * How many copies of a step's tensors (X, dY, Y, dX and W) the GPU benchmarks rotate through, so
 * that consecutive steps never find their operands in L2 (60 MB on H200, 126 MB on B200): at
 * least 2 copies, enough for 256 MiB in all, at most 8. {@code jmh/peft_peer.py} uses the same
 * rule (keep the two in step).
 */
final class Rotation {
    /** Bytes the rotated copies should cover together. */
    static final long TARGET_BYTES = 256L << 20;
    static final int MIN_SETS = 2;
    static final int MAX_SETS = 8;

    private Rotation() {
    }

    /** Bytes of one set: X [n, d_in], dX [n, d_in], Y [n, d_out], dY [n, d_out], W [d_out, d_in]. */
    static long bytesPerSet(long n, long dIn, long dOut, int elementBytes) {
        return elementBytes * (2 * n * dIn + 2 * n * dOut + dOut * dIn);
    }

    /** The number of sets for sets of {@code bytesPerSet} bytes. */
    static int sets(long bytesPerSet) {
        if (bytesPerSet < 1) {
            throw new IllegalArgumentException("bytes per set must be >= 1, got " + bytesPerSet);
        }
        long k = (TARGET_BYTES + bytesPerSet - 1) / bytesPerSet;
        return (int) Math.max(MIN_SETS, Math.min(MAX_SETS, k));
    }
}
