package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Adafactor;
import dev.rslora.train.Parameter;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link CudaAdafactor} against the CPU {@link Adafactor} over 40 steps with fresh random gradients
 * each step, for every option set: parameters, masters, row/column or full second moments and first
 * moments bit for bit after every 10 steps and at the end (both follow AdafactorSpec's operations and
 * reduction order). Tensors: a LoRA pair with rows longer than a 2048 segment and more rows than a 64-row
 * column chunk, bf16/f16 parameters with f32 masters, a bf16 parameter without, bf16 gradients, 1-D and
 * size-1 tensors. Skipped with the probe's reason where CUDA is unavailable.
 */
@Tag("gpu")
class CudaAdafactorGpuTest {
    private static final int STEPS = 40;

    private record Spec(String name, DType param, DType grad, long... shape) {
    }

    private static final List<Spec> SPECS = List.of(
            new Spec("l0.lora_A", DType.F32, DType.F32, 16, 3000),
            new Spec("l0.lora_B", DType.F32, DType.F32, 3000, 16),
            new Spec("l1.lora_A", DType.BF16, DType.F32, 8, 129),
            new Spec("l1.lora_B", DType.F16, DType.F32, 130, 8),
            new Spec("bf16grad", DType.F32, DType.BF16, 5, 77),
            new Spec("bias", DType.F32, DType.F32, 2049),
            new Spec("one", DType.F32, DType.F32, 1, 1),
            new Spec("single", DType.BF16, DType.BF16, 1));

    static Stream<Arguments> configs() {
        return Stream.of(Arguments.of("hf-defaults", AdafactorConfig.hfDefaults(), true),
                Arguments.of("trainer", AdafactorConfig.trainer(1e-2), true),
                Arguments.of("beta1-wd-clip", AdafactorConfig.trainer(1e-2).withScaleParameter(true).withBeta1(0.9)
                        .withWeightDecay(0.1).withClipThreshold(0.5), true),
                Arguments.of("warmup-init-no-masters", AdafactorConfig.hfDefaults().withRelativeStep(true, null, true)
                        .withBeta1(0.5).withDecayRate(-0.5), false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("configs")
    void bitIdenticalToTheCpuAdafactor(String name, AdafactorConfig config, boolean masters) {
        CudaBackend backend = GpuSupport.backend();
        long seed = 0xADAF_0001L + name.hashCode();
        SplittableRandom rnd = new SplittableRandom(seed);
        List<DeviceTensor> owned = new ArrayList<>();
        try (Arena arena = Arena.ofShared()) {
            List<Parameter> host = new ArrayList<>();
            List<CudaAdafactor.Param> device = new ArrayList<>();
            for (Spec s : SPECS) {
                Tensor v = Tensor.allocate(arena, s.param(), s.shape());
                GpuSupport.fill(v, rnd, -0.5, 0.5);
                Tensor g = Tensor.allocate(arena, s.grad(), s.shape());
                host.add(new Parameter(s.name(), v, g));
                DeviceTensor dv = backend.upload(v);
                DeviceTensor dg = backend.allocate(s.grad(), s.shape());
                owned.add(dv);
                owned.add(dg);
                device.add(new CudaAdafactor.Param(s.name(), dv, dg));
            }
            try (Adafactor cpu = new Adafactor(host, config, masters);
                 CudaAdafactor gpu = new CudaAdafactor(backend, device, config, masters)) {
                for (int t = 1; t <= STEPS; t++) {
                    double scale = t % 7 == 0 ? 1e-3 : 0.25;
                    for (int i = 0; i < host.size(); i++) {
                        GpuSupport.fill(host.get(i).grad(), rnd, -scale, scale);
                        device.get(i).grad().copyFrom(host.get(i).grad());
                    }
                    cpu.step();
                    gpu.step();
                    if (t % 10 == 0 || t == 1) {
                        String ctx = name + " step " + t + ", seed " + seed;
                        assertSameState(cpu.snapshot(), gpu.snapshot(), ctx);
                        for (int i = 0; i < host.size(); i++) {
                            Tensor got = Tensor.allocate(arena, host.get(i).value().dtype(), host.get(i).value().shape());
                            device.get(i).value().copyTo(got);
                            assertBits("param " + host.get(i).name(), host.get(i).value().toFloatArray(), got.toFloatArray(), ctx);
                        }
                    }
                }
            }
        } finally {
            for (DeviceTensor t : owned) {
                t.close();
            }
        }
    }

    private static void assertSameState(AdafactorState cpu, AdafactorState gpu, String context) {
        assertEquals(cpu.step(), gpu.step(), context);
        for (int i = 0; i < cpu.entries().size(); i++) {
            AdafactorState.Entry c = cpu.entries().get(i);
            AdafactorState.Entry g = gpu.entries().get(i);
            assertEquals(c.name(), g.name());
            assertBits("exp_avg_sq_row of " + c.name(), c.expAvgSqRow(), g.expAvgSqRow(), context);
            assertBits("exp_avg_sq_col of " + c.name(), c.expAvgSqCol(), g.expAvgSqCol(), context);
            assertBits("exp_avg_sq of " + c.name(), c.expAvgSq(), g.expAvgSq(), context);
            assertBits("exp_avg of " + c.name(), c.expAvg(), g.expAvg(), context);
            assertBits("master of " + c.name(), c.master(), g.master(), context);
        }
    }

    private static void assertBits(String what, float[] want, float[] got, String context) {
        if (want == null || got == null) {
            assertEquals(want == null, got == null, what + " present on one side only (" + context + ")");
            return;
        }
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(what + "[" + i + "]: cpu " + want[i] + " gpu " + got[i] + " (" + context + ")");
            }
        }
    }
}
