package dev.rslora.backend.cuda;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Assumptions;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared pieces of the {@code @Tag("gpu")} tests: one {@link CudaBackend} per JVM (poisoning on),
 * skipped with the probe's reason where CUDA is unavailable; seeded fills; tolerance checks that
 * print the seed and the first mismatches; the fixture of the device-resident layer tests
 * ({@link LayerData}: its inputs, the host-staged backend's step, eager and graph-replay outputs
 * compared bit for bit).
 */
final class GpuSupport {
    private static CudaBackend backend;
    private static String unavailable;

    private GpuSupport() {
    }

    /** The shared backend, or an aborted (skipped) test with the reason printed. */
    static synchronized CudaBackend backend() {
        if (backend == null && unavailable == null) {
            CudaBackendFactory f = new CudaBackendFactory();
            BackendFactory.Availability a = f.probe();
            if (!a.available()) {
                unavailable = a.detail();
                System.out.println("GPU tests skipped: " + unavailable);
            } else {
                // the GPU tests of the fused kernels are v1's (the oracle) unless a family is asked for;
                // CudaKernelsV2GpuTest opens its own v2 backend on the same context
                if (System.getProperty(KernelSelector.PROPERTY) == null) {
                    System.setProperty(KernelSelector.PROPERTY, "v1");
                }
                backend = (CudaBackend) f.create();
                backend.setPoison(true);
                // the GPU tests of the fused kernels pin them; the split step's tests ask for it (withStep)
                backend.setStepRequest("fused");
                System.out.println("GPU tests on " + backend.deviceDescription() + " (" + a.detail() + ")");
            }
        }
        Assumptions.assumeTrue(backend != null, () -> "CUDA unavailable: " + unavailable);
        return backend;
    }

    /** Runs {@code body} with the shared backend's step request set to {@code step}, then back to fused. */
    static void withStep(String step, Runnable body) {
        CudaBackend b = backend();
        b.setStepRequest(step);
        try {
            body.run();
        } finally {
            b.setStepRequest("fused");
        }
    }

