package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * The child JVM of {@link GraphSizeTest}: one worker through every route of the backend on
 * {@link StepAllocationTest}'s problems (one row, a few rows, tens of rows, more than
 * {@link RowGrads#MAX_ROWS}, the merged route; fp32 and bf16, with and without dropout, gradients
 * assigned and accumulated; every dimension ending in a partial vector), long enough for C2 to
 * compile them, then {@link CompileTiersWorkload}'s cases (two and eight workers, the column split
 * and the gradient GEMMs, fp16). The test's positive control ({@link OversizedVectorMethod}) runs at the start and in every round.
 * Prints "done" at the end.
 */
public final class GraphSizeWorkload {
    private GraphSizeWorkload() {
    }

    public static void main(String[] args) throws ReflectiveOperationException, java.net.MalformedURLException {
        int rounds = Integer.parseInt(args[0]);
        // the positive control, at the start and again in every round: C2 compiles a method once it
        // has run some 15 000 times, a number C2 raises while its queue is long (a CI run's start)
        float[] control = new float[12 * MicroKernel.SPECIES.length()];
        runControl(control, 20_000);
        int l = MicroKernel.SCALAR ? 4 : MicroKernel.L;
        int dIn = Math.max(2 * MicroKernel.NR, 64) + l / 2 + 1;
        int dOut = MicroKernel.NR + l / 2 + 1;
        int r = l + l / 2;
        SplittableRandom rng = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                FrozenWeight w = cpu.prepare(TestData.uniform(arena, dtype, rng, 1, dOut, dIn), TestData.uniform(arena, dtype, rng, 1, dOut));
                for (int round = 0; round < rounds; round++) {
                    runControl(control, 2_000);
                    for (int n : new int[] {1, 3, RowGrads.MAX_ROWS - 1, RowGrads.MAX_ROWS + 5, 2 * Math.max(dIn, dOut)}) {
                        for (float p : new float[] {0f, 0.1f}) {
                            GradMode mode = (n + round + (p > 0 ? 1 : 0)) % 2 == 0 ? GradMode.ASSIGN : GradMode.ACCUMULATE;
                            LoraParams train = new LoraParams(n, dIn, dOut, r, 0.5, p, 5L, 3L, 1, true, true, mode);
                            LoraParams decode = new LoraParams(n, dIn, dOut, r, 0.5, p, 5L, 3L, 1, false, true, GradMode.ASSIGN);
                            try (Arena step = Arena.ofConfined()) {
                                Tensor x = TestData.uniform(step, dtype, rng, 1, n, dIn);
                                Tensor a = TestData.uniform(step, dtype, rng, 1, r, dIn);
                                Tensor b = TestData.uniform(step, dtype, rng, 1, dOut, r);
                                Tensor u = Tensor.allocate(step, DType.F32, n, r);
                                Tensor y = Tensor.allocate(step, dtype, n, dOut);
                                Tensor dy = TestData.uniform(step, dtype, rng, 1, n, dOut);
                                Tensor dx = Tensor.allocate(step, dtype, n, dIn);
                                Tensor gradA = TestData.uniform(step, dtype, rng, 1, r, dIn);
                                Tensor gradB = TestData.uniform(step, dtype, rng, 1, dOut, r);
                                for (int i = 0; i < 10; i++) {
                                    a.markWritten();
                                    b.markWritten();
                                    cpu.forward(train, w, x, a, b, u, y);
                                    cpu.backward(train, w, x, a, b, u, dy, dx, gradA, gradB);
                                    cpu.forward(decode, w, x, a, b, u, y);
                                }
                            }
                        }
                    }
                }
                w.close();
            }
        }
        CompileTiersWorkload.main(new String[] {"300"});
    }

    private static void runControl(float[] buffer, int times) {
        for (int i = 0; i < times; i++) {
            OversizedVectorMethod.run(buffer, buffer, 0.5f);
        }
    }
}
