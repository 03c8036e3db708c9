package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;

import java.lang.foreign.MemorySegment;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * The adapter gradients as GEMMs over all N rows (K = N), a worker computing whole columns of
 * the result:
 * <pre>
 *   dA  [r, d_in]  (=|+=) γ·Vᵀ·D(X)    left Vᵀ [rPad, N], right D(X) [N, d_in]
 *   dBᵀ [r, d_out] (=|+=) γ·Uᵀ·dY      left Uᵀ [rPad, N], right dY [N, d_out]; stored as dB [d_out, r]
 *
 *   for each block of KC rows of N:                     (K block: its right panels stay in L1)
 *     for each group of NC columns of the worker's share: pack the block's rows into direct
 *       panels (K = kc; F32 without dropout straight from the tensor, else converted and masked
 *       into fp32 rows first), then every MR×NR tile of the group:
 *       acc tile (= | +=) left[MR rows, kc] · panel     (accumulators in tiles [rPad/MR][panels];
 *                                                     += through MicroKernel.mmaAdd)
 *   epilogue: γ·acc (+ old) rounded once to the gradient's dtype
 * </pre>
 * Each element is one fp32 sum per block of KC rows of n, in increasing order, and the blocks'
 * sums added in order, whoever computes it: no reduction across workers, the same bits for any
 * worker count. Replaces per-worker [r, d] partial sums
 * accumulated chunk by chunk (K = 64) and reduced afterwards, whose read-modify-write passes over
 * r·d floats per chunk made the rank-256 products run well below the base GEMM's rate.
 */
final class GradGemm {
    private GradGemm() {
    }

    /**
     * One worker's panels [p0, p1) (NR columns each) of {@code left}ᵀ·{@code right}.
     *
     * @param left       the transposed left operand [padRows(r), n], rows n apart (pad rows are read, never stored)
     * @param right      the right operand [n, cols] (any dtype)
     * @param mask       applied to right's rows (D(X)), or null
     * @param bits       the keep bits of all n rows (row i's word 0 at i·words), or null without mask
     * @param add        add the gradient's current values (the gradient mode ACCUMULATE)
     * @param transposed store column o of the result as row o of {@code out} ([cols, r]); else row j as row j ([r, cols])
     */
    static void run(Scratch s, float[] left, int n, int r, Tensor right, int cols, MaskBits mask, long[] bits, int words,
                    int p0, int p1, float gamma, boolean add, Convert.Sink out, boolean transposed) {
        int np = p1 - p0;
        if (np <= 0) {
            return;
        }
        int rPad = Split.padRows(r);
        int groupPanels = Split.NC / NR;
        s.acc = Scratch.grow(s.acc, (long) rPad * np * NR);
        float[] acc = s.acc;
        for (int kb = 0; kb < n; kb += Split.KC) {
            int kc = Math.min(Split.KC, n - kb);
            for (int g0 = p0; g0 < p1; g0 += groupPanels) {
                int g1 = Math.min(p1, g0 + groupPanels);
                int gc0 = g0 * NR;
                int ncols = Math.min(cols, g1 * NR) - gc0;
                long panelBytes = (long) kc * PANEL_ROW_BYTES;
                MemorySegment pack = s.gradPack.ensure((g1 - g0) * panelBytes);
                if (mask == null && right.dtype() == DType.F32) {
                    Panels.packRowsF32(right.readOnlySegment(), kb, cols, gc0, kc, ncols, pack, 0, panelBytes);
                } else {
                    int ldb = (g1 - g0) * NR;
                    s.gradBlock = Scratch.grow(s.gradBlock, (long) kc * ldb);
                    for (int i = 0; i < kc; i++) {
                        Convert.load(right, (long) (kb + i) * cols + gc0, ncols, s.gradBlock, i * ldb);
                        if (mask != null) {
                            mask.apply(s.gradBlock, i * ldb, bits, (kb + i) * words, gc0, ncols, s.gradBlock, i * ldb);
                        }
                    }
                    Panels.packRows(s.gradBlock, 0, ldb, kc, ncols, 1f, pack, 0, panelBytes);
                }
                for (int p = g0; p < g1; p++) {
                    long bOff = (p - g0) * panelBytes;
                    for (int it = 0; it < rPad; it += MR) {
                        int at = ((it / MR) * np + (p - p0)) * MR * NR;
                        if (kb > 0) {
                            MicroKernel.mmaAdd(left, it * n + kb, n, pack, bOff, kc, acc, at, NR, s.sum);
                        } else {
                            MicroKernel.mma(left, it * n + kb, n, pack, bOff, kc, acc, at);
                        }
                    }
                }
            }
        }
        int col0 = p0 * NR;
        int count = Math.min(cols, p1 * NR) - col0;
        if (transposed) {
            storeColumns(s, acc, np, r, col0, count, gamma, add, out);
        } else {
            storeRows(s, acc, np, r, cols, col0, count, gamma, add, out);
        }
    }

    /** Rows j &lt; r of the result, columns [col0, col0 + count), into out [r, cols]. */
    private static void storeRows(Scratch s, float[] acc, int np, int r, int cols, int col0, int count, float gamma,
                                  boolean add, Convert.Sink out) {
        s.row = Scratch.grow(s.row, (long) np * NR);
        s.bf16Sums = Scratch.grow(s.bf16Sums, count);
        for (int j = 0; j < r; j++) {
            int tileRow = (j / MR) * np * MR * NR + (j % MR) * NR;
            for (int q = 0; q < np; q++) {
                System.arraycopy(acc, tileRow + q * MR * NR, s.row, q * NR, NR);
            }
            long at = (long) j * cols + col0;
            Convert.storeScaled(s.row, 0, count, gamma, add, out, at, s.bf16Sums);
        }
    }

    /** Columns o in [col0, col0 + count) of the result as rows o of out [cols, r] (contiguous: one block, stored once). */
    private static void storeColumns(Scratch s, float[] acc, int np, int r, int col0, int count, float gamma,
                                     boolean add, Convert.Sink out) {
        int[] index = s.columnIndex(np, r);
        s.row = Scratch.grow(s.row, (long) count * r);
        float[] block = s.row;
        for (int oc = 0; oc < count; oc++) {
            int base = (oc / NR) * MR * NR + oc % NR;
            int at = oc * r;
            int j = 0;
            if (!MicroKernel.SCALAR && !MicroKernel.PLAIN_MEMORY) {  // no gathers with 128-bit tiles
                for (; j + MicroKernel.L <= r; j += MicroKernel.L) {
                    FloatVector.fromArray(MicroKernel.SPECIES, acc, base, index, j).intoArray(block, at + j);
                }
            }
            for (; j < r; j++) {
                block[at + j] = acc[base + index[j]];
            }
        }
        int n = count * r;
        s.bf16Sums = Scratch.grow(s.bf16Sums, n);
        Convert.storeScaled(block, 0, n, gamma, add, out, (long) col0 * r, s.bf16Sums);
    }
}
