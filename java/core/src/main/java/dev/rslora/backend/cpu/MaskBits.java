package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.dropout.DropoutMask;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The dropout mask of one step as keep bits, generated row by row and never stored beyond a
 * chunk of rows. Bit c%64 of word c/64 is 1 when element (row, c) survives. The bits are exactly
 * {@link DropoutMask#keep}: counter (c/4, row, layer, step), key (seed low, seed high),
 * Philox4x32-10 lane c%4, keep iff {@code (bits >>> 8) >= threshold} (see DropoutMask's javadoc);
 * this class inlines the generator (vectorised over 4–8 counters with 256- and 512-bit tiles,
 * scalar for the tail and with narrower tiles) so that no array is allocated per call.
 *
 * @param k0        key word 0 (low 32 bits of the seed)
 * @param k1        key word 1 (high 32 bits of the seed)
 * @param layer     counter word 2
 * @param step      counter word 3 (low 32 bits of the step)
 * @param threshold ceil(p·2^24): keep iff the 24-bit draw is at least this
 * @param scale     1/(1-p) in fp32, the factor of survivors
 */
record MaskBits(int k0, int k1, int layer, int step, int threshold, float scale) {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    /** 64-bit lanes of the tile width: one Philox instance (4 columns) per lane, 8 per vector with AVX-512. */
    private static final VectorSpecies<Long> LS = VectorSpecies.of(long.class,
            VectorShape.forBitSize(Math.max(128, MicroKernel.BITS)));
    private static final int LL = LS.length();
    /**
     * Whether {@link #row} runs the generator on LongVectors: from 256-bit tiles (4 lanes) up. With
     * 128-bit tiles (2 lanes) the JIT leaves them to the Vector API's Java fallback, which boxes
     * every operation: on x86 with 16-byte vectors C2 rejects the 2-lane compare whose mask becomes
     * bits (JDK 25; NEON, for its part, multiplies 64-bit lanes only by emulation). There a training
     * step at p = 0.1 (N = 8, d = 1024, r = 6) allocated 2.2 MB, and a 1024-column row of bits took 590 ns per 64
     * bits (-XX:MaxVectorSize=16; 880 with -XX:UseAVX=0) against 330 for the scalar generator, the
     * tail's code (so the bits are the same), with no allocation (2026-12-07).
     */
    static final boolean VECTOR_PHILOX = !MicroKernel.SCALAR && LL >= 4 && 16 % (2 * LL) == 0;
    private static final LongVector IOTA = LongVector.zero(LS).addIndex(1);
    /** Int lanes of the tile width, for the keep masks (see {@link #LANE_BIT}). */
    private static final VectorSpecies<Integer> IS = VectorSpecies.of(int.class,
            VectorShape.forBitSize(Math.max(128, MicroKernel.BITS)));
    /**
     * Lane i holds 1 &lt;&lt; i. The keep mask of L columns' bits: lane i set where bit i of the bits
     * is, as the bits broadcast, each lane ANDed with its own bit, read as a float (+0, or a
     * subnormal, which Java never flushes) and compared with zero, so the mask is a float mask with
     * no cast. Not {@code VectorMask.fromLong}, which C2 on aarch64 compiles only with SVE2's bit
     * permutations (JDK 25): on NEON and on Graviton 3's SVE it ran in the Vector API's Java
     * fallback, a boxed mask per call. The dropped lanes are then a blend with +0 rather than a
     * masked load (which NEON does not have): the same values as the masked load's zeros times the
     * scale. Written out where it is used, not returned by a helper (see the package comment).
     */
    private static final IntVector LANE_BIT = IntVector.broadcast(IS, 1).lanewise(VectorOperators.LSHL,
            IntVector.zero(IS).addIndex(1));
    /** Long.expand patterns: bit t of every nibble of the low 4·LL bits. */
    private static final long[] NIBBLE_BIT = nibblePatterns();
    private static final long PHILOX_M0 = 0xD2511F53L;
    private static final long PHILOX_M1 = 0xCD9E8D57L;
    private static final int PHILOX_W0 = 0x9E3779B9;
    private static final int PHILOX_W1 = 0xBB67AE85;
    /** Philox's multipliers and the low-32-bit mask in every lane ({@link #vectorBits}). */
    private static final LongVector M0 = LongVector.broadcast(LS, PHILOX_M0);
    private static final LongVector M1 = LongVector.broadcast(LS, PHILOX_M1);
    private static final LongVector LOW32 = LongVector.broadcast(LS, 0xFFFF_FFFFL);

    /** The mask of this step, or null when dropout is inactive (or the adapter is merged). */
    static MaskBits of(LoraParams p) {
        if (!p.adapterActive() || !p.dropoutActive()) {
            return null;
        }
        DropoutMask m = p.mask();
        return new MaskBits((int) p.seed(), (int) (p.seed() >>> 32), p.layer(), (int) p.step(), m.threshold(),
                m.scale());
    }

    /** Words needed for {@code cols} bits. */
    static int words(int cols) {
        return (cols + 63) >>> 6;
    }

    /**
     * Keep bits of {@code row} for the 64-column words [word0, word1) (clipped to {@code cols}
     * columns), written to words[off + word]. Bits past {@code cols} are unspecified.
     */
    void row(long row, int word0, int word1, int cols, long[] words, int off) {
        int g0 = word0 << 4;
        int g1 = Math.min(word1 << 4, (cols + 3) >>> 2);
        int g = g0;
        if (VECTOR_PHILOX) {
            // 16 groups (one 64-column word) per step, LL generator instances per vector, two vectors per call.
            for (; g + 16 <= g1; g += 16) {
                long word = 0;
                for (int v = 0; v < 16; v += 2 * LL) {
                    word |= vectorBits(row, g + v) << (4 * v);
                }
                words[off + (g >>> 4)] = word;
            }
        }
        long word = 0;
        for (; g < g1; g++) {
            word |= scalarNibble(row, g) << ((g & 15) << 2);
            if ((g & 15) == 15 || g == g1 - 1) {
                words[off + (g >>> 4)] = word;
                word = 0;
            }
        }
    }

    /** The 4 keep bits of columns 4g .. 4g+3 of {@code row} (bit t = column 4g + t). */
    private long scalarNibble(long row, int g) {
        int c0 = g;
        int c1 = (int) row;
        int c2 = layer;
        int c3 = step;
        int key0 = k0;
        int key1 = k1;
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                key0 += PHILOX_W0;
                key1 += PHILOX_W1;
            }
            long p0 = (c0 & 0xFFFF_FFFFL) * PHILOX_M0;
            long p1 = (c2 & 0xFFFF_FFFFL) * PHILOX_M1;
            int n0 = (int) (p1 >>> 32) ^ c1 ^ key0;
            int n2 = (int) (p0 >>> 32) ^ c3 ^ key1;
            c0 = n0;
            c1 = (int) p1;
            c2 = n2;
            c3 = (int) p0;
        }
        return ((c0 >>> 8) >= threshold ? 1L : 0L)
                | ((c1 >>> 8) >= threshold ? 2L : 0L)
                | ((c2 >>> 8) >= threshold ? 4L : 0L)
                | ((c3 >>> 8) >= threshold ? 8L : 0L);
    }

    /**
     * The 8·LL keep bits of columns 4g .. 4(g+2·LL)-1 of {@code row}: Philox4x32-10 for the 2·LL
     * counters (g + i, row, layer, step), in two vectors of LL lanes (a: g + lane, b: g + LL + lane),
     * each 32-bit word held zero-extended in a 64-bit lane so that the 64-bit lane multiply gives the
     * exact 32×32 → 64 product. Output bit 4i + t is word t of counter g + i; Long.expand interleaves
     * the four LL-bit masks of each vector.
     *
     * <p>Two vectors per call because a round is a chain of dependent operations (multiply, shift,
     * xor: its latency, not the vector units, set the pace of one vector), and a call per vector left
     * the two chains of a word one after the other: C2 keeps this method out of line (too large to
     * inline). One vector per call took 0.80–0.91 ns per column, two 0.59–0.68 (512-bit vectors, one thread,
     * 512 rows of 1024 columns, AMD EPYC family 25 model 17, 2026-12-07).
     */
    private long vectorBits(long row, int g) {
        LongVector a0 = LongVector.broadcast(LS, g & 0xFFFF_FFFFL).add(IOTA);
        LongVector b0 = LongVector.broadcast(LS, (g + LL) & 0xFFFF_FFFFL).add(IOTA);
        LongVector c1 = LongVector.broadcast(LS, row & 0xFFFF_FFFFL);
        LongVector c2 = LongVector.broadcast(LS, layer & 0xFFFF_FFFFL);
        LongVector c3 = LongVector.broadcast(LS, step & 0xFFFF_FFFFL);
        LongVector a1 = c1;
        LongVector a2 = c2;
        LongVector a3 = c3;
        LongVector b1 = c1;
        LongVector b2 = c2;
        LongVector b3 = c3;
        int key0 = k0;
        int key1 = k1;
        // the constants and each round's keys as vectors, each broadcast once: an operation with a scalar
        // operand broadcasts it where it is used, and those copies took C2's graph of this method past
        // its inlining cutoff (GraphSizeTest)
        LongVector m0 = M0;
        LongVector m1 = M1;
        LongVector low = LOW32;
        for (int round = 0; round < 10; round++) {
            if (round > 0) {
                key0 += PHILOX_W0;
                key1 += PHILOX_W1;
            }
            LongVector kk0 = LongVector.broadcast(LS, key0 & 0xFFFF_FFFFL);
            LongVector kk1 = LongVector.broadcast(LS, key1 & 0xFFFF_FFFFL);
            LongVector pa0 = a0.mul(m0);
            LongVector pa1 = a2.mul(m1);
            LongVector pb0 = b0.mul(m0);
            LongVector pb1 = b2.mul(m1);
            a0 = pa1.lanewise(VectorOperators.LSHR, 32).lanewise(VectorOperators.XOR, a1).lanewise(VectorOperators.XOR, kk0);
            a2 = pa0.lanewise(VectorOperators.LSHR, 32).lanewise(VectorOperators.XOR, a3).lanewise(VectorOperators.XOR, kk1);
            b0 = pb1.lanewise(VectorOperators.LSHR, 32).lanewise(VectorOperators.XOR, b1).lanewise(VectorOperators.XOR, kk0);
            b2 = pb0.lanewise(VectorOperators.LSHR, 32).lanewise(VectorOperators.XOR, b3).lanewise(VectorOperators.XOR, kk1);
            a1 = pa1.and(low);
            a3 = pa0.and(low);
            b1 = pb1.and(low);
            b3 = pb0.and(low);
        }
        // (c >>> 8) >= threshold as c >= threshold << 8 (c < 2^32 here): no shift per mask
        long t = (long) threshold << 8;
        long a = Long.expand(a0.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[0])
                | Long.expand(a1.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[1])
                | Long.expand(a2.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[2])
                | Long.expand(a3.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[3]);
        long b = Long.expand(b0.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[0])
                | Long.expand(b1.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[1])
                | Long.expand(b2.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[2])
                | Long.expand(b3.compare(VectorOperators.GE, t).toLong(), NIBBLE_BIT[3]);
        return a | b << (4 * LL);
    }

    private static long[] nibblePatterns() {
        long[] p = new long[4];
        for (int t = 0; t < 4; t++) {
            for (int i = 0; i < LL && 4 * i + t < 64; i++) {
                p[t] |= 1L << (4 * i + t);
            }
        }
        return p;
    }

    /** Keep bits of every column [0, cols) of {@code row} into words[off .. off + words(cols)). */
    void row(long row, int cols, long[] words, int off) {
        row(row, 0, words(cols), cols, words, off);
    }

    /** tile[off + c] = keep(col0 + c) ? tile[off + c]·scale : 0 for c &lt; NR; col0 is a multiple of NR. */
    void applyToTileRow(float[] tile, int off, long[] words, int wOff, int col0) {
        if (MicroKernel.SCALAR) {
            for (int c = 0; c < MicroKernel.NR; c++) {
                int col = col0 + c;
                boolean keep = ((words[wOff + (col >>> 6)] >>> (col & 63)) & 1L) != 0;
                tile[off + c] = keep ? tile[off + c] * scale : 0f;
            }
            return;
        }
        FloatVector zero = FloatVector.zero(S);
        for (int h = 0; h < MicroKernel.NR; h += L) {
            VectorMask<Float> keep = IntVector.broadcast(IS, (int) bits(words, wOff, col0 + h, L)).and(LANE_BIT)
                    .reinterpretAsFloats().compare(VectorOperators.NE, 0f);  // see LANE_BIT
            zero.blend(FloatVector.fromArray(S, tile, off + h).mul(scale), keep).intoArray(tile, off + h);
        }
    }

    /** The keep bits of columns [col, col + count), low bit first; requires col%64 + count ≤ 64. */
    static long bits(long[] words, int off, int col, int count) {
        long w = words[off + (col >>> 6)] >>> (col & 63);
        return count == 64 ? w : w & ((1L << count) - 1);
    }

    /** dst[dstOff + c] = keep(c) ? src[srcOff + c]·scale : 0 for c &lt; cols (bits from words[wOff]). */
    void apply(float[] src, int srcOff, long[] words, int wOff, int cols, float[] dst, int dstOff) {
        apply(src, srcOff, words, wOff, 0, cols, dst, dstOff);
    }

    /**
     * dst[dstOff + c] = keep(col0 + c) ? src[srcOff + c]·scale : 0 for c &lt; count, the bits of
     * column col0 + c read from words[wOff] onwards (the row's word 0 at wOff); col0 is a multiple of L.
     */
    void apply(float[] src, int srcOff, long[] words, int wOff, int col0, int count, float[] dst, int dstOff) {
        int c = 0;
        if (!MicroKernel.SCALAR) {
            FloatVector zero = FloatVector.zero(S);
            for (; c + L <= count; c += L) {
                VectorMask<Float> keep = IntVector.broadcast(IS, (int) bits(words, wOff, col0 + c, L)).and(LANE_BIT)
                        .reinterpretAsFloats().compare(VectorOperators.NE, 0f);  // see LANE_BIT
                zero.blend(FloatVector.fromArray(S, src, srcOff + c).mul(scale), keep).intoArray(dst, dstOff + c);
            }
        }
        for (; c < count; c++) {
            int col = col0 + c;
            boolean keep = ((words[wOff + (col >>> 6)] >>> (col & 63)) & 1L) != 0;
            dst[dstOff + c] = keep ? src[srcOff + c] * scale : 0f;
        }
    }
}