    /** Uniform values in [lo, hi), rounded to the tensor's dtype. */
    static void fill(Tensor t, SplittableRandom rnd, double lo, double hi) {
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rnd.nextDouble(lo, hi));
        }
    }

    /** Small integers in [-k, k] (exact in every dtype for k <= 16). */
    static void fillInts(Tensor t, SplittableRandom rnd, int k) {
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, rnd.nextInt(2 * k + 1) - k);
        }
    }

    static double maxAbs(Tensor t) {
        double m = 0;
        for (long i = 0; i < t.numel(); i++) {
            m = Math.max(m, Math.abs(t.get(i)));
        }
        return m;
    }

    /**
     * Elementwise {@code |got − ref| <= atol + rtol·|ref|} (NaN fails), with
     * {@code atol = atolFactor·max|ref|}; fails listing the first mismatches and {@code context}.
     */
    static void assertClose(String what, Tensor got, Tensor ref, double rtol, double atolFactor, String context) {
        assertClose(what, got, ref, rtol, atolFactor, null, context);
    }

    /**
     * As above, each element's bound widened by {@code extra[i]} (null: by nothing), e.g. the bound of
     * a kernel's extra roundings to T.
     */
    static void assertClose(String what, Tensor got, Tensor ref, double rtol, double atolFactor, double[] extra, String context) {
        if (got.numel() != ref.numel()) {
            fail(what + ": " + got + " vs " + ref + " (" + context + ")");
        }
        double atol = atolFactor * Math.max(maxAbs(ref), 1e-30);
        List<String> bad = new ArrayList<>();
        long count = 0;
        double worst = 0;
        for (long i = 0; i < ref.numel(); i++) {
            double g = got.get(i);
            double r = ref.get(i);
            double err = Math.abs(g - r);
            double lim = atol + rtol * Math.abs(r) + (extra == null ? 0 : extra[(int) i]);
            if (!(err <= lim)) {
                count++;
                if (bad.size() < 6) {
                    bad.add("[" + i + "] got " + g + " ref " + r + (extra == null ? "" : " limit " + lim));
                }
            }
            if (err > worst || Double.isNaN(err)) {
                worst = Double.isNaN(err) ? Double.NaN : err;
            }
        }
        if (count > 0) {
            fail(what + ": " + count + " of " + ref.numel() + " outside atol " + atol + " + rtol " + rtol + "·|ref|"
                    + (extra == null ? "" : " + extra[i]") + " (max err " + worst + "), " + context + ": " + bad);
        }
    }

    /** Bitwise equality of two tensors of the same dtype (read only: neither's version stamp moves). */
    static void assertBitwise(String what, Tensor got, Tensor ref, String context) {
        if (!got.readOnlySegment().asByteBuffer().equals(ref.readOnlySegment().asByteBuffer())) {
            for (long i = 0; i < ref.numel(); i++) {
                if (Float.floatToRawIntBits(got.get(i)) != Float.floatToRawIntBits(ref.get(i))) {
                    fail(what + " differs at [" + i + "]: " + got.get(i) + " vs " + ref.get(i) + " (" + context + ")");
                }
            }
            fail(what + " differs in its raw bytes (" + context + ")");
        }
    }

    /** One unit of roundoff of T: 2⁻⁸ (bf16), 2⁻¹¹ (f16), 0 for F32 (no extra rounding there). */
    static double unit(DType t) {
        return switch (t) {
            case F32 -> 0;
            case BF16 -> 0x1p-8;
            case F16 -> 0x1p-11;
        };
    }

    /** One output-rounding unit, relative, of a storage dtype (plus fp32 accumulation slack). */
    static double rtol(DType t) {
        return switch (t) {
            case F32 -> 1e-5;
            case BF16 -> 0x1p-7 + 1e-5;
            case F16 -> 0x1p-10 + 1e-5;
        };
    }

    /**
     * dA [r, d_in] and dB [d_out, r] in {@code dtype} for one backward, and equal copies for the
     * reference: uniform in [-1, 1) from {@code rnd} (dA, then dB) where the step accumulates into
     * them, NaN where it must overwrite them.
     */
    record Grads(Tensor gA, Tensor gB, Tensor gARef, Tensor gBRef) {
        static Grads of(Arena arena, DType dtype, int r, int dIn, int dOut, GradMode mode, SplittableRandom rnd) {
            boolean acc = mode == GradMode.ACCUMULATE;
            Tensor gA = acc ? TestData.uniform(arena, dtype, rnd, 1, r, dIn) : TestData.poisoned(arena, dtype, r, dIn);
            Tensor gB = acc ? TestData.uniform(arena, dtype, rnd, 1, dOut, r) : TestData.poisoned(arena, dtype, dOut, r);
            return new Grads(gA, gB, gA.to(arena, dtype), gB.to(arena, dtype));
        }
    }

    /**
     * A layer's host inputs, uniform in [-1, 1) from one generator in this order (so a seed gives
     * the same tensors everywhere): W [d_out, d_in] and bias [d_out] in t, A [r, d_in] and B [d_out, r]
     * f32, X [n, d_in] and dY [n, d_out] in t.
     */
    record LayerData(DType t, int n, int dIn, int dOut, int r, Tensor w, Tensor bias, Tensor a, Tensor b, Tensor x, Tensor dy) {
        static LayerData random(Arena arena, DType t, int n, int dIn, int dOut, int r, SplittableRandom rnd) {
            Tensor w = TestData.uniform(arena, t, rnd, 1, dOut, dIn);
            Tensor bias = TestData.uniform(arena, t, rnd, 1, dOut);
            Tensor a = TestData.uniform(arena, DType.F32, rnd, 1, r, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rnd, 1, dOut, r);
            Tensor x = TestData.uniform(arena, t, rnd, 1, n, dIn);
            Tensor dy = TestData.uniform(arena, t, rnd, 1, n, dOut);
            return new LayerData(t, n, dIn, dOut, r, w, bias, a, b, x, dy);
        }

        /** Fresh host outputs of one step (U only when {@code withU}). */
        private StepResult outputs(Arena arena, boolean withU) {
            return new StepResult(Tensor.allocate(arena, t, n, dOut), withU ? Tensor.allocate(arena, DType.F32, n, r) : null,
                    Tensor.allocate(arena, t, n, dIn), Tensor.allocate(arena, DType.F32, r, dIn), Tensor.allocate(arena, DType.F32, dOut, r));
        }

        /** One forward and backward of the host-staged {@code cuda} backend (the layer's kernels, so its bits). */
        StepResult onBackend(Arena arena, CudaBackend cuda, LoraParams p) {
            StepResult out = outputs(arena, true);
            try (FrozenWeight fw = cuda.prepare(w, bias)) {
                cuda.forward(p, fw, x, a, b, out.u(), out.y());
                cuda.backward(p, fw, x, a, b, out.u(), dy, out.dx(), out.gA(), out.gB());
            }
            return out;
        }

        /** The layer's step outputs copied to the host: Y from {@code y}, dX from {@code dx}, U (when {@code withU}), dA, dB. */
        StepResult read(Arena arena, CudaLoraLayer layer, DeviceTensor y, DeviceTensor dx, boolean withU) {
            StepResult out = outputs(arena, withU);
            y.copyTo(out.y());
            dx.copyTo(out.dx());
            if (withU) {
                layer.copyUTo(out.u());
            }
            layer.copyGradientsTo(out.gA(), out.gB());
            return out;
        }

        /** Replays {@code graph} {@code reps} times, each replay's outputs equal to {@code expected} bit for bit ("Y replay 0", ...). */
        void assertReplays(Arena arena, CudaGraph graph, CudaLoraLayer layer, DeviceTensor y, DeviceTensor dx, int reps,
                           StepResult expected, String context) {
            for (int rep = 0; rep < reps; rep++) {
                graph.replay();
                graph.synchronize();
                read(arena, layer, y, dx, false).assertBitwise("replay " + rep, expected, context);
            }
        }
    }

    /** One step's outputs on the host: Y, U (null where the test does not read it), dX, dA, dB. */
    record StepResult(Tensor y, Tensor u, Tensor dx, Tensor gA, Tensor gB) {
        /** Y, U (where both have it), dX, dA, dB equal to {@code ref}'s bit for bit, each named "Y " + label, .... */
        void assertBitwise(String label, StepResult ref, String context) {
            GpuSupport.assertBitwise("Y " + label, y, ref.y, context);
            if (u != null && ref.u != null) {
                GpuSupport.assertBitwise("U " + label, u, ref.u, context);
            }
            GpuSupport.assertBitwise("dX " + label, dx, ref.dx, context);
            GpuSupport.assertBitwise("dA " + label, gA, ref.gA, context);
            GpuSupport.assertBitwise("dB " + label, gB, ref.gB, context);
        }
    }
}
