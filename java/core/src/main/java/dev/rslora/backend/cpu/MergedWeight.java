package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * The merged route of one pass, for calls with many rows and no dropout: W' = W + γ·B·A formed
 * in the pass's packed layout, so that the pass's GEMM reads W' and drops its LoRA K-segment.
 * <pre>
 *   forward  : Y  = X·W'ᵀ + b        W'ᵀ panels (over d_out, K = d_in) = Wᵀ panels + Aᵀ·(γB)ᵀ panels   (K = r)
 *   backward : dX = dY·W'            W'  panels (over d_in, K = d_out) = W  panels + B·(γA) panels      (K = r)
 * </pre>
 * Forming one layout costs 2·r·d_in·d_out FLOPs; the segment it replaces, 2·N·r·d_out (forward:
 * γU·Bᵀ) or 2·N·r·d_in (backward: γV·A). U and V are still computed: dA and dB need them. Without
 * dropout D(X) = X, so X·W'ᵀ = X·Wᵀ + γ(X·Aᵀ)·Bᵀ exactly in real arithmetic; in fp32 W' is rounded
 * once per element, as {@code merge} rounds it (the reference comparisons hold it to the same
 * tolerance). Each element of W' is one fixed sequence of operations, whichever worker forms it.
 * The route depends on N, so a row's Y and dX can differ in their last bits between a batch that
 * takes it and one that does not (results still do not depend on the worker count or on timing).
 * A row whose U (forward) or V (backward) is not finite, from ±Inf in X or dY, is computed again on
 * the segment route: W' folds γB·A in before X meets it and turned the segment's NaN (Inf·0, Infs of
 * both signs) into ±Inf ({@code ForwardPass.redoNonFinite}, {@code BackwardPass.redoNonFinite}).
 * The pass's K-segment route stays for dropout, small N ({@link #use}) and weights above {@link #MAX_BYTES},
 * and a pass whose W' came out not finite somewhere (±Inf or NaN in A, B or W, or γB·A past fp32's range)
 * switches to it after forming ({@link #formPanel}).
 */
final class MergedWeight {
    /**
     * The route is taken when N ≥ this many times the formed dimension ({@link #use}). Measured
     * (segment ÷ merged LoRA step time, one JVM alternating, two threads, d = 1024, 2026-12-05):
     * N = 512: 0.88 at r = 256; N = 1024: 0.99 at r = 64 and 256; N = 1536: 1.00 and 1.06;
     * N = 2048: 1.02 and 1.08; N = 8192: 1.07 and 1.15.
     */
    static final int MIN_ROWS_PER_COLUMN = 2;
    /** The largest packed W' formed (a buffer per backend): an lm_head-sized W keeps the segment route. */
    static final long MAX_BYTES = 64L << 20;
    /** "off" disables the route (A/B measurements); anything else, or unset, leaves it on. */
    static final String PROPERTY = "rslora.cpu.mergedWeight";

    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;

    private MergedWeight() {
    }

    /**
     * Whether a pass of {@code p} forms W': the adapter active, no dropout mask, N at least
     * {@link #MIN_ROWS_PER_COLUMN}·{@code formed} (d_in for the forward, d_out for the backward:
     * forming costs 2·r·d_in·d_out, the segment 2·N·r·d_out or 2·N·r·d_in, so the route breaks even
     * near N = formed), W' within {@link #MAX_BYTES}, and the A operand [padRows(formed), r] within
     * a Java array (else the segment route, which needs no such buffer).
     */
    static boolean use(LoraParams p, int formed, boolean enabled) {
        return enabled && p.adapterActive() && !p.dropoutActive() && (long) p.n() >= (long) MIN_ROWS_PER_COLUMN * formed
                && Panels.bytes(p.dOut(), p.dIn()) <= MAX_BYTES && (long) Split.padRows(formed) * p.rank() <= CpuLimits.MAX_ARRAY;
    }

    /** Whether {@link #PROPERTY} leaves the route on (read when a backend is made). */
    static boolean enabledByProperty() {
        return !"off".equals(System.getProperty(PROPERTY, "").strip());
    }

    /**
     * Rows [j0, j1) of A [r, d_in] transposed into {@code aT} (Aᵀ [d_in, r] row-major): the A
     * operand of the forward's W' tiles. {@code tmp} holds (j1 − j0)·d_in floats.
     */
    static void transposeA(Tensor a, int dIn, int r, int j0, int j1, float[] tmp, int[] gatherIndex, float[] aT) {
        Convert.load(a, (long) j0 * dIn, (j1 - j0) * dIn, tmp, 0);
        TileOps.transpose(tmp, 0, dIn, j1 - j0, 0, dIn, aT, j0, r, gatherIndex);
    }

    /**
     * Forms every panel of W' ({@link #formPanel}, one unit per panel) into {@code out}.
     *
     * @return whether all of W' is finite; when not, the pass takes the segment route
     */
    static boolean form(WorkerPool pool, boolean parallel, Scratch[] scratch, MemorySegment base, MemorySegment lora,
                        float[] rows, int depth, int r, MemorySegment out, int panels) {
        boolean[] finite = new boolean[panels];
        pool.run(panels, (wk, p) -> finite[p] = formPanel(base, lora, rows, depth, r, out, p, scratch[wk].tile), parallel);
        for (boolean f : finite) {
            if (!f) {
                return false;
            }
        }
        return true;
    }

    /**
     * Panel {@code panel} of W': for each tile of MR panel rows (K index k of the layout),
     * tile = rows[k, :r]·lora panel (K = r), then out row k = base row k + tile row. Both layouts:
     * panel row k of a packing with K = {@code depth} sits at (panel·depth + k)·NR floats.
     *
     * <p>Returns whether every element of the panel is finite. One that is not (±Inf or NaN in A, B or
     * W, or γB·A or W + γB·A past fp32's range: A = 1e30, B = 1e10) would not give the segment route's
     * result: X·W'ᵀ overflows or turns 0·Inf into NaN where X·Wᵀ + γ(X·Aᵀ)·Bᵀ stays finite (X = 1e-20)
     * or is ±Inf; the pass then takes the segment route ({@code ForwardPass}, {@code BackwardPass}).
     *
     * @param base  the pass's packing of W (w.forward or w.backward)
     * @param lora  the packing with K = r over the same panels ((γB)ᵀ panels or γA panels)
     * @param rows  the A operand [padRows(depth), r]: Aᵀ (forward) or B (backward), fp32
     * @param depth K of the base packing: d_in (forward) or d_out (backward)
     * @return whether all of the panel's elements (padding included, which is 0 + 0) are finite
     */
    static boolean formPanel(MemorySegment base, MemorySegment lora, float[] rows, int depth, int r, MemorySegment out,
                             int panel, float[] tile) {
        long loraOff = (long) panel * r * PANEL_ROW_BYTES;
        boolean finite = true;
        for (int k0 = 0; k0 < depth; k0 += MR) {
            MicroKernel.mma(rows, k0 * r, r, lora, loraOff, r, tile, 0);
            int n = Math.min(MR, depth - k0);
            for (int m = 0; m < n; m++) {
                long at = ((long) panel * depth + k0 + m) * PANEL_ROW_BYTES;
                finite &= addRow(base, at, tile, m * NR, out);
            }
        }
        return finite;
    }

    /** out[at .. at + NR floats) = base[at ..] + tile[off .. off + NR); whether all NR sums are finite. */
    private static boolean addRow(MemorySegment base, long at, float[] tile, int off, MemorySegment out) {
        if (MicroKernel.SCALAR) {
            boolean finite = true;
            for (int c = 0; c < NR; c++) {
                long b = at + 4L * c;
                float v = base.get(ValueLayout.JAVA_FLOAT_UNALIGNED, b) + tile[off + c];
                out.set(ValueLayout.JAVA_FLOAT_UNALIGNED, b, v);
                finite &= Float.isFinite(v);
            }
            return finite;
        }
        // v − v is 0 for a finite v and NaN for ±Inf or NaN: their sum is NaN when any sum was not finite
        FloatVector probe = FloatVector.zero(S);
        for (int c = 0; c < NR; c += L) {
            long b = at + 4L * c;
            FloatVector v = FloatVector.fromMemorySegment(S, base, b, MicroKernel.ORDER).add(FloatVector.fromArray(S, tile, off + c));
            v.intoMemorySegment(out, b, MicroKernel.ORDER);
            probe = probe.add(v.sub(v));
        }
        return probe.reduceLanes(VectorOperators.ADD) == 0f;
    }
}
