package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.AdamW;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;
import dev.rslora.train.GradClip;
import dev.rslora.train.Parameter;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link CudaAdamW} against the CPU {@link AdamW} over 100 steps with fresh random gradients each
 * step: bit for bit without clipping (f32 params, bf16/f16 params with f32 masters, f32 and bf16
 * gradients, size-1 tensors); with clipping the device norm within 1e-12 relative of GradClip's and
 * the parameters within 1e-5 relative (the two norms are summed in different orders, see
 * {@link CudaAdamW}). Skipped with the probe's reason where CUDA is unavailable.
 */
@Tag("gpu")
class CudaAdamWGpuTest {
    private static final int STEPS = 100;

    /** name, param dtype, grad dtype, shape */
    private record Spec(String name, DType param, DType grad, long... shape) {
    }

    private static final List<Spec> SPECS = List.of(
            new Spec("l0.lora_A", DType.F32, DType.F32, 16, 300),
            new Spec("l0.lora_B", DType.F32, DType.F32, 257, 16),
            new Spec("one", DType.F32, DType.F32, 1, 1),
            new Spec("l1.lora_A", DType.BF16, DType.F32, 8, 129),
            new Spec("l1.lora_B", DType.F16, DType.F32, 33, 8),
            new Spec("bf16grad", DType.F32, DType.BF16, 5, 77),
            new Spec("bf16both", DType.BF16, DType.BF16, 1, 3));

    /** Host and device copies of every parameter and gradient. */
    private static final class Setup implements AutoCloseable {
        final Arena arena = Arena.ofShared();
        final List<Parameter> host = new ArrayList<>();
        final List<CudaAdamW.Param> device = new ArrayList<>();
        final List<DeviceTensor> owned = new ArrayList<>();

        Setup(CudaBackend backend, SplittableRandom rnd) {
            for (Spec s : SPECS) {
                Tensor v = Tensor.allocate(arena, s.param(), s.shape());
                GpuSupport.fill(v, rnd, -1, 1);
                Tensor g = Tensor.allocate(arena, s.grad(), s.shape());
                host.add(new Parameter(s.name(), v, g));
                DeviceTensor dv = backend.upload(v);
                DeviceTensor dg = backend.allocate(s.grad(), s.shape());
                owned.add(dv);
                owned.add(dg);
                device.add(new CudaAdamW.Param(s.name(), dv, dg));
            }
        }

        /** Fresh gradients on the host, copied to the device. */
        void newGradients(SplittableRandom rnd, double scale) {
            for (int i = 0; i < host.size(); i++) {
                GpuSupport.fill(host.get(i).grad(), rnd, -scale, scale);
                device.get(i).grad().copyFrom(host.get(i).grad());
            }
        }

        @Override
        public void close() {
            for (DeviceTensor t : owned) {
                t.close();
            }
            arena.close();
        }
    }

    private static void assertSameState(AdamWState cpu, AdamWState gpu, String context) {
        assertEquals(cpu.step(), gpu.step(), context);
        for (int i = 0; i < cpu.entries().size(); i++) {
            AdamWState.Entry c = cpu.entries().get(i);
            AdamWState.Entry g = gpu.entries().get(i);
            assertEquals(c.name(), g.name());
            assertBits("m of " + c.name(), c.m(), g.m(), context);
            assertBits("v of " + c.name(), c.v(), g.v(), context);
            assertEquals(c.master() == null, g.master() == null, "master of " + c.name());
            if (c.master() != null) {
                assertBits("master of " + c.name(), c.master(), g.master(), context);
            }
        }
    }

    private static void assertBits(String what, float[] want, float[] got, String context) {
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(what + "[" + i + "]: cpu " + want[i] + " gpu " + got[i] + " (" + context + ")");
            }
        }
    }

    @Test
    void bitIdenticalToTheCpuAdamWOverManySteps() {
        CudaBackend backend = GpuSupport.backend();
        long seed = 0xADA3_0001L;
        SplittableRandom rnd = new SplittableRandom(seed);
        AdamWConfig config = new AdamWConfig(1e-2, 0.9, 0.999, 1e-8, 0.1);
        try (Setup s = new Setup(backend, rnd);
             AdamW cpu = new AdamW(s.host, config);
             CudaAdamW gpu = new CudaAdamW(backend, s.device, config)) {
            for (int t = 1; t <= STEPS; t++) {
                s.newGradients(rnd, t % 5 == 0 ? 1e-3 : 1.0);
                cpu.step();
                gpu.step();
                if (t == 1 || t == STEPS) {
                    String context = "step " + t + ", seed " + seed;
                    assertSameState(cpu.snapshot(), gpu.snapshot(), context);
                    for (int i = 0; i < SPECS.size(); i++) {
                        Tensor hv = s.host.get(i).value();
                        try (Arena a = Arena.ofConfined()) {
                            Tensor got = Tensor.allocate(a, hv.dtype(), hv.shape());
                            s.device.get(i).value().copyTo(got);
                            GpuSupport.assertBitwise(SPECS.get(i).name(), got, hv, context);
                        }
                    }
                }
            }
            assertEquals(STEPS, gpu.stepCount());
        }
    }

    @Test
    void clippedStepsFollowGradClip() {
        CudaBackend backend = GpuSupport.backend();
        long seed = 0xADA3_0002L;
        SplittableRandom rnd = new SplittableRandom(seed);
        AdamWConfig config = AdamWConfig.torchDefaults().withLr(5e-3);
        try (Setup s = new Setup(backend, rnd);
             AdamW cpu = new AdamW(s.host, config);
             CudaAdamW gpu = new CudaAdamW(backend, s.device, config)) {
            for (int t = 1; t <= STEPS; t++) {
                s.newGradients(rnd, 1.0);
                List<Tensor> grads = s.host.stream().map(Parameter::grad).toList();
                double expect = GradClip.globalNorm(grads);
                assertEquals(expect, gpu.gradNorm(), 1e-12 * expect, "gradNorm at step " + t + ", seed " + seed);
                double maxNorm = t % 2 == 0 ? 0.3 * expect : 2 * expect;  // clipping on every other step
                double cpuNorm = cpu.clipGradNorm(maxNorm);
                cpu.step();
                gpu.step(maxNorm);
                assertEquals(cpuNorm, gpu.lastGradNorm(), 1e-12 * cpuNorm, "norm at step " + t + ", seed " + seed);
            }
            for (int i = 0; i < SPECS.size(); i++) {
                Tensor hv = s.host.get(i).value();
                try (Arena a = Arena.ofConfined()) {
                    Tensor got = Tensor.allocate(a, hv.dtype(), hv.shape());
                    s.device.get(i).value().copyTo(got);
                    GpuSupport.assertClose(SPECS.get(i).name(), got, hv, GpuSupport.rtol(hv.dtype()), 1e-5, "seed " + seed);
                }
            }
            AdamWState c = cpu.snapshot();
            AdamWState g = gpu.snapshot();
            assertTrue(Arrays.equals(c.entries().get(0).shape(), g.entries().get(0).shape()));
        }
    }
}
