package dev.rslora.backend.cuda;

import dev.rslora.backend.BackendFactory;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Shared pieces of the {@code @Tag("gpu")} tests: one {@link CudaBackend} per JVM (poisoning on),
 * skipped with the probe's reason where CUDA is unavailable; seeded fills; tolerance checks that
 * print the seed and the first mismatches.
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
            if (!(err <= atol + rtol * Math.abs(r))) {
                count++;
                if (bad.size() < 6) {
                    bad.add("[" + i + "] got " + g + " ref " + r);
                }
            }
            if (err > worst || Double.isNaN(err)) {
                worst = Double.isNaN(err) ? Double.NaN : err;
            }
        }
        if (count > 0) {
            fail(what + ": " + count + " of " + ref.numel() + " outside atol " + atol + " + rtol " + rtol
                    + "·|ref| (max err " + worst + "), " + context + ": " + bad);
        }
    }

    /** Bitwise equality of two tensors of the same dtype. */
    static void assertBitwise(String what, Tensor got, Tensor ref, String context) {
        if (!got.segment().asByteBuffer().equals(ref.segment().asByteBuffer())) {
            for (long i = 0; i < ref.numel(); i++) {
                if (Float.floatToRawIntBits(got.get(i)) != Float.floatToRawIntBits(ref.get(i))) {
                    fail(what + " differs at [" + i + "]: " + got.get(i) + " vs " + ref.get(i) + " (" + context + ")");
                }
            }
            fail(what + " differs in its raw bytes (" + context + ")");
        }
    }

    /** One output-rounding unit, relative, of a storage dtype (plus fp32 accumulation slack). */
    static double rtol(dev.rslora.tensor.DType t) {
        return switch (t) {
            case F32 -> 1e-5;
            case BF16 -> 0x1p-7 + 1e-5;
            case F16 -> 0x1p-10 + 1e-5;
        };
    }
}
