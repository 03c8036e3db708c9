package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.Tensor;

import java.util.function.IntPredicate;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;

/**
 * The shapes the cpu backend can run, checked at its entry points before any work. Its scratch
 * buffers are heap arrays (fp32 rows, keep bits), at most {@link #MAX_ARRAY} elements each, and its
 * offsets into them are ints; a shape past either limit would end deep inside a pass
 * ({@code ArithmeticException: integer overflow} from {@link Scratch#grow}, "Requested array size
 * exceeds VM limit", an index that wrapped). The largest buffer of each call, in elements
 * (rows = chunkRows(n) where {@link Split#byRows}, else padRows(n); ld(d) = d padded to NR, plus L):
 * <pre>
 *   prepare   d_in, d_out ≤ MAX_DIM
 *   forward   X rows [rows, ld(d_in)] (and D(X)), Y rows [rows, ld(d_out)], U rows [rows, r]
 *   backward  dY rows [rows, ld(d_out)], dX rows [rows, ld(d_in)] (with dX);
 *             V [padRows(n), r], Vᵀ and Uᵀ [padRows(r), n], keep bits [padRows(n), words(d_in)] (dropout);
 *             n ≤ RowGrads.MAX_ROWS: D(X) [n, d_in], a dB unit's dY columns [n, ≤ NC];
 *             else the gradient GEMMs' accumulators [padRows(r), ≤ NC] and dB block [≤ NC, r]
 *   merge     W rows [MR, d_in], B rows [MR, r]
 * </pre>
 * Every int offset of the passes stays below the length of one of these buffers, so a shape that
 * passes cannot wrap one. The backward's [n, r] and [r, n] buffers are what limit the batch: with
 * n·r near 2^31 the forward runs (U is off-heap, rows are cut into chunks) but its backward is
 * refused, naming the largest n that fits. A check is a few long multiplications; the message (and
 * the search for that n) is built only when it fails.
 */
final class CpuLimits {
    /** The most elements of a heap scratch buffer: a Java array's ({@link Tensor#MAX_ARRAY}). */
    static final long MAX_ARRAY = Tensor.MAX_ARRAY;
    /**
     * The largest d_in, d_out or r: int offsets round a dimension up to panels (NR ≤ 32) and vector
     * padding, and step through it in blocks of up to 256 (Panels.T_BLOCK, Split.NC), all within 2^31.
     */
    static final int MAX_DIM = Integer.MAX_VALUE - 1023;

    private CpuLimits() {
    }

    /**
     * Refuses a weight W [d_out, d_in] the backend cannot pack.
     *
     * @throws IllegalArgumentException naming the dimension above {@link #MAX_DIM}
     */
    static void prepare(int dOut, int dIn) {
        String problem = dims(dIn, dOut, 1);
        if (problem != null) {
            throw new IllegalArgumentException("cpu backend: weight [" + dOut + ", " + dIn + "]: " + problem);
        }
    }

    /**
     * Refuses a forward whose buffers do not fit a Java array.
     *
     * @param workers the backend's workers (they decide whether rows or columns are split)
     * @throws IllegalArgumentException naming the buffer, its shape, the limit, and the largest n that fits
     */
    static void forward(LoraParams p, int workers) {
        String problem = forwardProblem(p, workers);
        if (problem != null) {
            throw refusal("forward", p, problem, maxRows(m -> forwardProblem(p.withN(m), workers) == null, p.n()));
        }
    }

    /**
     * Refuses a backward whose buffers do not fit a Java array.
     *
     * @param workers the backend's workers
     * @param dx      whether dX is computed
     * @throws IllegalArgumentException naming the buffer, its shape, the limit, and the largest n that fits
     */
    static void backward(LoraParams p, int workers, boolean dx) {
        String problem = backwardProblem(p, workers, dx);
        if (problem != null) {
            throw refusal("backward", p, problem, maxRows(m -> backwardProblem(p.withN(m), workers, dx) == null, p.n()));
        }
    }

    /**
     * Refuses a merge of A [r, d_in] into W [d_out, d_in] whose buffers do not fit a Java array.
     *
     * @throws IllegalArgumentException naming the buffer, its shape and the limit
     */
    static void merge(int dOut, int dIn, int r) {
        String problem = mergeProblem(dOut, dIn, r);
        if (problem != null) {
            throw new IllegalArgumentException("cpu merge (d_in=" + dIn + ", d_out=" + dOut + ", r=" + r + "): " + problem);
        }
    }

    /** The first buffer of a forward that does not fit (as text), or null. */
    static String forwardProblem(LoraParams p, int workers) {
        boolean active = p.adapterActive();
        String problem = dims(p.dIn(), p.dOut(), active ? p.rank() : 1);
        if (problem != null) {
            return problem;
        }
        long rows = rows(p, workers);
        if (rows * ld(p.dIn()) > MAX_ARRAY) {
            return over("X rows in fp32", rows, ld(p.dIn()));
        }
        if (rows * ld(p.dOut()) > MAX_ARRAY) {
            return over("Y rows in fp32", rows, ld(p.dOut()));
        }
        if (active && rows * p.rank() > MAX_ARRAY) {
            return over("U rows in fp32", rows, p.rank());
        }
        return null;
    }

