package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * One forward call, {@code U = D(X)·Aᵀ} [n, r] and {@code Y = X·Wᵀ + b + γ·U·Bᵀ} [n, d_out]:
 * <pre>
 *   per chunk of rows: X chunk → fp32 (xc, rows ld(d_in) apart); D(X) chunk (dxc, dropout only)
 *     U tile  = D(X)[MR, d_in] · Aᵀ panel                                  (K = d_in)
 *     Y tile  = X[MR, d_in] · Wᵀ panel  +  U[MR, r] · (γBᵀ) panel  + b     (K = d_in, then K = r,
 *               the same accumulators: Y is written once)
 * </pre>
 * With enough rows the work is chunks of rows, each doing U then Y; otherwise (small N,
 * decoding) U is computed per r panel and Y per d_out panel, in one job whose Y units run their W
 * segment, then wait for U's ({@link UnitsDone}) before the adapter term, and a single row (N = 1)
 * runs the one-row kernel. Workers claim chunks or panels as they come ({@link WorkerPool}). The
 * Aᵀ and (γB)ᵀ panels come from the layer's {@link AdapterPanels}; when stale they are packed
 * first, in a job of their own. Up to {@link AdapterRows#forwardMaxRows} rows use no cached
 * adapter panels: U and Y's adapter term are dot products over the rows of A and B
 * ({@link AdapterRows}), or from {@link AdapterRows#FORWARD_TILE_MIN_ROWS} rows tiles over one Aᵀ
 * or (γB)ᵀ panel that each unit packs.
 * With many rows and no dropout the Y tiles read W' = W + γ·B·A instead ({@link MergedWeight},
 * formed in a job after the packing) and have no LoRA segment.
 * Every element's arithmetic is the same whichever worker computes it, so results do not depend on
 * the worker count or on timing.
 */
final class ForwardPass {
    private final CpuFrozenWeight w;
    private final Tensor x;
    private final Convert.Sink y;
    private final Tensor u;
    private final Convert.Sink uOut;
    private final Tensor a;
    private final Tensor b;
    private final float gamma;
    /** Aᵀ panels (transposed panels of A [r, d_in], K = d_in). */
    private final MemorySegment aT;
    /** (γB)ᵀ panels (transposed panels of B [d_out, r] times γ, K = r). */
    private final MemorySegment gbT;
    private final boolean packAT;
    private final boolean packGBT;
    /** (γB)ᵀ panels per packing unit. */
    private static final int GBT_GROUP = 4;
    private final Scratch[] scratch;
    private final int workers;
    private final boolean active;
    private final MaskBits mask;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    /** N = 1: the one-row kernel. */
    private final boolean oneRow;
    /** W'ᵀ panels formed here (the merged route), or null: Y reads Wᵀ and adds the LoRA segment. */
    private MemorySegment merged;
    /** Aᵀ [padRows(d_in), r] for forming W' (merged route only). */
    private final float[] aTRows;
    /** The panels Y's W segment reads: W'ᵀ (merged) or Wᵀ. */
    private MemorySegment wPanels;
    /** Whether Y's tiles add the γU·Bᵀ segment (adapter active, not merged, not {@link #rowAdapter}). */
    private boolean loraY;
    /** N ≤ AdapterRows.forwardMaxRows: U and Y's adapter term from row-major A and B ({@link AdapterRows}), no cached panels. */
    private final boolean rowAdapter;
    /**
     * Row adapter from AdapterRows.FORWARD_TILE_MIN_ROWS rows: U and Y's adapter term on register tiles
     * over an Aᵀ panel each U unit packs and a (γB)ᵀ panel each Y unit packs (the panel route's
     * arithmetic and bits) instead of {@link AdapterRows}' dot products per row and value.
     */
    private final boolean tiles;
    /** A and B as {@link AdapterRows} reads them (row adapter only, else null). */
    private final AdapterRows.Source aSrc;
    private final AdapterRows.Source bSrc;

    /**
     * @param u      U [n, r] F32 output; u, a, b, aT, gbT are null when the adapter is inactive
     * @param aT     Panels.bytes(r, d_in) bytes for the Aᵀ panels, packed here when {@code packAT}; null with
     *               the adapter active and no merged route: U and Y's adapter term from A and B's rows ({@link AdapterRows})
     * @param gbT    Panels.bytes(d_out, r) bytes for the (γB)ᵀ panels, packed here when {@code packGBT}
     * @param merged Panels.bytes(d_out, d_in) bytes for W'ᵀ (the merged route), or null
     * @param aTRows at least padRows(d_in)·r floats when merged, else unused
     */
    ForwardPass(LoraParams p, CpuFrozenWeight w, Tensor x, Tensor y, Tensor u, Tensor a, Tensor b, MemorySegment aT,
                boolean packAT, MemorySegment gbT, boolean packGBT, MemorySegment merged, float[] aTRows, Scratch[] scratch) {
        this.w = w;
        this.x = x;
        this.y = Convert.Sink.of(y);
        this.u = u;
        this.uOut = Convert.Sink.of(u);
        this.a = a;
        this.b = b;
        this.gamma = (float) p.gamma();
        this.aT = aT;
        this.gbT = gbT;
        this.packAT = packAT;
        this.packGBT = packGBT;
        this.scratch = scratch;
        this.workers = scratch.length;
        this.active = p.adapterActive();
        this.mask = MaskBits.of(p);
        this.n = p.n();
        this.dIn = p.dIn();
        this.dOut = p.dOut();
        this.r = p.rank();
        this.oneRow = n == 1;
        this.merged = active ? merged : null;
        this.aTRows = aTRows;
        this.wPanels = this.merged != null ? this.merged : w.forward;
        this.rowAdapter = active && this.merged == null && aT == null;  // no panels given: AdapterRows
        this.loraY = active && this.merged == null && !rowAdapter;
        this.tiles = rowAdapter && n >= AdapterRows.FORWARD_TILE_MIN_ROWS;
        this.aSrc = rowAdapter ? AdapterRows.Source.of(a) : null;
        this.bSrc = rowAdapter ? AdapterRows.Source.of(b) : null;
    }

    void run(WorkerPool pool, boolean parallel) {
        int aUnits = active && packAT ? Panels.panels(r) : 0;
        int bUnits = active && packGBT ? (Panels.panels(dOut) + GBT_GROUP - 1) / GBT_GROUP : 0;
        int tRows = Panels.directBlockRows(dIn);
        int tUnits = merged != null ? (r + tRows - 1) / tRows : 0;
        pool.run(aUnits + bUnits + tUnits, (wk, unit) -> {
            Scratch s = scratch[wk];
            if (unit < aUnits) {
                Panels.packTransposed(a, 1f, aT, unit, unit + 1, s.packRows, s.packStage);
            } else if (unit < aUnits + bUnits) {
                int g = (unit - aUnits) * GBT_GROUP;
                Panels.packTransposed(b, gamma, gbT, g, Math.min(Panels.panels(dOut), g + GBT_GROUP), s.packRows, s.packStage);
            } else {
                int j0 = (unit - aUnits - bUnits) * tRows;
                MergedWeight.transposeA(a, dIn, r, j0, Math.min(r, j0 + tRows), s.block(dIn), s.gatherRows(dIn), aTRows);
            }
        }, parallel);
        if (merged != null) {
            if (!MergedWeight.form(pool, parallel, scratch, w.forward, gbT, aTRows, dIn, r, merged, Panels.panels(dOut))) {
                merged = null;  // W' not finite somewhere: the segment route gives the reference's result
                wPanels = w.forward;
                loraY = active;
            }
        }
        if (Split.byRows(n, workers) && !rowAdapter) {  // the row adapter runs by panels, with any worker count
            int rows = Split.chunkRows(n, workers, dIn, dOut);
            pool.run(Split.chunks(n, rows), (wk, c) -> chunk(scratch[wk], c * rows, Split.chunkEnd(c, rows, n)), parallel);
        } else {
            // U's r panels first, then Y's d_out panels, whose adapter term waits for all of U (one job)
            int uUnits = active ? Panels.panels(r) : 0;
            UnitsDone uDone = new UnitsDone(uUnits);
            pool.run(uUnits + Panels.panels(dOut), (wk, unit) -> {
                Scratch s = scratch[wk];
                if (unit < uUnits) {
                    try {
                        allRows(s, true);
                        if (rowAdapter) {
                            computeURows(s, unit);
                        } else {
                            computeU(s, 0, n, unit, unit + 1, false);
                        }
                    } finally {
                        uDone.done();
                    }
                } else {
                    allRows(s, false);
                    computeY(s, 0, n, unit - uUnits, unit - uUnits + 1, active ? uDone : null);
                }
            }, parallel);
        }
    }

    /** Rows [c0, c1): U, then Y. */
    private void chunk(Scratch s, int c0, int c1) {
        loadX(s, c0, c1);
        s.rowsOf = null;
        if (active) {
            if (loraY) {
                s.uc = Scratch.grow(s.uc, (long) Split.padRows(c1 - c0) * r);
            }
            computeU(s, c0, c1, 0, Panels.panels(r), loraY);  // kept in uc only for Y's LoRA segment
        }
        computeY(s, c0, c1, 0, Panels.panels(dOut), null);
    }

    /**
     * Small N: all n rows of X in this worker's xc, and with {@code masked} (U's units, dropout on)
     * D(X) in dxc, each loaded once per job and worker (Y's units need no D(X)).
     */
    private void allRows(Scratch s, boolean masked) {
        if (s.rowsOf != this) {
            loadX(s, 0, n);
            s.rowsOf = this;
            s.uOf = null;
            s.maskedOf = null;
        }
        if (masked && mask != null && s.maskedOf != this) {
            maskRows(s, 0, n);
            s.maskedOf = this;
        }
    }

    /**
     * Small N, once U is complete: all n rows of U in this worker's uc (γU for {@link AdapterRows#addY};
     * U as it is for the tiles, whose (γB)ᵀ panel holds γ), loaded once per job and worker.
     */
    private void allU(Scratch s) {
        if (s.uOf == this) {
            return;
        }
        s.uc = Scratch.grow(s.uc, (long) Split.padRows(n) * r + MicroKernel.L);  // L to spare: AdapterRows.quad reads whole tail vectors
        MemorySegment.copy(u.readOnlySegment(), DType.LE_FLOAT, 0, s.uc, 0, n * r);  // U is F32 (BackendChecks)
        if (rowAdapter && !tiles) {
            for (int c = 0; c < n * r; c++) {
                s.uc[c] *= gamma;  // γU, the operand of AdapterRows.addY
            }
        }
        s.uOf = this;
    }

    /** xc = X[c0:c1] as fp32, rows ld(d_in) apart, [mcPad rows]. */
    private void loadX(Scratch s, int c0, int c1) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        s.xc = Scratch.grow(s.xc, (long) Split.padRows(mc) * ld);
        for (int i = 0; i < mc; i++) {
            Convert.load(x, (long) (c0 + i) * dIn, dIn, s.xc, i * ld);
        }
    }

    /** dxc = D(X)[c0:c1] from xc (dropout only). */
    private void maskRows(Scratch s, int c0, int c1) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        s.dxc = Scratch.grow(s.dxc, (long) Split.padRows(mc) * ld);
        s.bits = Scratch.grow(s.bits, MaskBits.words(dIn));
        for (int i = 0; i < mc; i++) {
            mask.row(c0 + i, dIn, s.bits, 0);
            mask.apply(s.xc, i * ld, s.bits, 0, dIn, s.dxc, i * ld);
        }
    }

    /**
     * Row adapter: U[:, panel pj's columns] = D(X)·Aᵀ, by dot products over A's rows
     * ({@link AdapterRows#u}), or with {@link #tiles} on register tiles over the Aᵀ panel this unit
     * packs (the panel route's arithmetic).
     */
    private void computeURows(Scratch s, int pj) {
        if (tiles) {
            MemorySegment panel = s.rowPanel.ensure((long) dIn * PANEL_ROW_BYTES);
            Panels.packTransposedPanel(a, 1f, pj, panel, 0, s.packRows, s.packStage);
            uPanel(s, 0, n, pj, panel, 0, false);
            return;
        }
        int j0 = pj * NR;
        int j1 = Math.min(r, j0 + NR);
        float[] src = mask != null ? s.dxc : s.xc;
        s.row = Scratch.grow(s.row, (long) n * NR);
        AdapterRows.u(src, Split.ld(dIn), n, aSrc, dIn, j0, j1, s, s.row);
        for (int i = 0; i < n; i++) {
            Convert.storeTileRow(s.row, i * NR, j1 - j0, uOut, (long) i * r + j0);
        }
    }

    /**
     * U[c0:c1, panels pj0..pj1) = D(X)·Aᵀ into the u tensor and, when {@code keep}, into uc
     * (row-major [mcPad, r]: the A operand of the chunk's LoRA K-segment).
     */
    private void computeU(Scratch s, int c0, int c1, int pj0, int pj1, boolean keep) {
        if (mask != null && keep) {
            maskRows(s, c0, c1);
        }
        for (int pj = pj0; pj < pj1; pj++) {
            uPanel(s, c0, c1, pj, aT, (long) pj * dIn * PANEL_ROW_BYTES, keep);
        }
    }

    /** U[c0:c1, panel pj's columns] from the Aᵀ panel at byte {@code bOff} of {@code panels} (D(X) in xc or dxc). */
    private void uPanel(Scratch s, int c0, int c1, int pj, MemorySegment panels, long bOff, boolean keep) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        float[] src = mask != null ? s.dxc : s.xc;
        float[] tile = s.tile;
        int j0 = pj * NR;
        int jn = Math.min(NR, r - j0);
        for (int it = 0; it < mc; it += MR) {
            if (oneRow) {
                MicroKernel.mmaRow(src, 0, panels, bOff, dIn, tile, 0, false);
            } else {
                MicroKernel.mma(src, it * ld, ld, panels, bOff, dIn, tile, 0);
            }
            int rows = Math.min(MR, mc - it);
            for (int m = 0; m < rows; m++) {
                if (keep) {
                    System.arraycopy(tile, m * NR, s.uc, (it + m) * r + j0, jn);
                }
                Convert.storeTileRow(tile, m * NR, jn, uOut, (long) (c0 + it + m) * r + j0);
            }
        }
    }

    /**
     * Y[c0:c1, panels po0..po1) = X·Wᵀ + U·(γB)ᵀ + b, each register tile written in place in the
     * chunk buffer yc (rows ld(d_out) apart; the LoRA segment accumulates on the W segment's values
     * there), the bias added, then each row stored whole (sequential writes instead of 128-byte
     * pieces of rows 4 KB apart). In place rather than copied from a tile buffer: the LoRA step
     * 1.6–2.5 % faster at d = 1024, r = 64, N = 512 and 2048 with two threads, no change beyond the
     * noise at r = 256 or with one thread (medians of per-round ratios, both alternated in one JVM).
     */
    private void computeY(Scratch s, int c0, int c1, int po0, int po1, UnitsDone uReady) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        int ldy = Split.ld(dOut);
        s.yc = Scratch.grow(s.yc, (long) Split.padRows(mc) * ldy);
        float[] yc = s.yc;
        for (int po = po0; po < po1; po++) {
            long wOff = (long) po * dIn * PANEL_ROW_BYTES;
            if (oneRow) {
                MicroKernel.mmaRow(s.xc, 0, wPanels, wOff, dIn, yc, po * NR, false);
            } else {
                for (int it = 0; it < mc; it += MR) {
                    MicroKernel.mma(s.xc, it * ld, ld, wPanels, wOff, dIn, yc, it * ldy + po * NR, ldy);
                }
            }
            if (loraY && uReady == null) {
                loraSegment(s, mc, po, gbT, (long) po * r * PANEL_ROW_BYTES);  // while the panel's tiles are in L1
            }
        }
        if (uReady != null) {
            uReady.await();  // the W segment above needs no U: it ran while U's units finished
            if (loraY || rowAdapter) {
                allU(s);
            }
            if (loraY) {
                for (int po = po0; po < po1; po++) {
                    loraSegment(s, mc, po, gbT, (long) po * r * PANEL_ROW_BYTES);
                }
            }
            if (tiles) {
                MemorySegment panel = s.rowPanel.ensure((long) r * PANEL_ROW_BYTES);
                for (int po = po0; po < po1; po++) {
                    Panels.packTransposedPanel(b, gamma, po, panel, 0, s.packRows, s.packStage);
                    loraSegment(s, mc, po, panel, 0);
                }
            }
        }
        if (rowAdapter && !tiles) {
            AdapterRows.addY(s.uc, mc, r, bSrc, po0 * NR, Math.min(dOut, po1 * NR), s, yc, ldy);
        }
        if (merged != null) {
            redoNonFinite(s, c0, c1, po0, po1);
        }
        int col0 = po0 * NR;
        if (w.bias() != null) {
            for (int i = 0; i < mc; i++) {
                TileOps.addPadded(yc, i * ldy + col0, w.biasF32, col0, (po1 - po0) * NR);
            }
        }
        int cols = Math.min(dOut, po1 * NR) - col0;
        for (int i = 0; i < mc; i++) {
            Convert.store(yc, i * ldy + col0, cols, y, (long) (c0 + i) * dOut + col0);
        }
    }

    /**
     * Y's LoRA K-segment for panel po: the mc rows of yc += uc[mc, r]·(γB)ᵀ panel (K = r), the panel
     * at byte {@code bOff} of {@code panels}.
     */
    private void loraSegment(Scratch s, int mc, int po, MemorySegment panels, long bOff) {
        int ldy = Split.ld(dOut);
        if (oneRow) {
            MicroKernel.mmaRow(s.uc, 0, panels, bOff, r, s.yc, po * NR, true);
            return;
        }
        for (int it = 0; it < mc; it += MR) {
            MicroKernel.mmaAdd(s.uc, it * r, r, panels, bOff, r, s.yc, it * ldy + po * NR, ldy, s.sum);
        }
    }

    /**
     * Merged route: the rows of [c0, c1) whose U is not finite (X holds ±Inf, or U overflows) get
     * Y[i, panels po0..po1) = X·Wᵀ + U·(γB)ᵀ again, as the segment route computes it, in yc before
     * the bias. W' = W + γB·A folds the adapter in before X meets it, so such a row came out ±Inf
     * where the segment route, the reference and PEFT give NaN (γ·Inf·B: Inf·0, or Infs of both
     * signs), and its kind of result depended on the batch size. Decided per row (U is complete
     * before any Y unit gets here), so not on the chunks, hence not on the worker count. Costs a scan of
     * U's r values per row.
     */
    private void redoNonFinite(Scratch s, int c0, int c1, int po0, int po1) {
        int ld = Split.ld(dIn);
        int ldy = Split.ld(dOut);
        s.row = Scratch.grow(s.row, r);
        float[] uRow = s.row;
        MemorySegment uSeg = u.readOnlySegment();  // U is F32: scanned in place, copied only for a row to redo
        for (int i = c0; i < c1; i++) {
            if (TileOps.allFinite(uSeg, 4L * i * r, r)) {
                continue;
            }
            Convert.load(u, (long) i * r, r, uRow, 0);
            for (int po = po0; po < po1; po++) {
                int cOff = (i - c0) * ldy + po * NR;
                MicroKernel.mmaRow(s.xc, (i - c0) * ld, w.forward, (long) po * dIn * PANEL_ROW_BYTES, dIn, s.yc, cOff, false);
                MicroKernel.mmaRow(uRow, 0, gbT, (long) po * r * PANEL_ROW_BYTES, r, s.yc, cOff, true);
            }
        }
    }
}
