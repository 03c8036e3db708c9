package dev.rslora.backend.cpu;

/**
 * One worker's reusable buffers: chunk copies of the A operands (heap, fp32, row-major, padded
 * to MR rows), per-chunk B panels and the worker's own packing of the small adapter matrices
 * (native; every worker packs the A/B panels it needs itself, so a layer call needs no barrier
 * besides its end), dropout bits of the chunk, the register-tile spill and the partial sums of dA
 * and dBᵀ. Grown on demand, never shrunk, owned by one worker index.
 */
final class Scratch implements AutoCloseable {
    /** X chunk [mcPad, ld(d_in)] (forward A operand; backward D(X), the B operand of dA). */
    float[] xc = new float[0];
    /** D(X) chunk [mcPad, ld(d_in)] (forward A operand of U when dropout is on). */
    float[] dxc = new float[0];
    /** U chunk [mcPad, r] (forward A operand of the LoRA K-segment). */
    float[] uc = new float[0];
    /** dY chunk [mcPad, ld(d_out)] (backward A operand of V and dX, B operand of dBᵀ). */
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
    /** This worker's copy of Aᵀ panels (forward U), K = d_in. */
    final NativeBuffer aT = new NativeBuffer();
    /** This worker's copy of (γB)ᵀ panels (forward LoRA K-segment of Y), K = r. */
    final NativeBuffer gbT = new NativeBuffer();
    /** This worker's fp32 copy of B [d_out, r], row-major, + NR slack (B operand of V = dY·B). */
    float[] bc = new float[0];
    /** This worker's fp32 copy of γ·A [r, d_in], rows ld(d_in) apart (B operand of dX's LoRA segment). */
    float[] gac = new float[0];

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

    static float[] grow(float[] a, long n) {
        return a.length >= n ? a : new float[Math.toIntExact(n)];
    }

    static long[] grow(long[] a, long n) {
        return a.length >= n ? a : new long[Math.toIntExact(n)];
    }

    @Override
    public void close() {
        aT.close();
        gbT.close();
    }
}