    /** The first buffer of a backward that does not fit (as text), or null. */
    static String backwardProblem(LoraParams p, int workers, boolean dx) {
        boolean active = p.adapterActive();
        String problem = dims(p.dIn(), p.dOut(), active ? p.rank() : 1);
        if (problem != null) {
            return problem;
        }
        long n = p.n();
        long r = p.rank();
        long rows = rows(p, workers);
        if (rows * ld(p.dOut()) > MAX_ARRAY) {
            return over("dY rows in fp32", rows, ld(p.dOut()));
        }
        if (dx && rows * ld(p.dIn()) > MAX_ARRAY) {
            return over("dX rows in fp32", rows, ld(p.dIn()));
        }
        if (!active) {
            return null;
        }
        // the Uᵀ chunk copy [≤ rows, r] and RowGrads' U [n, r] are no larger than V
        if (padRows(n) * r > MAX_ARRAY) {
            return over("V = dY·B", padRows(n), r);
        }
        if (padRows(r) * n > MAX_ARRAY) {
            return over("Vᵀ and Uᵀ", padRows(r), n);
        }
        long words = (padded(p.dIn()) + 63) / 64;
        if (p.dropoutActive() && padRows(n) * words > MAX_ARRAY) {
            return over("dropout keep bits (64 columns a word)", padRows(n), words);
        }
        if (n <= RowGrads.MAX_ROWS) {
            if (n * p.dIn() > MAX_ARRAY) {
                return over("D(X) rows in fp32", n, p.dIn());
            }
            // dB's units: groups of NC columns with whole rows, else BackwardPass's early units of RowGrads.rowsPerUnit panels
            long panels = Split.byRows(p.n(), workers) ? Split.NC / NR
                    : RowGrads.rowsPerUnit(Panels.panels(p.dOut()), (long) NR * p.rank(), workers);
            long cols = Math.min(p.dOut(), panels * NR);
            if (n * cols > MAX_ARRAY) {
                return over("dY columns of a dB unit in fp32", n, cols);
            }
        } else {
            // GradGemm: a unit's columns are at most one group of NC, of d_in (dA) or d_out (dB)
            long cols = Math.min(Split.NC, padded(Math.max(p.dIn(), p.dOut())));
            if (padRows(r) * cols > MAX_ARRAY) {
                return over("dA and dB accumulators", padRows(r), cols);
            }
            long outRows = Math.min(Split.NC, p.dOut());
            if (outRows * r > MAX_ARRAY) {
                return over("a dB block in fp32", outRows, r);
            }
        }
        return null;
    }

    /** The first buffer of a merge that does not fit (as text), or null. */
    static String mergeProblem(int dOut, int dIn, int r) {
        String problem = dims(dIn, dOut, r);
        if (problem != null) {
            return problem;
        }
        if ((long) MR * dIn > MAX_ARRAY) {
            return over("W rows in fp32", MR, dIn);
        }
        if ((long) MR * r > MAX_ARRAY) {
            return over("B rows in fp32", MR, r);
        }
        return null;
    }

    /** The first of d_in, d_out, r above MAX_DIM (as text), or null. */
    private static String dims(int dIn, int dOut, int r) {
        String name = dIn > MAX_DIM ? "d_in=" + dIn : dOut > MAX_DIM ? "d_out=" + dOut : r > MAX_DIM ? "r=" + r : null;
        return name == null ? null : name + " is above " + MAX_DIM + ", the largest dimension the cpu backend takes"
                + " (its offsets are ints)";
    }

    /** Rows of the chunk buffers: a chunk's (whole rows), else all n padded to MR (columns split). */
    private static long rows(LoraParams p, int workers) {
        return Split.byRows(p.n(), workers) ? Split.chunkRows(p.n(), workers, p.dIn(), p.dOut()) : padRows(p.n());
    }

    private static String over(String buffer, long rows, long cols) {
        return buffer + " [" + rows + ", " + cols + "] = " + rows * cols + " elements, more than a Java array holds ("
                + MAX_ARRAY + ")";
    }

    private static IllegalArgumentException refusal(String call, LoraParams p, String problem, int maxRows) {
        String fix = maxRows > 0 ? "split the batch into calls of at most " + maxRows + (maxRows == 1 ? " row" : " rows")
                : "fewer rows do not help: d_in, d_out or r is too large for the cpu backend";
        return new IllegalArgumentException("cpu " + call + " (n=" + p.n() + ", d_in=" + p.dIn() + ", d_out=" + p.dOut()
                + ", r=" + p.rank() + "): " + problem + "; " + fix);
    }

    /**
     * A row count below n that {@code fits}, by bisection between fits(1) and n (0 when one row does
     * not fit): the largest one where the buffers grow with n, as the backward's [n, r] buffers do.
     */
    static int maxRows(IntPredicate fits, int n) {
        if (n <= 1 || !fits.test(1)) {
            return 0;
        }
        int lo = 1;
        int hi = n;
        while (hi - lo > 1) {
            int mid = lo + (hi - lo) / 2;
            if (fits.test(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    /** Split.padRows in long. */
    private static long padRows(long n) {
        return (n + MR - 1) / MR * MR;
    }

    /** d rounded up to whole panels, in long. */
    private static long padded(long d) {
        return (d + NR - 1) / NR * NR;
    }

    /** Split.ld in long. */
    private static long ld(long d) {
        return padded(d) + MicroKernel.L;
    }
}
