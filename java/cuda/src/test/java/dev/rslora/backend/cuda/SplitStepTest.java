package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole split step recorded without a device: our kernel launches (names, grids, params) and
 * the cuBLASLt GEMMs (geometry, dtypes, operands, alpha, beta, bias) in one stream order, checked
 * against the step's definition in {@link SplitStep}; the choice between fused and split
 * ({@link StepPolicy}).
 */
class SplitStepTest {
    /** One stream event: a kernel launch or a cuBLASLt matmul (or a plan prepared before a capture). */
    record Event(String what, LoraKernelsLaunchTest.Launch launch, CublasGemm g, DType ab, DType cd, long a, long b, long c,
                 long bias, float alpha, float beta) {
        @Override
        public String toString() {
            return launch != null ? "kernel " + launch.kernel() : what + " " + g + " " + ab + "->" + cd + " alpha=" + alpha + " beta="
                    + beta + (bias != 0 ? " bias" : "");
        }
    }

    /** Kernels and GEMMs into one list, in the order the step queues them. */
    static final class Stream implements KernelLauncher, LtGemm {
        final List<Event> events = new ArrayList<>();

        @Override
        public void resolve(String kernel) {
        }

        @Override
        public void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
            events.add(new Event("kernel", new LoraKernelsLaunchTest.Launch(kernel, grid, threads, params.clone()), null, null, null,
                    0, 0, 0, 0, 0, 0));
        }

        @Override
        public void matmul(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias,
                           float alpha, float beta) {
            events.add(new Event("matmul", null, g, ab, cd, a.address(), b.address(), c.address(), bias == null ? 0 : bias.address(),
                    alpha, beta));
        }

        @Override
        public void prepare(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias) {
            events.add(new Event("prepare", null, g, ab, cd, a.address(), b.address(), c.address(), bias == null ? 0 : bias.address(),
                    0, 0));
        }

        @Override
        public String binding() {
            return "recorder";
        }

