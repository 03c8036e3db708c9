package dev.rslora.dropout;

/**
 * Philox4x32-10 (Salmon et al., SC'11), the counter-based generator of Random123, cuRAND's
 * Philox and PyTorch's CUDA dropout. A pure function of a 128-bit counter and a 64-bit key;
 * checked against the Random123 known-answer vectors in the tests.
 */
public final class Philox4x32 {
    static final int M0 = 0xD2511F53;
    static final int M1 = 0xCD9E8D57;
    static final int W0 = 0x9E3779B9;
    static final int W1 = 0xBB67AE85;

    private Philox4x32() {
    }

    /**
     * Ten rounds on counter (c0..c3) with key (k0, k1); writes the four outputs into {@code out[0..3]}.
     * All values are unsigned 32-bit words held in ints.
     *
     * @param c0  counter word 0 (least significant)
     * @param c1  counter word 1
     * @param c2  counter word 2
     * @param c3  counter word 3 (most significant)
     * @param k0  key word 0
     * @param k1  key word 1
     * @param out receives the four output words; at least 4 long
     * @throws IllegalArgumentException if out is null or shorter than 4
     */
    public static void generate(int c0, int c1, int c2, int c3, int k0, int k1, int[] out) {
        if (out == null || out.length < 4) {
            throw new IllegalArgumentException("Philox4x32 writes 4 words, out holds " + (out == null ? "null" : out.length));
        }
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                k0 += W0;
                k1 += W1;
            }
            long p0 = (c0 & 0xFFFF_FFFFL) * (M0 & 0xFFFF_FFFFL);
            long p1 = (c2 & 0xFFFF_FFFFL) * (M1 & 0xFFFF_FFFFL);
            int hi0 = (int) (p0 >>> 32);
            int lo0 = (int) p0;
            int hi1 = (int) (p1 >>> 32);
            int lo1 = (int) p1;
            int n0 = hi1 ^ c1 ^ k0;
            int n2 = hi0 ^ c3 ^ k1;
            c0 = n0;
            c1 = lo1;
            c2 = n2;
            c3 = lo0;
        }
        out[0] = c0;
        out[1] = c1;
        out[2] = c2;
        out[3] = c3;
    }

    /**
     * Output lane {@code lane} (0..3) only; the same value {@link #generate} writes to out[lane].
     *
     * @param c0   counter word 0 (least significant)
     * @param c1   counter word 1
     * @param c2   counter word 2
     * @param c3   counter word 3 (most significant)
     * @param k0   key word 0
     * @param k1   key word 1
     * @param lane which of the four outputs, 0..3
     * @return that output word, unsigned 32 bits in an int
     * @throws IllegalArgumentException if lane is outside 0..3
     */

    public static int draw(int c0, int c1, int c2, int c3, int k0, int k1, int lane) {
        if ((lane & ~3) != 0) {
            throw new IllegalArgumentException("Philox4x32 lane must be 0..3, got lane=" + lane);
        }
        int[] out = new int[4];
        generate(c0, c1, c2, c3, k0, k1, out);
        return out[lane];
    }
}
