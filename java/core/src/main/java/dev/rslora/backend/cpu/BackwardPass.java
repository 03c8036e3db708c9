package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * One backward call (W frozen); with enough rows, in two jobs:
 * <pre>
 *   job 1, per chunk of rows (dY chunk converted once into dyc [mc, ld(d_out)]):
 *     V tile  = dY[MR, d_out] · B panel                            (K = d_out) → V [n, r] and Vᵀ [r, n]
 *     Uᵀ rows of the chunk; keep bits of the chunk (dropout)       → Uᵀ [r, n], bits [n, words(d_in)]
 *     dX tile = mask ⊙ (V[MR, r] · (γA) panel) + dY[MR, d_out] · W panel   (K = r, then K = d_out,
 *               the same accumulators: dX is written once)
 *   job 2, per group of columns ({@link GradGemm}, K = all n rows):
 *     dA  [r, d_in]  (=|+=) γ·Vᵀ·D(X)      a group of d_in panels
 *     dB  [d_out, r] (=|+=) γ·(Uᵀ·dY)ᵀ     a group of d_out panels
 * </pre>
 * With few rows (small N, decoding) there is one job: V (and Uᵀ) per r panel first, then dX per
 * group of d_in panels, dA and dB, which wait for V ({@link UnitsDone}) instead of a second job; a
 * single row (N = 1) runs the one-row kernel, and up to {@link RowGrads#MAX_ROWS} rows make dA and
 * dB as outer products ({@link RowGrads}: no Vᵀ, Uᵀ), dB's groups right after V (they need neither
 * V nor Uᵀ), dA in blocks of whole rows, and the dX groups spread among them ({@link #unitOrder}).
 * Workers claim chunks, panels and column groups as they come ({@link WorkerPool}). The B and γA
 * panels come from the layer's {@link AdapterPanels}; when stale they are packed first, in a job of
 * their own. Up to {@link RowGrads#MAX_ROWS} rows use no adapter panels: V and dX's adapter term
 * are axpys over the rows of B and A, or tiles over a panel each unit packs ({@link AdapterRows}). With many rows and no dropout the dX
 * tiles read W' = W + γ·B·A instead ({@link MergedWeight}, formed in a job after the packing) and
 * have no LoRA segment. Every
 * element's arithmetic is the same whichever worker computes it, so results do not depend on the
 * worker count or on timing.
 */
final class BackwardPass {
    private final CpuFrozenWeight w;
    private final Tensor x;
    private final Tensor u;
    private final Tensor dy;
    private final Convert.Sink dx;
    private final Convert.Sink gradAOut;
    private final Convert.Sink gradBOut;
    private final Tensor a;
    private final Tensor b;
    private final float gamma;
    private final boolean accumulate;
    /** B panels (direct panels of B [d_out, r], K = d_out). */
    private final MemorySegment bP;
    /** γA panels (direct panels of γ·A [r, d_in], K = r). */
    private final MemorySegment gaP;
    private final boolean packBP;
    private final boolean packGAP;
    /** Rows of B, and of γA, per packing unit. */
    private static final int B_PACK_ROWS = 64;
    private static final int A_PACK_ROWS = 16;
    private final Scratch[] scratch;
    private final int workers;
    private final boolean active;
    private final MaskBits mask;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    /** Words per row of keep bits, covering d_in rounded up to whole panels. */
    private final int words;
    private final boolean byRows;
    private final boolean oneRow;
    /** N ≤ RowGrads.MAX_ROWS: dA and dB as outer products ({@link RowGrads}), no Vᵀ or Uᵀ. */
    private final boolean rowGrads;
    private final Shared shared;
    /** W' panels formed here (the merged route), or null: dX reads W and adds the LoRA segment. */
    private MemorySegment merged;
    /** B [padRows(d_out), r] as fp32 for forming W' (merged route only). */
    private final float[] bRows;
    /** The panels dX's W segment reads: W' (merged) or W. */
    private MemorySegment wPanels;
    /** N ≤ RowGrads.MAX_ROWS: V and dX's adapter term from row-major B and A ({@link AdapterRows}), no kept panels. */
    private final boolean rowAdapter;
    /** A and B as {@link AdapterRows} reads them (row adapter only, else null). */
    private final AdapterRows.Source aSrc;
    private final AdapterRows.Source bSrc;
    /** Whether dX's tiles start with the γD'(V·A) segment (adapter active, not merged, not {@link #rowAdapter}). */
    private boolean loraDx;

    /** Buffers the workers share within one call (owned by the backend, grown on demand). */
    static final class Shared {
        /** V [padRows(n), r] row-major (the A operand of dX's LoRA K-segment). */
        float[] v = new float[0];
        /** Vᵀ [padRows(r), n] (the left operand of dA). */
        float[] vT = new float[0];
        /** Uᵀ [padRows(r), n] (the left operand of dBᵀ). */
        float[] uT = new float[0];
        /** Keep bits of every row [padRows(n), words(d_in)] (row path with dropout). */
        long[] bits = new long[0];
    }

    /**
     * @param bP  Panels.bytes(r, d_out) bytes for the B panels, packed here when {@code packBP}; null with the
     *            adapter active and no merged route: V and dX's adapter term from B and A's rows ({@link AdapterRows})
     * @param gaP Panels.bytes(d_in, r) bytes for the γA panels, packed here when {@code packGAP};
     *            x, a, b, u, gradA, gradB, bP, gaP are null when the adapter is inactive
     * @param merged Panels.bytes(d_in, d_out) bytes for W' (the merged route; dx and gaP not null), or null
     * @param bRows  at least padRows(d_out)·r floats when merged, else unused
     */
    BackwardPass(LoraParams p, CpuFrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy, Tensor dx,
                 Tensor gradA, Tensor gradB, MemorySegment bP, boolean packBP, MemorySegment gaP, boolean packGAP,
                 MemorySegment merged, float[] bRows, Scratch[] scratch, Shared shared) {
        this.w = w;
        this.x = x;
        this.u = u;
        this.dy = dy;
        this.dx = Convert.Sink.of(dx);
        this.gradAOut = Convert.Sink.of(gradA);
        this.gradBOut = Convert.Sink.of(gradB);
        this.a = a;
        this.b = b;
        this.gamma = (float) p.gamma();
        this.accumulate = p.gradMode() == GradMode.ACCUMULATE;
        this.bP = bP;
        this.gaP = gaP;
        this.packBP = packBP;
        this.packGAP = packGAP;
        this.scratch = scratch;
        this.workers = scratch.length;
        this.active = p.adapterActive();
        this.mask = active ? MaskBits.of(p) : null;
        this.n = p.n();
        this.dIn = p.dIn();
        this.dOut = p.dOut();
        this.r = p.rank();
        // Row stride of the keep bits: whole panels (a 12-wide tile's last panel can reach past words(d_in)).
        this.words = MaskBits.words(Panels.panels(dIn) * NR);
        this.oneRow = n == 1;
        this.rowGrads = n <= RowGrads.MAX_ROWS;
        this.shared = shared;
        this.merged = active && dx != null ? merged : null;
        this.bRows = bRows;
        this.wPanels = this.merged != null ? this.merged : w.backward;
        this.rowAdapter = active && this.merged == null && bP == null;  // no panels given: AdapterRows
        this.loraDx = active && this.merged == null && !rowAdapter;
        this.aSrc = rowAdapter ? AdapterRows.Source.of(a) : null;
        this.bSrc = rowAdapter ? AdapterRows.Source.of(b) : null;
        this.byRows = Split.byRows(n, workers) && !rowAdapter;  // the row adapter runs by panels, with any worker count
        if (active) {
            int rPad = Split.padRows(r);
            shared.v = Scratch.grow(shared.v, (long) Split.padRows(n) * r + MicroKernel.L);  // L to spare: rowTimes' masked stores
            shared.vT = Scratch.grow(shared.vT, (long) rPad * n);
            shared.uT = Scratch.grow(shared.uT, (long) rPad * n);
            if (mask != null && byRows) {
                shared.bits = Scratch.grow(shared.bits, (long) Split.padRows(n) * words);
            }
        }
    }

    void run(WorkerPool pool, boolean parallel) {
        int bUnits = active && packBP ? (dOut + B_PACK_ROWS - 1) / B_PACK_ROWS : 0;
        int aUnits = active && packGAP ? (r + A_PACK_ROWS - 1) / A_PACK_ROWS : 0;
        int rowUnits = merged != null ? (dOut + B_PACK_ROWS - 1) / B_PACK_ROWS : 0;
        pool.run(bUnits + aUnits + rowUnits, (wk, unit) -> {
            Scratch s = scratch[wk];
            if (unit < bUnits) {
                int o0 = unit * B_PACK_ROWS;
                Panels.packDirect(b, 1f, bP, o0, Math.min(dOut, o0 + B_PACK_ROWS), s.block(r));
            } else if (unit < bUnits + aUnits) {
                int j0 = (unit - bUnits) * A_PACK_ROWS;
                Panels.packDirect(a, gamma, gaP, j0, Math.min(r, j0 + A_PACK_ROWS), s.block(dIn));
            } else {
                int o0 = (unit - bUnits - aUnits) * B_PACK_ROWS;
                Convert.load(b, (long) o0 * r, (Math.min(dOut, o0 + B_PACK_ROWS) - o0) * r, bRows, o0 * r);
            }
        }, parallel);
        if (merged != null) {
            if (!MergedWeight.form(pool, parallel, scratch, w.backward, gaP, bRows, dOut, r, merged, Panels.panels(dIn))) {
                merged = null;  // W' not finite somewhere: the segment route gives the reference's result
                wPanels = w.backward;
                loraDx = active;
            }
        }
        if (byRows) {
            int rows = Split.chunkRows(n, workers, dIn, dOut);
            pool.run(Split.chunks(n, rows), (wk, c) -> chunk(scratch[wk], c * rows, Split.chunkEnd(c, rows, n)), parallel);
        }
        int groupPanels = Split.NC / NR;
        int inGroups = (Panels.panels(dIn) + groupPanels - 1) / groupPanels;
        int outGroups = (Panels.panels(dOut) + groupPanels - 1) / groupPanels;
        // small N: V (and Uᵀ) by r panels come first in the same job; up to RowGrads.MAX_ROWS rows dB
        // needs neither, so its groups follow them and the units after those wait for V
        int vUnits = active && !byRows ? Panels.panels(r) : 0;
        int bPanels = RowGrads.rowsPerUnit(Panels.panels(dOut), (long) NR * r, workers);
        int earlyB = vUnits > 0 && rowGrads ? (Panels.panels(dOut) + bPanels - 1) / bPanels : 0;
        int first = vUnits + earlyB;
        // then: column groups of dX (small N); dA (column groups, or row blocks up to RowGrads.MAX_ROWS
        // rows); dB's column groups, unless they ran among the first
        int dxUnits = !byRows && dx != null ? inGroups : 0;
        int aRows = RowGrads.rowsPerUnit(r, dIn, workers);
        int aGrad = !active ? 0 : rowGrads ? (r + aRows - 1) / aRows : inGroups;
        int bGrad = active && earlyB == 0 ? outGroups : 0;
        UnitsDone ready = new UnitsDone(vUnits);
        int[] order = unitOrder(vUnits, first, dxUnits, first + dxUnits + aGrad + bGrad, rowGrads && vUnits > 0);
        pool.run(order.length, (wk, claimed) -> {
            int unit = order[claimed];
            Scratch s = scratch[wk];
            if (unit < vUnits) {
                try {
                    allRows(s);
                    if (rowAdapter) {
                        AdapterRows.v(s.dyc, Split.ld(dOut), n, bSrc, dOut, r, unit * NR, Math.min(r, unit * NR + NR), s, shared.v);
                    } else {
                        computeV(s, 0, n, unit, unit + 1);
                    }
                    if (!rowGrads) {
                        transposeU(s, 0, n, unit * NR, Math.min(r, unit * NR + NR));
                    }
                } finally {
                    ready.done();
                }
            } else if (unit < first) {
                rowGradB(s, unit - vUnits, bPanels);
            } else {
                ready.await();
                int u = unit - first;
                if (u < dxUnits) {
                    int pk0 = u * groupPanels;
                    int pk1 = Math.min(Panels.panels(dIn), pk0 + groupPanels);
                    allRows(s);
                    computeDx(s, 0, n, pk0, pk1, groupBits(s, pk0, pk1));
                } else if (u < dxUnits + aGrad) {
                    gradA(s, u - dxUnits, aRows, groupPanels);
                } else if (rowGrads) {
                    rowGradB(s, u - dxUnits - aGrad, groupPanels);
                } else {
                    int po0 = (u - dxUnits - aGrad) * groupPanels;
                    int po1 = Math.min(Panels.panels(dOut), po0 + groupPanels);
                    GradGemm.run(s, shared.uT, n, r, dy, dOut, null, null, 0, po0, po1, gamma, accumulate,
                            gradBOut, true);
                }
            }
        }, parallel);
    }

    /**
     * The order in which units are claimed: V's first, then the rest as numbered, except with
     * outer-product gradients (up to RowGrads.MAX_ROWS rows), where the dX units [first, first + dxUnits)
     * are spread evenly among the units that write dB and dA (a dX unit first, then writers in
     * proportion). Writing the gradients is bound by the memory's write bandwidth: two workers writing
     * at once each ran at half speed (N = 1, d = 1024, r = 64: dB 13 µs of worker time, 7 of wall,
     * when all its units came together), while one writing beside another's dX, which reads W, overlaps.
     */
    static int[] unitOrder(int vUnits, int first, int dxUnits, int total, boolean spread) {
        int[] order = new int[total];
        for (int i = 0; i < total; i++) {
            order[i] = i;
        }
        if (!spread || dxUnits == 0) {
            return order;
        }
        int writers = total - vUnits - dxUnits;
        int k = vUnits;
        int w = 0;
        int x = 0;
        while (k < total) {
            // a writer while the writers taken so far are a smaller fraction of all writers than the dX units taken
            boolean writer = x == dxUnits || (w < writers && (long) w * dxUnits < (long) x * writers);
            if (writer) {
                // writers: dB's groups [vUnits, first), then dA's (and any others) after the dX units
                order[k++] = w < first - vUnits ? vUnits + w : first + dxUnits + (w - (first - vUnits));
                w++;
            } else {
                order[k++] = first + x++;
            }
        }
        return order;
    }

    /** dA's unit {@code unit}: a block of aRows rows (up to RowGrads.MAX_ROWS rows of X), else a column group. */
    private void gradA(Scratch s, int unit, int aRows, int groupPanels) {
        if (rowGrads) {
            int j0 = unit * aRows;
            RowGrads.dA(s, maskedX(s), shared.v, n, r, dIn, j0, Math.min(r, j0 + aRows), gamma, accumulate,
                    gradAOut);
        } else {
            int pk0 = unit * groupPanels;
            int pk1 = Math.min(Panels.panels(dIn), pk0 + groupPanels);
            long[] bits = byRows ? shared.bits : groupBits(s, pk0, pk1);
            GradGemm.run(s, shared.vT, n, r, x, dIn, mask, bits, words, pk0, pk1, gamma, accumulate,
                    gradAOut, false);
        }
    }

    /** dB rows of block {@code block} ({@code panels} panels of d_out each) as outer products ({@link RowGrads#dB}). */
    private void rowGradB(Scratch s, int block, int panels) {
        int po0 = block * panels;
        int po1 = Math.min(Panels.panels(dOut), po0 + panels);
        RowGrads.dB(s, u, n, r, dy, dOut, po0 * NR, Math.min(dOut, po1 * NR), gamma, accumulate, gradBOut);
    }

    /** Job 1, row path: rows [c0, c1): V, Vᵀ, Uᵀ, keep bits, then dX. */
    private void chunk(Scratch s, int c0, int c1) {
        loadDy(s, c0, c1);
        s.rowsOf = null;
        if (active) {
            computeV(s, c0, c1, 0, Panels.panels(r));
            if (!rowGrads) {
                transposeU(s, c0, c1, 0, r);
            }
            if (mask != null) {
                for (int i = c0; i < c1; i++) {
                    mask.row(i, dIn, shared.bits, i * words);
                }
            }
        }
        if (dx != null) {
            computeDx(s, c0, c1, 0, Panels.panels(dIn), shared.bits);
        }
    }

    /** Small N: all n rows of dY in this worker's dyc, loaded once per call and worker. */
    private void allRows(Scratch s) {
        if (s.rowsOf != this) {
            loadDy(s, 0, n);
            s.rowsOf = this;
        }
    }

    /**
     * Up to RowGrads.MAX_ROWS rows: D(X) [n, d_in] as fp32 rows d_in apart in this worker's xRows,
     * converted (and masked) once per call and worker, whichever dA units the worker runs.
     */
    private float[] maskedX(Scratch s) {
        if (s.xRowsOf != this) {
            long[] bits = byRows ? shared.bits : groupBits(s, 0, Panels.panels(dIn));
            s.xRows = Scratch.grow(s.xRows, (long) n * dIn);
            for (int i = 0; i < n; i++) {
                Convert.load(x, (long) i * dIn, dIn, s.xRows, i * dIn);
                if (mask != null) {
                    mask.apply(s.xRows, i * dIn, bits, i * words, 0, dIn, s.xRows, i * dIn);
                }
            }
            s.xRowsOf = this;
        }
        return s.xRows;
    }

    /** Small N: keep bits of every row for the d_in columns of panels [pk0, pk1) into s.bits (null without dropout). */
    private long[] groupBits(Scratch s, int pk0, int pk1) {
        if (mask == null) {
            return null;
        }
        int word0 = (int) ((long) pk0 * NR / 64);
        int word1 = (int) (((long) pk1 * NR + 63) / 64);
        s.bits = Scratch.grow(s.bits, (long) Split.padRows(n) * words);
        for (int i = 0; i < n; i++) {
            mask.row(i, word0, word1, dIn, s.bits, i * words);
        }
        return s.bits;
    }

    /** dyc = dY[c0:c1] as fp32, rows ld(d_out) apart, [mcPad rows]. */
    private void loadDy(Scratch s, int c0, int c1) {
        int mc = c1 - c0;
        int ld = Split.ld(dOut);
        s.dyc = Scratch.grow(s.dyc, (long) Split.padRows(mc) * ld);
        for (int i = 0; i < mc; i++) {
            Convert.load(dy, (long) (c0 + i) * dOut, dOut, s.dyc, i * ld);
        }
    }

    /** V[c0:c1, panels pj0..pj1) = dY·B into V (row-major) and, unless N ≤ RowGrads.MAX_ROWS, Vᵀ. */
    private void computeV(Scratch s, int c0, int c1, int pj0, int pj1) {
        int mc = c1 - c0;
        int ldy = Split.ld(dOut);
        float[] tile = s.tile;
        float[] v = shared.v;
        for (int pj = pj0; pj < pj1; pj++) {
            long bOff = (long) pj * dOut * PANEL_ROW_BYTES;
            int j0 = pj * NR;
            int jn = Math.min(NR, r - j0);
            for (int it = 0; it < mc; it += MR) {
                if (oneRow) {
                    MicroKernel.mmaRow(s.dyc, 0, bP, bOff, dOut, tile, 0, false);
                } else {
                    MicroKernel.mma(s.dyc, it * ldy, ldy, bP, bOff, dOut, tile, 0);
                }
                int rows = Math.min(MR, mc - it);
                for (int m = 0; m < rows; m++) {
                    System.arraycopy(tile, m * NR, v, (c0 + it + m) * r + j0, jn);
                }
            }
        }
        if (!rowGrads) {
            TileOps.transpose(v, c0 * r, r, mc, pj0 * NR, Math.min(r, pj1 * NR), shared.vT, c0, n, s.gatherRows(r));
        }
    }

    /** Uᵀ[j0:j1, c0:c1] = U[c0:c1, j0:j1]ᵀ. */
    private void transposeU(Scratch s, int c0, int c1, int j0, int j1) {
        int mc = c1 - c0;
        s.row = Scratch.grow(s.row, (long) mc * r);
        Convert.load(u, (long) c0 * r, mc * r, s.row, 0);
        TileOps.transpose(s.row, 0, r, mc, j0, j1, shared.uT, c0, n, s.gatherRows(r));
    }

    /**
     * dX[c0:c1, panels pk0..pk1) = mask ⊙ (V·γA) + dY·W, V from the shared V, keep bits of row i
     * at bits[i·words]: each register tile written in place in the chunk buffer yc (rows ld(d_in)
     * apart; the LoRA segment and its mask first, then the W segment accumulating on them there),
     * then each row stored whole. The adapter's row form first, then {@link #dxTiles}: two C2 compile
     * units (dxTiles is too large for C2 to inline), so that neither parses past C2's inlining
     * cutoff with AdapterRows.dx, the mask, the W segment and the dtype's store inlined in one
     * (18 700 nodes on the 128-bit tile, where C2 delayed the bf16 store's vector calls:
     * GraphSizeTest).
     */
    private void computeDx(Scratch s, int c0, int c1, int pk0, int pk1, long[] bits) {
        int ldx = Split.ld(dIn);
        s.yc = Scratch.grow(s.yc, (long) Split.padRows(c1 - c0) * ldx);
        if (rowAdapter) {
            AdapterRows.dx(shared.v, c1 - c0, r, aSrc, dIn, gamma, pk0 * NR, pk1 * NR, s, s.yc, ldx);
        }
        dxTiles(s, c0, c1, pk0, pk1, bits);
    }

    /** {@link #computeDx} after the adapter's row form: the register tiles, the redone rows, the store. */
    private void dxTiles(Scratch s, int c0, int c1, int pk0, int pk1, long[] bits) {
        int mc = c1 - c0;
        int ldy = Split.ld(dOut);
        int ldx = Split.ld(dIn);
        float[] out = s.yc;
        float[] v = shared.v;
        boolean onLora = loraDx || rowAdapter;  // the W segment accumulates on the adapter term
        int rows = oneRow ? 1 : MR;  // a tile's rows, or the one row of mmaRow
        for (int pk = pk0; pk < pk1; pk++) {
            long wOff = (long) pk * dOut * PANEL_ROW_BYTES;
            long aOff = (long) pk * r * PANEL_ROW_BYTES;
            int k0 = pk * NR;
            for (int it = 0; it < mc; it += rows) {
                int cOff = it * ldx + k0;
                if (loraDx) {
                    if (oneRow) {
                        MicroKernel.mmaRow(v, 0, gaP, aOff, r, out, k0, false);
                    } else {
                        MicroKernel.mma(v, (c0 + it) * r, r, gaP, aOff, r, out, cOff, ldx);
                    }
                }
                if (onLora && mask != null) {  // one call site: C2 inlines it once (GraphSizeTest)
                    for (int m = 0; m < rows; m++) {
                        mask.applyToTileRow(out, cOff + m * ldx, bits, (c0 + it + m) * words, k0);
                    }
                }
                if (oneRow) {
                    MicroKernel.mmaRow(s.dyc, 0, wPanels, wOff, dOut, out, k0, onLora);
                } else if (onLora) {
                    MicroKernel.mmaAdd(s.dyc, it * ldy, ldy, wPanels, wOff, dOut, out, cOff, ldx, s.sum);
                } else {
                    MicroKernel.mma(s.dyc, it * ldy, ldy, wPanels, wOff, dOut, out, cOff, ldx);
                }
            }
        }
        if (merged != null) {
            redoNonFinite(s, c0, c1, pk0, pk1);
        }
        int col0 = pk0 * NR;
        int cols = Math.min(dIn, pk1 * NR) - col0;
        for (int i = 0; i < mc; i++) {
            Convert.store(out, i * ldx + col0, cols, dx, (long) (c0 + i) * dIn + col0);
        }
    }

    /**
     * Merged route: the rows of [c0, c1) whose V is not finite (dY holds ±Inf, or V overflows) get
     * dX[i, panels pk0..pk1) = V·γA + dY·W again, as the segment route computes it (no mask: the
     * route runs without dropout). W' = W + γB·A gave ±Inf there where the segment route, the
     * reference and PEFT give NaN; see ForwardPass.redoNonFinite. V is complete before any dX unit
     * runs, so the decision is per row, not per chunk or worker count.
     */
    private void redoNonFinite(Scratch s, int c0, int c1, int pk0, int pk1) {
        int ldy = Split.ld(dOut);
        int ldx = Split.ld(dIn);
        float[] v = shared.v;
        for (int i = c0; i < c1; i++) {
            if (TileOps.allFinite(v, i * r, r)) {
                continue;
            }
            for (int pk = pk0; pk < pk1; pk++) {
                int cOff = (i - c0) * ldx + pk * NR;
                MicroKernel.mmaRow(v, i * r, gaP, (long) pk * r * PANEL_ROW_BYTES, r, s.yc, cOff, false);
                MicroKernel.mmaRow(s.dyc, (i - c0) * ldy, w.backward, (long) pk * dOut * PANEL_ROW_BYTES, dOut, s.yc, cOff, true);
            }
        }
    }
}
