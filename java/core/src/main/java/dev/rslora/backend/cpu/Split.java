package dev.rslora.backend.cpu;

/**
 * How work is cut: chunks of rows (at most {@link #MC}, whole tiles, as many as a multiple of the
 * workers where N allows), K blocks and column groups of the gradient GEMMs, and padding.
 */
final class Split {
    /** Rows per chunk (64 rounded up to whole tiles): the A operands of a chunk stay in L2 while the W panels stream through. */
    static final int MC = padRows(64);
    /**
     * Rows of N per block of the dA and dB GEMMs (their K): a block's panel of X or dY (KC·NR
     * floats, 32 KB with 512-bit tiles) stays in L1 while the tiles of Vᵀ or Uᵀ pass over it.
     */
    static final int KC = 256;
    /** Columns of X or dY packed together per K block of the dA and dB GEMMs (a whole number of panels). */
    static final int NC = Math.max(1, 256 / MicroKernel.NR) * MicroKernel.NR;

    private Split() {
    }

    /**
     * Rows per chunk for n rows over {@code workers}: at most MC, whole tiles, and an even split
     * (ceil(n/MC) chunks rounded up to a multiple of the workers).
     */
    static int chunkRows(int n, int workers) {
        int chunks = (n + MC - 1) / MC;
        chunks = (chunks + workers - 1) / workers * workers;
        return Math.min(MC, padRows((n + chunks - 1) / chunks));
    }

    /** Whether every worker has enough rows to work on whole rows (else columns are split). */
    static boolean byRows(int n, int workers) {
        return n >= 2 * MicroKernel.MR * workers;
    }

    /**
     * Leading dimension of a row-major fp32 chunk copy with {@code d} columns: d rounded up to NR
     * (so NR-wide reads of the last panel stay inside the row) plus one vector, so that rows are
     * not a power of two apart (which would map them all to the same L1 sets).
     */
    static int ld(int d) {
        return (d + MicroKernel.NR - 1) / MicroKernel.NR * MicroKernel.NR + MicroKernel.L;
    }

    /** {@code n} rounded up to a multiple of MR. */
    static int padRows(int n) {
        return (n + MicroKernel.MR - 1) / MicroKernel.MR * MicroKernel.MR;
    }
}
