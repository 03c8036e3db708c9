package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
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
 *               the same 16 accumulators: Y is written once)
 * </pre>
 * With enough rows each worker takes a row range and does U then Y for each of its chunks, after
 * the workers have packed Aᵀ and (γB)ᵀ together ({@link SharedWork}: no barrier, each panel once);
 * otherwise (small N) U is split by rows and Y by d_out panels, in two jobs.
 */
final class ForwardPass {
    private final CpuFrozenWeight w;
    private final Tensor x;
    private final Tensor y;
    private final Tensor u;
    private final Tensor a;
    private final Tensor b;
    private final float gamma;
    /** Aᵀ panels (transposed panels of A [r, d_in], K = d_in), filled by the workers together. */
    private final MemorySegment aT;
    /** (γB)ᵀ panels (transposed panels of B [d_out, r] times γ, K = r). */
    private final MemorySegment gbT;
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

    /**
     * @param u   U [n, r] F32 output; u, a, b, aT, gbT are null when the adapter is inactive
     * @param aT  buffer of Panels.bytes(r, d_in) bytes for the Aᵀ panels
     * @param gbT buffer of Panels.bytes(d_out, r) bytes for the (γB)ᵀ panels
     */
    ForwardPass(LoraParams p, CpuFrozenWeight w, Tensor x, Tensor y, Tensor u, Tensor a, Tensor b, MemorySegment aT,
                MemorySegment gbT, Scratch[] scratch) {
        this.w = w;
        this.x = x;
        this.y = y;
        this.u = u;
        this.a = a;
        this.b = b;
        this.gamma = (float) p.gamma();
        this.aT = aT;
        this.gbT = gbT;
        this.scratch = scratch;
        this.workers = scratch.length;
        this.active = p.adapterActive();
        this.mask = MaskBits.of(p);
        this.n = p.n();
        this.dIn = p.dIn();
        this.dOut = p.dOut();
        this.r = p.rank();
    }

    void run(WorkerPool pool, boolean parallel) {
        int aUnits = active ? Panels.panels(r) : 0;
        if (Split.byRows(n, workers)) {
            int bUnits = active ? (Panels.panels(dOut) + GBT_GROUP - 1) / GBT_GROUP : 0;
            SharedWork packs = new SharedWork(aUnits + bUnits, (wk, unit) -> {
                if (unit < aUnits) {
                    packAT(scratch[wk], unit);
                } else {
                    int g = (unit - aUnits) * GBT_GROUP;
                    packGBT(scratch[wk], g, Math.min(Panels.panels(dOut), g + GBT_GROUP));
                }
            });
            pool.run(wk -> byRows(wk, packs), parallel);
        } else {
            if (active) {
                SharedWork packs = new SharedWork(aUnits, (wk, unit) -> packAT(scratch[wk], unit));
                pool.run(wk -> uByRows(wk, packs), parallel);
            }
            pool.run(this::yByColumns, parallel);
        }
    }

    /** Worker wk: its part of the panels, then U and Y for each chunk of its rows. */
    private void byRows(int wk, SharedWork packs) {
        Scratch s = scratch[wk];
        int start = Split.rowStart(n, workers, wk);
        int end = Split.rowStart(n, workers, wk + 1);
        if (start == end) {
            return;
        }
        packs.runAndWait(wk);
        for (int c0 = start; c0 < end; c0 += Split.MC) {
            int c1 = Math.min(c0 + Split.MC, end);
            loadX(s, c0, c1);
            if (active) {
                computeU(s, c0, c1);
            }
            computeY(s, c0, c1, 0, Panels.panels(dOut));
        }
    }

    /** Aᵀ panel {@code panel}. */
    private void packAT(Scratch s, int panel) {
        Panels.packTransposed(a, 1f, aT, panel, panel + 1, s.gather, s.gatherIndex);
    }

    /** (γB)ᵀ panels [po0, po1). */
    private void packGBT(Scratch s, int po0, int po1) {
        Panels.packTransposed(b, gamma, gbT, po0, po1, s.gather, s.gatherIndex);
    }

    /** Worker wk: its part of the Aᵀ panels, then U for each chunk of its rows. */
    private void uByRows(int wk, SharedWork packs) {
        Scratch s = scratch[wk];
        int start = Split.rowStart(n, workers, wk);
        int end = Split.rowStart(n, workers, wk + 1);
        if (start == end) {
            return;
        }
        packs.runAndWait(wk);
        for (int c0 = start; c0 < end; c0 += Split.MC) {
            int c1 = Math.min(c0 + Split.MC, end);
            loadX(s, c0, c1);
            computeU(s, c0, c1);
        }
    }

