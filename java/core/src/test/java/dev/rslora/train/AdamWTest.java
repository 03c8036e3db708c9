package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

class AdamWTest {
    private static final int STEPS = 100;

    static Stream<Arguments> settings() {
        AdamWConfig base = AdamWConfig.torchDefaults();
        return Stream.of(
                // config, gradient scale, parameter dtype
                Arguments.of(base, 1.0, DType.F32),
                Arguments.of(base.withWeightDecay(0.0).withLr(5e-5), 0.01, DType.F32),
                Arguments.of(base.withWeightDecay(0.5).withLr(3e-3), 1.0, DType.F32),
                // eps comparable to √v: only the torch placement of eps (after bias correction) passes
                Arguments.of(base.withEps(1e-4), 1e-4, DType.F32),
                Arguments.of(base.withBetas(0.5, 0.9).withLr(1e-2), 3.0, DType.F32),
                Arguments.of(base, 1.0, DType.BF16),
                Arguments.of(base.withEps(1e-4).withWeightDecay(0.1), 1e-4, DType.BF16),
                Arguments.of(base.withLr(2e-4), 0.5, DType.F16));
    }

    /** 100 steps on random parameters and fresh random gradients (values spread over decades) vs the double oracle. */
    @ParameterizedTest
    @MethodSource("settings")
    void matchesTheDoubleReferenceOverManySteps(AdamWConfig config, double gradScale, DType dtype) {
        long seed = 0x5EED_0000L + config.hashCode() + dtype.ordinal();
        SplittableRandom rng = new SplittableRandom(seed);
        long[][] shapes = {{7, 13}, {1}, {33, 31}, {1025}};
        try (Arena arena = Arena.ofShared()) {
            List<Parameter> params = new ArrayList<>();
            List<AdamWReference> refs = new ArrayList<>();
            for (int k = 0; k < shapes.length; k++) {
                Tensor value = TestData.uniform(arena, dtype, rng, 1.0, shapes[k]);
                Tensor grad = Tensor.allocate(arena, dtype, shapes[k]);
                params.add(new Parameter("p" + k, value, grad));
                refs.add(new AdamWReference(value.toFloatArray(), config));
            }
            try (AdamW opt = new AdamW(params, config)) {
                double budget = 0;
                for (int t = 1; t <= STEPS; t++) {
                    double largestUpdate = 0;
                    for (int k = 0; k < params.size(); k++) {
                        Tensor g = params.get(k).grad();
                        for (long i = 0; i < g.numel(); i++) {
                            // log-uniform magnitudes over 4 decades, random sign; some exact zeros
                            double mag = rng.nextInt(50) == 0 ? 0 : gradScale * Math.pow(10, rng.nextDouble(-2, 2));
                            g.set(i, (float) (rng.nextBoolean() ? mag : -mag));
                        }
                        largestUpdate = Math.max(largestUpdate, refs.get(k).step(g.toFloatArray()));
                    }
                    opt.step();
                    // per step: two fp32 roundings of p (|p| < 2) and a few fp32 ulps of relative error in the update
                    budget += 2 * Math.ulp(2f) + 1e-5 * largestUpdate;
                    if (t % 10 == 0 || t == 1) {
                        compare(params, refs, dtype, opt, budget, seed, t);
                    }
                }
                assertEquals(STEPS, opt.stepCount());
            }
        }
    }

    private static void compare(List<Parameter> params, List<AdamWReference> refs, DType dtype, AdamW opt, double tol,
                                long seed, int t) {
        AdamWState state = opt.snapshot();
        for (int k = 0; k < params.size(); k++) {
            float[] master = state.entries().get(k).master();
            float[] got = dtype == DType.F32 ? params.get(k).value().toFloatArray() : master;
            assertTrue(dtype == DType.F32 ? master == null : master != null, "master weights only for 16-bit parameters");
            double[] want = refs.get(k).p;
            for (int i = 0; i < want.length; i++) {
                if (!(Math.abs(got[i] - want[i]) <= tol)) {
                    fail("seed=" + seed + " step " + t + " param p" + k + "[" + i + "] " + dtype + ": got " + got[i]
                            + ", reference " + want[i] + ", tolerance " + tol);
                }
                if (dtype != DType.F32) {
                    // the parameter is exactly the rounded master
                    assertEquals(dtype.round(master[i]), params.get(k).value().get(i), "seed=" + seed + " step " + t);
                }
            }
        }
    }

