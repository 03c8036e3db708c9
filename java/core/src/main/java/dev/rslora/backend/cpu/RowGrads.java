package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The adapter gradients for a small batch (N ≤ {@link #MAX_ROWS}), as sums of outer products
 * written in one pass over the output instead of {@link GradGemm}'s tiles (K = N, short):
 * <pre>
 *   dA[j, c] (=|+=) γ·Σ_{i&lt;n} V[i, j]·D(X)[i, c]      rows j of one block, all d_in columns
 *   dB[o, j] (=|+=) γ·Σ_{i&lt;n} dY[i, o]·U[i, j]        rows o of one group, all r columns
 * </pre>
 * Each unit writes whole rows of the gradient, one contiguous block (a group of columns of dA
 * would write a short piece of every row, one 4 KB page each). Each sum runs over i in increasing order in fp32 (fma), is multiplied by γ, has the old value
 * added when accumulating, and is rounded once: the same arithmetic whichever worker runs it.
 */
final class RowGrads {
    /** Multiply-adds fused, or a multiply then an add where the JIT has no FMA instructions ({@link Fma}). */
    private static final boolean FUSED = Fma.FUSED;
    /**
     * The largest N that takes this path, and with it the rest of the row path (no cached adapter
     * panels: {@link AdapterRows}' backward, and its forward in training mode). Measured (JMH, d = 1024,
     * two threads, training steps, ratio to the frozen base, a limit of 8 against 128 alternated in
     * separate JVMs, two rounds each, 2026-12-06): r = 64: N = 9 1.52 / 1.84 against 1.33 / 1.33,
     * N = 16 1.55 / 1.82 against 1.38 / 1.38, N = 32 1.44 / 1.71 against 1.29 / 1.34, N = 64
     * 1.35 / 1.47 against 1.28 / 1.35, N = 128 1.33 / 1.35 against 1.32 / 1.36; r = 16: N = 9
     * 1.24 / 1.34 against 1.22 / 1.24, N = 32 1.19 / 1.33 against 1.18 / 1.22, N = 64 1.14 / 1.22
     * against 1.15 / 1.17, N = 128 1.14 / 1.18 against 1.17 / 1.24. The gradient GEMMs' K is N:
     * below 128 rows their tiles spend more on loads and stores than on fmas.
     */
    static final int MAX_ROWS = 64;
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    private RowGrads() {
    }

    /** Elements of a gradient one unit writes at most (128 KB of fp32). */
    static final int UNIT_ELEMENTS = 32 * 1024;

    /**
     * Rows (of dA) or d_out panels (of dB) per unit for a gradient of {@code rows} such rows of
     * {@code rowElements} elements each: as many units as workers, more (a multiple of the workers)
     * where a unit would write over {@link #UNIT_ELEMENTS}. Writing is bound by the memory's write
     * bandwidth, not by the cores, so more and smaller units only add claims: N = 1, d = 1024,
     * r = 64, two workers: R 1.33 with four units of each gradient, 1.29–1.30 with two.
     */
    static int rowsPerUnit(int rows, long rowElements, int workers) {
        long perWorker = (rows * rowElements + workers - 1) / workers;
        long rounds = Math.max(1, (perWorker + UNIT_ELEMENTS - 1) / UNIT_ELEMENTS);
        long units = Math.min(rows, rounds * workers);
        return (int) ((rows + units - 1) / units);
    }

    /**
     * dA rows [j0, j1), all d_in columns, from xb = D(X) [n, d_in] as fp32 rows d_in apart.
     *
     * @param v V [n, r] row-major
     */
    static void dA(Scratch s, float[] xb, float[] v, int n, int r, int dIn, int j0, int j1, float gamma, boolean add,
                   Convert.Sink out) {
        if (direct(out)) {
            MemorySegment prior = add ? out.seg() : null;
            long at = (long) j0 * dIn * 4;
            combineInto(xb, dIn, dIn, v, j0, r, n, gamma, prior, at, out.seg(), at, j1 - j0);
            return;
        }
        s.row = Scratch.grow(s.row, dIn);
        s.bf16Sums = Scratch.grow(s.bf16Sums, dIn);
        float[] row = s.row;
        MemorySegment rowSeg = s.rowSum.ensure(4L * dIn);  // native: see Scratch.rowSum
        for (int j = j0; j < j1; j++) {
            combineInto(xb, dIn, dIn, v, j, r, n, 1f, null, 0, rowSeg, 0, 1);
            MemorySegment.copy(rowSeg, DType.LE_FLOAT, 0, row, 0, dIn);
            long at = (long) j * dIn;
            Convert.storeScaled(row, 0, dIn, gamma, add, out, at, s.bf16Sums);
        }
    }

    /** dB rows o in [o0, o1) of dB [d_out, r], from dy [n, d_out] and u [n, r] (F32). */
    static void dB(Scratch s, Tensor u, int n, int r, Tensor dy, int dOut, int o0, int o1, float gamma, boolean add,
                   Convert.Sink sink) {
        int cols = o1 - o0;
        s.gradBlock = Scratch.grow(s.gradBlock, (long) n * cols);
        float[] yb = s.gradBlock;
        for (int i = 0; i < n; i++) {
            Convert.load(dy, (long) i * dOut + o0, cols, yb, i * cols);
        }
        s.uc = Scratch.grow(s.uc, (long) n * r);
        float[] ub = s.uc;
        Convert.load(u, 0, n * r, ub, 0);
        if (direct(sink)) {
            MemorySegment prior = add ? sink.seg() : null;
            long at = (long) o0 * r * 4;
            combineInto(ub, r, r, yb, 0, cols, n, gamma, prior, at, sink.seg(), at, cols);
            return;
        }
        // one row of dB at a time, built in L1 and stored (scaled, old added) straight from there
        s.row = Scratch.grow(s.row, r);
        s.bf16Sums = Scratch.grow(s.bf16Sums, r);
        float[] out = s.row;
        MemorySegment outSeg = s.rowSum.ensure(4L * r);  // native: see Scratch.rowSum
        for (int oc = 0; oc < cols; oc++) {
            combineInto(ub, r, r, yb, oc, cols, n, 1f, null, 0, outSeg, 0, 1);
            MemorySegment.copy(outSeg, DType.LE_FLOAT, 0, out, 0, r);
            long to = (long) (o0 + oc) * r;
            Convert.storeScaled(out, 0, r, gamma, add, sink, to, s.bf16Sums);
        }
    }

    /**
     * Whether a gradient goes straight from the registers to its segment ({@link #combineInto}): an
     * F32 sink in native memory (its current values, when accumulating, read from the same segment). Otherwise each row's sum is built in fp32 (combineInto with
     * g = 1, exact) and stored by {@link Convert#storeScaled}: the same arithmetic, rounded once to
     * the sink's dtype.
     */
    private static boolean direct(Convert.Sink out) {
        return out.dtype() == DType.F32 && Convert.vectorOk(out.seg());
    }

    /**
     * For each of {@code rows} consecutive rows q of a gradient, count values apart (byte offsets,
     * F32 little-endian, row q at {@code 4q·count} past {@code from} and {@code at}):
     * <pre>
     *   seg[at + 4(q·count + c)] = (Σ_{i&lt;n} src[i·ld + c]·w[wOff + q + i·wStride])·g (+ prior[from + 4(q·count + c)])
     * </pre>
     * for c &lt; count: the sum in fp32, its first term a product and the others fma in increasing
     * i, then the product by g, then the old value added, each rounded to fp32
     * ({@link Convert#storeScaled}'s F32 epilogue). Four vectors of c at a time, so four fma chains
     * run side by side (one chain of n dependent fmas per vector ran at the fma latency); a masked
     * vector for the last count mod L values. Writing straight from the registers saves a decoding
     * step's dA and dB rows a pass through L1 and a store call each.
     *
     * <p>The rows loop inside each helper: dB's rows are short (64 floats at r = 64, one group of
     * four vectors), and one call per row made writing dB (1024 rows at d_out = 1024) take 2.8× as
     * long as writing dA, the same 256 KB in 64 rows (N = 1, one thread, JFR samples: 199 against 71).
     *
     * <p>Four-vector groups, single vectors, the masked tail and scalar code are methods of their own,
     * each small enough for C1. When this was one 938-byte method,
     * C1 sometimes failed to compile its loop for on-stack replacement ("out of virtual registers in
     * linear scan"); a method compiled at tier 2 before that then stayed there, so its vector
     * operations ran in the Vector API's Java fallback for the whole run: in 5 of 18 JMH forks of
     * N = 8, r = 16 started beside a competing process the LoRA step took 3.5–4.3× the base step
     * (1.1–1.3× otherwise). Each helper takes the offsets of row 0, column 0.
     * {@code CompileTiersTest} compiles every method of the backend the way that failed.
     */
    static void combineInto(float[] src, int ld, int count, float[] w, int wOff, int wStride, int n, float g,
                            MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        if (MicroKernel.SCALAR) {
            sumScalar(src, ld, count, 0, w, wOff, wStride, n, g, prior, from, seg, at, rows);
            return;
        }
        int c4 = count / (4 * L) * (4 * L);
        int c1 = count / L * L;
        if (c4 > 0) {
            int paired = rows & ~1;
            if (paired > 0) {
                sum4Pairs(src, ld, count, c4, w, wOff, wStride, n, g, prior, from, seg, at, paired);
            }
            if (paired < rows) {
                long skip = 4L * paired * count;
                sum4(src, ld, count, c4, w, wOff + paired, wStride, n, g, prior, from + skip, seg, at + skip, rows - paired);
            }
        }
        if (c1 > c4) {
            sum1(src, ld, count, c4, c1, w, wOff, wStride, n, g, prior, from, seg, at, rows);
        }
        if (c1 < count && MicroKernel.PLAIN_MEMORY) {
            // the last count − c1 < L values in scalar code: no masked loads and stores (MicroKernel.PLAIN_MEMORY)
            sumScalar(src, ld, count, c1, w, wOff, wStride, n, g, prior, from, seg, at, rows);
        } else if (c1 < count) {
            // the last count − c1 < L values in one masked vector (r = 8 with 16 lanes: every row of dB)
            sumMasked(src, ld, count, c1, w, wOff, wStride, n, g, prior, from, seg, at, rows);
        }
    }

    /** Columns [0, c4) of {@link #combineInto}, c4 a multiple of 4L: four fma chains side by side. */
    private static void sum4(float[] src, int ld, int count, int c4, float[] w, int wOff, int wStride, int n, float g,
                             MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        for (int q = 0; q < rows; q++) {
            float w0 = w[wOff + q];
            long row = 4L * q * count;
            for (int c = 0; c < c4; c += 4 * L) {
                long f = from + row + 4L * c;
                long t = at + row + 4L * c;
                FloatVector a0 = FloatVector.fromArray(S, src, c).mul(w0);
                FloatVector a1 = FloatVector.fromArray(S, src, c + L).mul(w0);
                FloatVector a2 = FloatVector.fromArray(S, src, c + 2 * L).mul(w0);
                FloatVector a3 = FloatVector.fromArray(S, src, c + 3 * L).mul(w0);
                for (int i = 1; i < n; i++) {
                    FloatVector wi = FloatVector.broadcast(S, w[wOff + q + i * wStride]);
                    int k = i * ld + c;
                    FloatVector s0 = FloatVector.fromArray(S, src, k);
                    a0 = FUSED ? s0.fma(wi, a0) : s0.mul(wi).add(a0);
                    FloatVector s1 = FloatVector.fromArray(S, src, k + L);
                    a1 = FUSED ? s1.fma(wi, a1) : s1.mul(wi).add(a1);
                    FloatVector s2 = FloatVector.fromArray(S, src, k + 2 * L);
                    a2 = FUSED ? s2.fma(wi, a2) : s2.mul(wi).add(a2);
                    FloatVector s3 = FloatVector.fromArray(S, src, k + 3 * L);
                    a3 = FUSED ? s3.fma(wi, a3) : s3.mul(wi).add(a3);
                }
                a0 = a0.mul(g);
                a1 = a1.mul(g);
                a2 = a2.mul(g);
                a3 = a3.mul(g);
                if (prior != null) {
                    a0 = a0.add(FloatVector.fromMemorySegment(S, prior, f, LE));
                    a1 = a1.add(FloatVector.fromMemorySegment(S, prior, f + 4L * L, LE));
                    a2 = a2.add(FloatVector.fromMemorySegment(S, prior, f + 8L * L, LE));
                    a3 = a3.add(FloatVector.fromMemorySegment(S, prior, f + 12L * L, LE));
                }
                a0.intoMemorySegment(seg, t, LE);
                a1.intoMemorySegment(seg, t + 4L * L, LE);
                a2.intoMemorySegment(seg, t + 8L * L, LE);
                a3.intoMemorySegment(seg, t + 12L * L, LE);
            }
        }
    }

    /**
     * {@link #sum4} for an even number of rows, two at a time: each src vector loaded once feeds
     * both rows' fma chains, so eight chains run side by side instead of four. With n = 8 rows of
     * X (or U), four chains of eight dependent fmas ran at the fma latency: dA and dB took 24 and
     * 25 µs of worker time at N = 8, d = 1024, r = 64. The arithmetic of each element is
     * {@link #sum4}'s. C2 parses it to about 14 000 nodes (17 000–18 100 with -XX:-UseFMA),
     * near or below its inlining cutoff ({@link GraphSizeTest}): written straight through (the first term apart, both rows'
     * epilogues) it was 35 000, and in some orders of the cpu tests C2 kept virtual calls on
     * boxed vectors in its epilogue: 6.6 KB per dA at n = 1, r = 24 (AdapterRowsAllocationTest,
     * 2026-12-07). This form took 2.95 µs per dA [64, 1024] at n = 1 against 2.65, and 11.0 against
     * 10.3 at n = 8 (one thread, the two alternated in one JVM).
     */
    private static void sum4Pairs(float[] src, int ld, int count, int c4, float[] w, int wOff, int wStride, int n, float g,
                                  MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        long next = 4L * count;
        FloatVector negZero = FloatVector.broadcast(S, -0f);
        for (int q = 0; q < rows; q += 2) {
            long row = 4L * q * count;
            for (int c = 0; c < c4; c += 4 * L) {
                // from −0, so that the first fma (or product, then + −0) is the first term's product
                // exactly, sign of zero included: the first term is not written out separately
                FloatVector a0 = negZero;
                FloatVector a1 = negZero;
                FloatVector a2 = negZero;
                FloatVector a3 = negZero;
                FloatVector b0 = negZero;
                FloatVector b1 = negZero;
                FloatVector b2 = negZero;
                FloatVector b3 = negZero;
                for (int i = 0; i < n; i++) {
                    FloatVector vi = FloatVector.broadcast(S, w[wOff + q + i * wStride]);
                    FloatVector ui = FloatVector.broadcast(S, w[wOff + q + 1 + i * wStride]);
                    int k = i * ld + c;
                    FloatVector s0 = FloatVector.fromArray(S, src, k);
                    FloatVector s1 = FloatVector.fromArray(S, src, k + L);
                    FloatVector s2 = FloatVector.fromArray(S, src, k + 2 * L);
                    FloatVector s3 = FloatVector.fromArray(S, src, k + 3 * L);
                    a0 = FUSED ? s0.fma(vi, a0) : s0.mul(vi).add(a0);
                    a1 = FUSED ? s1.fma(vi, a1) : s1.mul(vi).add(a1);
                    a2 = FUSED ? s2.fma(vi, a2) : s2.mul(vi).add(a2);
                    a3 = FUSED ? s3.fma(vi, a3) : s3.mul(vi).add(a3);
                    b0 = FUSED ? s0.fma(ui, b0) : s0.mul(ui).add(b0);
                    b1 = FUSED ? s1.fma(ui, b1) : s1.mul(ui).add(b1);
                    b2 = FUSED ? s2.fma(ui, b2) : s2.mul(ui).add(b2);
                    b3 = FUSED ? s3.fma(ui, b3) : s3.mul(ui).add(b3);
                }
                // the epilogue once per row of the pair, a rolled loop taking a's vectors, then b's
                // (written out twice, the method was past C2's inlining cutoff)
                long f = from + row + 4L * c;
                long t = at + row + 4L * c;
                for (int half = 0; half < 2; half++, f += next, t += next) {
                    FloatVector x0 = (half == 0 ? a0 : b0).mul(g);
                    FloatVector x1 = (half == 0 ? a1 : b1).mul(g);
                    FloatVector x2 = (half == 0 ? a2 : b2).mul(g);
                    FloatVector x3 = (half == 0 ? a3 : b3).mul(g);
                    if (prior != null) {
                        x0 = x0.add(FloatVector.fromMemorySegment(S, prior, f, LE));
                        x1 = x1.add(FloatVector.fromMemorySegment(S, prior, f + 4L * L, LE));
                        x2 = x2.add(FloatVector.fromMemorySegment(S, prior, f + 8L * L, LE));
                        x3 = x3.add(FloatVector.fromMemorySegment(S, prior, f + 12L * L, LE));
                    }
                    x0.intoMemorySegment(seg, t, LE);
                    x1.intoMemorySegment(seg, t + 4L * L, LE);
                    x2.intoMemorySegment(seg, t + 8L * L, LE);
                    x3.intoMemorySegment(seg, t + 12L * L, LE);
                }
            }
        }
    }

    /** Columns [c0, c1) of {@link #combineInto}, whole vectors. */
    private static void sum1(float[] src, int ld, int count, int c0, int c1, float[] w, int wOff, int wStride, int n,
                             float g, MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        for (int q = 0; q < rows; q++) {
            float w0 = w[wOff + q];
            long row = 4L * q * count;
            for (int c = c0; c < c1; c += L) {
                FloatVector acc = FloatVector.fromArray(S, src, c).mul(w0);
                for (int i = 1; i < n; i++) {
                    FloatVector s = FloatVector.fromArray(S, src, i * ld + c);
                    FloatVector wi = FloatVector.broadcast(S, w[wOff + q + i * wStride]);
                    acc = FUSED ? s.fma(wi, acc) : s.mul(wi).add(acc);
                }
                acc = acc.mul(g);
                if (prior != null) {
                    acc = acc.add(FloatVector.fromMemorySegment(S, prior, from + row + 4L * c, LE));
                }
                acc.intoMemorySegment(seg, at + row + 4L * c, LE);
            }
        }
    }

    /**
     * Columns [c, count), fewer than L, of {@link #combineInto}: one masked vector per row. On the last
     * row of src (U's or D(X)'s rows, sized exactly) and of a gradient that ends at its last row, the
     * masked load, store or old value reaches past the end and takes the JDK's out-of-range path.
     * Routing those rows through a padded copy instead
     * ({@link SegmentEnd}, as AdapterRows does) was tried five ways on 2026-12-06, and each made dB
     * slower in a loop alone (all 1024 rows of dB at N = 1, one thread, 1 M calls per JVM, JVMs
     * alternated): at r = 8 2.0–3.5 µs per call against 1.7–2.3 for this code, at r = 24 4.5–6.5
     * against 3.6–4.1, even with the padded rows in a method of their own; giving U's rows L floats to
     * spare, so that their loads stayed inside, took r = 8 from 1.7–1.8 to 2.1 µs as well. Neither this
     * code nor the variants allocate once compiled (AdapterRowsAllocationTest guards that).
     */
    private static void sumMasked(float[] src, int ld, int count, int c, float[] w, int wOff, int wStride, int n,
                                  float g, MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        VectorMask<Float> m = S.indexInRange(c, count);
        for (int q = 0; q < rows; q++) {
            long row = 4L * q * count;
            FloatVector acc = FloatVector.fromArray(S, src, c, m).mul(w[wOff + q]);
            for (int i = 1; i < n; i++) {
                FloatVector s = FloatVector.fromArray(S, src, i * ld + c, m);
                FloatVector wi = FloatVector.broadcast(S, w[wOff + q + i * wStride]);
                acc = FUSED ? s.fma(wi, acc) : s.mul(wi).add(acc);
            }
            acc = acc.mul(g);
            if (prior != null) {
                acc = acc.add(FloatVector.fromMemorySegment(S, prior, from + row + 4L * c, LE, m));
            }
            acc.intoMemorySegment(seg, at + row + 4L * c, LE, m);
        }
    }

    /**
     * Columns [c0, count) of {@link #combineInto} in scalar code: the scalar tile's whole rows, and the
     * tails of 128-bit tiles (the vector code's operations in its order, so the same bits).
     */
    private static void sumScalar(float[] src, int ld, int count, int c0, float[] w, int wOff, int wStride, int n,
                                  float g, MemorySegment prior, long from, MemorySegment seg, long at, int rows) {
        for (int q = 0; q < rows; q++) {
            long row = 4L * q * count;
            for (int c = c0; c < count; c++) {
                float acc = src[c] * w[wOff + q];
                for (int i = 1; i < n; i++) {
                    acc = Fma.fma(src[i * ld + c], w[wOff + q + i * wStride], acc);
                }
                acc *= g;
                if (prior != null) {
                    acc += prior.get(DType.LE_FLOAT, from + row + 4L * c);
                }
                seg.set(DType.LE_FLOAT, at + row + 4L * c, acc);
            }
        }
    }
}
