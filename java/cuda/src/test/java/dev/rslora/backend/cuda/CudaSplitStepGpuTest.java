package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The split step ({@link SplitStep}: cuBLASLt + the v1 LoRA kernels) on a GPU against the scalar
 * double-accumulating reference, with the same cases, poisoning and tolerances as the fused step
 * ({@link CudaBackendGpuTest}) plus, for 16-bit T, the bound of the LoRA term's extra rounding to T
 * (Ut, Bt, Vt, At and the K = r product: 4·u_T·γ·Σ_j |terms|, the harness's v2 bound); its dropout
 * mask bit for bit against the CPU's; graph replay bit for bit against eager; determinism.
 */
@Tag("gpu")
class CudaSplitStepGpuTest {
    static List<CudaBackendGpuTest.Case> cases() {
        return CudaBackendGpuTest.cases();
    }

    private static CudaBackend splitBackend() {
        CudaBackend cuda = GpuSupport.backend();
        Assumptions.assumeTrue(cuda.cublasLt() != null, "no cuBLASLt on this host: the split step cannot run");
        return cuda;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardAndBackwardMatchTheReference(CudaBackendGpuTest.Case c) {
        CudaBackend cuda = splitBackend();
        GpuSupport.withStep("split", () -> {
            ReferenceBackend ref = new ReferenceBackend();
            SplittableRandom rnd = new SplittableRandom(c.seed());
            try (Arena arena = Arena.ofShared()) {
                CudaBackendGpuTest.Step s = new CudaBackendGpuTest.Step(arena, c, rnd);
                double gamma = 16.0 / Math.sqrt(c.r());
                LoraParams p = new LoraParams(c.n(), c.dIn(), c.dOut(), c.r(), gamma, c.p(), c.seed() ^ 0x5DEECE66DL, 3, 2,
                        true, true, c.mode());
                assertEquals(StepPolicy.Kind.SPLIT, cuda.stepFor(c.t(), c.n(), c.dIn(), c.dOut(), c.r()).kind());
                Tensor u = TestData.poisoned(arena, DType.F32, c.n(), c.r());
                Tensor y = TestData.poisoned(arena, c.t(), c.n(), c.dOut());
                Tensor uRef = Tensor.allocate(arena, DType.F32, c.n(), c.r());
                Tensor yRef = Tensor.allocate(arena, c.t(), c.n(), c.dOut());
                try (FrozenWeight fw = cuda.prepare(s.w, s.bias); FrozenWeight rw = ref.prepare(s.w, s.bias)) {
                    cuda.forward(p, fw, s.x, s.a, s.b, u, y);
                    ref.forward(p, rw, s.x, s.a, s.b, uRef, yRef);
                    String ctx = c.toString();
                    GpuSupport.assertClose("U", u, uRef, 1e-5, 1e-5, ctx);
                    double unit = GpuSupport.unit(c.t());
                    double[] ey = new double[c.n() * c.dOut()];
                    for (int i = 0; i < c.n(); i++) {
                        for (int o = 0; o < c.dOut(); o++) {
                            double sum = 0;
                            for (int j = 0; j < c.r(); j++) {
                                sum += Math.abs(uRef.get(i, j) * s.b.get(o, j));
                            }
                            ey[i * c.dOut() + o] = 4 * unit * gamma * sum;
                        }
                    }
                    GpuSupport.assertClose("Y", y, yRef, GpuSupport.rtol(c.t()), 1e-5, ey, ctx);

                    Tensor dx = TestData.poisoned(arena, c.t(), c.n(), c.dIn());
                    Tensor dxRef = Tensor.allocate(arena, c.t(), c.n(), c.dIn());
                    GpuSupport.Grads g = GpuSupport.Grads.of(arena, c.adapter(), c.r(), c.dIn(), c.dOut(), c.mode(), rnd);
                    cuda.backward(p, fw, s.x, s.a, s.b, u, s.dy, dx, g.gA(), g.gB());
                    ref.backward(p, rw, s.x, s.a, s.b, uRef, s.dy, dxRef, g.gARef(), g.gBRef());
                    // V = dY·B (double) for the bound of dX's LoRA term
                    double scale = p.mask() == null ? 1 : p.mask().scale();
                    double[] edx = new double[c.n() * c.dIn()];
                    for (int i = 0; i < c.n(); i++) {
                        double[] v = new double[c.r()];
                        for (int j = 0; j < c.r(); j++) {
                            for (int o = 0; o < c.dOut(); o++) {
                                v[j] += (double) s.dy.get(i, o) * s.b.get(o, j);
                            }
                        }
                        for (int k = 0; k < c.dIn(); k++) {
                            double sum = 0;
                            for (int j = 0; j < c.r(); j++) {
                                sum += Math.abs(v[j] * s.a.get(j, k));
                            }
                            edx[i * c.dIn() + k] = 4 * unit * gamma * scale * sum;
                        }
                    }
                    GpuSupport.assertClose("dX", dx, dxRef, GpuSupport.rtol(c.t()), 1e-5, edx, ctx);
                    GpuSupport.assertClose("dA", g.gA(), g.gARef(), GpuSupport.rtol(c.adapter()), 1e-4, ctx);
                    GpuSupport.assertClose("dB", g.gB(), g.gBRef(), GpuSupport.rtol(c.adapter()), 1e-4, ctx);
                }
            }
        });
    }

    @Test
    void theMaskOfDxsLoraTermEqualsTheCpuMaskBitForBit() {
        // W = 0, B = I (d_out = r), A = I (d_in = r), γ = 1, F32: dX = D'(dY) exactly, one product per sum
        CudaBackend cuda = splitBackend();
        GpuSupport.withStep("split", () -> {
            int n = 1000;
            int d = 256;
            long seed = 0xD0E5_5EEDL;
            try (Arena arena = Arena.ofShared()) {
                SplittableRandom rnd = new SplittableRandom(seed);
                Tensor x = Tensor.allocate(arena, DType.F32, n, d);
                Tensor dy = Tensor.allocate(arena, DType.F32, n, d);
                GpuSupport.fill(x, rnd, 0.5, 2);
                GpuSupport.fill(dy, rnd, 0.5, 2);
                Tensor w = Tensor.allocate(arena, DType.F32, d, d);
                Tensor eye = Tensor.allocate(arena, DType.F32, d, d);
                for (int j = 0; j < d; j++) {
                    eye.set(j, j, 1f);
                }
                for (long step : new long[] {0, 11, 0x1_0000_0005L}) {
                    LoraParams p = new LoraParams(n, d, d, d, 1.0, 0.1f, seed, step, 4, true, true, GradMode.ASSIGN);
                    DropoutMask mask = p.mask();
                    Tensor u = Tensor.allocate(arena, DType.F32, n, d);
                    Tensor y = Tensor.allocate(arena, DType.F32, n, d);
                    Tensor dx = TestData.poisoned(arena, DType.F32, n, d);
                    Tensor gA = Tensor.allocate(arena, DType.F32, d, d);
                    Tensor gB = Tensor.allocate(arena, DType.F32, d, d);
                    try (FrozenWeight fw = cuda.prepare(w, null)) {
                        cuda.forward(p, fw, x, eye, eye, u, y);
                        cuda.backward(p, fw, x, eye, eye, u, dy, dx, gA, gB);
                    }
                    for (int i = 0; i < n; i++) {
                        for (int j = 0; j < d; j++) {
                            float expect = mask.keep(i, j) ? dy.get(i, j) * mask.scale() : 0f;
                            float got = dx.get(i, j);
                            if (!(Float.floatToRawIntBits(expect) == Float.floatToRawIntBits(got) || (expect == 0f && got == 0f))) {
                                fail("dX mask differs at row " + i + " col " + j + " step " + step + ": got " + got + " expected "
                                        + expect + " (seed " + seed + ")");
                            }
                        }
                    }
                }
            }
        });
    }

    @Test
    void theLayerReplaysItsCapturedSplitStepBitForBitAndDeterministically() {
        CudaBackend cuda = splitBackend();
        GpuSupport.withStep("split", () -> {
            int n = 300;
            int dIn = 200;
            int dOut = 152;
            int r = 16;
            long seed = 4242;
            long step = 9;
            long baseline = cuda.memoryStats().bytesInUse();
            SplittableRandom rnd = new SplittableRandom(seed);
            try (Arena arena = Arena.ofShared()) {
                DType t = DType.BF16;
                GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, t, n, dIn, dOut, r, rnd);
                CudaLoraLayer layer = new CudaLoraLayer(cuda, in.w(), in.bias(), in.a(), in.b(), 2.0, 0.1f, seed, 3, n, GradMode.ASSIGN);
                assertEquals(StepPolicy.Kind.SPLIT, layer.step().kind(), layer.step().toString());
                DeviceTensor dX = cuda.upload(in.x());
                DeviceTensor dDy = cuda.upload(in.dy());
                DeviceTensor dY1 = cuda.allocate(t, n, dOut);
                DeviceTensor dDx1 = cuda.allocate(t, n, dIn);
                GpuSupport.StepResult first = null;
                for (int rep = 0; rep < 2; rep++) {
                    layer.forward(dX, dY1, step, true);
                    layer.backward(dX, dDy, dDx1, step, true);
                    GpuSupport.StepResult eager = in.read(arena, layer, dY1, dDx1, false);
                    if (first == null) {
                        first = eager;
                    } else {
                        eager.assertBitwise("eager rep", first, "seed " + seed);
                    }
                }
                DeviceTensor dY2 = cuda.allocate(t, n, dOut);
                DeviceTensor dDx2 = cuda.allocate(t, n, dIn);
                CudaGraph graph = layer.captureStep(dX, dY2, dDy, dDx2, step);
                assertThrows(IllegalStateException.class, layer::close, "a captured graph pins the layer");
                layer.zeroGradients();
                in.assertReplays(arena, graph, layer, dY2, dDx2, 3, first, "seed " + seed);
                graph.close();
                layer.close();
                for (DeviceTensor dt : new DeviceTensor[] {dX, dDy, dY1, dDx1, dY2, dDx2}) {
                    dt.close();
                }
            }
            assertEquals(baseline, cuda.memoryStats().bytesInUse(), "every device buffer returned");
        });
    }

    @Test
    void theCublasLtBaseMatchesTheCublasBase() {
        CudaBackend cuda = splitBackend();
        int n = 513;
        int dIn = 384;
        int dOut = 264;
        try (Arena arena = Arena.ofShared(); BaseLinearBaseline gemmEx = new BaseLinearBaseline(cuda);
             BaseLinearBaseline lt = BaseLinearBaseline.cublasLt(cuda)) {
            assertTrue(lt.binding().startsWith("cuBLASLt"), lt.binding());
            SplittableRandom rnd = new SplittableRandom(77);
            Tensor x = Tensor.allocate(arena, DType.BF16, n, dIn);
            Tensor w = Tensor.allocate(arena, DType.BF16, dOut, dIn);
            Tensor dy = Tensor.allocate(arena, DType.BF16, n, dOut);
            for (Tensor t : new Tensor[] {x, w, dy}) {
                GpuSupport.fill(t, rnd, -1, 1);
            }
            try (DeviceTensor dX = cuda.upload(x); DeviceTensor dW = cuda.upload(w); DeviceTensor dDy = cuda.upload(dy);
                 DeviceTensor y1 = cuda.allocate(DType.BF16, n, dOut); DeviceTensor y2 = cuda.allocate(DType.BF16, n, dOut);
                 DeviceTensor dx1 = cuda.allocate(DType.BF16, n, dIn); DeviceTensor dx2 = cuda.allocate(DType.BF16, n, dIn)) {
                gemmEx.forward(dX, dW, y1);
                lt.forward(dX, dW, y2);
                gemmEx.backwardData(dDy, dW, dx1);
                lt.backwardData(dDy, dW, dx2);
                Tensor[] h = new Tensor[4];
                DeviceTensor[] dev = {y1, y2, dx1, dx2};
                for (int i = 0; i < 4; i++) {
                    h[i] = Tensor.allocate(arena, DType.BF16, dev[i].shape());
                    dev[i].copyTo(h[i]);
                }
                // both accumulate in fp32 and round once: at most one bf16 ulp apart
                GpuSupport.assertClose("Y cuBLASLt vs cublasGemmEx", h[1], h[0], 0x1p-7, 1e-5, "n=" + n);
                GpuSupport.assertClose("dX cuBLASLt vs cublasGemmEx", h[3], h[2], 0x1p-7, 1e-5, "n=" + n);
            }
        }
    }
}
