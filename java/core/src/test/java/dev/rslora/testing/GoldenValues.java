package dev.rslora.testing;

/**
 * The input generator shared with java/core/src/test/python/make_adafactor_golden.py:
 * {@code value(seed, i) = ((splitmix64(seed·0x100000001B3 + i) >>> 40) − 2^23) / 2^23}, an exact fp32
 * number in [−1, 1) that Python and Java compute bit for bit, so golden files need not store inputs.
 */
public final class GoldenValues {
    private GoldenValues() {
    }

    public static float value(long seed, long i) {
        long z = seed * 0x100000001B3L + i + 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        long k = (z >>> 40) - (1L << 23);
        return (float) k / (float) (1 << 23);
    }
}
