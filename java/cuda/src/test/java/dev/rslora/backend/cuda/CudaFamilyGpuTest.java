package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The table-driven families beyond v2 (v3, v4: {@link FamilyStep}, the memory-bound mb kernels and
 * the family's own forward and dX GEMMs: v4's mma.sync kernels, v3's sm_90a wgmma + TMA kernels,
 * checked to have run, not v1's fallback) through the Java host on a GPU, against the double reference, on
 * the 16-bit cases of {@link CudaBackendGpuTest}: the v1 tolerances plus, on every LoRA output, the
 * bound of the T rounding of γ·U, γ·V, A and B (4·u_T·Σ|terms|, the harness's bound for every family
 * but v1). A family this device or host cannot run is skipped with the selector's reason.
 */
@Tag("gpu")
class CudaFamilyGpuTest {
    private static final Map<String, CudaBackend> BACKENDS = new HashMap<>();

    static List<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String family : List.of("v3", "v4")) {
            for (CudaBackendGpuTest.Case c : CudaBackendGpuTest.cases()) {
                if (c.t() != DType.F32 && c.adapter() == DType.F32) {
                    out.add(Arguments.of(family, c));
                }
            }
        }
        return out;
    }

    static synchronized CudaBackend family(String family) {
        CudaBackend base = GpuSupport.backend();
        return BACKENDS.computeIfAbsent(family, f -> {
            CudaBackend b = CudaBackend.withFamily(base.context(), 256L << 20, f);
            b.setPoison(true);
            b.setStepRequest("fused");
            return b;
        });
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void forwardAndBackwardMatchTheReference(String family, CudaBackendGpuTest.Case c) {
        CudaBackend cuda = family(family);
        String used = cuda.familyFor(c.t(), c.n(), c.dIn(), c.dOut(), c.r(), true);
        Assumptions.assumeTrue(used.equals(family), () -> family + " does not run here: the selector fell back to " + used
                + " (see the log line)");
        ReferenceBackend ref = new ReferenceBackend();
        SplittableRandom rnd = new SplittableRandom(c.seed());
        try (Arena arena = Arena.ofShared()) {
            CudaBackendGpuTest.Step s = new CudaBackendGpuTest.Step(arena, c, rnd);
            double gamma = 16.0 / Math.sqrt(c.r());
            LoraParams p = new LoraParams(c.n(), c.dIn(), c.dOut(), c.r(), gamma, c.p(), c.seed() ^ 0x5DEECE66DL, 3, 2, true, true,
                    c.mode());
            Tensor u = TestData.poisoned(arena, DType.F32, c.n(), c.r());
            Tensor y = TestData.poisoned(arena, c.t(), c.n(), c.dOut());
            Tensor uRef = Tensor.allocate(arena, DType.F32, c.n(), c.r());
            Tensor yRef = Tensor.allocate(arena, c.t(), c.n(), c.dOut());
            double unit = GpuSupport.unit(c.t());
            String ctx = family + " " + c;
            try (FrozenWeight fw = cuda.prepare(s.w, s.bias); FrozenWeight rw = ref.prepare(s.w, s.bias)) {
                cuda.forward(p, fw, s.x, s.a, s.b, u, y);
                ref.forward(p, rw, s.x, s.a, s.b, uRef, yRef);
                // U from At = T(A): the T rounding of A enters U
                double[] eu = new double[c.n() * c.r()];
                for (int i = 0; i < c.n(); i++) {
                    for (int j = 0; j < c.r(); j++) {
                        double sum = 0;
                        for (int k = 0; k < c.dIn(); k++) {
                            sum += Math.abs((double) s.x.get(i, k) * s.a.get(j, k));
                        }
                        eu[i * c.r() + j] = 4 * unit * (p.mask() == null ? 1 : p.mask().scale()) * sum;
                    }
                }
                GpuSupport.assertClose("U", u, uRef, 1e-5, 1e-5, eu, ctx);
                double[] ey = new double[c.n() * c.dOut()];
                for (int i = 0; i < c.n(); i++) {
                    for (int o = 0; o < c.dOut(); o++) {
                        double sum = 0;
                        for (int j = 0; j < c.r(); j++) {
                            sum += Math.abs(uRef.get(i, j) * s.b.get(o, j)) + Math.abs(eu[i * c.r() + j] * s.b.get(o, j));
                        }
                        ey[i * c.dOut() + o] = 4 * unit * gamma * sum;
                    }
                }
                GpuSupport.assertClose("Y", y, yRef, GpuSupport.rtol(c.t()), 1e-5, ey, ctx);

                Tensor dx = TestData.poisoned(arena, c.t(), c.n(), c.dIn());
                Tensor dxRef = Tensor.allocate(arena, c.t(), c.n(), c.dIn());
                GpuSupport.Grads g = GpuSupport.Grads.of(arena, DType.F32, c.r(), c.dIn(), c.dOut(), c.mode(), rnd);
                cuda.backward(p, fw, s.x, s.a, s.b, u, s.dy, dx, g.gA(), g.gB());
                ref.backward(p, rw, s.x, s.a, s.b, uRef, s.dy, dxRef, g.gARef(), g.gBRef());
                double scale = p.mask() == null ? 1 : p.mask().scale();
                double[][] v = new double[c.n()][c.r()];
                for (int i = 0; i < c.n(); i++) {
                    for (int j = 0; j < c.r(); j++) {
                        for (int o = 0; o < c.dOut(); o++) {
                            v[i][j] += Math.abs((double) s.dy.get(i, o) * s.b.get(o, j));
                        }
                    }
                }
                double[] edx = new double[c.n() * c.dIn()];
                for (int i = 0; i < c.n(); i++) {
                    for (int k = 0; k < c.dIn(); k++) {
                        double sum = 0;
                        for (int j = 0; j < c.r(); j++) {
                            sum += v[i][j] * Math.abs(s.a.get(j, k));
                        }
                        edx[i * c.dIn() + k] = 4 * unit * gamma * scale * sum;
                    }
                }
                GpuSupport.assertClose("dX", dx, dxRef, GpuSupport.rtol(c.t()), 1e-5, edx, ctx);
                // the family's own GEMMs ran (its rows name them, and neither refused this step's shape or pointers)
                FamilyStep fs = cuda.familyStep(family, c.t(), c.n(), c.dIn(), c.dOut(), c.r());
                for (KernelTable.Row row : List.of(fs.rows().forward(), fs.rows().dx())) {
                    assertTrue(row.name().contains("_" + family + "_"), ctx + ": " + row.name());
                    assertFalse(FamilyStep.refusedOnce(row.name(), c.n(), c.dIn(), c.dOut(), c.r()), ctx + ": " + row.name() + " refused");
                }
                // dB = γ·dYᵀ·U from Ug = T(γ·U) (and Bt for V); dA = γ·Vᵀ·D(X) from Vg = T(γ·V)
                double[] edb = new double[c.dOut() * c.r()];
                for (int o = 0; o < c.dOut(); o++) {
                    for (int j = 0; j < c.r(); j++) {
                        double sum = 0;
                        for (int i = 0; i < c.n(); i++) {
                            sum += Math.abs((double) s.dy.get(i, o)) * (Math.abs(uRef.get(i, j)) + eu[i * c.r() + j]);
                        }
                        edb[o * c.r() + j] = 4 * unit * gamma * sum;
                    }
                }
                double[] eda = new double[c.r() * c.dIn()];
                for (int j = 0; j < c.r(); j++) {
                    for (int k = 0; k < c.dIn(); k++) {
                        double sum = 0;
                        for (int i = 0; i < c.n(); i++) {
                            sum += v[i][j] * Math.abs(s.x.get(i, k));
                        }
                        eda[j * c.dIn() + k] = 4 * unit * gamma * scale * sum;
                    }
                }
                GpuSupport.assertClose("dA", g.gA(), g.gARef(), GpuSupport.rtol(DType.F32), 1e-4, eda, ctx);
                GpuSupport.assertClose("dB", g.gB(), g.gBRef(), GpuSupport.rtol(DType.F32), 1e-4, edb, ctx);
            }
        }
        assertEquals(family, used);
    }

    /**
     * The device-resident layer on the family's own GEMMs (v3: tensor maps of the layer's buffers,
     * W's from the weight's cache): eager equals the host-staged backend, and a captured graph's
     * replay equals eager, bit for bit (the maps travel by value into the captured launches).
     */
    @ParameterizedTest(name = "{0}")
    @org.junit.jupiter.params.provider.ValueSource(strings = {"v3", "v4"})
    void theLayerAndItsGraphReplayRunTheFamilysGemmsBitForBit(String family) {
        CudaBackend cuda = family(family);
        int n = 300, dIn = 200, dOut = 152, r = 16;
        long seed = 4242, step = 5;
        DType t = DType.BF16;
        String used = cuda.familyFor(t, n, dIn, dOut, r, true);
        Assumptions.assumeTrue(used.equals(family), () -> family + " does not run here: the selector fell back to " + used);
        SplittableRandom rnd = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, t, n, dIn, dOut, r, rnd);
            double gamma = 8 / Math.sqrt(r);
            LoraParams p = new LoraParams(n, dIn, dOut, r, gamma, 0.1f, seed, step, 3, true, true, GradMode.ASSIGN);
            GpuSupport.StepResult backend = in.onBackend(arena, cuda, p);
            String ctx = family + " seed " + seed;
            try (CudaLoraLayer layer = new CudaLoraLayer(cuda, in.w(), in.bias(), in.a(), in.b(), gamma, 0.1f, seed, 3, n, GradMode.ASSIGN);
                 DeviceTensor dX = cuda.upload(in.x());
                 DeviceTensor dDy = cuda.upload(in.dy());
                 DeviceTensor dY1 = cuda.allocate(t, n, dOut);
                 DeviceTensor dDx1 = cuda.allocate(t, n, dIn);
                 DeviceTensor dY2 = cuda.allocate(t, n, dOut);
                 DeviceTensor dDx2 = cuda.allocate(t, n, dIn)) {
                layer.forward(dX, dY1, step, true);
                layer.backward(dX, dDy, dDx1, step, true);
                GpuSupport.StepResult eager = in.read(arena, layer, dY1, dDx1, false);
                eager.assertBitwise("layer vs backend", backend, ctx);
                try (CudaGraph graph = layer.captureStep(dX, dY2, dDy, dDx2, step)) {
                    layer.zeroGradients();
                    in.assertReplays(arena, graph, layer, dY2, dDx2, 2, eager, ctx);
                }
            }
            for (String k : List.of("rslora_lora_forward_" + family + "_bf16", "rslora_lora_backward_dx_" + family + "_bf16")) {
                assertFalse(FamilyStep.refusedOnce(k, n, dIn, dOut, r), ctx + ": " + k + " refused");
            }
        }
    }
}