    /** Worker wk: its own (γB)ᵀ panels, then Y for its share of the d_out panels, all rows. */
    private void yByColumns(int wk) {
        int panels = Panels.panels(dOut);
        int po0 = Split.part(panels, workers, wk);
        int po1 = Split.part(panels, workers, wk + 1);
        if (po0 == po1) {
            return;
        }
        Scratch s = scratch[wk];
        if (active) {
            packGBT(s, po0, po1);
        }
        for (int c0 = 0; c0 < n; c0 += Split.MC) {
            int c1 = Math.min(c0 + Split.MC, n);
            loadX(s, c0, c1);
            if (active) {
                int mc = c1 - c0;
                s.uc = Scratch.grow(s.uc, (long) Split.padRows(mc) * r);
                Convert.load(u, (long) c0 * r, mc * r, s.uc, 0);
            }
            computeY(s, c0, c1, po0, po1);
        }
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

    /** U[c0:c1] = D(X)·Aᵀ into the u tensor and uc (row-major [mcPad, r]). */
    private void computeU(Scratch s, int c0, int c1) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        float[] src = s.xc;
        if (mask != null) {
            s.dxc = Scratch.grow(s.dxc, (long) Split.padRows(mc) * ld);
            s.bits = Scratch.grow(s.bits, MaskBits.words(dIn));
            for (int i = 0; i < mc; i++) {
                mask.row(c0 + i, dIn, s.bits, 0);
                mask.apply(s.xc, i * ld, s.bits, 0, dIn, s.dxc, i * ld);
            }
            src = s.dxc;
        }
        s.uc = Scratch.grow(s.uc, (long) Split.padRows(mc) * r);
        float[] tile = s.tile;
        for (int pj = 0; pj < Panels.panels(r); pj++) {
            long bOff = (long) pj * dIn * PANEL_ROW_BYTES;
            int j0 = pj * NR;
            int jn = Math.min(NR, r - j0);
            for (int it = 0; it < mc; it += MR) {
                MicroKernel.mma(src, it * ld, ld, aT, bOff, dIn, tile, 0, false);
                int rows = Math.min(MR, mc - it);
                for (int m = 0; m < rows; m++) {
                    System.arraycopy(tile, m * NR, s.uc, (it + m) * r + j0, jn);
                    Convert.storeTileRow(tile, m * NR, jn, u, (long) (c0 + it + m) * r + j0);
                }
            }
        }
    }

    /**
     * Y[c0:c1, panels po0..po1) = X·Wᵀ + U·(γB)ᵀ + b: tiles go to the chunk buffer yc (rows
     * ld(d_out) apart), then each row is stored whole (sequential writes instead of 128-byte
     * pieces of rows 4 KB apart).
     */
    private void computeY(Scratch s, int c0, int c1, int po0, int po1) {
        int mc = c1 - c0;
        int ld = Split.ld(dIn);
        int ldy = Split.ld(dOut);
        s.yc = Scratch.grow(s.yc, (long) Split.padRows(mc) * ldy);
        float[] yc = s.yc;
        float[] tile = s.tile;
        boolean bias = w.bias() != null;
        for (int po = po0; po < po1; po++) {
            long wOff = (long) po * dIn * PANEL_ROW_BYTES;
            long bOff = (long) po * r * PANEL_ROW_BYTES;
            int o0 = po * NR;
            for (int it = 0; it < mc; it += MR) {
                MicroKernel.mma(s.xc, it * ld, ld, w.forward, wOff, dIn, tile, 0, false);
                if (active) {
                    MicroKernel.mma(s.uc, it * r, r, gbT, bOff, r, tile, 0, true);
                }
                int rows = Math.min(MR, mc - it);
                for (int m = 0; m < rows; m++) {
                    if (bias) {
                        TileOps.addPadded(tile, m * NR, w.biasF32, o0, NR);
                    }
                    System.arraycopy(tile, m * NR, yc, (it + m) * ldy + o0, NR);
                }
            }
        }
        int col0 = po0 * NR;
        int cols = Math.min(dOut, po1 * NR) - col0;
        for (int i = 0; i < mc; i++) {
            Convert.store(yc, i * ldy + col0, cols, y, (long) (c0 + i) * dOut + col0);
        }
    }
}
