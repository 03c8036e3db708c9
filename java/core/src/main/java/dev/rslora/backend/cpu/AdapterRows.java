package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;

/**
 * The adapter terms of a call with few rows (a forward of at most {@link #FORWARD_MAX_ROWS}, or
 * {@link #TRAINING_FORWARD_MAX_ROWS} in training mode, a backward of at most
 * {@link RowGrads#MAX_ROWS}), read straight from row-major A [r, d_in] and B [d_out, r], with no
 * packed copies kept between calls:
 * <pre>
 *   forward   U[i, j]   = D(X)_i · A_j                       a dot product per row and rank (K = d_in)
 *             Y[i, o]  += (γU_i) · B_o                       a dot product per row and output (K = r), added
 *                                                            to the W segment's fp32 sum before Y is rounded
 *   backward  V_i       = Σ_o dY[i, o]·B_o                   axpys over B's rows, o ascending
 *             dX_i      = D'(Σ_j V[i, j]·(γA)_j) + dY_i·W    axpys over A's rows, j ascending; the mask, then
 *                                                            the W segment accumulating on them
 * </pre>
 * (the backward's axpys from {@link #TILE_MIN_ROWS} rows on: register tiles over one panel of B's
 * or γA's columns, packed by the unit that uses it; U's and Y's dot products likewise from
 * {@link #FORWARD_TILE_MIN_ROWS} rows on, over a panel of Aᵀ or (γB)ᵀ).
 * The panel route packs four copies of A and B ({@link AdapterPanels}), two of them transposed,
 * and a training step must pack them again after every optimizer step: at d = 1024, r = 64, N = 1
 * that was a third of the LoRA step (JFR samples, one thread, 2026-12-06), more than its adapter
 * arithmetic. Here A and B are read once per use, in place when they are F32 in native memory,
 * else through a converted copy of the rows in use ({@link #f32}).
 *
 * <p>Dot products sum in vector lanes (U: four vectors of fma chains, then one, then the rest;
 * Y: one chain per output, L outputs at a time, a masked last vector), then across the lanes by a
 * fixed tree of shuffles (one per U value in {@link #dot}; {@link #addGroup}'s one tree for L outputs, whose
 * L separate trees made Y's term cost 1.4× the frozen base's decoding forward at r = 8), not
 * {@code reduceLanes}, whose order the JIT may change between tiers: an element's arithmetic is
 * fixed, whichever worker runs it.
 * The axpys ({@link #rowTimes}) are, per element, the panel route's fma chains (one, or for one
 * row the one-row kernel's two), held in registers: the backward's outputs have its bits. Below
 * {@link #FORWARD_TILE_MIN_ROWS} rows U and Y differ from the panel route's in their last bits
 * (results depend on N already: {@link MergedWeight}); from there the forward's tiles give its bits.
 */
final class AdapterRows {
    /** Multiply-adds fused, or a multiply then an add where the JIT has no FMA instructions ({@link Fma}). */
    private static final boolean FUSED = Fma.FUSED;
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /**
     * {@link Lanes}' permutations and masks as fields of this class, read directly (no call in hot
     * code): C2 left some calls to Lanes.xor out of line (-XX:+PrintInlining, N = 1 training steps,
     * 2026-12-06: "callee is too large", 38 bytes against the 35-byte limit at a cold call site),
     * and a shuffle of unknown class keeps the rearrange from its intrinsic.
     */
    private static final VectorShuffle<Float> XOR1 = Lanes.xor(1);
    private static final VectorShuffle<Float> XOR2 = Lanes.xor(2);
    private static final VectorShuffle<Float> XOR4 = Lanes.xor(4);
    private static final VectorShuffle<Float> XOR8 = Lanes.xor(8);
    private static final VectorMask<Float> UPPER1 = Lanes.set(1);
    private static final VectorMask<Float> UPPER2 = Lanes.set(2);
    private static final VectorMask<Float> UPPER4 = Lanes.set(4);
    private static final VectorMask<Float> UPPER8 = Lanes.set(8);
    /** The lane tree's levels at bit L/2 and L/4 (each four rows of {@link #addGroup}). */
    private static final VectorMask<Float> UPPER_HALF = L == 16 ? UPPER8 : L == 8 ? UPPER4 : UPPER2;
    private static final VectorShuffle<Float> XOR_HALF = L == 16 ? XOR8 : L == 8 ? XOR4 : XOR2;
    private static final VectorMask<Float> UPPER_QUARTER = L == 16 ? UPPER4 : L == 8 ? UPPER2 : UPPER1;
    private static final VectorShuffle<Float> XOR_QUARTER = L == 16 ? XOR4 : L == 8 ? XOR2 : XOR1;
    /** {@link #addGroup}'s last shuffle: the tree leaves row q's sum in lane {@link #treeLane}(q); this puts it in lane q. */
    private static final VectorShuffle<Float> GROUP_ORDER =
            MicroKernel.SCALAR ? null : VectorShuffle.fromOp(S, AdapterRows::treeLane);

    private AdapterRows() {
    }

    /**
     * The lane of {@link #addGroup}'s tree that holds row q's sum: the lane's bits L/2 and L/4 give the
     * row within its quad of four rows (worth 1 and 2), its bits 2 and 1 (L = 16: (t0, t1) and (t2, t3)
     * paired at bit 2, then the pairs at bit 1) or its bit 1 (L = 8) give the quad.
     */
    static int treeLane(int q) {
        int inQuad = q & 3;
        int quad = q >> 2;
        int lane = ((inQuad & 1) != 0 ? L / 2 : 0) | ((inQuad & 2) != 0 ? L / 4 : 0);
        if (L == 16) {
            lane |= ((quad & 1) != 0 ? 2 : 0) | ((quad & 2) != 0 ? 1 : 0);
        } else if (L == 8) {
            lane |= (quad & 1) != 0 ? 1 : 0;
        }
        return lane;
    }

    /** "off" disables the path (A/B measurements: the panel route at every N); anything else, or unset, leaves it on. */
    static final String PROPERTY = "rslora.cpu.adapterRows";

    /**
     * The most rows whose forward takes this path in eval mode (decoding). The forward's panels are
     * transposed copies of A and B, costly to pack after every optimizer step but kept while A and B
     * stay the same, as they do in decoding; the dot products here pay a reduction per output
     * instead. Measured (JMH, d = 1024, r = 64, two threads, both routes in one series, 2026-12-06;
     * ratio to the frozen base): decoding forward (A and B unchanged) N = 1, 2, 4, 8: 1.26, 1.25,
     * 1.38, 1.70 here against 1.15, 1.18, 1.17, 1.19 on kept panels; training step (A and B
     * written before each): 1.38, 1.33, 1.55, 1.87 here against 2.45, 2.21, 2.15, 2.20 on panels.
     * Up to two rows trade a tenth of decoding for training steps 1.7× faster; beyond, decoding
     * keeps its panels, and training takes this path up to {@link #TRAINING_FORWARD_MAX_ROWS}.
     */
    static final int FORWARD_MAX_ROWS = 2;

