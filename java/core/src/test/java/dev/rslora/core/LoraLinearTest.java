package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.HeldForward;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.RefusingRows;
import dev.rslora.backend.cpu.CpuBackend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class LoraLinearTest {
    private final Backend ref = new ReferenceBackend();

    /** Kolmogorov–Smirnov statistic of sorted samples against a CDF. */
    private static double ks(float[] sorted, java.util.function.DoubleUnaryOperator cdf) {
        double d = 0;
        int n = sorted.length;
        for (int i = 0; i < n; i++) {
            double f = cdf.applyAsDouble(sorted[i]);
            d = Math.max(d, Math.max(Math.abs(f - (double) i / n), Math.abs((double) (i + 1) / n - f)));
        }
        return d;
    }

    private static double normalCdf(double z) {
        // Abramowitz–Stegun 7.1.26 erf approximation (|error| < 1.5e-7): enough for a KS test.
        double t = 1 / (1 + 0.3275911 * Math.abs(z) / Math.sqrt(2));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
                * Math.exp(-z * z / 2);
        return z >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
    }

    @Test
    void defaultInitIsUniformOnPlusMinusOneOverSqrtDinAndBIsZero() {
        try (Arena arena = Arena.ofShared()) {
            int dIn = 400, dOut = 30, r = 16;
            Tensor w = TestData.uniform(arena, DType.F32, new SplittableRandom(1), 1, dOut, dIn);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8).withSeed(3), ref)) {
                float[] a = layer.loraA().toFloatArray();
                double bound = 1 / Math.sqrt(dIn);
                Arrays.sort(a);
                assertTrue(a[0] >= -bound && a[a.length - 1] <= bound);
                double d = ks(a, v -> (v + bound) / (2 * bound));
                assertTrue(d < 1.95 / Math.sqrt(a.length), "KS D=" + d + " for U(±1/√d_in)");
                for (float v : layer.loraB().toFloatArray()) {
                    assertEquals(0f, v);
                }
            }
        }
    }

    @Test
    void gaussianInitHasStdOneOverR() {
        try (Arena arena = Arena.ofShared()) {
            int dIn = 500, dOut = 10, r = 8;
            Tensor w = TestData.uniform(arena, DType.F32, new SplittableRandom(1), 1, dOut, dIn);
            LoraConfig cfg = LoraConfig.rslora(r, 8).withInit(Init.GAUSSIAN).withSeed(9);
            try (LoraLinear layer = LoraLinear.create(w, null, cfg, ref)) {
                float[] a = layer.loraA().toFloatArray();
                Arrays.sort(a);
                double d = ks(a, v -> normalCdf(v * r));
                assertTrue(d < 1.95 / Math.sqrt(a.length), "KS D=" + d + " for N(0, (1/r)²)");
                // and it is not the uniform init
                assertTrue(ks(a, v -> Math.min(1, Math.max(0, (v + 1 / Math.sqrt(dIn)) * Math.sqrt(dIn) / 2))) > 0.05);
            }
        }
    }

    @Test
    void newAdapterIsANoOpAndTrainingStepMatchesTheBackendCalledDirectly() {
        SplittableRandom rng = new SplittableRandom(21);
        try (Arena arena = Arena.ofShared()) {
            int n = 6, dIn = 11, dOut = 7, r = 4;
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor bias = TestData.uniform(arena, DType.F32, rng, 1, dOut);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            LoraConfig cfg = LoraConfig.rslora(r, 8).withDropout(0.25).withSeed(77);
            try (LoraLinear layer = LoraLinear.create(w, bias, cfg, DType.F32, ref, 5)) {
                Tensor y = layer.forward(arena, x);
                Tensor base = Tensor.allocate(arena, DType.F32, n, dOut);
                ref.forward(new LoraParams(n, dIn, dOut, r, cfg.gamma(), 0.25f, 77, 0, 5, true, false, GradMode.ASSIGN),
                        ref.prepare(w, bias), x, null, null, null, base);
                assertArrayEquals(base.toFloatArray(), y.toFloatArray(), "B = 0: the layer is the base layer");

                // Give B values, run a step, and compare with the backend called with the same step/layer.
                for (long i = 0; i < layer.loraB().numel(); i++) {
                    layer.loraB().set(i, (float) rng.nextDouble(-1, 1));
                }
                assertEquals(1, layer.step());
                Tensor y2 = layer.forward(arena, x);
                Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
                Tensor dx = TestData.poisoned(arena, DType.F32, n, dIn);
                layer.backward(dy, dx);

                LoraParams p = new LoraParams(n, dIn, dOut, r, cfg.gamma(), 0.25f, 77, 1, 5, true, true, GradMode.ASSIGN);
                FrozenWeight fw = ref.prepare(w, bias);
                Tensor u = Tensor.allocate(arena, DType.F32, n, r);
                Tensor yWant = Tensor.allocate(arena, DType.F32, n, dOut);
                ref.forward(p, fw, x, layer.loraA(), layer.loraB(), u, yWant);
                Tensor dxWant = Tensor.allocate(arena, DType.F32, n, dIn);
                Tensor dAWant = Tensor.allocate(arena, DType.F32, r, dIn);
                Tensor dBWant = Tensor.allocate(arena, DType.F32, dOut, r);
                ref.backward(p, fw, x, layer.loraA(), layer.loraB(), u, dy, dxWant, dAWant, dBWant);
                assertArrayEquals(yWant.toFloatArray(), y2.toFloatArray());
                assertArrayEquals(dxWant.toFloatArray(), dx.toFloatArray());
                assertArrayEquals(dAWant.toFloatArray(), layer.gradA().toFloatArray());
                assertArrayEquals(dBWant.toFloatArray(), layer.gradB().toFloatArray());

                // Eval mode: no dropout and the step does not advance.
                layer.train(false);
                Tensor yEval = layer.forward(arena, x);
                assertEquals(2, layer.step());
                assertNotEquals(Arrays.toString(y2.toFloatArray()), Arrays.toString(yEval.toFloatArray()));
            }
        }
    }

    @Test
    void gradientsAccumulateAcrossMicroBatchesAndZeroGradClears() {
        SplittableRandom rng = new SplittableRandom(4);
        try (Arena arena = Arena.ofShared()) {
            int n = 3, dIn = 5, dOut = 4, r = 2;
            Tensor w = TestData.integers(arena, DType.F32, rng, 2, dOut, dIn);
            Tensor x = TestData.integers(arena, DType.F32, rng, 2, n, dIn);
            Tensor dy = TestData.integers(arena, DType.F32, rng, 2, n, dOut);
            try (LoraLinear layer = LoraLinear.create(w, null, new LoraConfig(r, 4, Scaling.LORA, 0, Init.DEFAULT, 1), ref)) {
                layer.loraB().fill(0.5f);
                layer.forward(arena, x);
                layer.backward(dy, null);
                float[] once = layer.gradA().toFloatArray();
                layer.setGradMode(GradMode.ACCUMULATE);
                layer.forward(arena, x);
                layer.backward(dy, null);
                float[] twice = layer.gradA().toFloatArray();
                for (int i = 0; i < once.length; i++) {
                    assertEquals(2 * once[i], twice[i], 1e-6 * Math.abs(once[i]));
                }
                layer.zeroGrad();
                for (float v : layer.gradA().toFloatArray()) {
                    assertEquals(0f, v);
                }
            }
        }
    }

    @Test
    void mergeAndUnmergeThroughTheLayer() {
        SplittableRandom rng = new SplittableRandom(8);
        try (Arena arena = Arena.ofShared()) {
            int n = 4, dIn = 9, dOut = 6, r = 3;
            Tensor w = TestData.uniform(arena, DType.BF16, rng, 1, dOut, dIn);
            float[] w0 = w.toFloatArray();
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), ref)) {
                layer.train(false);
                for (long i = 0; i < layer.loraB().numel(); i++) {
                    layer.loraB().set(i, (float) rng.nextDouble(-0.1, 0.1));
                }
                float[] y = layer.forward(arena, x).toFloatArray();
                layer.merge();
                assertTrue(layer.isMerged());
                float[] wMerged = w.toFloatArray();
                float[] yMerged = layer.forward(arena, x).toFloatArray();
                for (int i = 0; i < y.length; i++) {
                    assertEquals(y[i], yMerged[i], 0.05 * (1 + Math.abs(y[i])), "bf16 W: equal within its rounding");
                }
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.backward(
                        Tensor.allocate(arena, DType.F32, n, dOut), null));
                assertTrue(e.getMessage().contains("unmerge"));
                layer.unmerge();
                float[] w1 = w.toFloatArray();
                for (int i = 0; i < w0.length; i++) {
                    assertEquals(w0[i], w1[i], Math.ulp(Math.max(Math.abs(w0[i]), Math.abs(wMerged[i]))) * 65536,
                            "W[" + i + "] restored within one bf16 ulp of the larger of W and W + ΔW");
                }
            }
        }
    }

    /** A forward that ran merged read W + γ·B·A: after unmerge() its backward would use the plain W and give dA = dB = 0. */
    @Test
    void backwardOfAForwardAcrossMergeOrUnmergeIsRefused() {
        SplittableRandom rng = new SplittableRandom(9);
        try (Arena arena = Arena.ofShared()) {
            int n = 3, dIn = 5, dOut = 4, r = 2;
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), ref)) {
                layer.merge();
                layer.forward(arena, x);
                layer.unmerge();
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> layer.backward(dy, Tensor.allocate(arena, DType.F32, n, dIn)));
                assertTrue(e.getMessage().contains("merge"), e.getMessage());
                layer.forward(arena, x);
                layer.merge();
                layer.unmerge();
                assertThrows(IllegalStateException.class, () -> layer.backward(dy, null));
            }
        }
    }

    @Test
    void shapeErrorsNameTheTensorAndShapes() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 3);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(2, 2), ref)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> layer.forward(arena, Tensor.allocate(arena, DType.F32, 5, 7)));
                assertTrue(e.getMessage().contains("[5, 7]") && e.getMessage().contains("3"), e.getMessage());
                IllegalStateException s = assertThrows(IllegalStateException.class,
                        () -> layer.backward(Tensor.allocate(arena, DType.F32, 5, 4), null));
                assertTrue(s.getMessage().contains("before forward"));
            }
            IllegalArgumentException b = assertThrows(IllegalArgumentException.class,
                    () -> LoraLinear.create(w, Tensor.allocate(arena, DType.F32, 3), LoraConfig.rslora(2, 2), ref));
            assertTrue(b.getMessage().contains("bias shape [3]"), b.getMessage());
        }
    }

    @Test
    void concurrentUseIsDetected() throws Exception {
        HeldForward slow = new HeldForward(ref, false);
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 2);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), slow)) {
                Tensor x = Tensor.allocate(arena, DType.F32, 1, 2);
                AtomicReference<Throwable> failure = new AtomicReference<>();
                Thread t = new Thread(() -> layer.forward(arena, x));
                t.start();
                slow.awaitInside();
                try {
                    layer.forward(arena, x);
                } catch (Throwable e) {
                    failure.set(e);
                }
                // zeroGrad writes dA and dB, which a backward on the other thread may be writing: it was not checked
                AtomicReference<Throwable> zeroGrad = new AtomicReference<>();
                try {
                    layer.zeroGrad();
                } catch (Throwable e) {
                    zeroGrad.set(e);
                }
                slow.release();
                t.join();
                assertInstanceOf(IllegalStateException.class, failure.get());
                assertTrue(failure.get().getMessage().contains("two threads"));
                assertInstanceOf(IllegalStateException.class, zeroGrad.get());
                assertTrue(zeroGrad.get().getMessage().contains("two threads"));
                layer.zeroGrad();
            }
        }
    }

    /** A backend that checks nothing and computes nothing, counting prepared and closed weights: what the layer itself must refuse. */
    private static final class Unchecked implements Backend {
        int prepared;
        int closed;

        @Override
        public String name() {
            return "unchecked";
        }

        @Override
        public FrozenWeight prepare(Tensor weight, Tensor bias) {
            prepared++;
            return new FrozenWeight() {
                @Override
                public Tensor weight() {
                    return weight;
                }

                @Override
                public Tensor bias() {
                    return bias;
                }

                @Override
                public void close() {
                    closed++;
                }
            };
        }

        @Override
        public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        }

        @Override
        public void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                             Tensor dx, Tensor gradA, Tensor gradB) {
        }

        @Override
        public void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        }
    }

    private static void refused(String fragment, org.junit.jupiter.api.function.Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    /**
     * Outputs that share memory with an input are refused by the layer itself, whatever the backend
     * checks (d_in = d_out and N = r, so every alias passes the shape checks): on the reference
     * backend dX = dY gave a wrong dX, on the cpu backend dX = X a wrong dA.
     */
    @Test
    void aliasedOutputsAreRefusedByTheLayer() {
        int d = 4;
        int r = 2;
        try (Arena arena = Arena.ofShared()) {
            Tensor w = TestData.uniform(arena, DType.F32, new SplittableRandom(5), 1, d, d);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 4), new Unchecked())) {
                Tensor x = TestData.uniform(arena, DType.F32, new SplittableRandom(6), 1, r, d);
                refused("y [2, 4] shares memory with x [2, 4]", () -> layer.forward(x, x));
                refused("y [2, 4] shares memory with x", () -> layer.forward(x, Tensor.wrap(x.segment(), DType.F32, r, d)));
                refused("y [2, 4] shares memory with lora_A", () -> layer.forward(x, layer.loraA()));
                layer.forward(x, Tensor.allocate(arena, DType.F32, r, d));
                Tensor dy = TestData.uniform(arena, DType.F32, new SplittableRandom(7), 1, r, d);
                refused("grad_x [2, 4] shares memory with grad_y", () -> layer.backward(dy, dy));
                refused("grad_x [2, 4] shares memory with x (of the forward)", () -> layer.backward(dy, x));
                refused("grad_x [2, 4] shares memory with grad_A", () -> layer.backward(dy, layer.gradA()));
                refused("grad_A [2, 4] shares memory with grad_y", () -> layer.backward(layer.gradA(), null));
                layer.backward(dy, Tensor.allocate(arena, DType.F32, r, d));
                layer.backward(dy, null);
            }
        }
    }

    /** The reference backend used to build a layer over W [0, 4] that failed only at its first forward. */
    @Test
    void anEmptyWeightIsRefusedAtCreation() {
        try (Arena arena = Arena.ofShared()) {
            Backend be = new Unchecked();
            refused("weight shape [0, 4]", () -> LoraLinear.create(Tensor.allocate(arena, DType.F32, 0, 4), null,
                    LoraConfig.rslora(2, 4), be));
            refused("weight shape [4, 0]", () -> LoraLinear.create(Tensor.allocate(arena, DType.F32, 4, 0), null,
                    LoraConfig.rslora(2, 4), ref));
        }
    }

    /**
     * A refused withAdapter used to build the layer first (its off-heap arena and the backend's
     * prepared W, packed panels on cpu) and leak both; now nothing is prepared.
     */
    @Test
    void aRefusedAdapterPreparesNothing() {
        try (Arena arena = Arena.ofShared()) {
            Unchecked be = new Unchecked();
            Tensor w = Tensor.allocate(arena, DType.F32, 6, 4);
            Tensor goodA = Tensor.allocate(arena, DType.F32, 2, 4);
            Tensor goodB = Tensor.allocate(arena, DType.F32, 6, 2);
            LoraConfig cfg = LoraConfig.rslora(2, 4);
            refused("lora_A shape [3, 4] must be [2, 4]",
                    () -> LoraLinear.withAdapter(w, null, Tensor.allocate(arena, DType.F32, 3, 4), goodB, cfg, be, 0));
            refused("lora_A shape null must be [2, 4]", () -> LoraLinear.withAdapter(w, null, null, goodB, cfg, be, 0));
            refused("lora_B shape [6, 3] must be [6, 2]",
                    () -> LoraLinear.withAdapter(w, null, goodA, Tensor.allocate(arena, DType.F32, 6, 3), cfg, be, 0));
            assertEquals(0, be.prepared, "no weight prepared for a refused adapter");
            NullPointerException e = assertThrows(NullPointerException.class,
                    () -> LoraLinear.withAdapter(w, null, goodA, goodB, null, be, 0));
            assertEquals("config", e.getMessage());
            assertEquals("backend", assertThrows(NullPointerException.class,
                    () -> LoraLinear.create(w, null, cfg, null)).getMessage());
            assertEquals("adapterDType", assertThrows(NullPointerException.class,
                    () -> LoraLinear.create(w, null, cfg, null, be, 0)).getMessage());
            try (LoraLinear layer = LoraLinear.withAdapter(w, null, goodA, goodB, cfg, be, 0)) {
                assertEquals(1, be.prepared);
            }
            assertEquals(1, be.closed);
        }
    }

    @Test
    void zeroGradAfterCloseSaysTheLayerIsClosed() {
        try (Arena arena = Arena.ofShared()) {
            LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 3, 2), null, LoraConfig.rslora(1, 1), ref);
            layer.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, layer::zeroGrad);
            assertEquals("layer is closed", e.getMessage());
        }
    }

    /**
     * train(boolean), setStep and setGradMode of a closed layer were accepted silently (a trainer that closed a
     * layer too early got no error until its next forward); every setter now refuses as the other methods do,
     * and the state the getters report stays that of the closed layer.
     */
    @Test
    void everySetterOfAClosedLayerSaysTheLayerIsClosed() {
        try (Arena arena = Arena.ofShared()) {
            LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 3, 2), null,
                    LoraConfig.rslora(1, 1).withDropout(0.1), ref);
            layer.setStep(7);
            layer.close();
            List<Runnable> setters = List.of(() -> layer.train(false), () -> layer.setStep(3),
                    () -> layer.setGradMode(GradMode.ACCUMULATE), () -> layer.setAdapterEnabled(false), layer::disableAdapter,
                    layer::merge, layer::unmerge);
            for (Runnable setter : setters) {
                IllegalStateException e = assertThrows(IllegalStateException.class, setter::run);
                assertEquals("layer is closed", e.getMessage());
            }
            assertTrue(layer.isTraining());
            assertEquals(7, layer.step());
            assertEquals(GradMode.ASSIGN, layer.gradMode());
            assertTrue(layer.isAdapterEnabled());
        }
    }

    /**
     * A rank whose A, B and gradients cannot be allocated was an OutOfMemoryError naming no rank (malloc
     * refused the bytes; more heap would not help): now an IllegalArgumentException naming r and the
     * bytes. A [r, 65536] at r = 2^31 − 1 is 2^49 bytes, past any machine's address space.
     */
    @Test
    void anAbsurdRankIsRefusedNamingItNotAnOutOfMemoryError() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 1 << 16);
            refused("r=2147483647 needs A [2147483647, 65536], B [2, 2147483647] and their gradients in F32",
                    () -> LoraLinear.create(w, null, LoraConfig.rslora(Integer.MAX_VALUE, 8), ref));
        }
    }

    /**
     * A training forward with dropout at step Long.MAX_VALUE would wrap the step to Long.MIN_VALUE,
     * which setStep refuses and the steps file cannot load back: it is refused before anything runs,
     * and the step stays. The forward that reaches Long.MAX_VALUE is fine.
     */
    @Test
    void aForwardThatWouldAdvanceTheDropoutStepPastLongMaxIsRefused() {
        try (Arena arena = Arena.ofShared();
             LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 3, 2), null,
                     LoraConfig.rslora(1, 1).withDropout(0.5), ref)) {
            Tensor x = Tensor.allocate(arena, DType.F32, 2, 2);
            Tensor y = Tensor.allocate(arena, DType.F32, 2, 3);
            layer.setStep(Long.MAX_VALUE - 1);
            layer.forward(x, y);
            assertEquals(Long.MAX_VALUE, layer.step());
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.forward(x, y));
            assertTrue(e.getMessage().contains("dropout step 9223372036854775807 is the last one"), e.getMessage());
            assertEquals(Long.MAX_VALUE, layer.step());
            layer.train(false);
            layer.forward(x, y);  // eval draws no mask: the step need not advance
            assertEquals(Long.MAX_VALUE, layer.step());
        }
    }

    /** A negative dropout step is refused naming it (the mask counter takes a step a layer could have reached). */
    @Test
    void aNegativeDropoutStepIsRefused() {
        try (Arena arena = Arena.ofShared();
             LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 3, 2), null, LoraConfig.rslora(1, 1), ref)) {
            refused("dropout step -1 is negative (a layer starts at 0 and counts up)", () -> layer.setStep(-1));
            assertEquals(0, layer.step());
        }
    }

    /**
     * forward(arena, x) sized Y from x.dim(0) before checking X: a scalar X threw
     * ArrayIndexOutOfBoundsException, and a 1-D X of 2^20 values asked for Y [2^20, 65536], 256 GiB
     * ("OutOfMemoryError: Unable to allocate"), before the 2-D check could refuse it.
     */
    @Test
    void forwardIntoANewTensorChecksXBeforeAllocatingY() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 1 << 16, 2);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), ref)) {
                refused("x must be 2-D, got []", () -> layer.forward(arena, Tensor.allocate(arena, DType.F32)));
                refused("x must be 2-D, got [1048576]", () -> layer.forward(arena, Tensor.allocate(arena, DType.F32, 1 << 20)));
                refused("x shape [3, 5] must be [N, 2]", () -> layer.forward(arena, Tensor.allocate(arena, DType.F32, 3, 5)));
                Tensor y = layer.forward(arena, Tensor.allocate(arena, DType.BF16, 3, 2));
                assertTrue(y.sameShape(3, 1 << 16) && y.dtype() == DType.BF16, y.toString());
            }
        }
    }

    /**
     * A forward the backend refuses leaves the last one for backward: it had grown U for the refused
     * batch (so the cpu backward read a fresh, zero U: dB = 0, silently) and advanced the dropout step.
     */
    @Test
    void aForwardTheBackendRefusesLeavesTheLastOneForBackward() {
        int d = 8;
        SplittableRandom rng = new SplittableRandom(21);
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, d, d);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, 2, d);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, 2, d);
            LoraConfig cfg = new LoraConfig(4, 8.0, Scaling.RSLORA, 0.25, Init.DEFAULT, 21);
            float[] expected;
            try (LoraLinear plain = LoraLinear.create(w, null, cfg, DType.F32, cpu, 0)) {
                plain.loraB().fill(0.5f);
                plain.forward(arena, x);
                plain.backward(dy, null);
                expected = plain.gradB().toFloatArray();
            }
            try (LoraLinear layer = LoraLinear.create(w, null, cfg, DType.F32, new RefusingRows(cpu, 3), 0)) {
                layer.loraB().fill(0.5f);
                layer.forward(arena, x);
                long step = layer.step();
                refused("n=3 refused", () -> layer.forward(arena, TestData.uniform(arena, DType.F32, rng, 1, 3, d)));
                assertEquals(step, layer.step(), "a refused forward draws no dropout mask");
                layer.backward(dy, null);
                assertArrayEquals(expected, layer.gradB().toFloatArray(), "dB of the 2-row forward, from its U");
            }
        }
    }

    /**
     * U = D(X)·Aᵀ is kept from the forward: a write to A before the backward (an optimizer step in
     * the wrong place) made dB come from the old A and dX from the new one, silently.
     */
    @Test
    void backwardAfterAWasWrittenIsRefusedAndANewForwardClearsIt() {
        SplittableRandom rng = new SplittableRandom(22);
        int n = 3, dIn = 5, dOut = 4, r = 2;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
            for (Backend backend : new Backend[] {ref, cpu}) {
                try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), backend)) {
                    layer.forward(arena, x);
                    layer.loraB().fill(0.5f);  // nothing saved depends on B
                    layer.backward(dy, null);
                    layer.loraA().set(0, 1f);  // the optimizer step after the backward: the next forward reads it
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.backward(dy, null));
                    assertTrue(e.getMessage().contains("lora_A was written"), e.getMessage());
                    layer.forward(arena, x);
                    layer.backward(dy, null);
                    layer.backward(dy, null);  // a second backward of the same forward still runs
                    try (var off = layer.disableAdapter()) {
                        layer.forward(arena, x);
                    }
                    layer.loraA().set(0, 2f);
                    layer.backward(dy, null);  // a disabled forward read neither A nor B
                }
            }
        }
    }

    /**
     * dA = γ·Vᵀ·D(X) reads the forward's X again in backward, while U = D(X)·Aᵀ was made from it in
     * the forward: X written in between (its buffer reused for the next micro-batch) made dA come
     * from the new X and dB from the old, silently. dA of the refused case is checked against a run
     * that never wrote X, so the test fails on a backward that ran.
     */
    @Test
    void backwardAfterXWasWrittenIsRefusedUnlessTheAdapterWasOff() {
        SplittableRandom rng = new SplittableRandom(24);
        int n = 3, dIn = 5, dOut = 4, r = 2;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
            float[] x0 = x.toFloatArray();
            for (Backend backend : new Backend[] {ref, cpu}) {
                try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), backend)) {
                    layer.loraB().fill(0.5f);
                    layer.forward(arena, x);
                    layer.backward(dy, null);
                    float[] gradA = layer.gradA().toFloatArray();
                    layer.forward(arena, x);
                    x.set(1, 0, 9f);  // the next batch written into the same buffer
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.backward(dy, null));
                    assertTrue(e.getMessage().contains("x was written"), e.getMessage());
                    x.copyFrom(x0);
                    layer.forward(arena, x);
                    layer.backward(dy, null);
                    assertArrayEquals(gradA, layer.gradA().toFloatArray(), "dA of the X the forward read");
                    layer.backward(dy, null);  // a second backward of the same forward still runs
                    try (var off = layer.disableAdapter()) {
                        layer.forward(arena, x);
                    }
                    x.set(1, 0, 9f);
                    layer.backward(dy, null);  // dX = dY·W alone does not read X
                    x.copyFrom(x0);
                }
            }
        }
    }

    /**
     * dX = dY·W reads W in the backward: W written after the forward (set, fill, copyFrom, or a merge by
     * another layer sharing it) made dX come from the new W, silently, on every backend. Refused when dX
     * is asked for (with the adapter on or off); a backward without dX (dA and dB do not read W) runs.
     * dX of an allowed backward is checked against a run that never wrote W, so the test fails on a
     * backward that used the wrong W.
     */
    @Test
    void backwardWithDxAfterWWasWrittenIsRefused() {
        SplittableRandom rng = new SplittableRandom(25);
        int n = 3, dIn = 5, dOut = 4, r = 2;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, dOut);
            Tensor dx = Tensor.allocate(arena, DType.F32, n, dIn);
            float[] w0 = w.toFloatArray();
            for (Backend backend : new Backend[] {ref, cpu}) {
                try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), backend);
                     LoraLinear sharing = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), backend)) {
                    layer.loraB().fill(0.5f);
                    sharing.loraB().fill(0.25f);
                    layer.forward(arena, x);
                    layer.backward(dy, dx);
                    float[] want = dx.toFloatArray();
                    layer.forward(arena, x);
                    w.set(1, 2, 7f);
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.backward(dy, dx));
                    assertTrue(e.getMessage().contains("base weight W was written"), e.getMessage());
                    layer.backward(dy, null);  // dA and dB do not read W
                    w.copyFrom(w0);
                    layer.forward(arena, x);
                    sharing.merge();  // writes the W both layers read
                    e = assertThrows(IllegalStateException.class, () -> layer.backward(dy, dx));
                    assertTrue(e.getMessage().contains("base weight W was written"), e.getMessage());
                    sharing.unmerge();
                    w.copyFrom(w0);  // unmerge rounds: back to the exact W of the first backward
                    try (var off = layer.disableAdapter()) {
                        layer.forward(arena, x);
                    }
                    w.fill(1f);
                    e = assertThrows(IllegalStateException.class, () -> layer.backward(dy, dx));
                    assertTrue(e.getMessage().contains("base weight W was written"), e.getMessage());
                    w.copyFrom(w0);
                    layer.forward(arena, x);
                    layer.backward(dy, dx);
                    assertArrayEquals(want, dx.toFloatArray(), "dX of the W the forward read");
                }
            }
        }
    }

    /**
     * unmerge() subtracted γ·B·A of the current A and B: a write to either while merged (an optimizer
     * step, a load) left W = W₀ + γ·B₀A₀ − γ·B₁A₁ for good, and forwards while merged silently ran
     * the old adapter.
     */
    @Test
    void unmergeSubtractsWhatMergeAddedAndAMergedForwardRefusesAChangedAdapter() {
        SplittableRandom rng = new SplittableRandom(23);
        int n = 2, dIn = 6, dOut = 5, r = 3;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            for (Backend backend : new Backend[] {ref, cpu}) {
                Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
                Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, dIn);
                float[] w0 = w.toFloatArray();
                try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(r, 8), backend)) {
                    layer.loraB().fill(0.5f);
                    layer.merge();
                    layer.loraA().fill(0.25f);
                    IllegalStateException e = assertThrows(IllegalStateException.class, () -> layer.forward(arena, x));
                    assertTrue(e.getMessage().contains("after merge()"), e.getMessage());
                    layer.unmerge();
                    float[] w1 = w.toFloatArray();
                    for (int i = 0; i < w0.length; i++) {
                        assertEquals(w0[i], w1[i], 1e-5, backend.name() + ": W[" + i + "] restored");
                    }
                    layer.merge();  // merged with the new A: forward runs again
                    float[] yMerged = layer.forward(arena, x).toFloatArray();
                    layer.unmerge();
                    float[] y = layer.forward(arena, x).toFloatArray();
                    for (int i = 0; i < y.length; i++) {
                        assertEquals(y[i], yMerged[i], 1e-4, backend.name() + ": y[" + i + "]");
                    }
                }
            }
        }
    }

    /**
     * W in read-only memory (a memory-mapped checkpoint, as {@code LoraModel.wrap(BaseCheckpoint, …)} gives it): the
     * layer's merge() is refused before any backend work, naming the weight, and the layer stays unmerged with its output
     * unchanged.
     */
    @Test
    void mergeIntoAReadOnlyWeightIsRefusedBeforeAnyWork() {
        SplittableRandom rng = new SplittableRandom(12);
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(1)) {
            Tensor writable = TestData.uniform(arena, DType.BF16, rng, 1, 6, 9);
            Tensor w = Tensor.wrap(writable.readOnlySegment(), DType.BF16, 6, 9);
            assertTrue(w.isReadOnly());
            assertTrue(!writable.isReadOnly());
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, 4, 9);
            for (Backend backend : new Backend[] {ref, cpu}) {
                try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(3, 8), backend)) {
                    layer.train(false);
                    for (long i = 0; i < layer.loraB().numel(); i++) {
                        layer.loraB().set(i, (float) rng.nextDouble(-0.1, 0.1));
                    }
                    float[] y = layer.forward(arena, x).toFloatArray();
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, layer::merge, backend.name());
                    assertTrue(e.getMessage().contains("read-only") && e.getMessage().contains("[6, 9]"), e.getMessage());
                    assertTrue(!layer.isMerged());
                    assertArrayEquals(y, layer.forward(arena, x).toFloatArray(), backend.name());
                }
            }
        }
    }

    /** forward(null, x) was a bare NullPointerException from Tensor.allocate; the arena is named, before any work. */
    @Test
    void forwardIntoANullArenaIsNamed() {
        try (Arena arena = Arena.ofShared();
             LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 2, 3), null, LoraConfig.rslora(1, 1),
                     new ReferenceBackend())) {
            Tensor x = Tensor.allocate(arena, DType.F32, 1, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> layer.forward((Arena) null, x));
            assertEquals("LoraLinear.forward: outArena is null", e.getMessage());
            assertEquals(0, layer.forward(arena, x).get(0), "the layer still runs");
        }
    }
}
