package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.optim.AdamWState;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Adafactor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Parameter;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device optimizers' hold on the caller's tensors: an open {@link CudaAdamW} or {@link CudaAdafactor}
 * pins its parameters and gradients (their addresses are in its device table), its close unpins them,
 * and closing the backend closes it; {@code reloadMasterWeights} after the caller writes new parameter
 * values matches the CPU optimizers' bit for bit. Skipped with the probe's reason where CUDA is unavailable.
 */
@Tag("gpu")
class CudaOptimizerLifecycleGpuTest {

    @Test
    void anOpenAdamWPinsItsParametersAndGradients() {
        CudaBackend backend = GpuSupport.backend();
        DeviceTensor w = backend.allocate(DType.BF16, 8, 16);
        DeviceTensor g = backend.allocate(DType.F32, 8, 16);
        CudaAdamW opt = new CudaAdamW(backend, List.of(new CudaAdamW.Param("w", w, g)), AdamWConfig.torchDefaults());
        IllegalStateException e = assertThrows(IllegalStateException.class, w::close);
        assertTrue(e.getMessage().contains("optimizer"), e.getMessage());
        assertThrows(IllegalStateException.class, g::close);
        opt.close();
        assertDoesNotThrow(w::close);
        assertDoesNotThrow(g::close);
    }

    @Test
    void anOpenAdafactorPinsItsParametersAndGradients() {
        CudaBackend backend = GpuSupport.backend();
        DeviceTensor w = backend.allocate(DType.F32, 8, 16);
        DeviceTensor g = backend.allocate(DType.F32, 8, 16);
        CudaAdafactor opt = new CudaAdafactor(backend, List.of(new CudaAdafactor.Param("w", w, g)), AdafactorConfig.hfDefaults());
        assertThrows(IllegalStateException.class, w::close);
        assertThrows(IllegalStateException.class, g::close);
        opt.close();
        assertDoesNotThrow(w::close);
        assertDoesNotThrow(g::close);
    }

    /** Closing the backend closes an optimizer still open: its tensors can be closed, its close is a no-op. */
    @Test
    void closingTheBackendClosesAnOpenOptimizer() {
        GpuSupport.backend();  // skips without a GPU
        CudaBackend own = (CudaBackend) new CudaBackendFactory().create();
        DeviceTensor w = own.allocate(DType.F32, 8, 16);
        DeviceTensor g = own.allocate(DType.F32, 8, 16);
        CudaAdamW opt = new CudaAdamW(own, List.of(new CudaAdamW.Param("w", w, g)), AdamWConfig.torchDefaults());
        opt.step();
        own.close();
        assertThrows(IllegalStateException.class, opt::step, "closed with the backend");
        assertDoesNotThrow(opt::close);
        assertDoesNotThrow(w::close);
        assertDoesNotThrow(g::close);
    }

    /** name, param dtype, shape (gradients f32). */
    private record Spec(String name, DType param, long... shape) {
    }

    private static final List<Spec> SPECS = List.of(new Spec("a", DType.BF16, 8, 129), new Spec("b", DType.F16, 33, 8),
            new Spec("c", DType.F32, 4, 4));

    /** Host parameters and their device copies. */
    private record Params(List<Parameter> host, List<DeviceTensor> values, List<DeviceTensor> grads) implements AutoCloseable {
        static Params of(Arena arena, CudaBackend backend, SplittableRandom rnd) {
            Params p = new Params(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
            for (Spec s : SPECS) {
                Tensor v = Tensor.allocate(arena, s.param(), s.shape());
                GpuSupport.fill(v, rnd, -0.5, 0.5);
                Tensor g = Tensor.allocate(arena, DType.F32, s.shape());
                p.host.add(new Parameter(s.name(), v, g));
                p.values.add(backend.upload(v));
                p.grads.add(backend.allocate(DType.F32, s.shape()));
            }
            return p;
        }

        void newGradients(SplittableRandom rnd) {
            for (int i = 0; i < host.size(); i++) {
                GpuSupport.fill(host.get(i).grad(), rnd, -1, 1);
                grads.get(i).copyFrom(host.get(i).grad());
            }
        }

        /** The caller writes new parameter values (a load): the same on the host and the device. */
        void newValues(SplittableRandom rnd) {
            for (int i = 0; i < host.size(); i++) {
                GpuSupport.fill(host.get(i).value(), rnd, -2, 2);
                values.get(i).copyFrom(host.get(i).value());
            }
        }

        void assertValuesEqual(Arena arena, String context) {
            for (int i = 0; i < host.size(); i++) {
                Tensor hv = host.get(i).value();
                Tensor got = Tensor.allocate(arena, hv.dtype(), hv.shape());
                values.get(i).copyTo(got);
                GpuSupport.assertBitwise("param " + host.get(i).name(), got, hv, context);
            }
        }

        @Override
        public void close() {
            values.forEach(DeviceTensor::close);
            grads.forEach(DeviceTensor::close);
        }
    }

