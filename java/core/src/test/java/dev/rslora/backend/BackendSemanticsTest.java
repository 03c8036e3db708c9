package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** SPEC.md §6 and §8 facts every available host backend must satisfy. */
class BackendSemanticsTest {

    static Stream<String> backends() {
        return Stream.of("reference", "cpu");
    }

    private static Backend backend(String name) {
        var a = Backends.probeAll().get(name);
        Assumptions.assumeTrue(a.available(), () -> "backend " + name + " unavailable: " + a.detail());
        return Backends.get(name);
    }

    private static LoraParams params(int n, int dIn, int dOut, int r, double gamma) {
        return new LoraParams(n, dIn, dOut, r, gamma, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
    }

    /** SPEC.md §8 worked vector, LoRA (γ = α/r = 2) and rsLoRA (γ = α/√r = 2√2). */
    @ParameterizedTest
    @MethodSource("backends")
    void peftWorkedVector(String name) {
        Backend be = backend(name);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4}, 1, 4);
            Tensor w = Tensor.of(arena, DType.F32, new float[] {.1f, .2f, .3f, .4f, .5f, .6f, .7f, .8f, -.1f, -.2f, -.3f, -.4f}, 3, 4);
            Tensor bias = Tensor.of(arena, DType.F32, new float[] {.01f, .02f, .03f}, 3);
            Tensor a = Tensor.of(arena, DType.F32, new float[] {.1f, 0, 0, .1f, 0, .2f, .2f, 0}, 2, 4);
            Tensor b = Tensor.of(arena, DType.F32, new float[] {1, 0, 0, 1, 1, 1}, 3, 2);
            double alpha = 4;
            double[][] want = {
                    {4.01, 9.02, 0.03},
                    {4.424213562373095, 9.84842712474619, 1.2726406871192846},
            };
            double[] gammas = {dev.rslora.core.Scaling.LORA.gamma(alpha, 2), dev.rslora.core.Scaling.RSLORA.gamma(alpha, 2)};
            assertEquals(2.0, gammas[0]);
            assertEquals(2.8284271247461903, gammas[1], 1e-15);
            try (FrozenWeight fw = be.prepare(w, bias)) {
                for (int s = 0; s < 2; s++) {
                    Tensor y = TestData.poisoned(arena, DType.F32, 1, 3);
                    Tensor u = TestData.poisoned(arena, DType.F32, 1, 2);
                    be.forward(params(1, 4, 3, 2, gammas[s]), fw, x, a, b, u, y);
                    for (int o = 0; o < 3; o++) {
                        assertEquals(want[s][o], y.get(0, o), 2e-6, name + " scaling " + s + " y[" + o + "]");
                    }
                }
            }
        }
    }

    /** B = 0 makes the adapter a no-op: Y equals the base output bit for bit. */
    @ParameterizedTest
    @MethodSource("backends")
    void zeroBGivesExactlyTheBaseOutput(String name) {
        Backend be = backend(name);
        SplittableRandom rng = new SplittableRandom(7);
        for (DType dt : DType.values()) {
            try (Arena arena = Arena.ofShared()) {
                int n = 9, dIn = 37, dOut = 21, r = 4;
                Tensor x = TestData.uniform(arena, dt, rng, 1, n, dIn);
                Tensor w = TestData.uniform(arena, dt, rng, 1, dOut, dIn);
                Tensor bias = TestData.uniform(arena, dt, rng, 1, dOut);
                Tensor a = TestData.uniform(arena, DType.F32, rng, 1, r, dIn);
                Tensor b = Tensor.allocate(arena, DType.F32, dOut, r);
                try (FrozenWeight fw = be.prepare(w, bias)) {
                    Tensor y = TestData.poisoned(arena, dt, n, dOut);
                    Tensor base = TestData.poisoned(arena, dt, n, dOut);
                    LoraParams p = new LoraParams(n, dIn, dOut, r, 3.0, 0.1f, 1, 1, 1, true, true, GradMode.ASSIGN);
                    be.forward(p, fw, x, a, b, TestData.poisoned(arena, DType.F32, n, r), y);
                    LoraParams baseOnly = new LoraParams(n, dIn, dOut, r, 3.0, 0.1f, 1, 1, 1, true, false, GradMode.ASSIGN);
                    be.forward(baseOnly, fw, x, null, null, null, base);
                    assertEquals(-1L, y.segment().mismatch(base.segment()), name + " " + dt + ": B = 0 must give the base output exactly");
                }
            }
        }
    }

    /** Merge then forward ≈ unmerged forward; unmerge restores W (F32: within a few ulps). */
    @ParameterizedTest
    @MethodSource("backends")
    void mergeMatchesUnmergedForwardAndUnmergeRestoresW(String name) {
        Backend be = backend(name);
        SplittableRandom rng = new SplittableRandom(11);
        try (Arena arena = Arena.ofShared()) {
            int n = 5, dIn = 19, dOut = 13, r = 3;
            double gamma = 8 / Math.sqrt(r);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            float[] w0 = w.toFloatArray();
            Tensor a = TestData.uniform(arena, DType.F32, rng, 0.3, r, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 0.3, dOut, r);
            try (FrozenWeight fw = be.prepare(w, null)) {
                Tensor yLora = Tensor.allocate(arena, DType.F32, n, dOut);
                LoraParams eval = new LoraParams(n, dIn, dOut, r, gamma, 0f, 0, 0, 0, false, true, GradMode.ASSIGN);
                be.forward(eval, fw, x, a, b, Tensor.allocate(arena, DType.F32, n, r), yLora);
                be.merge(fw, a, b, gamma, +1);
                Tensor yMerged = Tensor.allocate(arena, DType.F32, n, dOut);
                LoraParams merged = new LoraParams(n, dIn, dOut, r, gamma, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
                be.forward(merged, fw, x, null, null, null, yMerged);
                for (int i = 0; i < yLora.numel(); i++) {
                    assertEquals(yLora.get(i), yMerged.get(i), 1e-5 + 1e-5 * Math.abs(yLora.get(i)), name + " y[" + i + "]");
                }
                be.merge(fw, a, b, gamma, -1);
                for (int i = 0; i < w0.length; i++) {
                    assertEquals(w0[i], w.get(i), 4 * Math.ulp(Math.max(Math.abs(w0[i]), 1f)), name + " W[" + i + "] after unmerge");
                }
            }
        }
    }

    /** Accumulate mode adds to the existing gradients; assign overwrites them. */
    @ParameterizedTest
    @MethodSource("backends")
    void accumulateAddsAndAssignOverwrites(String name) {
        Backend be = backend(name);
        SplittableRandom rng = new SplittableRandom(5);
        try (Arena arena = Arena.ofShared()) {
            int n = 6, dIn = 10, dOut = 8, r = 2;
            Tensor x = TestData.integers(arena, DType.F32, rng, 3, n, dIn);
            Tensor w = TestData.integers(arena, DType.F32, rng, 3, dOut, dIn);
            Tensor a = TestData.integers(arena, DType.F32, rng, 3, r, dIn);
            Tensor b = TestData.integers(arena, DType.F32, rng, 3, dOut, r);
            Tensor dy = TestData.integers(arena, DType.F32, rng, 3, n, dOut);
            try (FrozenWeight fw = be.prepare(w, null)) {
                Tensor u = Tensor.allocate(arena, DType.F32, n, r);
                LoraParams assign = new LoraParams(n, dIn, dOut, r, 2.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
                LoraParams acc = new LoraParams(n, dIn, dOut, r, 2.0, 0f, 0, 0, 0, true, true, GradMode.ACCUMULATE);
                be.forward(assign, fw, x, a, b, u, Tensor.allocate(arena, DType.F32, n, dOut));
                Tensor dA = TestData.poisoned(arena, DType.F32, r, dIn);
                Tensor dB = TestData.poisoned(arena, DType.F32, dOut, r);
                be.backward(assign, fw, x, a, b, u, dy, null, dA, dB);
                float[] dA1 = dA.toFloatArray();
                float[] dB1 = dB.toFloatArray();
                be.backward(acc, fw, x, a, b, u, dy, null, dA, dB);
                for (int i = 0; i < dA1.length; i++) {
                    assertEquals(2 * dA1[i], dA.get(i), name + " dA[" + i + "]");
                }
                for (int i = 0; i < dB1.length; i++) {
                    assertEquals(2 * dB1[i], dB.get(i), name + " dB[" + i + "]");
                }
                be.backward(assign, fw, x, a, b, u, dy, null, dA, dB);
                for (int i = 0; i < dA1.length; i++) {
                    assertEquals(dA1[i], dA.get(i));
                }
            }
        }
    }
}