    /**
     * The most rows whose forward takes this path in training mode, where an optimizer step
     * normally changes A and B between forwards: {@link RowGrads#MAX_ROWS}, as the backward (measured
     * there with it, from 9 rows on). Measured when both limits were 8
     * (JMH, d = 1024, two threads, training steps, both limits alternated in one series,
     * 2026-12-06; ratio to the frozen base, r = 64 / r = 16): N = 3 1.41–1.45 / 1.23 here against
     * 1.83 / 1.38–1.39 on panels, N = 4 1.53–1.55 / 1.28 against 1.83–1.91 / 1.41–1.46, N = 8
     * 1.89–1.91 / 1.47–1.50 against 2.01–2.02 / 1.50–1.54. A training loop that runs several
     * forwards between optimizer steps (gradient accumulation) re-reads A and B each time instead
     * of reusing packed panels, which these figures do not cover.
     */
    static final int TRAINING_FORWARD_MAX_ROWS = RowGrads.MAX_ROWS;

    /** The most rows whose forward takes this path, in training mode or not. */
    static int forwardMaxRows(boolean training) {
        return training ? TRAINING_FORWARD_MAX_ROWS : FORWARD_MAX_ROWS;
    }

    /**
     * Whether the forward of {@code p} takes this path: {@code enabled}, adapter active, N ≤
     * {@link #forwardMaxRows}, not on the merged route (which forms W' from the panels).
     */
    static boolean useForward(LoraParams p, boolean merged, boolean enabled) {
        return enabled && p.adapterActive() && p.n() <= forwardMaxRows(p.training()) && !merged;
    }

    /** Whether the backward of {@code p} takes this path: as {@link #useForward}, with N ≤ {@link RowGrads#MAX_ROWS}. */
    static boolean useBackward(LoraParams p, boolean merged, boolean enabled) {
        return enabled && p.adapterActive() && p.n() <= RowGrads.MAX_ROWS && !merged;
    }

    /** Whether {@link #PROPERTY} leaves the path on (read when a backend is made). */
    static boolean enabledByProperty() {
        return !"off".equals(System.getProperty(PROPERTY, "").strip());
    }

    /**
     * A or B as the workers read it: the tensor, and its segment when it is F32 in native memory
     * (read in place), else null (read through converted copies). Made once per call, on the
     * calling thread: taking a segment per row allocated a view each time (7% of an N = 8 forward).
     */
    record Source(Tensor t, MemorySegment direct) {
        static Source of(Tensor t) {
            if (t == null) {
                return null;
            }
            MemorySegment seg = t.readOnlySegment();
            return new Source(t, t.dtype() == DType.F32 && Convert.vectorOk(seg) ? seg : null);
        }
    }

    /**
     * Elements [start, start + count) of {@code src} as fp32 little-endian in {@link Scratch#rows}
     * from the returned byte offset: the tensor's own segment when direct, else a converted copy at
     * byte 0 of this worker's {@link Scratch#adapterRows} (valid until its next use).
     */
    static long f32(Source src, long start, int count, Scratch s) {
        if (src.direct() != null) {
            s.rows = src.direct();
            return start * 4;
        }
        s.conv = Scratch.grow(s.conv, count);
        Convert.load(src.t(), start, count, s.conv, 0);
        MemorySegment dst = s.adapterRows.ensure(count * 4L + 4L * L);  // L to spare: addGroup's whole tail vectors
        MemorySegment.copy(s.conv, 0, dst, DType.LE_FLOAT, 0, count);
        s.rows = dst;
        return 0;
    }

    /**
     * U[i, j0..j1) for the n rows of {@code src} (D(X), fp32 rows {@code ld} apart): into
     * {@code out} row i at i·NR (j1 − j0 ≤ NR values).
     */
    static void u(float[] src, int ld, int n, Source a, int dIn, int j0, int j1, Scratch s, float[] out) {
        for (int j = j0; j < j1; j++) {
            long at = f32(a, (long) j * dIn, dIn, s);
            MemorySegment row = s.rows;
            for (int i = 0; i < n; i++) {
                out[i * MicroKernel.NR + j - j0] = dot(src, i * ld, row, at, dIn);
            }
        }
    }

    /**
     * Y's adapter term for outputs [o0, o1): yc[i·ldy + o] += gu_i · B_o for i &lt; n, with gu = γU
     * [n, r] row-major (fp32, rounded once): L outputs at a time ({@link #addGroup}), the rest one by
     * one ({@link #dot}). With a tail (r mod L ≠ 0) {@code gu} holds L floats past the tail of its
     * last row, and a group whose last row's tail vector would reach past B's end is copied first:
     * {@link #addGroup} reads tails as whole vectors.
     */
    static void addY(float[] gu, int n, int r, Source b, int o0, int o1, Scratch s, float[] yc, int ldy) {
        long base = f32(b, (long) o0 * r, (o1 - o0) * r, s);
        MemorySegment rows = s.rows;
        int o = o0;
        if (!MicroKernel.SCALAR) {
            int t = r % L;
            if (t != 0 && o0 + L <= o1 && (long) n * r - t + L > gu.length) {
                throw new IllegalStateException("internal: gamma*U holds " + gu.length + " floats, its whole tail vectors need "
                        + ((long) n * r - t + L) + " (n = " + n + ", r = " + r + ")");
            }
            for (; o + L <= o1; o += L) {
                long at = base + (long) (o - o0) * r * 4;
                MemorySegment src = rows;
                long from = at;
                if (t != 0 && at + 4L * ((long) L * r - t + L) > rows.byteSize()) {
                    // the last row's tail vector would reach past the end of B: the group's rows copied
                    src = s.tailRows.ensure(4L * ((long) L * r + L));
                    MemorySegment.copy(rows, at, src, 0, 4L * L * r);
                    from = 0;
                }
                for (int i = 0; i < n; i++) {
                    addGroup(gu, i * r, src, from, 4L * r, r, yc, i * ldy + o);
                }
            }
        }
        for (; o < o1; o++) {
            long at = base + (long) (o - o0) * r * 4;
            for (int i = 0; i < n; i++) {
                yc[i * ldy + o] += dot(gu, i * r, rows, at, r);
            }
        }
    }

