package dev.rslora.backend;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The oracle's backward against central finite differences of its own forward, in double:
 * L = Σ Y ⊙ G with G random, so dL/dX, dL/dA, dL/dB are what backward(dY = G) returns. For a
 * fixed dropout mask Y is linear in each of X, A and B separately, so central differences are
 * exact up to rounding and a large step h keeps that rounding small.
 */
class ReferenceGradientTest {
    private final ReferenceBackend ref = new ReferenceBackend();

    @ParameterizedTest(name = "n={0} dIn={1} dOut={2} r={3} p={4} bias={5}")
    @CsvSource({
            "1, 1, 1, 1, 0.0, false",
            "3, 5, 4, 2, 0.0, true",
            "4, 7, 3, 3, 0.3, true",
            "2, 6, 9, 5, 0.5, false",
    })
    void backwardMatchesCentralDifferences(int n, int dIn, int dOut, int r, float p, boolean withBias) {
        long seed = 1000L * n + 100L * dIn + 10L * dOut + r;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor bias = withBias ? TestData.uniform(arena, DType.F32, rng, 1, dOut) : null;
            Tensor a = TestData.uniform(arena, DType.F32, rng, 1, r, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 1, dOut, r);
            Tensor g = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
            LoraParams params = new LoraParams(n, dIn, dOut, r, 1.7, p, 99, 3, 2, true, true, GradMode.ASSIGN);
            FrozenWeight fw = ref.prepare(w, bias);

            Tensor dx = TestData.poisoned(arena, DType.F32, n, dIn);
            Tensor dA = TestData.poisoned(arena, DType.F32, r, dIn);
            Tensor dB = TestData.poisoned(arena, DType.F32, dOut, r);
            Tensor u = TestData.poisoned(arena, DType.F32, n, r);
            Tensor y = TestData.poisoned(arena, DType.F32, n, dOut);
            ref.forward(params, fw, x, a, b, u, y);
            ref.backward(params, fw, x, a, b, u, g, dx, dA, dB);

            Loss loss = () -> {
                Tensor yy = Tensor.allocate(arena, DType.F32, n, dOut);
                Tensor uu = Tensor.allocate(arena, DType.F32, n, r);
                ref.forward(params, fw, x, a, b, uu, yy);
                double s = 0;
                for (long i = 0; i < yy.numel(); i++) {
                    s += (double) yy.get(i) * g.get(i);
                }
                return s;
            };
            checkAgainstFiniteDifferences("dX", x, dx, loss, seed);
            checkAgainstFiniteDifferences("dA", a, dA, loss, seed);
            checkAgainstFiniteDifferences("dB", b, dB, loss, seed);
        }
    }

    interface Loss {
        double value();
    }

    private static void checkAgainstFiniteDifferences(String name, Tensor param, Tensor grad, Loss loss, long seed) {
        for (long i = 0; i < param.numel(); i++) {
            float orig = param.get(i);
            float h = 0.25f;
            param.set(i, orig + h);
            double up = loss.value();
            param.set(i, orig - h);
            double down = loss.value();
            param.set(i, orig);
            double fd = (up - down) / (2.0 * h);
            double got = grad.get(i);
            double tol = 1e-4 + 1e-4 * Math.abs(fd);
            assertTrue(Math.abs(got - fd) <= tol,
                    name + "[" + i + "] backward " + got + " vs finite difference " + fd + " (seed " + seed + ")");
        }
    }
}
