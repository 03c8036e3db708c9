package dev.rslora.backend.cpu;

/**
 * One worker's reusable buffers: chunk copies of the A operands (heap, fp32, row-major, padded
 * to MR rows), per-chunk B panels (native), dropout bits of the chunk, the register-tile spill,
 * temporaries for packing and the partial sums of dA and dBᵀ. Grown on demand, never shrunk,
 * owned by one worker index.
 */
final class Scratch implements AutoCloseable {
    /** X chunk [mcPad, ld(d_in)] (forward A operand; backward D(X) before packing). */
    float[] xc = new float[0];
    /** D(X) chunk [mcPad, ld(d_in)] (forward A operand of U when dropout is on). */
    float[] dxc = new float[0];
    /** Output chunk [mcPad, ld(d)] (Y in forward, dX in backward) before its rows are stored. */
    float[] yc = new float[0];
    /** U chunk [mcPad, r] (forward A operand of the LoRA K-segment). */
    float[] uc = new float[0];
    /** dY chunk [mcPad, ld(d_out)] (backward A operand of V and dX). */
    float[] dyc = new float[0];
    /** V chunk [mcPad, r] (backward A operand of the LoRA K-segment of dX). */
    float[] vc = new float[0];
    /** Vᵀ chunk [rPad, MC] (A operand of dA). */
    float[] vt = new float[0];
    /** Uᵀ chunk [rPad, MC] (A operand of dBᵀ). */
    float[] ut = new float[0];
    /** One row of a tensor as fp32. */
    float[] row = new float[0];
    /** The MR×NR register tile spilled between K-segments and for the epilogue. */
    final float[] tile = new float[MicroKernel.MR * MicroKernel.NR];
    /** Keep bits of the chunk, [mcPad, words(d_in)]. */
    long[] bits = new long[0];
    /** Partial Σ over this worker's rows of Vᵀ·D(X), in MR×NR tiles [rPad/MR][panels(d_in)]. */
    float[] partA = new float[0];
    /** Partial Σ over this worker's rows of Uᵀ·dY (= dBᵀ), in tiles [rPad/MR][panels(d_out)]. */
    float[] partB = new float[0];
    /** Gather block for transposed packs, NR × Panels.T_BLOCK. */
    final float[] gather = new float[MicroKernel.NR * Panels.T_BLOCK];
    final int[] gatherIndex = Panels.gatherIndex();
    /** dY chunk as direct panels over d_out (B operand of dBᵀ), K = chunk rows. */
    final NativeBuffer dyPack = new NativeBuffer();
    /** D(X) chunk as direct panels over d_in (B operand of dA), K = chunk rows. */
    final NativeBuffer dxPack = new NativeBuffer();
    /** Row block of a direct pack from a tensor (Panels.directBlockRows(C)·C floats). */
    float[] block = new float[0];

    private int[] reduceIndex = new int[0];
    private int reduceIndexPanels = -1;

    /**
     * Gather offsets of rows t &lt; L of the dBᵀ partial tiles ({@code po} panels over d_out):
     * (t/MR)·po·MR·NR + (t%MR)·NR.
     */
    int[] reduceIndex(int po) {
        if (reduceIndexPanels != po) {
            int[] index = new int[MicroKernel.L];
            for (int t = 0; t < index.length; t++) {
                index[t] = (t / MicroKernel.MR) * po * MicroKernel.MR * MicroKernel.NR + (t % MicroKernel.MR) * MicroKernel.NR;
            }
            reduceIndex = index;
            reduceIndexPanels = po;
        }
        return reduceIndex;
    }

    /** The block buffer sized for a direct pack of a matrix with {@code cols} columns. */
    float[] block(int cols) {
        block = grow(block, (long) Panels.directBlockRows(cols) * cols);
        return block;
    }

    static float[] grow(float[] a, long n) {
        return a.length >= n ? a : new float[Math.toIntExact(n)];
    }

    static long[] grow(long[] a, long n) {
        return a.length >= n ? a : new long[Math.toIntExact(n)];
    }

    @Override
    public void close() {
        dyPack.close();
        dxPack.close();
    }
}