    /**
     * A NaN or ±Inf gradient was stepped through silently: AdamW wrote NaN into the element and its moments,
     * Adafactor into the whole parameter and its factored state for good. Both now refuse the step before
     * writing anything (values, state and step count as before), naming the parameter, element and value;
     * the vector probe's whole vectors and the scalar tail, F32 and BF16 gradients, are each checked.
     */
    @Test
    void aGradientHoldingNanOrInfIsRefusedBeforeAnythingIsWritten() {
        try (Arena arena = Arena.ofShared()) {
            for (DType gradType : new DType[] {DType.F32, DType.BF16}) {
                for (int at : new int[] {3, 36}) {  // inside the first whole vector, and in the tail of 37 elements
                    for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
                        Tensor p = Tensor.allocate(arena, DType.F32, 37);
                        p.fill(0.5f);
                        Tensor g = Tensor.allocate(arena, gradType, 37);
                        g.fill(0.1f);
                        List<Parameter> ps = List.of(new Parameter("w", p, g));
                        try (AdamW adamw = new AdamW(ps, new AdamWConfig(1e-2, 0.9, 0.999, 1e-8, 0.01));
                             Adafactor ada = new Adafactor(ps, AdafactorConfig.hfDefaults())) {
                            adamw.step();
                            ada.step();
                            float[] before = p.toFloatArray();
                            g.set(at, bad);
                            for (Optimizer o : new Optimizer[] {adamw, ada}) {
                                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, o::step);
                                assertTrue(e.getMessage().startsWith("parameter 'w': its gradient holds " + bad + " at element " + at
                                        + " (flat index): nothing was updated"), e.getMessage());
                                assertEquals(1, o.stepCount(), "no step counted");
                            }
                            assertArrayEquals(before, p.toFloatArray(), "nothing written");
                            g.set(at, 0.1f);
                            adamw.step();
                            ada.step();
                            for (float v : p.toFloatArray()) {
                                assertTrue(Float.isFinite(v), "the state stayed clean: " + v);
                            }
                        }
                    }
                }
            }
        }
    }

    /** Step 1 from zero moments: m̂ = g and v̂ = g², so p ← p·(1 − lr·λ) − lr·g/(|g| + eps), i.e. lr·sign(g) with eps = 0. */
    @Test
    void firstStepIsLrTimesSignOfGradientAfterDecay() {
        AdamWConfig c = new AdamWConfig(0.01, 0.9, 0.999, 0.0, 0.1);
        try (Arena arena = Arena.ofShared()) {
            Tensor p = Tensor.of(arena, DType.F32, new float[] {1f, -2f, 0.5f}, 3);
            Tensor g = Tensor.of(arena, DType.F32, new float[] {3f, -1e-3f, 0f}, 3);
            try (AdamW opt = new AdamW(List.of(new Parameter("p", p, g)), c)) {
                opt.step();
            }
            // p·(1 − 0.01·0.1) − 0.01·sign(g); a zero gradient with eps = 0 gives 0/0 = NaN, as in PyTorch
            assertEquals(1f * 0.999f - 0.01f, p.get(0), 1e-7);
            assertEquals(-2f * 0.999f + 0.01f, p.get(1), 1e-7);
            assertTrue(Float.isNaN(p.get(2)));
        }
    }

    /**
     * β1 = 0: torch's {@code exp_avg.lerp_(g, 1)} takes the weight ≥ 0.5 branch {@code g − (g − m)·(1 − w)},
     * so m becomes g exactly; {@code m + 1·(g − m)} would cancel a small g against a large old m.
     */
    @Test
    void beta1ZeroKeepsTheGradientAsTheFirstMomentExactly() {
        AdamWConfig c = new AdamWConfig(0.0, 0.0, 0.999, 1e-8, 0.0);
        for (boolean scalar : new boolean[] {true, false}) {
            try (Arena arena = Arena.ofShared()) {
                int n = 33;  // past a 16-lane vector loop, with a scalar tail
                Tensor p = Tensor.allocate(arena, DType.F32, n);
                Tensor g = Tensor.allocate(arena, DType.F32, n);
                for (long i = 0; i < n; i++) {
                    g.set(i, 1f);
                }
                AdamWCoefficients k1 = AdamWCoefficients.of(c, 1);
                AdamWCoefficients k2 = AdamWCoefficients.of(c.withLr(1.0), 2);
                Tensor m = Tensor.allocate(arena, DType.F32, n);
                Tensor v = Tensor.allocate(arena, DType.F32, n);
                step(p, g, m, v, k1, scalar);
                for (long i = 0; i < n; i++) {
                    g.set(i, 1e-10f);
                }
                step(p, g, m, v, k2, scalar);
                for (long i = 0; i < n; i++) {
                    assertEquals(1e-10f, m.get(i), "scalar=" + scalar + " element " + i);
                    assertTrue(p.get(i) < -1e-10f, "scalar=" + scalar + " p=" + p.get(i));
                }
            }
        }
    }

    private static void step(Tensor p, Tensor g, Tensor m, Tensor v, AdamWCoefficients k, boolean scalar) {
        if (scalar) {
            AdamWScalar.update(p, g, m, v, k, 0, p.numel());
        } else {
            AdamWVector.update(p, g, m, v, k);
        }
    }

    /** Without master weights a BF16 parameter loses updates below half an ulp; with them it does not. */
    @Test
    void masterWeightsKeepSmallBf16UpdatesThatPlainBf16Loses() {
        AdamWConfig c = AdamWConfig.torchDefaults().withLr(1e-4).withWeightDecay(0);
        try (Arena arena = Arena.ofShared()) {
            Tensor plain = Tensor.of(arena, DType.BF16, new float[] {1f}, 1);
            Tensor withMaster = Tensor.of(arena, DType.BF16, new float[] {1f}, 1);
            Tensor g = Tensor.of(arena, DType.BF16, new float[] {1f}, 1);
            try (AdamW a = new AdamW(List.of(new Parameter("p", plain, g)), c, false);
                 AdamW b = new AdamW(List.of(new Parameter("p", withMaster, g)), c, true)) {
                for (int t = 0; t < 100; t++) {
                    a.step();
                    b.step();
                }
                assertEquals(1f, plain.get(0), "bf16 ulp at 1 is 2^-7: each 1e-4 step rounds away");
                float master = b.snapshot().entries().get(0).master()[0];
                assertEquals(1 - 100 * 1e-4, master, 1e-5); // 100 fp32 roundings near 1
                assertEquals(DType.BF16.round(master), withMaster.get(0));
                assertTrue(withMaster.get(0) < 1f);
            }
        }
    }

    @Test
    void vectorAndScalarLoopsAreBitIdentical() {
        AdamWConfig c = AdamWConfig.torchDefaults().withEps(1e-6);
        long seed = 77;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            for (int n : new int[] {1, 7, 8, 15, 16, 17, 127, 1025}) {
                Tensor p1 = TestData.uniform(arena, DType.F32, rng, 1, n);
                Tensor p2 = p1.to(arena, DType.F32);
                Tensor m1 = TestData.uniform(arena, DType.F32, rng, 1e-2, n);
                Tensor m2 = m1.to(arena, DType.F32);
                Tensor v1 = TestData.uniform(arena, DType.F32, rng, 1e-4, n);
                for (long i = 0; i < n; i++) {
                    v1.set(i, Math.abs(v1.get(i)));
                }
                Tensor v2 = v1.to(arena, DType.F32);
                for (int t = 1; t <= 5; t++) {
                    Tensor g = TestData.uniform(arena, DType.F32, rng, 1e-1, n);
                    AdamWCoefficients k = AdamWCoefficients.of(c, t);
                    AdamWVector.update(p1, g, m1, v1, k);
                    AdamWScalar.update(p2, g, m2, v2, k, 0, n);
                }
                for (long i = 0; i < n; i++) {
                    assertEquals(Float.floatToRawIntBits(p2.get(i)), Float.floatToRawIntBits(p1.get(i)),
                            "seed=" + seed + " n=" + n + " element " + i);
                    assertEquals(Float.floatToRawIntBits(m2.get(i)), Float.floatToRawIntBits(m1.get(i)));
                    assertEquals(Float.floatToRawIntBits(v2.get(i)), Float.floatToRawIntBits(v1.get(i)));
                }
            }
        }
    }

    @Test
    void rejectsBadConfigurationsAndParameters() {
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(-1, 0.9, 0.999, 1e-8, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(1e-3, 1.0, 0.999, 1e-8, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(1e-3, 0.9, 0.999, Double.NaN, 0));
        // PyTorch's name, as the CLI's --weight-decay and AdafactorConfig say it (it said "weightDecay")
        assertEquals("weight_decay must be finite and >= 0, got weight_decay=-1.0",
                assertThrows(IllegalArgumentException.class, () -> new AdamWConfig(1e-3, 0.9, 0.999, 1e-8, -1)).getMessage());
        try (Arena arena = Arena.ofShared()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor b = Tensor.allocate(arena, DType.F32, 3, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parameter("w", a, b));
            assertTrue(e.getMessage().contains("[3, 2]") && e.getMessage().contains("[2, 3]"), e.getMessage());
            Parameter p = new Parameter("w", a, Tensor.allocate(arena, DType.F32, 2, 3));
            e = assertThrows(IllegalArgumentException.class, () -> new AdamW(List.of(p, p), AdamWConfig.torchDefaults()));
            assertTrue(e.getMessage().contains("duplicate parameter name 'w'"), e.getMessage());
            AdamW opt = new AdamW(List.of(p), AdamWConfig.torchDefaults());
            opt.close();
            assertThrows(IllegalStateException.class, opt::step);
        }
    }

    /**
     * Tensors shared between parameters, or a gradient that is its own value, used to be accepted:
     * the same value listed twice moved two steps per step(), silently.
     */
    @Test
    void parametersThatShareMemoryAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            Tensor v = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor g1 = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor g2 = Tensor.allocate(arena, DType.F32, 2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Parameter("a", v, v));
            assertTrue(e.getMessage().contains("parameter a: grad shares memory with value"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> new Parameter("a", v, Tensor.wrap(v.segment(), DType.F32, 2, 3)));
            AdamWConfig c = AdamWConfig.torchDefaults();
            e = assertThrows(IllegalArgumentException.class,
                    () -> new AdamW(List.of(new Parameter("a", v, g1), new Parameter("b", v, g2)), c));
            assertTrue(e.getMessage().contains("parameter 'b': its value shares memory with the value of parameter 'a'"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> new AdamW(List.of(new Parameter("a", v, g1), new Parameter("b", w, v)), c));
            assertTrue(e.getMessage().contains("parameter 'b': its grad shares memory with the value of parameter 'a'"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> new AdamW(List.of(new Parameter("a", v, g1), new Parameter("b", w, g1)), c));
            assertTrue(e.getMessage().contains("grad shares memory with the grad of parameter 'a'"), e.getMessage());
            new AdamW(List.of(new Parameter("a", v, g1), new Parameter("b", w, g2)), c).close();
        }
    }

    /**
     * A read-only value (e.g. a view of a memory-mapped adapter file) used to be accepted: step()
     * then updated the parameters before it, counted the step and failed with the JDK's "Attempt to
     * write a read-only segment", which names no parameter.
     */
    @Test
    void aReadOnlyParameterValueIsRefusedAtConstruction() {
        try (Arena arena = Arena.ofShared()) {
            Tensor a = Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4}, 2, 2);
            Tensor mapped = Tensor.wrap(Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4}, 2, 2).readOnlySegment(), DType.F32, 2, 2);
            List<Parameter> ps = List.of(new Parameter("a", a, Tensor.allocate(arena, DType.F32, 2, 2)),
                    new Parameter("b", mapped, Tensor.allocate(arena, DType.F32, 2, 2)));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdamW(ps, AdamWConfig.torchDefaults()));
            assertTrue(e.getMessage().contains("parameter 'b'") && e.getMessage().contains("read-only"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new Adafactor(ps, dev.rslora.optim.AdafactorConfig.trainer(1e-3)));
            assertTrue(e.getMessage().contains("parameter 'b'") && e.getMessage().contains("read-only"), e.getMessage());
            assertArrayEquals(new float[] {1, 2, 3, 4}, a.toFloatArray(), "nothing updated");
        }
    }

    @Test
    void setLearningRateAfterCloseIsRefused() {
        try (Arena arena = Arena.ofShared()) {
            AdamW opt = new AdamW(List.of(new Parameter("a", Tensor.allocate(arena, DType.F32, 2),
                    Tensor.allocate(arena, DType.F32, 2))), AdamWConfig.torchDefaults());
            opt.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> opt.setLearningRate(1e-4));
            assertEquals("optimizer is closed", e.getMessage());
        }
    }
}
