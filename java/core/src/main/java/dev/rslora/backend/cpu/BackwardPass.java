package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.Tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicInteger;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * One backward call (W frozen):
 * <pre>
 *   per chunk of rows (dY chunk converted once into dyc [mc, d_out] and its panels):
 *     V tile    = dY[MR, d_out] · B panel                         (K = d_out)  → vc [mc, r], vt [r, mc]
 *     dBᵀ part += Uᵀ[MR of r, mc] · dY panel                      (K = mc, per-worker partial)
 *     dA  part += Vᵀ[MR of r, mc] · D(X) panel                    (K = mc, per-worker partial; the
 *                 keep bits of the chunk are generated once here and reused by dX)
 *     dX tile   = mask ⊙ (V[MR, r] · (γA) panel) + dY[MR, d_out] · W panel   (K = r, then K = d_out,
 *                 the same accumulators; dX is written once)
 *   reduction:  dA = γ·Σ_w partA[w] (+ old),  dB = γ·(Σ_w partB[w])ᵀ (+ old), w in increasing order,
 *               in fixed blocks claimed by the workers once all have arrived (see {@link #arrive})
 * </pre>
 * Rows are split over workers statically ({@link Split}); the workers pack the B and γA panels
 * together first ({@link SharedWork}). With few rows the LoRA part is split by rows and dX by d_in
 * panels, in two jobs.
 */
final class BackwardPass {
    private final LoraParams p;
    private final CpuFrozenWeight w;
    private final Tensor x;
    private final Tensor u;
    private final Tensor dy;
    private final Tensor dx;
    private final Tensor gradA;
    private final Tensor gradB;
    private final Tensor a;
    private final Tensor b;
    private final float gamma;
    /** B panels (direct panels of B [d_out, r], K = d_out), filled by the workers together. */
    private final MemorySegment bP;
    /** γA panels (direct panels of γ·A [r, d_in], K = r). */
    private final MemorySegment gaP;
    /** Rows of B, and of γA, per packing unit. */
    private static final int B_PACK_ROWS = 64;
    private static final int A_PACK_ROWS = 16;
    private final AtomicInteger arrived = new AtomicInteger();
    private final AtomicInteger nextBlock = new AtomicInteger();
    private volatile boolean allArrived;
    private volatile boolean failed;
    /** Whether the workers run concurrently (else one after another on the caller: never wait). */
    private boolean concurrent;
    /** Reduction blocks: rows of dA in groups of A_BLOCK, then rows of dB in groups of B_BLOCK. */
    private static final int A_BLOCK = 16;
    private static final int B_BLOCK = 64;
    private final Scratch[] scratch;
    private final int workers;
    private final boolean active;
    private final MaskBits mask;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    private final int rPad;
    private final int words;
    private final boolean byRows;
    /** V [nPad, r] shared by the two jobs of the column-split path (null on the row path). */
    private final float[] vAll;

    /**
     * @param bP   buffer of Panels.bytes(r, d_out) bytes for the B panels
     * @param gaP  buffer of Panels.bytes(d_in, r) bytes for the γA panels
     * @param vAll V buffer of at least padRows(n)·r floats for the column-split path, else null;
     *             x, a, b, u, gradA, gradB, bP, gaP are null when the adapter is inactive
     */
    BackwardPass(LoraParams p, CpuFrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy, Tensor dx,
                 Tensor gradA, Tensor gradB, MemorySegment bP, MemorySegment gaP, Scratch[] scratch, float[] vAll) {
        this.p = p;
        this.w = w;
        this.x = x;
        this.u = u;
        this.dy = dy;
        this.dx = dx;
        this.gradA = gradA;
        this.gradB = gradB;
        this.a = a;
        this.b = b;
        this.gamma = (float) p.gamma();
        this.bP = bP;
        this.gaP = gaP;
        this.scratch = scratch;
        this.workers = scratch.length;
        this.active = p.adapterActive();
        this.mask = MaskBits.of(p);
        this.n = p.n();
        this.dIn = p.dIn();
        this.dOut = p.dOut();
        this.r = p.rank();
        this.rPad = Split.padRows(r);
        this.words = MaskBits.words(dIn);
        this.byRows = Split.byRows(n, workers);
        this.vAll = vAll;
    }

    /** Whether this shape takes the column-split path (and so needs a shared V buffer). */
    static boolean needsSharedV(int n, int workers) {
        return !Split.byRows(n, workers);
    }

    void run(WorkerPool pool, boolean parallel) {
        concurrent = parallel && pool.size() > 1;
        int bUnits = active ? (dOut + B_PACK_ROWS - 1) / B_PACK_ROWS : 0;
        int aUnits = active && dx != null ? (r + A_PACK_ROWS - 1) / A_PACK_ROWS : 0;
        if (byRows) {
            SharedWork packs = new SharedWork(bUnits + aUnits, (wk, unit) -> {
                if (unit < bUnits) {
                    packB(scratch[wk], unit);
                } else {
                    packGammaA(scratch[wk], unit - bUnits);
                }
            });
            pool.run(wk -> byRows(wk, packs), parallel);
        } else {
            if (active) {
                SharedWork packs = new SharedWork(bUnits, (wk, unit) -> packB(scratch[wk], unit));
                pool.run(wk -> loraByRows(wk, packs), parallel);
            }
            if (dx != null) {
                SharedWork packs = new SharedWork(aUnits, (wk, unit) -> packGammaA(scratch[wk], unit));
                pool.run(wk -> dxByColumns(wk, packs), parallel);
            }
        }
    }

    /** Worker wk: its part of the panels, the whole backward of each chunk of its rows, then its part of the reduction. */
    private void byRows(int wk, SharedWork packs) {
        Scratch s = scratch[wk];
        int start = Split.rowStart(n, workers, wk);
        int end = Split.rowStart(n, workers, wk + 1);
        try {
            if (start < end) {
                packs.runAndWait(wk);
                for (int c0 = start; c0 < end; c0 += Split.MC) {
                    int c1 = Math.min(c0 + Split.MC, end);
                    loadDy(s, c0, c1);
                    if (active) {
                        lora(s, c0, c1, c0 == start, s.vc, 0);
                    }
                    if (dx != null) {
                        computeDx(s, c0, c1, 0, Panels.panels(dIn), s.vc, 0);
                    }
                }
            }
        } catch (RuntimeException | Error e) {
            abandon();
            throw e;
        }
        arrive(s);
    }

    /** Worker wk: its part of the B panels, V (into vAll), dBᵀ and dA partials for each chunk of its rows; then the reduction. */
    private void loraByRows(int wk, SharedWork packs) {
        Scratch s = scratch[wk];
        int start = Split.rowStart(n, workers, wk);
        int end = Split.rowStart(n, workers, wk + 1);
        try {
            if (start < end) {
                packs.runAndWait(wk);
                for (int c0 = start; c0 < end; c0 += Split.MC) {
                    int c1 = Math.min(c0 + Split.MC, end);
                    loadDy(s, c0, c1);
                    lora(s, c0, c1, c0 == start, vAll, c0 * r);
                }
            }
        } catch (RuntimeException | Error e) {
            abandon();
            throw e;
        }
        arrive(s);
    }

    /** A worker failed: release the others waiting in {@link #arrive} and skip the reduction. */
    private void abandon() {
        failed = true;
        allArrived = true;
    }

    /** Rows [unit·B_PACK_ROWS, +B_PACK_ROWS) of the B panels. */
    private void packB(Scratch s, int unit) {
        int o0 = unit * B_PACK_ROWS;
        Panels.packDirect(b, 1f, bP, o0, Math.min(dOut, o0 + B_PACK_ROWS), s.block(r));
    }

    /** Rows [unit·A_PACK_ROWS, +A_PACK_ROWS) of the γA panels. */
    private void packGammaA(Scratch s, int unit) {
        int j0 = unit * A_PACK_ROWS;
        Panels.packDirect(a, gamma, gaP, j0, Math.min(r, j0 + A_PACK_ROWS), s.block(dIn));
    }

    /** Worker wk: its part of the γA panels, then dX for its share of the d_in panels, all rows. */
    private void dxByColumns(int wk, SharedWork packs) {
        int panels = Panels.panels(dIn);
        int pk0 = Split.part(panels, workers, wk);
        int pk1 = Split.part(panels, workers, wk + 1);
        if (active) {
            packs.runAndWait(wk);
        }
        if (pk0 == pk1) {
            return;
        }
        Scratch s = scratch[wk];
        for (int c0 = 0; c0 < n; c0 += Split.MC) {
            int c1 = Math.min(c0 + Split.MC, n);
            loadDy(s, c0, c1);
            if (mask != null) {
                int word0 = (int) ((long) pk0 * NR / 64);
                int word1 = (int) (((long) pk1 * NR + 63) / 64);
                s.bits = Scratch.grow(s.bits, (long) Split.padRows(c1 - c0) * words);
                for (int i = 0; i < c1 - c0; i++) {
                    mask.row(c0 + i, word0, word1, dIn, s.bits, i * words);
                }
            }
            computeDx(s, c0, c1, pk0, pk1, active ? vAll : null, c0 * r);
        }
    }

    /**
     * Counts this worker in. Once every worker has arrived (all partials final) the reduction
     * blocks are claimed from a counter by every worker still here: early finishers wait for the
     * last one (they would otherwise idle until the end of the job), except when the shares run
     * one after another on the caller, where the last share reduces alone. Each block's
     * arithmetic is fixed, so the bits do not depend on which worker reduces which block.
     */
    private void arrive(Scratch s) {
        if (!active) {
            return;
        }
        if (arrived.incrementAndGet() == workers) {
            allArrived = true;
        } else if (!concurrent) {
            return;
        } else {
            for (int spins = 1; !allArrived; spins++) {
                if ((spins & 1023) == 0) {
                    Thread.yield();
                } else {
                    Thread.onSpinWait();
                }
            }
        }
        if (failed) {
            return;
        }
        int aBlocks = (r + A_BLOCK - 1) / A_BLOCK;
        int blocks = aBlocks + (dOut + B_BLOCK - 1) / B_BLOCK;
        for (int blk = nextBlock.getAndIncrement(); blk < blocks; blk = nextBlock.getAndIncrement()) {
            if (blk < aBlocks) {
                reduceA(s, blk * A_BLOCK, Math.min(r, (blk + 1) * A_BLOCK));
            } else {
                int o0 = (blk - aBlocks) * B_BLOCK;
                reduceB(s, o0, Math.min(dOut, o0 + B_BLOCK));
            }
        }
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

    /**
     * The LoRA part of chunk [c0, c1): V rows into {@code v} (row-major, lda r, chunk row 0 at
     * {@code vOff}) and vt; the chunk's keep bits into s.bits and D(X) into xc; the dBᵀ and dA
     * partials (assigned when {@code first}, else accumulated).
     */
    private void lora(Scratch s, int c0, int c1, boolean first, float[] v, int vOff) {
        int mc = c1 - c0;
        int mcPad = Split.padRows(mc);
        int ldy = Split.ld(dOut);
        int ldx = Split.ld(dIn);
        if (v == s.vc) {
            s.vc = Scratch.grow(s.vc, (long) mcPad * r);
            v = s.vc;
        }
        s.vt = Scratch.grow(s.vt, (long) rPad * Split.MC);
        s.ut = Scratch.grow(s.ut, (long) rPad * Split.MC);
        s.row = Scratch.grow(s.row, Math.max(dIn, Math.max(dOut, r)));
        float[] tile = s.tile;
        long chunkPanel = (long) mc * PANEL_ROW_BYTES;

        // V = dY·B, tiles of MR rows × NR columns of r (K = d_out).
        for (int pj = 0; pj < Panels.panels(r); pj++) {
            long bOff = (long) pj * dOut * PANEL_ROW_BYTES;
            int j0 = pj * NR;
            int jn = Math.min(NR, r - j0);
            for (int it = 0; it < mc; it += MR) {
                MicroKernel.mma(s.dyc, it * ldy, ldy, bP, bOff, dOut, tile, 0, false);
                int rows = Math.min(MR, mc - it);
                for (int m = 0; m < rows; m++) {
                    int i = it + m;
                    System.arraycopy(tile, m * NR, v, vOff + i * r + j0, jn);
                    for (int j = 0; j < jn; j++) {
                        s.vt[(j0 + j) * Split.MC + i] = tile[m * NR + j];
                    }
                }
            }
        }

        // Uᵀ of the chunk (A operand of dBᵀ).
        for (int i = 0; i < mc; i++) {
            Convert.load(u, (long) (c0 + i) * r, r, s.row, 0);
            for (int j = 0; j < r; j++) {
                s.ut[j * Split.MC + i] = s.row[j];
            }
        }

        // dBᵀ partial += Uᵀ·dY  [r, d_out]  (dY chunk as direct panels, K = mc)
        MemorySegment dyPack = s.dyPack.ensure(Panels.bytes(dOut, mc));
        Panels.packRows(s.dyc, 0, ldy, mc, dOut, 1f, dyPack, 0, chunkPanel);
        int po = Panels.panels(dOut);
        s.partB = Scratch.grow(s.partB, (long) rPad * po * NR);
        for (int jt = 0; jt < rPad; jt += MR) {
            for (int q = 0; q < po; q++) {
                MicroKernel.mma(s.ut, jt * Split.MC, Split.MC, dyPack, q * chunkPanel, mc, s.partB,
                        (jt / MR * po + q) * MR * NR, !first);
            }
        }

        // Keep bits and D(X) of the chunk into xc (rows ld(d_in) apart).
        s.xc = Scratch.grow(s.xc, (long) mcPad * ldx);
        if (mask != null) {
            s.bits = Scratch.grow(s.bits, (long) mcPad * words);
        }
        for (int i = 0; i < mc; i++) {
            Convert.load(x, (long) (c0 + i) * dIn, dIn, s.xc, i * ldx);
            if (mask != null) {
                mask.row(c0 + i, dIn, s.bits, i * words);
                mask.apply(s.xc, i * ldx, s.bits, i * words, dIn, s.xc, i * ldx);
            }
        }

        // dA partial += Vᵀ·D(X)  [r, d_in]  (D(X) chunk as direct panels, K = mc)
        MemorySegment dxPack = s.dxPack.ensure(Panels.bytes(dIn, mc));
        Panels.packRows(s.xc, 0, ldx, mc, dIn, 1f, dxPack, 0, chunkPanel);
        int pk = Panels.panels(dIn);
        s.partA = Scratch.grow(s.partA, (long) rPad * pk * NR);
        for (int jt = 0; jt < rPad; jt += MR) {
            for (int q = 0; q < pk; q++) {
                MicroKernel.mma(s.vt, jt * Split.MC, Split.MC, dxPack, q * chunkPanel, mc, s.partA,
                        (jt / MR * pk + q) * MR * NR, !first);
            }
        }
    }

    /**
     * dX[c0:c1, panels pk0..pk1) = mask ⊙ (V·γA) + dY·W. V rows from {@code v} (lda r, chunk row 0
     * at {@code vOff}); null when the adapter is inactive. Tiles go to the chunk buffer yc, then
     * each row is stored whole.
     */
    private void computeDx(Scratch s, int c0, int c1, int pk0, int pk1, float[] v, int vOff) {
        int mc = c1 - c0;
        int ldy = Split.ld(dOut);
        int ldx = Split.ld(dIn);
        s.yc = Scratch.grow(s.yc, (long) Split.padRows(mc) * ldx);
        float[] out = s.yc;
        float[] tile = s.tile;
        boolean lora = active && v != null;
        for (int pk = pk0; pk < pk1; pk++) {
            long wOff = (long) pk * dOut * PANEL_ROW_BYTES;
            long aOff = (long) pk * r * PANEL_ROW_BYTES;
            int k0 = pk * NR;
            for (int it = 0; it < mc; it += MR) {
                if (lora) {
                    MicroKernel.mma(v, vOff + it * r, r, gaP, aOff, r, tile, 0, false);
                    if (mask != null) {
                        for (int m = 0; m < MR; m++) {
                            mask.applyToTileRow(tile, m * NR, s.bits, (it + m) * words, k0);
                        }
                    }
                }
                MicroKernel.mma(s.dyc, it * ldy, ldy, w.backward, wOff, dOut, tile, 0, lora);
                int rows = Math.min(MR, mc - it);
                for (int m = 0; m < rows; m++) {
                    System.arraycopy(tile, m * NR, out, (it + m) * ldx + k0, NR);
                }
            }
        }
        int col0 = pk0 * NR;
        int cols = Math.min(dIn, pk1 * NR) - col0;
        for (int i = 0; i < mc; i++) {
            Convert.store(out, i * ldx + col0, cols, dx, (long) (c0 + i) * dIn + col0);
        }
    }

    /** The partial sums of the workers that had rows, in increasing worker order. */
    private float[][] partials(boolean ofA) {
        float[][] out = new float[workers][];
        int c = 0;
        for (int v = 0; v < workers; v++) {
            if (Split.rowStart(n, workers, v) < Split.rowStart(n, workers, v + 1)) {
                out[c++] = ofA ? scratch[v].partA : scratch[v].partB;
            }
        }
        return java.util.Arrays.copyOf(out, c);
    }

    /** dA rows [j0, j1) = γ·Σ_w partA[w] (+ old), w in increasing order. */
    private void reduceA(Scratch s, int j0, int j1) {
        boolean acc = p.gradMode() == GradMode.ACCUMULATE;
        int pk = Panels.panels(dIn);
        s.row = Scratch.grow(s.row, (long) pk * NR);
        s.dyc = Scratch.grow(s.dyc, dIn);
        float[] sum = s.row;
        float[] old = s.dyc;
        float[][] part = partials(true);
        for (int j = j0; j < j1; j++) {
            int tileRow = j / MR * pk * MR * NR + (j % MR) * NR;
            for (int q = 0; q < pk; q++) {
                int at = tileRow + q * MR * NR;
                System.arraycopy(part[0], at, sum, q * NR, NR);
                for (int c = 1; c < part.length; c++) {
                    TileOps.addPadded(sum, q * NR, part[c], at, NR);
                }
            }
            if (acc) {
                Convert.load(gradA, (long) j * dIn, dIn, old, 0);
            }
            TileOps.scaleAdd(sum, dIn, gamma, acc ? old : null);
            Convert.store(sum, 0, dIn, gradA, (long) j * dIn);
        }
    }

    /** dB rows [o0, o1) = γ·(Σ_w partB[w])ᵀ (+ old): each row gathered across the dBᵀ tiles. */
    private void reduceB(Scratch s, int o0, int o1) {
        boolean acc = p.gradMode() == GradMode.ACCUMULATE;
        s.row = Scratch.grow(s.row, r);
        s.dyc = Scratch.grow(s.dyc, r);
        float[] sum = s.row;
        float[] old = s.dyc;
        float[][] part = partials(false);
        int po = Panels.panels(dOut);
        int[] index = s.reduceIndex(po);
        for (int o = o0; o < o1; o++) {
            int base = (o / NR) * MR * NR + o % NR;
            gatherColumn(part, part.length, base, po, index, sum);
            if (acc) {
                Convert.load(gradB, (long) o * r, r, old, 0);
            }
            TileOps.scaleAdd(sum, r, gamma, acc ? old : null);
            Convert.store(sum, 0, r, gradB, (long) o * r);
        }
    }

    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;

    /**
     * sum[j] = Σ_c part[c][tile(j) + base] for j &lt; r: column o of Σ dBᵀ, where row j of the
     * tiles sits at (j/MR)·po·MR·NR + (j%MR)·NR; {@code index} holds those offsets for j &lt; L.
     */
    private void gatherColumn(float[][] part, int contributors, int base, int po, int[] index, float[] sum) {
        int j = 0;
        if (!MicroKernel.SCALAR) {
            // Full groups of L only: a masked gather range-checks every lane in this JDK.
            int stride = po * MR * NR;
            for (; j + MicroKernel.L <= r; j += MicroKernel.L) {
                int off = base + j / MR * stride;
                FloatVector v = FloatVector.fromArray(S, part[0], off, index, 0);
                for (int c = 1; c < contributors; c++) {
                    v = v.add(FloatVector.fromArray(S, part[c], off, index, 0));
                }
                v.intoArray(sum, j);
            }
        }
        for (; j < r; j++) {
            int at = (j / MR * po) * MR * NR + (j % MR) * NR + base;
            float t = part[0][at];
            for (int c = 1; c < contributors; c++) {
                t += part[c][at];
            }
            sum[j] = t;
        }
    }
}