    /**
     * Steps, a write of new parameter values, reloadMasterWeights on both, more steps: parameters and
     * masters equal the CPU AdamW's bit for bit (without the reload the device master would still hold
     * the old values and the next step would overwrite the written ones).
     */
    @Test
    void adamWReloadsItsMastersLikeTheCpuAdamW() {
        CudaBackend backend = GpuSupport.backend();
        long seed = 0x4E10_AD01L;
        SplittableRandom rnd = new SplittableRandom(seed);
        AdamWConfig config = new AdamWConfig(1e-2, 0.9, 0.999, 1e-8, 0.1);
        try (Arena arena = Arena.ofShared(); Params p = Params.of(arena, backend, rnd);
             AdamW cpu = new AdamW(p.host(), config);
             CudaAdamW gpu = new CudaAdamW(backend, paramsOf(p), config)) {
            for (int t = 1; t <= 6; t++) {
                if (t == 4) {
                    p.newValues(rnd);
                    cpu.reloadMasterWeights();
                    gpu.reloadMasterWeights();
                    AdamWState.Entry a = gpu.snapshot().entries().get(0);
                    assertArrayEquals(p.host().get(0).value().toFloatArray(), a.master(), "master of a after the reload");
                }
                p.newGradients(rnd);
                cpu.step();
                gpu.step();
            }
            String context = "seed " + seed;
            p.assertValuesEqual(arena, context);
            List<AdamWState.Entry> c = cpu.snapshot().entries();
            List<AdamWState.Entry> g = gpu.snapshot().entries();
            for (int i = 0; i < c.size(); i++) {
                assertArrayEquals(c.get(i).master(), g.get(i).master(), "master " + c.get(i).name() + ", " + context);
            }
        }
    }

    /** As above for Adafactor against the CPU Adafactor. */
    @Test
    void adafactorReloadsItsMastersLikeTheCpuAdafactor() {
        CudaBackend backend = GpuSupport.backend();
        long seed = 0x4E10_ADAFL;
        SplittableRandom rnd = new SplittableRandom(seed);
        AdafactorConfig config = AdafactorConfig.trainer(1e-2);
        try (Arena arena = Arena.ofShared(); Params p = Params.of(arena, backend, rnd);
             Adafactor cpu = new Adafactor(p.host(), config, true);
             CudaAdafactor gpu = new CudaAdafactor(backend, adafactorParamsOf(p), config, true)) {
            for (int t = 1; t <= 6; t++) {
                if (t == 4) {
                    p.newValues(rnd);
                    cpu.reloadMasterWeights();
                    gpu.reloadMasterWeights();
                }
                p.newGradients(rnd);
                cpu.step();
                gpu.step();
            }
            String context = "seed " + seed;
            p.assertValuesEqual(arena, context);
            List<AdafactorState.Entry> c = cpu.snapshot().entries();
            List<AdafactorState.Entry> g = gpu.snapshot().entries();
            for (int i = 0; i < c.size(); i++) {
                assertArrayEquals(c.get(i).master(), g.get(i).master(), "master " + c.get(i).name() + ", " + context);
            }
        }
    }

    private static List<CudaAdamW.Param> paramsOf(Params p) {
        List<CudaAdamW.Param> out = new ArrayList<>();
        for (int i = 0; i < p.host().size(); i++) {
            out.add(new CudaAdamW.Param(p.host().get(i).name(), p.values().get(i), p.grads().get(i)));
        }
        return out;
    }

    private static List<CudaAdafactor.Param> adafactorParamsOf(Params p) {
        List<CudaAdafactor.Param> out = new ArrayList<>();
        for (int i = 0; i < p.host().size(); i++) {
            out.add(new CudaAdafactor.Param(p.host().get(i).name(), p.values().get(i), p.grads().get(i)));
        }
        return out;
    }
}