    /**
     * out[oo + q] += Σ_{c &lt; len} x[xo + c]·y_q[c] for the L rows q &lt; L of y (fp32 little-endian,
     * row q from byte yOff + q·ld): per row one fma chain over its vectors, the last len mod L values
     * as a whole vector with the lanes past len cleared (L floats must be readable past the tail in x
     * and in y's row L − 1); then the L chains' lanes summed by one tree of blends, shuffles and adds
     * (L − 1 of them, where L separate trees took L·log2(L) shuffles and a lane extraction each), in a
     * fixed order whichever tier runs it, and the L sums added to out in one vector.
     *
     * <p>One method per vector shape, the L chains in registers (L + 2 vectors live). Until
     * 2026-12-08 the chains ran four rows at a time in an out-of-line helper that stored its partial
     * sums for this method to reload (C2 would not inline it: over FreqInlineSize), with the same
     * chains and the same tree, so the same bits; {@link #addY} over B [1024, 64] at N = 1 (one
     * thread, 512-bit, scratch harness, alternated JVMs) took 3.6–4.0 µs instead of 5.3–7.4 with B
     * in L2, and 6.2–7.2 µs instead of 6.3–8.8 with B evicted to L3 first.
     *
     * <p>The tail (len mod L ≠ 0: r = 8 and 24 at 512 bits) is read as whole vectors whose lanes
     * past len are cleared in registers by a mask made here, which gives the masked loads' values
     * (+0 there) with no masked memory access: so the caller keeps L floats readable past the
     * tail of x's row and of y's row L − 1 ({@link #addY}: γU's slack, and B's last rows copied).
     * The masked loads this replaces were boxing every vector of the call (172–184 KB and 10–21 µs
     * per {@link #addY} over 1024 outputs at r = 8, one thread, 512-bit, alone in a loop, against
     * 2.2–3.0 µs at r = 16 with no tail, 2026-12-06): a masked load reaching past the end of its
     * segment takes the JDK's out-of-range path, and once any masked load in the JVM has taken it
     * (a shared profile: gradient rows accumulated at a tensor's end, heap-tensor tests), C2
     * compiled that path here too, ran out of its node budget (NodeCountInliningCutoff) and left
     * a helper of the lane tree out of line; a mask passed in from {@link #addY} was boxed at each call.
     */
    static void addGroup(float[] x, int xo, MemorySegment y, long yOff, long ld, int len, float[] out, int oo) {
        switch (L) {
            case 16 -> group16(x, xo, y, yOff, ld, len, out, oo);
            case 8 -> group8(x, xo, y, yOff, ld, len, out, oo);
            default -> group4(x, xo, y, yOff, ld, len, out, oo);
        }
    }

