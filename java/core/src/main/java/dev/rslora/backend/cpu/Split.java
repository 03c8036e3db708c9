package dev.rslora.backend.cpu;

/**
 * How work is cut: chunks of rows (at most {@link #MC}, or more for a large W; whole tiles, as many
 * as a multiple of the workers where N allows), K blocks and column groups of the gradient GEMMs,
 * and padding.
 */
final class Split {
    /**
     * Rows per chunk (64 rounded up to whole tiles) while the packed W stays in the last-level cache
     * between chunks: the A operands of a chunk stay in L2 while the W panels stream through.
     */
    static final int MC = padRows(64);
    /**
     * Rows per chunk when the packed W is larger than {@link #W_CACHED_BYTES}: every chunk streams
     * all of W from memory, 2·rows FLOPs per 4 bytes, so bigger chunks read W fewer times (d = 4096,
     * one chunk of the Y = X·Wᵀ GEMM, interleaved: 256 rows ran at 1.28× the rate of 64 with two
     * threads, 1.23× with one; at d = 1024 the rows made no difference).
     */
    static final int MC_STREAMED = padRows(256);
    /** Packed W up to this size is taken to stay cached between chunks (a share of a server's L3). */
    static final long W_CACHED_BYTES = 8L << 20;
    /**
     * With a streamed W, chunks stay within this many bytes of fp32 rows (the longer of X's and the
     * output's, each worker holding one chunk copy of each), and never drop below MC rows: at
     * d = 4096 256 rows take 4 MB; an lm_head's 128k-column output keeps MC rows.
     */
    static final long CHUNK_BYTES = 16L << 20;
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
     * Rows per chunk for n rows over {@code workers}, W [d_out, d_in]: at most MC or, for a packed W
     * beyond W_CACHED_BYTES, at most {@link #streamedRows}; whole tiles; an even split (chunks rounded
     * up to a multiple of the workers); and at least two chunks per worker where MC-row chunks allow
     * it, so that a worker slowed by another process leaves chunks for the others to take.
     */
    static int chunkRows(int n, int workers, int dIn, int dOut) {
        int mc = Panels.bytes(dOut, dIn) > W_CACHED_BYTES ? streamedRows(dIn, dOut) : MC;
        int chunks = chunks(n, mc);
        chunks = Math.max(chunks, Math.min(2 * workers, chunks(n, MC)));
        chunks = (chunks + workers - 1) / workers * workers;
        return Math.min(mc, padRows(chunks(n, chunks)));
    }

    /**
     * Chunks of {@code rows} rows that cover n rows, ⌈n / rows⌉: in long, since n + rows − 1
     * passes 2^31 for n near Integer.MAX_VALUE (a forward of that many rows needs no n-sized heap buffer).
     */
    static int chunks(int n, int rows) {
        return (int) ((n + (long) rows - 1) / rows);
    }

    /** The end of chunk {@code c} of {@code rows} rows out of n: min(n, (c + 1)·rows), the product in long. */
    static int chunkEnd(int c, int rows, int n) {
        return (int) Math.min(n, (c + 1L) * rows);
    }

    /** The chunk limit with a streamed W: MC_STREAMED rows, fewer (whole tiles, at least MC) past CHUNK_BYTES. */
    static int streamedRows(int dIn, int dOut) {
        long rowBytes = 4L * Math.max(ld(dIn), ld(dOut));
        long fit = CHUNK_BYTES / rowBytes / MicroKernel.MR * MicroKernel.MR;
        return (int) Math.max(MC, Math.min(MC_STREAMED, fit));
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
