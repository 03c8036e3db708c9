package dev.rslora.backend.cpu;

/**
 * Static work partitions. Rows of N: worker w owns [rowStart(w), rowStart(w+1)), boundaries
 * rounded down to MR, processed in chunks of at most {@link #MC} rows in increasing order; the
 * partial sums of dA and dB therefore depend only on (N, worker count), never on timing.
 */
final class Split {
    /** Rows per chunk: the A operands of a chunk stay in L2 while the W panels stream through. */
    static final int MC = 64;

    private Split() {
    }

    /** First row of worker w's range (w = workers gives n). */
    static int rowStart(int n, int workers, int w) {
        if (w >= workers) {
            return n;
        }
        int s = (int) ((long) n * w / workers);
        return s - s % MicroKernel.MR;
    }

    /** Whether every worker has enough rows to work on whole rows (else columns are split). */
    static boolean byRows(int n, int workers) {
        return n >= 2 * MicroKernel.MR * workers;
    }

    /** Start of share w of {@code total} items split evenly over {@code workers}. */
    static int part(int total, int workers, int w) {
        return (int) ((long) total * w / workers);
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
