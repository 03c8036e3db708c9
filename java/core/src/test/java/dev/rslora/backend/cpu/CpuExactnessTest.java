package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bit-level properties of the cpu backend: exact agreement with the oracle on integer data,
 * the dropout mask it applies, and determinism (repeated runs, and the serial fallback for
 * tensors the workers may not touch, give identical bits).
 */
class CpuExactnessTest {
    private static final long BASE_SEED = Long.getLong("rslora.test.seed", 0xE8AC7L);
    private static CpuBackend cpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    /** Small integers in [-3, 3], never all zeros. */
    private static Tensor ints(Arena arena, SplittableRandom rng, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, rng.nextInt(-3, 4));
        }
        t.set(0, 1f);
        return t;
    }

    private record Run(Tensor y, Tensor u, Tensor dx, Tensor gA, Tensor gB) {
    }

    private static Run run(dev.rslora.backend.Backend backend, Arena arena, LoraParams p, Tensor w, Tensor bias,
                           Tensor x, Tensor a, Tensor b, Tensor dy, Tensor gA0, Tensor gB0) {
        try (FrozenWeight fw = backend.prepare(w, bias)) {
            Tensor y = Tensor.allocate(arena, DType.F32, p.n(), p.dOut());
            Tensor u = Tensor.allocate(arena, DType.F32, p.n(), p.rank());
            Tensor dx = Tensor.allocate(arena, DType.F32, p.n(), p.dIn());
            Tensor gA = Tensor.allocate(arena, DType.F32, p.rank(), p.dIn());
            Tensor gB = Tensor.allocate(arena, DType.F32, p.dOut(), p.rank());
            y.fill(Float.NaN);
            u.fill(Float.NaN);
            dx.fill(Float.NaN);
            if (p.gradMode() == GradMode.ACCUMULATE) {
                gA.copyFrom(gA0);
                gB.copyFrom(gB0);
            } else {
                gA.fill(Float.NaN);
                gB.fill(Float.NaN);
            }
            backend.forward(p, fw, x, a, b, u, y);
            backend.backward(p, fw, x, a, b, u, dy, dx, gA, gB);
            return new Run(y, u, dx, gA, gB);
        }
    }

    /**
     * Integer inputs, γ = 1/2 and p ∈ {0, 1/2} (scale 2) keep every fp32 partial sum exact, so the
     * cpu backend must equal the oracle bit for bit whatever its summation order. Covers the row
     * path (n ≥ 32) and the column path, assign and accumulate.
     */
    @ParameterizedTest(name = "n={0} dIn={1} dOut={2} r={3} p={4} {5}")
    @CsvSource({"37, 70, 45, 5, 0.0, ASSIGN", "37, 70, 45, 5, 0.5, ACCUMULATE", "100, 129, 33, 40, 0.5, ASSIGN",
            "5, 129, 64, 33, 0.5, ACCUMULATE", "1, 1, 1, 1, 0.0, ASSIGN"})
    void integerInputsMatchReferenceBitForBit(int n, int dIn, int dOut, int r, float p, GradMode mode) {
        long seed = BASE_SEED + n * 31L + r;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            LoraParams params = new LoraParams(n, dIn, dOut, r, 0.5, p, seed, 3, 2, true, true, mode);
            Tensor w = ints(arena, rng, dOut, dIn);
            Tensor bias = ints(arena, rng, dOut);
            Tensor x = ints(arena, rng, n, dIn);
            Tensor a = ints(arena, rng, r, dIn);
            Tensor b = ints(arena, rng, dOut, r);
            Tensor dy = ints(arena, rng, n, dOut);
            Tensor gA0 = ints(arena, rng, r, dIn);
            Tensor gB0 = ints(arena, rng, dOut, r);
            Run ref = run(new ReferenceBackend(), arena, params, w, bias, x, a, b, dy, gA0, gB0);
            Run got = run(cpu, arena, params, w, bias, x, a, b, dy, gA0, gB0);
            String ctx = "seed=" + seed;
            Compare.bitEqual("U", got.u(), ref.u(), ctx);
            Compare.bitEqual("Y", got.y(), ref.y(), ctx);
            Compare.bitEqual("dX", got.dx(), ref.dx(), ctx);
            Compare.bitEqual("dA", got.gA(), ref.gA(), ctx);
            Compare.bitEqual("dB", got.gB(), ref.gB(), ctx);
        }
    }

    /**
     * With p = 0.5, A = identity (r = d_in) and X = 1, U = D(X)·Aᵀ is the mask itself: 2 where
     * {@link DropoutMask#keep} says kept, 0 where dropped, on both the row and the column path.
     */
    @ParameterizedTest(name = "n={0} d={1}")
    @CsvSource({"37, 70", "5, 129", "64, 33"})
    void uExposesTheReferenceMask(int n, int d) {
        try (Arena arena = Arena.ofShared()) {
            LoraParams params = new LoraParams(n, d, 3, d, 1.0, 0.5f, 0x1234_5678_9ABCL, 17, 5, true, true,
                    GradMode.ASSIGN);
            Tensor w = Tensor.allocate(arena, DType.F32, 3, d);
            Tensor x = Tensor.allocate(arena, DType.F32, n, d);
            x.fill(1f);
            Tensor a = Tensor.allocate(arena, DType.F32, d, d);
            for (int j = 0; j < d; j++) {
                a.set(j, j, 1f);
            }
            Tensor b = Tensor.allocate(arena, DType.F32, 3, d);
            Tensor u = Tensor.allocate(arena, DType.F32, n, d);
            u.fill(Float.NaN);
            Tensor y = Tensor.allocate(arena, DType.F32, n, 3);
            try (FrozenWeight fw = cpu.prepare(w, null)) {
                cpu.forward(params, fw, x, a, b, u, y);
            }
            DropoutMask mask = params.mask();
            int kept = 0;
            for (int i = 0; i < n; i++) {
                for (int k = 0; k < d; k++) {
                    float expected = mask.keep(i, k) ? 2f : 0f;
                    assertEquals(expected, u.get(i, k), "mask at (" + i + ", " + k + ")");
                    kept += mask.keep(i, k) ? 1 : 0;
                }
            }
            double frac = kept / (double) (n * d);
            assertEquals(0.5, frac, 0.1, "kept fraction");
        }
    }

    /**
     * Two runs on the same inputs give identical bits (row path with several chunks per worker,
     * and the column path), and so does the serial fallback used when the inputs live in a
     * confined arena the workers may not touch.
     */
    @ParameterizedTest(name = "n={0}")
    @CsvSource({"1025", "9"})
    void repeatedAndSerialRunsAreBitIdentical(int n) {
        long seed = BASE_SEED * 7 + n;
        try (LayerFixture f = new LayerFixture(n, 129, 200, 24, DType.F32, 0.1f, GradMode.ACCUMULATE, true, seed);
             Arena confined = Arena.ofConfined()) {
            LayerFixture.Outputs first = f.run(cpu);
            LayerFixture.Outputs second = f.run(cpu);
            String ctx = f.describe();
            Compare.bitEqual("Y", second.y(), first.y(), ctx);
            Compare.bitEqual("U", second.u(), first.u(), ctx);
            Compare.bitEqual("dX", second.dx(), first.dx(), ctx);
            Compare.bitEqual("dA", second.gradA(), first.gradA(), ctx);
            Compare.bitEqual("dB", second.gradB(), first.gradB(), ctx);

            // The same problem with every tensor in a confined arena: runs on the caller only.
            Tensor x = f.x.to(confined, DType.F32);
            Tensor a = f.a.to(confined, DType.F32);
            Tensor b = f.b.to(confined, DType.F32);
            Tensor dy = f.dy.to(confined, DType.F32);
            Tensor u = Tensor.allocate(confined, DType.F32, n, f.r);
            Tensor y = Tensor.allocate(confined, DType.F32, n, f.dOut);
            Tensor dx = Tensor.allocate(confined, DType.F32, n, f.dIn);
            Tensor gA = f.gradA0.to(confined, DType.F32);
            Tensor gB = f.gradB0.to(confined, DType.F32);
            try (FrozenWeight fw = cpu.prepare(f.w.to(confined, DType.F32), f.bias.to(confined, DType.F32))) {
                cpu.forward(f.params, fw, x, a, b, u, y);
                cpu.backward(f.params, fw, x, a, b, u, dy, dx, gA, gB);
            }
            Compare.bitEqual("serial Y", y, first.y(), ctx);
            Compare.bitEqual("serial dX", dx, first.dx(), ctx);
            Compare.bitEqual("serial dA", gA, first.gradA(), ctx);
            Compare.bitEqual("serial dB", gB, first.gradB(), ctx);
        }
    }

    /** A second instance with the same worker count reproduces the bits of the first. */
    @Test
    void anotherInstanceWithTheSameWorkersIsBitIdentical() {
        try (LayerFixture f = new LayerFixture(300, 64, 96, 16, DType.BF16, 0.1f, GradMode.ASSIGN, false, BASE_SEED);
             CpuBackend other = new CpuBackend(2)) {
            LayerFixture.Outputs first = f.run(cpu);
            LayerFixture.Outputs second = f.run(other);
            Compare.bitEqual("Y", second.y(), first.y(), f.describe());
            Compare.bitEqual("dX", second.dx(), first.dx(), f.describe());
            Compare.bitEqual("dA", second.gradA(), first.gradA(), f.describe());
            Compare.bitEqual("dB", second.gradB(), first.gradB(), f.describe());
        }
    }

    /**
     * Each output element is one fixed sequence of fp32 operations whoever computes it, so 1, 3
     * and 4 workers give the bits of 2, on the small-N and the row path (dropout, accumulate); n = 8
     * with the scalar tile's 4-row tiles and one worker takes the row path with the N ≤ 8 gradients.
     */
    @ParameterizedTest(name = "n={0}")
    @CsvSource({"1", "5", "8", "20", "37", "300"})
    void resultsDoNotDependOnTheWorkerCount(int n) {
        try (LayerFixture f = new LayerFixture(n, 129, 70, 20, DType.F32, 0.1f, GradMode.ACCUMULATE, true, BASE_SEED + n)) {
            assertWorkerCountsGiveTheBitsOfTwo(f, 1, 3, 4);
        }
    }

    /** Each worker count's outputs equal, bit for bit, those of the shared two-worker backend. */
    private static void assertWorkerCountsGiveTheBitsOfTwo(LayerFixture f, int... workerCounts) {
        LayerFixture.Outputs two = f.run(cpu);
        for (int threads : workerCounts) {
            try (CpuBackend other = new CpuBackend(threads)) {
                LayerFixture.Outputs got = f.run(other);
                String ctx = f.describe() + " threads=" + threads;
                Compare.bitEqual("Y", got.y(), two.y(), ctx);
                Compare.bitEqual("U", got.u(), two.u(), ctx);
                Compare.bitEqual("dX", got.dx(), two.dx(), ctx);
                Compare.bitEqual("dA", got.gradA(), two.gradA(), ctx);
                Compare.bitEqual("dB", got.gradB(), two.gradB(), ctx);
            }
        }
    }

    /**
     * A W beyond {@link Split#W_CACHED_BYTES} (2100 × 1050 fp32, 8.8 MB packed) is cut into chunks
     * of more than MC rows, a different number for each worker count (n = 600: 200 rows with one
     * worker, 152 with two, 104 with three with 512-bit tiles): the bits do not change.
     */
    @Test
    void largeWeightsChunkedDifferentlyGiveTheSameBits() {
        int n = 600;
        try (LayerFixture f = new LayerFixture(n, 2100, 1050, 16, DType.F32, 0.1f, GradMode.ACCUMULATE, true, BASE_SEED + 5)) {
            assertTrue(Panels.bytes(1050, 2100) > Split.W_CACHED_BYTES && Split.chunkRows(n, 1, 2100, 1050) > Split.MC,
                    "the case must take the streamed-W chunks: " + Split.chunkRows(n, 1, 2100, 1050) + " rows");
            assertWorkerCountsGiveTheBitsOfTwo(f, 1, 3);
        }
    }
}
