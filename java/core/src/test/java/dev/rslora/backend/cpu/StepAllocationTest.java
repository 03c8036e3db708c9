package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.AllocationSites;
import dev.rslora.testing.Allocations;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Once compiled, a whole training step (forward and backward) and a decoding forward allocate next
 * to nothing, on every route the backend has: one row, a few rows (the row adapter and outer-product
 * gradients), tens of rows (register tiles over per-unit panels), more than {@link RowGrads#MAX_ROWS}
 * rows (cached panels, the transposes of V and U, the gradient GEMMs), and the merged route (N ≥ 2d,
 * no dropout); with and without dropout, fp32 and bf16, gradients assigned and accumulated; d_in,
 * d_out and r all ending in a partial vector at this run's tile shape. A vector operation that the
 * JIT leaves to the Vector API's Java fallback boxes every vector, tens of KB per step at these
 * sizes: a masked store, a gather or {@code VectorMask.fromLong} on a machine without them (NEON,
 * MicroKernel.PLAIN_MEMORY), or a 2-lane long compare (MaskBits.VECTOR_PHILOX): before those
 * fixes a step at p = 0.1, N = 8, d = 1024, r = 6 allocated 2.2 MB with 128-bit tiles; or a
 * method whose C2 graph grew past the inlining cutoff, where C2 kept virtual calls on boxed
 * vectors once other code had spoiled a shared profile (BlockTranspose's 16-lane block and
 * RowGrads.sum4Pairs: 8–51 KB per step with -XX:-UseFMA in some orders of the cpu tests;
 * {@link GraphSizeTest}); or a vector
 * passed to or returned from a call that C2 left out of line, boxed at every call (the cpu-no-inline
 * execution runs this test with none of the project's methods inlined: VectorBoundaryTest).
 * One worker, so that all of a step's allocation is this thread's. The problems run round-robin,
 * a batch of steps each, until every problem's last batch is under {@link #LIMIT} bytes per step
 * (the interpreter and C1 box every vector, so the first batches allocate), for up to
 * {@link #BUDGET_NANOS}.
 */
class StepAllocationTest {
    /**
     * Bytes per step a compiled step may allocate: 8 KB. It allocates about 2 KB (the jobs' lambdas,
     * the passes' objects), also with none of the backend's methods inlined (the cpu-no-inline
     * execution); a path left to the Java fallback, or a vector boxed at a call C2 left out of line,
     * tens of KB to MB (the leaks this test found: 14 KB – 2.2 MB per step).
     */
    private static final long TARGET = 8192;
    /**
     * Bytes per step that fail the test: {@link #TARGET}, or {@code rslora.test.stepAllocationLimit}.
     * Between the two the test passes and reports the residue and where it allocates
     * ({@link Allocations#report}; .ci/run prints the reports at its end). No execution of the build
     * sets it since 2026-12-07: the cpu-no-fma execution failed at 128 KB before, after three CI
     * runs there (66ea3f3, ab0913b, c620cb3) kept 8–37 KB per step at N ≥ 3, F32, after the other
     * cpu tests. The cause, C2 delaying vector calls in graphs past its inlining cutoff, is now
     * checked in every execution ({@link GraphSizeTest}: no C2 compile of the backend delays a call
     * that returns a vector), and that execution runs clean at 8 KB in surefire's random order
     * with seeds 6 (the order that showed the residue in 3 of 4 runs), 7, 8 and 9.
     */
    private static final long LIMIT = Long.getLong("rslora.test.stepAllocationLimit", TARGET);
    /** Twice {@link Allocations#BUDGET_NANOS}: 120 s unless {@code rslora.test.allocationBudgetSeconds} says. */
    private static final long BUDGET_NANOS = 2 * Allocations.BUDGET_NANOS;
    private static final int BATCH = 20;

    /** One problem: its name, training and decoding parameters, and tensors. */
    private record Problem(String name, LoraParams train, LoraParams decode, Tensor x, Tensor a, Tensor b, Tensor u,
                           Tensor y, Tensor dy, Tensor dx, Tensor gradA, Tensor gradB) {
    }

    @Test
    void compiledStepsAllocateNextToNothing() {
        var threads = Allocations.counter();
        int l = MicroKernel.SCALAR ? 4 : MicroKernel.L;
        int dIn = Math.max(2 * MicroKernel.NR, 64) + l / 2 + 1;  // a whole 64-column word of keep bits, then a tail
        int dOut = MicroKernel.NR + l / 2 + 1;
        int r = l + l / 2;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            SplittableRandom rng = new SplittableRandom(77);
            List<Problem> problems = new ArrayList<>();
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                FrozenWeight w = cpu.prepare(random(arena, rng, dtype, dOut, dIn), random(arena, rng, dtype, dOut));
                int merged = 2 * Math.max(dIn, dOut);  // N ≥ 2d: the merged route without dropout
                for (int n : new int[] {1, 3, RowGrads.MAX_ROWS - 1, RowGrads.MAX_ROWS + 5, merged}) {
                    for (float p : new float[] {0f, 0.1f}) {
                        // every route both ways: of each n's two problems one assigns, one accumulates
                        GradMode mode = (n + (p > 0 ? 1 : 0)) % 2 == 0 ? GradMode.ASSIGN : GradMode.ACCUMULATE;
                        double gamma = 2.0 / Math.sqrt(r);
                        problems.add(new Problem(dtype + " n=" + n + " p=" + p + " " + mode,
                                new LoraParams(n, dIn, dOut, r, gamma, p, 5L, 3L, 1, true, true, mode),
                                new LoraParams(n, dIn, dOut, r, gamma, p, 5L, 3L, 1, false, true, GradMode.ASSIGN),
                                random(arena, rng, dtype, n, dIn), random(arena, rng, dtype, r, dIn),
                                random(arena, rng, dtype, dOut, r), Tensor.allocate(arena, DType.F32, n, r),
                                Tensor.allocate(arena, dtype, n, dOut), random(arena, rng, dtype, n, dOut),
                                Tensor.allocate(arena, dtype, n, dIn), Tensor.allocate(arena, dtype, r, dIn),
                                Tensor.allocate(arena, dtype, dOut, r)));
                    }
                }
                long start = System.nanoTime();
                long[] perStep = new long[problems.size()];
                while (true) {
                    boolean all = true;
                    for (int k = 0; k < problems.size(); k++) {
                        Problem q = problems.get(k);
                        long a0 = threads.getCurrentThreadAllocatedBytes();
                        steps(cpu, w, q);
                        perStep[k] = (threads.getCurrentThreadAllocatedBytes() - a0) / BATCH;
                        all &= perStep[k] < TARGET;
                    }
                    if (all) {
                        break;
                    }
                    if (System.nanoTime() - start > BUDGET_NANOS) {
                        residue(cpu, w, problems, perStep, "after " + BUDGET_NANOS / 1_000_000_000L + " s, at d_in = " + dIn
                                + ", d_out = " + dOut + ", r = " + r + " (" + MicroKernel.BITS + "-bit tiles), ");
                        break;
                    }
                }
                problems.clear();
                w.close();
            }
        }
    }

    /**
     * The problems whose last batch allocated {@link #TARGET} bytes or more per step, and where
     * their steps allocate (so that a run on a machine we cannot rerun on, CI, says which method's
     * vectors are boxed): the failure, where any reached {@link #LIMIT}, else a report.
     */
    private static void residue(CpuBackend cpu, FrozenWeight w, List<Problem> problems, long[] perStep, String when) {
        StringBuilder over = new StringBuilder();
        List<Problem> still = new ArrayList<>();
        long most = 0;
        for (int k = 0; k < problems.size(); k++) {
            if (perStep[k] >= TARGET) {
                over.append("\n  ").append(problems.get(k).name()).append(": ").append(perStep[k]).append(" B");
                still.add(problems.get(k));
                most = Math.max(most, perStep[k]);
            }
        }
        String sites = AllocationSites.of(() -> still.forEach(q -> steps(cpu, w, q)), 12);
        String text = when + "these still allocated " + TARGET + " bytes or more per step (training step and decoding forward):"
                + over + "\n" + sites;
        if (most >= LIMIT) {
            fail(text);
        }
        Allocations.report("StepAllocationTest (under this run's limit, " + LIMIT + " B): " + text);
    }

    /** {@link #BATCH} training steps and decoding forwards of one problem. */
    private static void steps(CpuBackend cpu, FrozenWeight w, Problem q) {
        for (int i = 0; i < BATCH; i++) {
            q.a().markWritten();  // the optimizer's update: the adapter panels are repacked
            q.b().markWritten();
            cpu.forward(q.train(), w, q.x(), q.a(), q.b(), q.u(), q.y());
            cpu.backward(q.train(), w, q.x(), q.a(), q.b(), q.u(), q.dy(), q.dx(), q.gradA(), q.gradB());
            cpu.forward(q.decode(), w, q.x(), q.a(), q.b(), q.u(), q.y());
        }
    }

    private static Tensor random(Arena arena, SplittableRandom rng, DType dtype, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rng.nextDouble(-1, 1));
        }
        return t;
    }
}