    /** {@link #addGroup} with 512-bit vectors: 16 chains. */
    private static void group16(float[] x, int xo, MemorySegment y, long yOff, long ld, int len, float[] out, int oo) {
        FloatVector z = FloatVector.zero(S);
        FloatVector p0 = z, p1 = z, p2 = z, p3 = z, p4 = z, p5 = z, p6 = z, p7 = z, p8 = z, p9 = z, p10 = z, p11 = z, p12 = z, p13 = z, p14 = z, p15 = z;
        int c = 0;
        for (; c + L <= len; c += L) {
            FloatVector xv = FloatVector.fromArray(S, x, xo + c);
            long at = yOff + 4L * c;
            FloatVector y0 = FloatVector.fromMemorySegment(S, y, at, LE);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = FloatVector.fromMemorySegment(S, y, at + ld, LE);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
            FloatVector y4 = FloatVector.fromMemorySegment(S, y, at + 4 * ld, LE);
            p4 = FUSED ? xv.fma(y4, p4) : xv.mul(y4).add(p4);
            FloatVector y5 = FloatVector.fromMemorySegment(S, y, at + 5 * ld, LE);
            p5 = FUSED ? xv.fma(y5, p5) : xv.mul(y5).add(p5);
            FloatVector y6 = FloatVector.fromMemorySegment(S, y, at + 6 * ld, LE);
            p6 = FUSED ? xv.fma(y6, p6) : xv.mul(y6).add(p6);
            FloatVector y7 = FloatVector.fromMemorySegment(S, y, at + 7 * ld, LE);
            p7 = FUSED ? xv.fma(y7, p7) : xv.mul(y7).add(p7);
            FloatVector y8 = FloatVector.fromMemorySegment(S, y, at + 8 * ld, LE);
            p8 = FUSED ? xv.fma(y8, p8) : xv.mul(y8).add(p8);
            FloatVector y9 = FloatVector.fromMemorySegment(S, y, at + 9 * ld, LE);
            p9 = FUSED ? xv.fma(y9, p9) : xv.mul(y9).add(p9);
            FloatVector y10 = FloatVector.fromMemorySegment(S, y, at + 10 * ld, LE);
            p10 = FUSED ? xv.fma(y10, p10) : xv.mul(y10).add(p10);
            FloatVector y11 = FloatVector.fromMemorySegment(S, y, at + 11 * ld, LE);
            p11 = FUSED ? xv.fma(y11, p11) : xv.mul(y11).add(p11);
            FloatVector y12 = FloatVector.fromMemorySegment(S, y, at + 12 * ld, LE);
            p12 = FUSED ? xv.fma(y12, p12) : xv.mul(y12).add(p12);
            FloatVector y13 = FloatVector.fromMemorySegment(S, y, at + 13 * ld, LE);
            p13 = FUSED ? xv.fma(y13, p13) : xv.mul(y13).add(p13);
            FloatVector y14 = FloatVector.fromMemorySegment(S, y, at + 14 * ld, LE);
            p14 = FUSED ? xv.fma(y14, p14) : xv.mul(y14).add(p14);
            FloatVector y15 = FloatVector.fromMemorySegment(S, y, at + 15 * ld, LE);
            p15 = FUSED ? xv.fma(y15, p15) : xv.mul(y15).add(p15);
        }
        if (c < len) {
            // whole vectors, the lanes past len cleared in registers: the masked loads' values
            VectorMask<Float> tail = S.indexInRange(0, len - c);
            FloatVector xv = z.blend(FloatVector.fromArray(S, x, xo + c), tail);
            long at = yOff + 4L * c;
            FloatVector y0 = z.blend(FloatVector.fromMemorySegment(S, y, at, LE), tail);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = z.blend(FloatVector.fromMemorySegment(S, y, at + ld, LE), tail);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = z.blend(FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE), tail);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = z.blend(FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE), tail);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
            FloatVector y4 = z.blend(FloatVector.fromMemorySegment(S, y, at + 4 * ld, LE), tail);
            p4 = FUSED ? xv.fma(y4, p4) : xv.mul(y4).add(p4);
            FloatVector y5 = z.blend(FloatVector.fromMemorySegment(S, y, at + 5 * ld, LE), tail);
            p5 = FUSED ? xv.fma(y5, p5) : xv.mul(y5).add(p5);
            FloatVector y6 = z.blend(FloatVector.fromMemorySegment(S, y, at + 6 * ld, LE), tail);
            p6 = FUSED ? xv.fma(y6, p6) : xv.mul(y6).add(p6);
            FloatVector y7 = z.blend(FloatVector.fromMemorySegment(S, y, at + 7 * ld, LE), tail);
            p7 = FUSED ? xv.fma(y7, p7) : xv.mul(y7).add(p7);
            FloatVector y8 = z.blend(FloatVector.fromMemorySegment(S, y, at + 8 * ld, LE), tail);
            p8 = FUSED ? xv.fma(y8, p8) : xv.mul(y8).add(p8);
            FloatVector y9 = z.blend(FloatVector.fromMemorySegment(S, y, at + 9 * ld, LE), tail);
            p9 = FUSED ? xv.fma(y9, p9) : xv.mul(y9).add(p9);
            FloatVector y10 = z.blend(FloatVector.fromMemorySegment(S, y, at + 10 * ld, LE), tail);
            p10 = FUSED ? xv.fma(y10, p10) : xv.mul(y10).add(p10);
            FloatVector y11 = z.blend(FloatVector.fromMemorySegment(S, y, at + 11 * ld, LE), tail);
            p11 = FUSED ? xv.fma(y11, p11) : xv.mul(y11).add(p11);
            FloatVector y12 = z.blend(FloatVector.fromMemorySegment(S, y, at + 12 * ld, LE), tail);
            p12 = FUSED ? xv.fma(y12, p12) : xv.mul(y12).add(p12);
            FloatVector y13 = z.blend(FloatVector.fromMemorySegment(S, y, at + 13 * ld, LE), tail);
            p13 = FUSED ? xv.fma(y13, p13) : xv.mul(y13).add(p13);
            FloatVector y14 = z.blend(FloatVector.fromMemorySegment(S, y, at + 14 * ld, LE), tail);
            p14 = FUSED ? xv.fma(y14, p14) : xv.mul(y14).add(p14);
            FloatVector y15 = z.blend(FloatVector.fromMemorySegment(S, y, at + 15 * ld, LE), tail);
            p15 = FUSED ? xv.fma(y15, p15) : xv.mul(y15).add(p15);
        }
        // lane bit L/2 (rows 2k | 2k+1), then L/4 (pairs of those): quad k's partial sums, lane i holding row
        // 4k + [i has bit L/2] + 2·[i has bit L/4]
        FloatVector h0 = p0.blend(p1, UPPER_HALF).add(p1.blend(p0, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h2 = p2.blend(p3, UPPER_HALF).add(p3.blend(p2, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q0 = h0.blend(h2, UPPER_QUARTER).add(h2.blend(h0, UPPER_QUARTER).rearrange(XOR_QUARTER));
        FloatVector h4 = p4.blend(p5, UPPER_HALF).add(p5.blend(p4, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h6 = p6.blend(p7, UPPER_HALF).add(p7.blend(p6, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q1 = h4.blend(h6, UPPER_QUARTER).add(h6.blend(h4, UPPER_QUARTER).rearrange(XOR_QUARTER));
        FloatVector h8 = p8.blend(p9, UPPER_HALF).add(p9.blend(p8, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h10 = p10.blend(p11, UPPER_HALF).add(p11.blend(p10, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q2 = h8.blend(h10, UPPER_QUARTER).add(h10.blend(h8, UPPER_QUARTER).rearrange(XOR_QUARTER));
        FloatVector h12 = p12.blend(p13, UPPER_HALF).add(p13.blend(p12, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h14 = p14.blend(p15, UPPER_HALF).add(p15.blend(p14, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q3 = h12.blend(h14, UPPER_QUARTER).add(h14.blend(h12, UPPER_QUARTER).rearrange(XOR_QUARTER));
        // lane bit 2 (quads 0 | 1, 2 | 3), then bit 1 (01 | 23)
        FloatVector a = q0.blend(q1, UPPER2).add(q1.blend(q0, UPPER2).rearrange(XOR2));
        FloatVector b = q2.blend(q3, UPPER2).add(q3.blend(q2, UPPER2).rearrange(XOR2));
        FloatVector sums = a.blend(b, UPPER1).add(b.blend(a, UPPER1).rearrange(XOR1));
        FloatVector.fromArray(S, out, oo).add(sums.rearrange(GROUP_ORDER)).intoArray(out, oo);
    }

    /** {@link #addGroup} with 256-bit vectors: 8 chains. */
    private static void group8(float[] x, int xo, MemorySegment y, long yOff, long ld, int len, float[] out, int oo) {
        FloatVector z = FloatVector.zero(S);
        FloatVector p0 = z, p1 = z, p2 = z, p3 = z, p4 = z, p5 = z, p6 = z, p7 = z;
        int c = 0;
        for (; c + L <= len; c += L) {
            FloatVector xv = FloatVector.fromArray(S, x, xo + c);
            long at = yOff + 4L * c;
            FloatVector y0 = FloatVector.fromMemorySegment(S, y, at, LE);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = FloatVector.fromMemorySegment(S, y, at + ld, LE);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
            FloatVector y4 = FloatVector.fromMemorySegment(S, y, at + 4 * ld, LE);
            p4 = FUSED ? xv.fma(y4, p4) : xv.mul(y4).add(p4);
            FloatVector y5 = FloatVector.fromMemorySegment(S, y, at + 5 * ld, LE);
            p5 = FUSED ? xv.fma(y5, p5) : xv.mul(y5).add(p5);
            FloatVector y6 = FloatVector.fromMemorySegment(S, y, at + 6 * ld, LE);
            p6 = FUSED ? xv.fma(y6, p6) : xv.mul(y6).add(p6);
            FloatVector y7 = FloatVector.fromMemorySegment(S, y, at + 7 * ld, LE);
            p7 = FUSED ? xv.fma(y7, p7) : xv.mul(y7).add(p7);
        }
        if (c < len) {
            // whole vectors, the lanes past len cleared in registers: the masked loads' values
            VectorMask<Float> tail = S.indexInRange(0, len - c);
            FloatVector xv = z.blend(FloatVector.fromArray(S, x, xo + c), tail);
            long at = yOff + 4L * c;
            FloatVector y0 = z.blend(FloatVector.fromMemorySegment(S, y, at, LE), tail);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = z.blend(FloatVector.fromMemorySegment(S, y, at + ld, LE), tail);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = z.blend(FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE), tail);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = z.blend(FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE), tail);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
            FloatVector y4 = z.blend(FloatVector.fromMemorySegment(S, y, at + 4 * ld, LE), tail);
            p4 = FUSED ? xv.fma(y4, p4) : xv.mul(y4).add(p4);
            FloatVector y5 = z.blend(FloatVector.fromMemorySegment(S, y, at + 5 * ld, LE), tail);
            p5 = FUSED ? xv.fma(y5, p5) : xv.mul(y5).add(p5);
            FloatVector y6 = z.blend(FloatVector.fromMemorySegment(S, y, at + 6 * ld, LE), tail);
            p6 = FUSED ? xv.fma(y6, p6) : xv.mul(y6).add(p6);
            FloatVector y7 = z.blend(FloatVector.fromMemorySegment(S, y, at + 7 * ld, LE), tail);
            p7 = FUSED ? xv.fma(y7, p7) : xv.mul(y7).add(p7);
        }
        // lane bit L/2 (rows 2k | 2k+1), then L/4 (pairs of those): quad k's partial sums, lane i holding row
        // 4k + [i has bit L/2] + 2·[i has bit L/4]
        FloatVector h0 = p0.blend(p1, UPPER_HALF).add(p1.blend(p0, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h2 = p2.blend(p3, UPPER_HALF).add(p3.blend(p2, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q0 = h0.blend(h2, UPPER_QUARTER).add(h2.blend(h0, UPPER_QUARTER).rearrange(XOR_QUARTER));
        FloatVector h4 = p4.blend(p5, UPPER_HALF).add(p5.blend(p4, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h6 = p6.blend(p7, UPPER_HALF).add(p7.blend(p6, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q1 = h4.blend(h6, UPPER_QUARTER).add(h6.blend(h4, UPPER_QUARTER).rearrange(XOR_QUARTER));
        // lane bit 1 (quads 0 | 1)
        FloatVector sums = q0.blend(q1, UPPER1).add(q1.blend(q0, UPPER1).rearrange(XOR1));
        FloatVector.fromArray(S, out, oo).add(sums.rearrange(GROUP_ORDER)).intoArray(out, oo);
    }

    /** {@link #addGroup} with 128-bit vectors: 4 chains. */
    private static void group4(float[] x, int xo, MemorySegment y, long yOff, long ld, int len, float[] out, int oo) {
        FloatVector z = FloatVector.zero(S);
        FloatVector p0 = z, p1 = z, p2 = z, p3 = z;
        int c = 0;
        for (; c + L <= len; c += L) {
            FloatVector xv = FloatVector.fromArray(S, x, xo + c);
            long at = yOff + 4L * c;
            FloatVector y0 = FloatVector.fromMemorySegment(S, y, at, LE);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = FloatVector.fromMemorySegment(S, y, at + ld, LE);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
        }
        if (c < len) {
            // whole vectors, the lanes past len cleared in registers: the masked loads' values
            VectorMask<Float> tail = S.indexInRange(0, len - c);
            FloatVector xv = z.blend(FloatVector.fromArray(S, x, xo + c), tail);
            long at = yOff + 4L * c;
            FloatVector y0 = z.blend(FloatVector.fromMemorySegment(S, y, at, LE), tail);
            p0 = FUSED ? xv.fma(y0, p0) : xv.mul(y0).add(p0);
            FloatVector y1 = z.blend(FloatVector.fromMemorySegment(S, y, at + ld, LE), tail);
            p1 = FUSED ? xv.fma(y1, p1) : xv.mul(y1).add(p1);
            FloatVector y2 = z.blend(FloatVector.fromMemorySegment(S, y, at + 2 * ld, LE), tail);
            p2 = FUSED ? xv.fma(y2, p2) : xv.mul(y2).add(p2);
            FloatVector y3 = z.blend(FloatVector.fromMemorySegment(S, y, at + 3 * ld, LE), tail);
            p3 = FUSED ? xv.fma(y3, p3) : xv.mul(y3).add(p3);
        }
        // lane bit L/2 (rows 2k | 2k+1), then L/4 (pairs of those): quad k's partial sums, lane i holding row
        // 4k + [i has bit L/2] + 2·[i has bit L/4]
        FloatVector h0 = p0.blend(p1, UPPER_HALF).add(p1.blend(p0, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector h2 = p2.blend(p3, UPPER_HALF).add(p3.blend(p2, UPPER_HALF).rearrange(XOR_HALF));
        FloatVector q0 = h0.blend(h2, UPPER_QUARTER).add(h2.blend(h0, UPPER_QUARTER).rearrange(XOR_QUARTER));
        FloatVector sums = q0;
        FloatVector.fromArray(S, out, oo).add(sums.rearrange(GROUP_ORDER)).intoArray(out, oo);
    }

    /**
     * V[i, j0..j1) = Σ_o dY[i, o]·B[o, j0..j1) for i &lt; n (dY rows of {@code dyc} {@code ldy}
     * apart, padded to MR rows), o ascending, into {@code v} row-major [padRows(n), r], with L
     * floats to spare after it (the masked stores of {@link #rowTimes} stay inside); j1 − j0 ≤ NR.
     */
    static void v(float[] dyc, int ldy, int n, Source b, int dOut, int r, int j0, int j1, Scratch s, float[] v) {
        long off = columns(b, dOut, r, j0, j1 - j0, s);
        if (n >= TILE_MIN_ROWS) {
            MemorySegment panel = panel(s.rows, dOut, r, j0, j1 - j0, 1f, s);
            for (int it = 0; it < n; it += MR) {
                MicroKernel.mma(dyc, it * ldy, ldy, panel, 0, dOut, s.tile, 0);
                for (int m = 0; m < Math.min(MR, n - it); m++) {
                    System.arraycopy(s.tile, m * NR, v, (it + m) * r + j0, j1 - j0);
                }
            }
            return;
        }
        for (int i = 0; i < n; i++) {
            rowTimes(dyc, i * ldy, dOut, s.rows, off, 4L * r, 1f, j1 - j0, v, i * r + j0, n == 1, s.tailPad);
        }
    }

    /**
     * dX's adapter term for columns [k0, k1) of the n rows: out[i·ldx + k] = Σ_j V[i, j]·fl(γ·A[j, k]),
     * j ascending from +0, for k0 ≤ k &lt; min(k1, d_in); columns [d_in, k1) (panel padding) are 0.
     * k0 is a multiple of NR; V is [padRows(n), r] and out has padRows(n) rows, each with L floats
     * to spare past k1 (Split.ld: the masked stores of {@link #rowTimes} stay inside).
     */
    static void dx(float[] v, int n, int r, Source a, int dIn, float gamma, int k0, int k1, Scratch s, float[] out,
                   int ldx) {
        int len = Math.min(k1, dIn) - k0;
        long off = columns(a, r, dIn, k0, len, s);
        if (n >= TILE_MIN_ROWS) {
            for (int c = 0; c < len; c += NR) {
                MemorySegment panel = panel(s.rows, r, dIn, k0 + c, Math.min(NR, len - c), gamma, s);
                for (int it = 0; it < n; it += MR) {
                    MicroKernel.mma(v, it * r, r, panel, 0, r, out, it * ldx + k0 + c, ldx);
                }
            }
        } else {
            for (int i = 0; i < n; i++) {
                rowTimes(v, i * r, r, s.rows, off, 4L * dIn, gamma, len, out, i * ldx + k0, n == 1, s.tailPad);
            }
        }
        for (int i = 0; i < n; i++) {
            java.util.Arrays.fill(out, i * ldx + k0 + len, i * ldx + k1, 0f);
        }
    }

    /**
     * The fewest rows whose V and dX terms run on {@link MicroKernel#mma} tiles over one direct
     * panel packed per unit ({@link #panel}) instead of one {@link #rowTimes} pass per row, which
     * re-reads all of B (or A) for every row and keeps each column's fma chain at its latency; a
     * tile does MR rows per read. The tiles are the panel route's arithmetic, so the bits stay its
     * bits. Measured (d = 1024, r = 64, two threads, backward of a training step against the
     * frozen base's, both paths alternated in separate JVMs, 2026-12-06): N = 8 2.07 per row
     * against 1.57–1.61 on tiles, N = 4 1.62–1.69 against 1.55–1.59, N = 3 1.43–1.53 against
     * 1.43–1.58, N = 2 1.40–1.46 against 1.44–1.60.
     */
    static final int TILE_MIN_ROWS = 4;

    /**
     * The fewest rows of a (training) row-path forward whose U and Y adapter terms run on register
     * tiles over an Aᵀ panel each U unit packs and a (γB)ᵀ panel each Y unit packs (ForwardPass: the
     * panel route's arithmetic and bits) instead of dot products ({@link #u}, {@link #addY}), whose
     * reductions grow with N while a pack is a fixed cost per step ({@link BlockTranspose}).
     * Measured (d = 1024, two threads, training forward against the frozen base's, tiles from 1 row
     * against none, alternated in separate JVMs, 2026-12-06): r = 64: N = 1 1.40–1.44 against
     * 1.20–1.24, N = 2 1.38–1.41 against 1.18–1.22, N = 3 1.39–1.43 against 1.31–1.34, N = 4
     * 1.29–1.31 against 1.37–1.41, N = 6 1.33–1.38 against 1.62–1.65; r = 16: N = 4 1.19–1.20
     * against 1.26–1.36, N = 8 1.10 against 1.41–1.42; r = 8: N = 4 1.24–1.29 against 1.27–1.28,
     * N = 8 1.18–1.19 against 1.48–1.51. Re-measured once the masked tails stopped boxing
     * ({@link #addGroup}; whole training step's R, tiles from 4 rows against dots up to 8, two JVMs
     * each, 2026-12-06): r = 8: N = 4 1.30–1.33 against 1.27–1.53, N = 8 1.32 against 1.70–1.76;
     * r = 24: N = 4 1.42–1.47 against 1.75–1.76, N = 8 1.49 against 2.06–2.08.
     */
    static final int FORWARD_TILE_MIN_ROWS = 4;

    /**
     * Columns [c0, c0 + cols) (cols ≤ NR) of the K rows of {@code rows} (fp32 little-endian, row k at
     * byte 4·k·ld, as {@link #columns} leaves them) times {@code scale}, as one direct panel in this
     * worker's {@link Scratch#rowPanel} (zero past cols).
     */
    private static MemorySegment panel(MemorySegment rows, int k, int ld, int c0, int cols, float scale, Scratch s) {
        MemorySegment panel = s.rowPanel.ensure((long) k * MicroKernel.PANEL_ROW_BYTES);
        Panels.packRowsF32(rows, 0, ld, c0, k, cols, scale, panel, 0, (long) k * MicroKernel.PANEL_ROW_BYTES);
        return panel;
    }

    /**
     * Columns [c0, c0 + cols) of every row of {@code src} [rows, ld] as fp32 little-endian in
     * {@link Scratch#rows}, rows 4·ld bytes apart, from the returned byte offset: the tensor's own
     * segment when direct, else those columns converted into this worker's
     * {@link Scratch#adapterRows} at the same places (the other columns unset).
     */
    private static long columns(Source src, int rows, int ld, int c0, int cols, Scratch s) {
        if (src.direct() != null) {
            s.rows = src.direct();
            return 4L * c0;
        }
        s.conv = Scratch.grow(s.conv, cols);
        MemorySegment dst = s.adapterRows.ensure(4L * rows * ld + 4L * L);  // L to spare: rowTimes' masked tails stay inside
        for (int j = 0; j < rows; j++) {
            Convert.load(src.t(), (long) j * ld + c0, cols, s.conv, 0);
            MemorySegment.copy(s.conv, 0, dst, DType.LE_FLOAT, 4 * ((long) j * ld + c0), cols);
        }
        s.rows = dst;
        return 4L * c0;
    }

    /**
     * Σ_{c &lt; len} x[xo + c]·y[c] (y fp32 little-endian from byte {@code yOff}): four vectors of fma
     * chains over the first multiple of 4L values, then one, added lanewise, then across the lanes
     * (a fixed tree of shuffles); then the remaining values by scalar fma.
     */
    static float dot(float[] x, int xo, MemorySegment y, long yOff, int len) {
        int c = 0;
        float sum = 0f;
        if (!MicroKernel.SCALAR && len >= L) {
            FloatVector s0 = FloatVector.zero(S);
            FloatVector s1 = s0;
            FloatVector s2 = s0;
            FloatVector s3 = s0;
            for (; c + 4 * L <= len; c += 4 * L) {
                long at = yOff + 4L * c;
                FloatVector x0 = FloatVector.fromArray(S, x, xo + c);
                FloatVector y0 = FloatVector.fromMemorySegment(S, y, at, LE);
                s0 = FUSED ? x0.fma(y0, s0) : x0.mul(y0).add(s0);
                FloatVector x1 = FloatVector.fromArray(S, x, xo + c + L);
                FloatVector y1 = FloatVector.fromMemorySegment(S, y, at + 4L * L, LE);
                s1 = FUSED ? x1.fma(y1, s1) : x1.mul(y1).add(s1);
                FloatVector x2 = FloatVector.fromArray(S, x, xo + c + 2 * L);
                FloatVector y2 = FloatVector.fromMemorySegment(S, y, at + 8L * L, LE);
                s2 = FUSED ? x2.fma(y2, s2) : x2.mul(y2).add(s2);
                FloatVector x3 = FloatVector.fromArray(S, x, xo + c + 3 * L);
                FloatVector y3 = FloatVector.fromMemorySegment(S, y, at + 12L * L, LE);
                s3 = FUSED ? x3.fma(y3, s3) : x3.mul(y3).add(s3);
            }
            for (; c + L <= len; c += L) {
                FloatVector x0 = FloatVector.fromArray(S, x, xo + c);
                FloatVector y0 = FloatVector.fromMemorySegment(S, y, yOff + 4L * c, LE);
                s0 = FUSED ? x0.fma(y0, s0) : x0.mul(y0).add(s0);
            }
            // the lanes summed by a fixed tree: lanes i and i^h added for h = L/2 … 1, then lane 0. Explicit
            // shuffles and adds, so every compiler tier computes the same bits (reduceLanes leaves the order to
            // the JIT, and the interpreter's differs from C2's); no store and reload of the lanes, which cost a
            // store-forwarding stall per dot product. Written here, not in a helper (see the class comment).
            FloatVector v = s0.add(s1).add(s2.add(s3));
            if (L >= 16) {
                v = v.add(v.rearrange(XOR8));
            }
            if (L >= 8) {
                v = v.add(v.rearrange(XOR4));
            }
            v = v.add(v.rearrange(XOR2));
            v = v.add(v.rearrange(XOR1));
            sum = v.lane(0);
        }
        for (; c < len; c++) {
            sum = Fma.fma(x[xo + c], y.get(DType.LE_FLOAT, yOff + 4L * c), sum);
        }
        return sum;
    }

    /**
     * out[oo + c] = Σ_{k &lt; K} a[ao + k]·fl(scale·y[k, c]) for c &lt; len, y fp32 little-endian with
     * y[k, c] at byte yOff + k·ld + 4c, held in registers (four vectors of columns at a time, then
     * one, then one masked), so y's rows are read straight from the tensor with no packing (scale 1:
     * y as it is). The panel route's arithmetic: per column one fma chain in ascending k from +0, as
     * {@link MicroKernel#mma}'s tiles; with {@code split} (one row, as {@link MicroKernel#mmaRow}'s
     * kernels) two chains, even and odd k, added at the end. A masked row whose vector would reach
     * past the end of y is loaded through {@code pad} (L floats) instead ({@link SegmentEnd}), with
     * the same lanes; {@code out} has L floats to spare after the last stored column, so the masked stores stay inside it. The
     * loads are written out here: a helper for them, once compiled on its own, was "already compiled
     * into a big method" for C2 (-XX:+PrintInlining, after a test run with heap tensors), left out
     * of line, and every vector it returned was boxed (49 KB per V call at r = 24).
     */
    static void rowTimes(float[] a, int ao, int k, MemorySegment y, long yOff, long ld, float scale, int len,
                         float[] out, int oo, boolean split, float[] pad) {
        int c = 0;
        if (!MicroKernel.SCALAR) {
            for (; c + 4 * L <= len; c += 4 * L) {
                long at = yOff + 4L * c;
                if (split) {
                    block4Split(a, ao, k, y, at, ld, scale, out, oo + c);
                } else {
                    block4(a, ao, k, y, at, ld, scale, out, oo + c);
                }
            }
            int whole = c + (len - c) / L * L;
            if (c < whole) {
                rowTimesWhole(a, ao, k, y, yOff, ld, scale, out, oo, split, c, whole);
            }
            if (whole < len) {
                rowTimesPart(a, ao, k, y, yOff, ld, scale, len, out, oo, split, pad, whole);
            }
            return;
        }
        for (; c < len; c++) {
            float e = 0f;
            float d = 0f;
            long at = yOff + 4L * c;
            int kk = 0;
            if (split) {
                for (; kk + 1 < k; kk += 2, at += 2 * ld) {
                    e = Fma.fma(a[ao + kk], y.get(DType.LE_FLOAT, at) * scale, e);
                    d = Fma.fma(a[ao + kk + 1], y.get(DType.LE_FLOAT, at + ld) * scale, d);
                }
            }
            for (; kk < k; kk++, at += ld) {
                e = Fma.fma(a[ao + kk], y.get(DType.LE_FLOAT, at) * scale, e);
            }
            out[oo + c] = split ? e + d : e;
        }
    }

    /**
     * {@link #rowTimes}' whole vectors of columns [c0, c1), fewer than four: one at a time, as
     * {@link #block4} and {@link #block4Split} do four. Its own method, as is {@link #rowTimesPart}:
     * in one method with rowTimes' four-vector loop and the partial vector, C2 parsed them to
     * 25 000 nodes, past its inlining cutoff ({@link GraphSizeTest}).
     */
    private static void rowTimesWhole(float[] a, int ao, int k, MemorySegment y, long yOff, long ld, float scale,
                                      float[] out, int oo, boolean split, int c0, int c1) {
        for (int c = c0; c < c1; c += L) {
            FloatVector e = FloatVector.zero(S);
            FloatVector d = e;
            long at = yOff + 4L * c;
            int kk = 0;
            if (split) {
                for (; kk + 1 < k; kk += 2, at += 2 * ld) {
                    FloatVector ye = FloatVector.fromMemorySegment(S, y, at, LE);
                    FloatVector yd = FloatVector.fromMemorySegment(S, y, at + ld, LE);
                    FloatVector ae = FloatVector.broadcast(S, a[ao + kk]);
                    FloatVector se = scale != 1f ? ye.mul(scale) : ye;
                    e = FUSED ? ae.fma(se, e) : ae.mul(se).add(e);
                    FloatVector ad = FloatVector.broadcast(S, a[ao + kk + 1]);
                    FloatVector sd = scale != 1f ? yd.mul(scale) : yd;
                    d = FUSED ? ad.fma(sd, d) : ad.mul(sd).add(d);
                }
            }
            for (; kk < k; kk++, at += ld) {
                FloatVector ye = FloatVector.fromMemorySegment(S, y, at, LE);
                FloatVector ae = FloatVector.broadcast(S, a[ao + kk]);
                FloatVector se = scale != 1f ? ye.mul(scale) : ye;
                e = FUSED ? ae.fma(se, e) : ae.mul(se).add(e);
            }
            (split ? e.add(d) : e).intoArray(out, oo + c);
        }
    }

    /**
     * {@link #rowTimes}' last vector of columns, [c, len) with len − c &lt; L: masked loads and a
     * masked store, except on the 128-bit tile (no masked memory access there: the lanes past len
     * loaded plainly and never stored, MicroKernel.PLAIN_MEMORY); rows whose load would reach past
     * the end of y through {@code pad}. The mask is never null where it is used: where it could
     * be (a whole vector had none), C2 boxed it on every call (JFR: the masks' boolean arrays under
     * rowTimes, about 5 % of a steady step's 2 KB) and kept virtual calls on it (-XX:+LogCompilation,
     * 2026-12-07).
     */
    private static void rowTimesPart(float[] a, int ao, int k, MemorySegment y, long yOff, long ld, float scale, int len,
                                     float[] out, int oo, boolean split, float[] pad, int c) {
        VectorMask<Float> m = MicroKernel.PLAIN_MEMORY ? null : S.indexInRange(c, len);
        FloatVector e = FloatVector.zero(S);
        FloatVector d = e;
        long at = yOff + 4L * c;
        // rows whose (masked) load lies inside y; the rest (at the end of y) through a zero-padded copy
        int kIn = SegmentEnd.rowsInside(y, at, ld, k);
        int kk = 0;
        if (split) {
            for (; kk + 1 < kIn; kk += 2, at += 2 * ld) {
                FloatVector ye = MicroKernel.PLAIN_MEMORY ? FloatVector.fromMemorySegment(S, y, at, LE)
                        : FloatVector.fromMemorySegment(S, y, at, LE, m);
                FloatVector yd = MicroKernel.PLAIN_MEMORY ? FloatVector.fromMemorySegment(S, y, at + ld, LE)
                        : FloatVector.fromMemorySegment(S, y, at + ld, LE, m);
                FloatVector ae = FloatVector.broadcast(S, a[ao + kk]);
                FloatVector se = scale != 1f ? ye.mul(scale) : ye;
                e = FUSED ? ae.fma(se, e) : ae.mul(se).add(e);
                FloatVector ad = FloatVector.broadcast(S, a[ao + kk + 1]);
                FloatVector sd = scale != 1f ? yd.mul(scale) : yd;
                d = FUSED ? ad.fma(sd, d) : ad.mul(sd).add(d);
            }
        }
        for (; kk < kIn; kk++, at += ld) {
            FloatVector ye = MicroKernel.PLAIN_MEMORY ? FloatVector.fromMemorySegment(S, y, at, LE)
                    : FloatVector.fromMemorySegment(S, y, at, LE, m);
            FloatVector ae = FloatVector.broadcast(S, a[ao + kk]);
            FloatVector se = scale != 1f ? ye.mul(scale) : ye;
            e = FUSED ? ae.fma(se, e) : ae.mul(se).add(e);
        }
        for (; kk < k; kk++, at += ld) {  // the same chains: when split, even kk on e and odd on d
            SegmentEnd.pad(y, at, len - c, pad);
            FloatVector p = FloatVector.fromArray(S, pad, 0);
            FloatVector ak = FloatVector.broadcast(S, a[ao + kk]);
            FloatVector ps = scale != 1f ? p.mul(scale) : p;
            FloatVector acc = split && (kk & 1) != 0 ? d : e;
            FloatVector t = FUSED ? ak.fma(ps, acc) : ak.mul(ps).add(acc);
            if (split && (kk & 1) != 0) {
                d = t;
            } else {
                e = t;
            }
        }
        if (split) {
            e = e.add(d);
        }
        if (!MicroKernel.PLAIN_MEMORY) {
            e.intoArray(out, oo + c, m);
        } else {
            e.intoArray(pad, 0);  // the padded loads are done with pad
            System.arraycopy(pad, 0, out, oo + c, len - c);
        }
    }

    /** Four vectors of {@link #rowTimes}' columns from byte {@code at}: one chain each. */
    private static void block4(float[] a, int ao, int k, MemorySegment y, long at, long ld, float scale, float[] out, int o) {
        FloatVector c0 = FloatVector.zero(S);
        FloatVector c1 = c0;
        FloatVector c2 = c0;
        FloatVector c3 = c0;
        for (int kk = 0; kk < k; kk++, at += ld) {
            FloatVector x = FloatVector.broadcast(S, a[ao + kk]);
            FloatVector y0 = FloatVector.fromMemorySegment(S, y, at, LE);
            y0 = scale != 1f ? y0.mul(scale) : y0;
            c0 = FUSED ? x.fma(y0, c0) : x.mul(y0).add(c0);
            FloatVector y1 = FloatVector.fromMemorySegment(S, y, at + 4L * L, LE);
            y1 = scale != 1f ? y1.mul(scale) : y1;
            c1 = FUSED ? x.fma(y1, c1) : x.mul(y1).add(c1);
            FloatVector y2 = FloatVector.fromMemorySegment(S, y, at + 8L * L, LE);
            y2 = scale != 1f ? y2.mul(scale) : y2;
            c2 = FUSED ? x.fma(y2, c2) : x.mul(y2).add(c2);
            FloatVector y3 = FloatVector.fromMemorySegment(S, y, at + 12L * L, LE);
            y3 = scale != 1f ? y3.mul(scale) : y3;
            c3 = FUSED ? x.fma(y3, c3) : x.mul(y3).add(c3);
        }
        c0.intoArray(out, o);
        c1.intoArray(out, o + L);
        c2.intoArray(out, o + 2 * L);
        c3.intoArray(out, o + 3 * L);
    }

    /** {@link #block4} with two chains per vector, even and odd k, added at the end (one row: mmaRow's order). */
    private static void block4Split(float[] a, int ao, int k, MemorySegment y, long at, long ld, float scale, float[] out,
                                    int o) {
        FloatVector e0 = FloatVector.zero(S);
        FloatVector e1 = e0;
        FloatVector e2 = e0;
        FloatVector e3 = e0;
        FloatVector d0 = e0;
        FloatVector d1 = e0;
        FloatVector d2 = e0;
        FloatVector d3 = e0;
        int kk = 0;
        for (; kk + 1 < k; kk += 2, at += 2 * ld) {
            FloatVector x = FloatVector.broadcast(S, a[ao + kk]);
            FloatVector w = FloatVector.broadcast(S, a[ao + kk + 1]);
            FloatVector ye0 = FloatVector.fromMemorySegment(S, y, at, LE);
            ye0 = scale != 1f ? ye0.mul(scale) : ye0;
            e0 = FUSED ? x.fma(ye0, e0) : x.mul(ye0).add(e0);
            FloatVector yd0 = FloatVector.fromMemorySegment(S, y, at + ld, LE);
            yd0 = scale != 1f ? yd0.mul(scale) : yd0;
            d0 = FUSED ? w.fma(yd0, d0) : w.mul(yd0).add(d0);
            FloatVector ye1 = FloatVector.fromMemorySegment(S, y, at + 4L * L, LE);
            ye1 = scale != 1f ? ye1.mul(scale) : ye1;
            e1 = FUSED ? x.fma(ye1, e1) : x.mul(ye1).add(e1);
            FloatVector yd1 = FloatVector.fromMemorySegment(S, y, at + ld + 4L * L, LE);
            yd1 = scale != 1f ? yd1.mul(scale) : yd1;
            d1 = FUSED ? w.fma(yd1, d1) : w.mul(yd1).add(d1);
            FloatVector ye2 = FloatVector.fromMemorySegment(S, y, at + 8L * L, LE);
            ye2 = scale != 1f ? ye2.mul(scale) : ye2;
            e2 = FUSED ? x.fma(ye2, e2) : x.mul(ye2).add(e2);
            FloatVector yd2 = FloatVector.fromMemorySegment(S, y, at + ld + 8L * L, LE);
            yd2 = scale != 1f ? yd2.mul(scale) : yd2;
            d2 = FUSED ? w.fma(yd2, d2) : w.mul(yd2).add(d2);
            FloatVector ye3 = FloatVector.fromMemorySegment(S, y, at + 12L * L, LE);
            ye3 = scale != 1f ? ye3.mul(scale) : ye3;
            e3 = FUSED ? x.fma(ye3, e3) : x.mul(ye3).add(e3);
            FloatVector yd3 = FloatVector.fromMemorySegment(S, y, at + ld + 12L * L, LE);
            yd3 = scale != 1f ? yd3.mul(scale) : yd3;
            d3 = FUSED ? w.fma(yd3, d3) : w.mul(yd3).add(d3);
        }
        if (kk < k) {
            FloatVector x = FloatVector.broadcast(S, a[ao + kk]);
            FloatVector ye0 = FloatVector.fromMemorySegment(S, y, at, LE);
            ye0 = scale != 1f ? ye0.mul(scale) : ye0;
            e0 = FUSED ? x.fma(ye0, e0) : x.mul(ye0).add(e0);
            FloatVector ye1 = FloatVector.fromMemorySegment(S, y, at + 4L * L, LE);
            ye1 = scale != 1f ? ye1.mul(scale) : ye1;
            e1 = FUSED ? x.fma(ye1, e1) : x.mul(ye1).add(e1);
            FloatVector ye2 = FloatVector.fromMemorySegment(S, y, at + 8L * L, LE);
            ye2 = scale != 1f ? ye2.mul(scale) : ye2;
            e2 = FUSED ? x.fma(ye2, e2) : x.mul(ye2).add(e2);
            FloatVector ye3 = FloatVector.fromMemorySegment(S, y, at + 12L * L, LE);
            ye3 = scale != 1f ? ye3.mul(scale) : ye3;
            e3 = FUSED ? x.fma(ye3, e3) : x.mul(ye3).add(e3);
        }
        e0.add(d0).intoArray(out, o);
        e1.add(d1).intoArray(out, o + L);
        e2.add(d2).intoArray(out, o + 2 * L);
        e3.add(d3).intoArray(out, o + 3 * L);
    }
}