        List<String> kinds() {
            return events.stream().map(e -> e.launch() != null ? e.launch().kernel() : e.what()).toList();
        }
    }

    private final CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());

    private DeviceBuffer buf(long bytes) {
        return memory.allocate(bytes);
    }

    /** Scratch from the fake allocator, as SplitStep.Scratch.allocate makes it on a device. */
    private SplitStep.Scratch scratch(DType t, int n, int dIn, int dOut, int r) {
        if (t == DType.F32 || r == 0) {
            return new SplitStep.Scratch(t, null, null, null, null);
        }
        return new SplitStep.Scratch(t, buf((long) n * r * 2), buf((long) dOut * r * 2), buf((long) n * r * 2), buf((long) r * dIn * 2));
    }

    @Test
    void forwardPutsTheLoraTermFirstAndAddsItInTheBigGemmsEpilogue() {
        int n = 300;
        int dIn = 200;
        int dOut = 150;
        int r = 16;
        float gamma = 4.0f;
        Stream s = new Stream();
        SplitStep step = new SplitStep(new LoraKernels(s, 1), s);
        DeviceBuffer x = buf((long) n * dIn * 2);
        DeviceBuffer w = buf((long) dOut * dIn * 2);
        DeviceBuffer bias = buf(dOut * 2L);
        DeviceBuffer a = buf((long) r * dIn * 4);
        DeviceBuffer b = buf((long) dOut * r * 4);
        DeviceBuffer u = buf((long) n * r * 4);
        DeviceBuffer y = buf((long) n * dOut * 2);
        SplitStep.Scratch sc = scratch(DType.BF16, n, dIn, dOut, r);
        LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(9, 3, 2, 0.1f), 9, 3, 2);
        step.forward(DType.BF16, x, w, bias, a, b, u, y, n, dIn, dOut, r, gamma, d, sc);
        assertEquals(List.of("rslora_lora_down_v1_bf16", "rslora_convert_f32_to_bf16", "rslora_convert_f32_to_bf16", "matmul",
                "matmul"), s.kinds());
        // U = D(X)·Aᵀ into u, with the step's dropout
        LoraKernelsLaunchTest.Launch down = s.events.get(0).launch();
        assertEquals(u.address(), down.ptr(KernelParams.DOWN, "u"));
        assertEquals(x.address(), down.ptr(KernelParams.DOWN, "x"));
        // Ut = bf16(U), Bt = bf16(B)
        LoraKernelsLaunchTest.Launch cu = s.events.get(1).launch();
        assertEquals(u.address(), cu.ptr(KernelParams.CONVERT, "src"));
        assertEquals(sc.ut().address(), cu.ptr(KernelParams.CONVERT, "dst"));
        assertEquals((long) n * r, cu.bb().getLong(KernelParams.CONVERT.offset("count")));
        LoraKernelsLaunchTest.Launch cb = s.events.get(2).launch();
        assertEquals(b.address(), cb.ptr(KernelParams.CONVERT, "src"));
        assertEquals(sc.bt().address(), cb.ptr(KernelParams.CONVERT, "dst"));
        // Y = γ·Ut·Btᵀ: column-major Yᵀ (d_out × n) = op(Bt)·Utᵀ, K = r, no bias, beta 0
        Event up = s.events.get(3);
        assertEquals(new CublasGemm(CublasGemm.OP_T, CublasGemm.OP_N, dOut, n, r, r, r, dOut), up.g());
        assertEquals(List.of(sc.bt().address(), sc.ut().address(), y.address(), 0L), List.of(up.a(), up.b(), up.c(), up.bias()));
        assertEquals(gamma, up.alpha());
        assertEquals(0f, up.beta());
        // Y = X·Wᵀ + bias + 1·Y
        Event base = s.events.get(4);
        assertEquals(CublasGemm.baseForward(n, dIn, dOut), base.g());
        assertEquals(List.of(w.address(), x.address(), y.address(), bias.address()), List.of(base.a(), base.b(), base.c(), base.bias()));
        assertEquals(1f, base.alpha());
        assertEquals(1f, base.beta());
        assertEquals(DType.BF16, base.ab());
        assertEquals(DType.BF16, base.cd());
    }

    @Test
    void backwardMasksTheLoraTermOfDxWithTheForwardsMaskThenAddsDyW() {
        int n = 130;
        int dIn = 72;
        int dOut = 40;
        int r = 8;
        float gamma = 2.5f;
        Stream s = new Stream();
        SplitStep step = new SplitStep(new LoraKernels(s, 1), s);
        DeviceBuffer x = buf((long) n * dIn * 2);
        DeviceBuffer dy = buf((long) n * dOut * 2);
        DeviceBuffer w = buf((long) dOut * dIn * 2);
        DeviceBuffer a = buf((long) r * dIn * 4);
        DeviceBuffer b = buf((long) dOut * r * 4);
        DeviceBuffer u = buf((long) n * r * 4);
        DeviceBuffer v = buf((long) n * r * 4);
        long cap = 1L << 30;
        DeviceBuffer ws = buf(LoraKernels.workspaceBytes(n, dIn, dOut, r, cap));
        DeviceBuffer gA = buf((long) r * dIn * 4);
        DeviceBuffer gB = buf((long) dOut * r * 4);
        DeviceBuffer dx = buf((long) n * dIn * 2);
        SplitStep.Scratch sc = scratch(DType.F16, n, dIn, dOut, r);
        LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(77, 5, 1, 0.1f), 77, 5, 1);
        step.backward(DType.F16, x, dy, w, a, b, u, v, ws, gA, gB, dx, n, dIn, dOut, r, gamma, d, true, cap, sc);
        assertEquals(List.of("rslora_lora_backward_vdb_v1_f16", "rslora_reduce_groups_v1", "rslora_lora_backward_da_v1_f16",
                "rslora_reduce_groups_v1", "rslora_convert_f32_to_f16", "rslora_convert_f32_to_f16", "matmul",
                "rslora_dropout_apply_v1_f16", "matmul"), s.kinds());
        // dB and dA accumulate with γ, as in the fused step
        assertEquals(gamma, s.events.get(1).launch().f32(KernelParams.REDUCE, "gamma"));
        assertEquals(1, s.events.get(1).launch().i32(KernelParams.REDUCE, "accumulate"));
        assertEquals(gB.address(), s.events.get(1).launch().ptr(KernelParams.REDUCE, "out"));
        assertEquals(gA.address(), s.events.get(3).launch().ptr(KernelParams.REDUCE, "out"));
        // dX = γ·Vt·At (K = r), then D' in place with the SAME dropout bytes as dA's, then dY·W + 1·dX
        Event lora = s.events.get(6);
        assertEquals(new CublasGemm(CublasGemm.OP_N, CublasGemm.OP_N, dIn, n, r, dIn, r, dIn), lora.g());
        assertEquals(List.of(sc.at().address(), sc.vt().address(), dx.address()), List.of(lora.a(), lora.b(), lora.c()));
        assertEquals(gamma, lora.alpha());
        assertEquals(0f, lora.beta());
        LoraKernelsLaunchTest.Launch drop = s.events.get(7).launch();
        assertEquals(dx.address(), drop.ptr(KernelParams.DROPOUT_ELEMENTWISE, "src"));
        assertEquals(dx.address(), drop.ptr(KernelParams.DROPOUT_ELEMENTWISE, "dst"));
        assertArrayEquals(s.events.get(2).launch().dropout(KernelParams.BACKWARD_DA), drop.dropout(KernelParams.DROPOUT_ELEMENTWISE));
        assertEquals(1, drop.i32(KernelParams.DROPOUT_ELEMENTWISE, "drop.enabled"));
        Event base = s.events.get(8);
        assertEquals(CublasGemm.baseBackwardData(n, dIn, dOut), base.g());
        assertEquals(List.of(w.address(), dy.address(), dx.address()), List.of(base.a(), base.b(), base.c()));
        assertEquals(1f, base.beta());
    }

    @Test
    void f32NeedsNoConversionsAndNoDropoutMeansNoMaskKernel() {
        int n = 7;
        int dIn = 33;
        int dOut = 17;
        int r = 3;
        Stream s = new Stream();
        SplitStep step = new SplitStep(new LoraKernels(s, 1), s);
        DeviceBuffer x = buf(4L * n * dIn);
        DeviceBuffer w = buf(4L * dOut * dIn);
        DeviceBuffer a = buf(4L * r * dIn);
        DeviceBuffer b = buf(4L * dOut * r);
        DeviceBuffer u = buf(4L * n * r);
        DeviceBuffer y = buf(4L * n * dOut);
        DeviceBuffer dy = buf(4L * n * dOut);
        DeviceBuffer v = buf(4L * n * r);
        DeviceBuffer dx = buf(4L * n * dIn);
        SplitStep.Scratch sc = scratch(DType.F32, n, dIn, dOut, r);
        step.forward(DType.F32, x, w, null, a, b, u, y, n, dIn, dOut, r, 1f, LoraKernels.Dropout.NONE, sc);
        step.backwardDx(DType.F32, dy, w, a, v, dx, n, dIn, dOut, r, 1f, LoraKernels.Dropout.NONE, sc);
        assertEquals(List.of("rslora_lora_down_v1_f32", "matmul", "matmul", "matmul", "matmul"), s.kinds());
        assertEquals(List.of(b.address(), u.address()), List.of(s.events.get(1).a(), s.events.get(1).b()), "B and U themselves");
        assertEquals(List.of(a.address(), v.address()), List.of(s.events.get(3).a(), s.events.get(3).b()), "A and V themselves");
        assertTrue(s.events.stream().filter(e -> e.g() != null).allMatch(e -> e.ab() == DType.F32 && e.cd() == DType.F32));
        // r = 0: the base alone, beta 0
        Stream s0 = new Stream();
        new SplitStep(new LoraKernels(s0, 1), s0).forward(DType.F32, x, w, null, null, null, null, y, n, dIn, dOut, 0, 1f,
                LoraKernels.Dropout.NONE, sc);
        assertEquals(List.of("matmul"), s0.kinds());
        assertEquals(0f, s0.events.get(0).beta());
    }

    @Test
    void plansArePreparedForEveryGemmOfTheStepBeforeACapture() {
        int n = 64;
        int dIn = 48;
        int dOut = 32;
        int r = 8;
        Stream s = new Stream();
        SplitStep step = new SplitStep(new LoraKernels(s, 1), s);
        DeviceBuffer x = buf(2L * n * dIn);
        DeviceBuffer w = buf(2L * dOut * dIn);
        DeviceBuffer a = buf(4L * r * dIn);
        DeviceBuffer b = buf(4L * dOut * r);
        DeviceBuffer u = buf(4L * n * r);
        DeviceBuffer y = buf(2L * n * dOut);
        DeviceBuffer dy = buf(2L * n * dOut);
        DeviceBuffer v = buf(4L * n * r);
        DeviceBuffer dx = buf(2L * n * dIn);
        SplitStep.Scratch sc = scratch(DType.BF16, n, dIn, dOut, r);
        step.preparePlans(DType.BF16, x, w, null, a, b, u, y, dy, v, dx, n, dIn, dOut, r, sc);
        Stream run = new Stream();
        SplitStep live = new SplitStep(new LoraKernels(run, 1), run);
        LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(1, 1, 1, 0.1f), 1, 1, 1);
        live.forward(DType.BF16, x, w, null, a, b, u, y, n, dIn, dOut, r, 2f, d, sc);
        live.backwardDx(DType.BF16, dy, w, a, v, dx, n, dIn, dOut, r, 2f, d, sc);
        List<String> prepared = s.events.stream().map(e -> e.g() + " " + e.a() + " " + e.b() + " " + e.c() + " " + e.bias()).toList();
        List<String> used = run.events.stream().filter(e -> e.g() != null)
                .map(e -> e.g() + " " + e.a() + " " + e.b() + " " + e.c() + " " + e.bias()).toList();
        assertEquals(used, prepared, "every matmul of the step has its plan made before the capture");
        assertEquals(List.of("rslora_lora_down_v1_bf16", "rslora_convert_f32_to_bf16", "rslora_lora_backward_vdb_v1_bf16",
                "rslora_reduce_groups_v1", "rslora_lora_backward_da_v1_bf16", "rslora_dropout_apply_v1_bf16"),
                step.kernelNames(DType.BF16, true));
        assertTrue(run.kinds().stream().filter(k -> k.startsWith("rslora")).allMatch(step.kernelNames(DType.BF16, true)::contains),
                "every kernel the step launches is resolved before the capture: " + run.kinds());
    }

    @Test
    void thePolicyPicksSplitWhereCublasLtLoadsUnlessAFasterValidatedFusedFamilyWasMeasured() {
        List<StepPolicy.Fused> v1v2 = List.of(new StepPolicy.Fused("v1", false, true, Double.NaN),
                new StepPolicy.Fused("v2", true, true, Double.NaN));
        StepPolicy.Choice auto = StepPolicy.choose(null, DType.BF16, "cuBLASLt via java.lang.foreign (libcublasLt.so.13)", "",
                Double.NaN, v1v2);
        assertEquals(StepPolicy.Kind.SPLIT, auto.kind());
        assertTrue(auto.reason().contains("libcublasLt.so.13") && auto.reason().contains("v1, v2"), auto.reason());
        StepPolicy.Choice noLt = StepPolicy.choose("auto", DType.BF16, null, "none of libcublasLt.so.13, ... loads", Double.NaN, v1v2);
        assertEquals(StepPolicy.Kind.FUSED, noLt.kind());
        assertTrue(noLt.reason().startsWith("no cuBLASLt (none of libcublasLt.so.13"), noLt.reason());
        assertEquals(StepPolicy.Kind.FUSED, StepPolicy.choose(" Fused ", DType.F32, "lt", "", Double.NaN, v1v2).kind());
        assertEquals(StepPolicy.Kind.SPLIT, StepPolicy.choose("split", DType.F16, "lt", "", Double.NaN, v1v2).kind());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> StepPolicy.choose("split", DType.F16, null, "no libcublasLt", Double.NaN, v1v2));
        assertTrue(e.getMessage().contains("no libcublasLt"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> StepPolicy.requested("fast"));
        // a tensor-core family validated here and measured faster than split at this shape wins; unvalidated or slower do not
        List<StepPolicy.Fused> v3fast = List.of(new StepPolicy.Fused("v3", true, true, 0.70));
        assertEquals(StepPolicy.Kind.FUSED, StepPolicy.choose("auto", DType.BF16, "lt", "", 0.80, v3fast).kind());
        assertEquals(StepPolicy.Kind.SPLIT, StepPolicy.choose("auto", DType.BF16, "lt", "", 0.60, v3fast).kind());
        assertEquals(StepPolicy.Kind.SPLIT, StepPolicy.choose("auto", DType.BF16, "lt", "", 0.80,
                List.of(new StepPolicy.Fused("v3", true, false, 0.70))).kind(), "not validated on this architecture");
        assertEquals(StepPolicy.Kind.SPLIT, StepPolicy.choose("auto", DType.BF16, "lt", "", Double.NaN, v3fast).kind(),
                "split not measured: no comparison, split");
        assertEquals("split", Arrays.stream(StepPolicy.Kind.values()).map(k -> k.name().toLowerCase()).toList().get(1));
    }
}
