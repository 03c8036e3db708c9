package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.Allocations;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Once the JIT has compiled them, {@link AdapterRows#addY} (Y's adapter term) and
 * {@link AdapterRows#v} (V = dY·B, one row) allocate next to nothing per call at ranks with a masked
 * tail (r mod L ≠ 0), on a B [d_out, r] that ends at its last row, where a masked load would reach
 * past it. A vector boxed on the heap costs 64–80 bytes, so boxing shows as tens of KB per call:
 * 172–197 KB before 35c74d6 (AdapterRows.quad's comment). The interpreter and C1 box every vector,
 * so the calls repeat until a batch allocates under {@link #LIMIT} bytes per call, for up to
 * {@link #BUDGET_NANOS}; the test fails if no batch does. Ranks: L/2 (every value in the tail) and
 * 3L/2, at this run's tile shape (the scalar shape has no vectors). Run after the other cpu tests
 * (HeapTensorTest in particular), it failed at ee09665: 43 KB per addY and 37–49 KB per V, where
 * those tests' masked loads at tensors' ends had left C2 compiling the out-of-range path into
 * AdapterRows (AdapterRows.quad's comment).
 */
class AdapterRowsAllocationTest {
    /**
     * Bytes per call allowed once compiled: a vector boxed per group of L outputs (d_out / L of them,
     * 96 bytes each) would stay under it; one boxed per row and step of the chains, as before the
     * fix (49–197 KB per call), would not.
     */
    private static final long LIMIT = 4096;
    private static final long BUDGET_NANOS = Allocations.BUDGET_NANOS;
    private static final int BATCH = 2000;

    @ParameterizedTest(name = "r = {0}·L/2")
    @ValueSource(ints = {1, 3})
    void tailRanksAllocateNothingOnceCompiled(int halves) {
        var threads = allocationCounter();
        int r = halves * MicroKernel.L / 2;
        int dOut = 256;
        SplittableRandom rng = new SplittableRandom(r);
        try (Arena arena = Arena.ofConfined(); Scratch s = new Scratch()) {
            float[] values = new float[dOut * r];
            for (int c = 0; c < values.length; c++) {
                values[c] = (float) rng.nextDouble(-1, 1);
            }
            AdapterRows.Source b = AdapterRows.Source.of(Tensor.of(arena, DType.F32, values, dOut, r));
            float[] gu = new float[Split.padRows(1) * r + MicroKernel.L];
            int ldy = Split.ld(dOut);
            float[] dyc = new float[Split.padRows(1) * ldy];
            for (int c = 0; c < dOut; c++) {
                gu[c % r] = (float) rng.nextDouble(-1, 1);
                dyc[c] = (float) rng.nextDouble(-1, 1);
            }
            float[] yc = new float[ldy];
            float[] v = new float[Split.padRows(1) * r + MicroKernel.L];
            long start = System.nanoTime();
            long addY = Long.MAX_VALUE;
            long rowV = Long.MAX_VALUE;
            while (System.nanoTime() - start < BUDGET_NANOS) {
                long a0 = threads.getCurrentThreadAllocatedBytes();
                for (int k = 0; k < BATCH; k++) {
                    AdapterRows.addY(gu, 1, r, b, 0, dOut, s, yc, ldy);
                }
                long a1 = threads.getCurrentThreadAllocatedBytes();
                for (int k = 0; k < BATCH; k++) {
                    AdapterRows.v(dyc, ldy, 1, b, dOut, r, 0, r, s, v);
                }
                long a2 = threads.getCurrentThreadAllocatedBytes();
                addY = (a1 - a0) / BATCH;
                rowV = (a2 - a1) / BATCH;
                if (addY < LIMIT && rowV < LIMIT) {
                    return;
                }
            }
            fail("after " + BUDGET_NANOS / 1_000_000_000L + " s of calls at r = " + r + " (L = " + MicroKernel.L
                    + "), the last batch allocated " + addY + " bytes per addY and " + rowV + " per V (limit " + LIMIT + ")");
        }
    }

    /**
     * The same for {@link RowGrads#dB} and {@link RowGrads#dA} (the outer-product gradients of up to
     * RowGrads.MAX_ROWS rows) at n = 1 and 3, ranks L/2 and 3L/2 and d_in = 5L + L/2 (each row of dB,
     * and of dA, ends in a tail vector), on gradients that end at their last row, once assigned and
     * once accumulated into themselves (the old value read at the same end). The last rows' masked
     * loads, stores and old values take the JDK's out-of-range path (RowGrads.sumMasked says why):
     * this checks that the compiled code does not box for it.
     */
    @ParameterizedTest(name = "r = {0}·L/2")
    @ValueSource(ints = {1, 3})
    void rowGradientTailsAllocateNothingOnceCompiled(int halves) {
        var threads = allocationCounter();
        int r = halves * MicroKernel.L / 2;
        int dOut = 96;
        int dIn = 5 * MicroKernel.L + MicroKernel.L / 2;
        SplittableRandom rng = new SplittableRandom(31L * r);
        try (Arena arena = Arena.ofConfined(); Scratch s = new Scratch()) {
            for (int n : new int[] {1, 3}) {
                Tensor u = random(arena, rng, n, r);
                Tensor dy = random(arena, rng, n, dOut);
                Tensor gradB = random(arena, rng, dOut, r);
                Tensor gradA = random(arena, rng, r, dIn);
                Convert.Sink bOut = Convert.Sink.of(gradB);
                Convert.Sink aOut = Convert.Sink.of(gradA);
                float[] xb = new float[n * dIn];
                float[] v = new float[n * r];
                for (int c = 0; c < xb.length; c++) {
                    xb[c] = (float) rng.nextDouble(-1, 1);
                }
                for (int c = 0; c < v.length; c++) {
                    v[c] = (float) rng.nextDouble(-1, 1) / BATCH;
                }
                float gamma = 1f / BATCH;  // accumulating into itself: values stay bounded
                long start = System.nanoTime();
                long perB = Long.MAX_VALUE;
                long perA = Long.MAX_VALUE;
                while (System.nanoTime() - start < BUDGET_NANOS) {
                    long a0 = threads.getCurrentThreadAllocatedBytes();
                    for (int k = 0; k < BATCH; k++) {
                        RowGrads.dB(s, u, n, r, dy, dOut, 0, dOut, gamma, (k & 1) != 0, bOut);
                    }
                    long a1 = threads.getCurrentThreadAllocatedBytes();
                    for (int k = 0; k < BATCH; k++) {
                        RowGrads.dA(s, xb, v, n, r, dIn, 0, r, gamma, (k & 1) != 0, aOut);
                    }
                    long a2 = threads.getCurrentThreadAllocatedBytes();
                    perB = (a1 - a0) / BATCH;
                    perA = (a2 - a1) / BATCH;
                    if (perB < LIMIT && perA < LIMIT) {
                        break;
                    }
                }
                if (perB >= LIMIT || perA >= LIMIT) {
                    fail("after " + BUDGET_NANOS / 1_000_000_000L + " s of calls at n = " + n + ", r = " + r + " (L = "
                            + MicroKernel.L + "), the last batch allocated " + perB + " bytes per dB and " + perA
                            + " per dA (limit " + LIMIT + ")");
                }
            }
        }
    }

    /**
     * The thread MX bean that counts this thread's allocated bytes; skips the test at the scalar shape
     * (no vectors) and on a JVM that does not count them.
     */
    private static com.sun.management.ThreadMXBean allocationCounter() {
        assumeTrue(!MicroKernel.SCALAR, "the scalar shape uses no vectors");
        return Allocations.counter();
    }

    private static Tensor random(Arena arena, SplittableRandom rng, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rng.nextDouble(-1, 1));
        }
        return t;
    }
}
