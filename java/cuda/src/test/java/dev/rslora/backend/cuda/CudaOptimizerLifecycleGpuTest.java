package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device optimizers' hold on the caller's tensors: an open {@link CudaAdamW} or {@link CudaAdafactor}
 * pins its parameters and gradients (their addresses are in its device table), its close unpins them,
 * and closing the backend closes it. Skipped with the probe's reason where CUDA is unavailable.
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
}
