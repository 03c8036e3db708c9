package dev.rslora.backend.cpu;

/**
 * One worker's reusable buffers: chunk copies of the A operands (heap, fp32, row-major, padded
 * to MR rows), dropout bits, the register-tile spill, temporaries for packing, and the
 * accumulators and blocks of the gradient GEMMs. Grown on demand, never shrunk, owned by one
 * worker index.
 */
final class Scratch implements AutoCloseable {
    /** X chunk [mcPad, ld(d_in)] (forward A operand). */
    float[] xc = new float[0];
    /** D(X) chunk [mcPad, ld(d_in)] (forward A operand of U when dropout is on). */
    float[] dxc = new float[0];
    /** Output chunk [mcPad, ld(d)] (Y in forward, dX in backward) before its rows are stored. */
    float[] yc = new float[0];
    /** U chunk [mcPad, r] (forward A operand of the LoRA K-segment). */
    float[] uc = new float[0];
    /** dY chunk [mcPad, ld(d_out)] (backward A operand of V and dX). */
    float[] dyc = new float[0];
    /** The pass whose rows xc/dyc (and dxc) hold whole for the current job (small N), or null. */
    Object rowsOf;
    /** The forward pass whose U rows uc holds whole for the current job (small N), or null. */
    Object uOf;
    /** The forward pass whose D(X) rows dxc holds whole for the current job (small N, dropout), or null. */
    Object maskedOf;
    /** Rows of a tensor as fp32 (U rows; epilogue rows of the gradients). */
    float[] row = new float[0];
    /** {@link Convert#storeScaled}'s rounding buffer for BF16 gradients. */
    float[] bf16Sums = new float[0];
    /** Up to RowGrads.MAX_ROWS rows of D(X) [n, d_in] (the dA units' operand), loaded once per backward call. */
    float[] xRows = new float[0];
    /** The backward call whose D(X) rows {@link #xRows} holds. */
    Object xRowsOf;
    /** An MR×NR register tile stored for its epilogue (U, V, merge); Y and dX tiles go straight to yc. */
    final float[] tile = new float[MicroKernel.MR * MicroKernel.NR];
    /** {@link MicroKernel#mmaAdd}'s product tile, before it is added to C. */
    final float[] sum = new float[MicroKernel.MR * MicroKernel.NR];
    /** {@link AdapterRows#addGroup}'s four partial vectors, passed through memory rather than returned (boxed). */
    /** One masked row of {@link AdapterRows#rowTimes} at the end of its segment, zero-padded to L floats. */
    final float[] tailPad = new float[MicroKernel.L];
    /** Keep bits: one row (forward) or [padRows(n), words(d_in)] (backward, small N). */
    long[] bits = new long[0];
    /** Gradient GEMM accumulators, tiles [rPad/MR][panels][MR×NR]. */
    float[] acc = new float[0];
    /** Gradient GEMM: a K block of rows of X or dY over a group of columns, fp32. */
    float[] gradBlock = new float[0];
    /** Gradient GEMM: that block as direct panels (K = block rows). */
    final NativeBuffer gradPack = new NativeBuffer();
    /**
     * One gradient row's fp32 sum before {@link Convert#storeScaled} rounds it to a BF16/F16 sink
     * (RowGrads). Native, not a heap segment over {@link #row}: a heap segment reaching a vector
     * load or store pollutes the JDK's shared type profile of every segment access, and the
     * micro-kernel's panel loads then ran 1.75× slower for the rest of the JVM's life
     * ({@link TileOps#allFinite(float[], int, int)} explains).
     */
    final NativeBuffer rowSum = new NativeBuffer();
    /** fp32 rows of A or B converted for {@link AdapterRows} (BF16, F16 or heap tensors), and its native copy. */
    float[] conv = new float[0];
    final NativeBuffer adapterRows = new NativeBuffer();
    /**
     * A copy of the L rows of B whose tail vectors in {@link AdapterRows#addY} would reach past
     * B's end, with L floats to spare.
     */
    final NativeBuffer tailRows = new NativeBuffer();
    /** One direct panel of B's or γA's columns for {@link AdapterRows}' tiles (K = d_out or r). */
    final NativeBuffer rowPanel = new NativeBuffer();
    /** The segment of the rows {@link AdapterRows#f32} last gave (a tensor's own, or {@link #adapterRows}'). */
    java.lang.foreign.MemorySegment rows;
    /** A converted tensor's rows for a transposed pack (NR × Panels.T_BLOCK), and their native copy. */
    final float[] packRows = new float[MicroKernel.NR * Panels.T_BLOCK];
    final NativeBuffer packStage = new NativeBuffer();
    /** Row block of a direct pack from a tensor (Panels.directBlockRows(C)·C floats). */
    private float[] block = new float[0];

    private int[] columnIndex = new int[0];
    private int[] rowGather = new int[0];
    private int rowGatherLd = -1;
    private int columnIndexPanels = -1;

    /**
     * Offsets of rows j &lt; padRows(r) within one column of gradient accumulators over
     * {@code np} panels: (j/MR)·np·MR·NR + (j%MR)·NR.
     */
    int[] columnIndex(int np, int r) {
        int rPad = Split.padRows(r);
        if (columnIndexPanels != np || columnIndex.length < rPad) {
            int[] index = new int[rPad];
            for (int j = 0; j < rPad; j++) {
                index[j] = (j / MicroKernel.MR) * np * MicroKernel.MR * MicroKernel.NR + (j % MicroKernel.MR) * MicroKernel.NR;
            }
            columnIndex = index;
            columnIndexPanels = np;
        }
        return columnIndex;
    }

    /** {@link TileOps#gatherRows}(ld), kept while ld stays the same. */
    int[] gatherRows(int ld) {
        if (rowGatherLd != ld) {
            rowGather = TileOps.gatherRows(ld);
            rowGatherLd = ld;
        }
        return rowGather;
    }

    /** The block buffer sized for a direct pack of a matrix with {@code cols} columns. */
    float[] block(int cols) {
        // L to spare: Panels.packRows' masked loads of the last row's partial panel stay inside
        block = grow(block, (long) Panels.directBlockRows(cols) * cols + MicroKernel.L);
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
        gradPack.close();
        rowSum.close();
        adapterRows.close();
        tailRows.close();
        rowPanel.close();
        packStage.close();
    }
}
