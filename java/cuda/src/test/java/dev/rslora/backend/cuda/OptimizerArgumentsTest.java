package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device optimizers refuse what the CPU optimizers refuse ({@code dev.rslora.train.Parameter},
 * {@code OptimizerParams}): a gradient that is its own value, and one device tensor used by two
 * parameters (updated twice per step, or changed mid-step). Checked before any device work: the
 * backend here has no context (a device call would fail with a NullPointerException), the tensors
 * live in a fake allocator.
 */
class OptimizerArgumentsTest {
    private final CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);

    private DeviceTensor tensor(long... shape) {
        return new DeviceTensor(backend, DType.F32, shape, alloc.allocate(4L * shape[0] * shape[1]));
    }

    @Test
    void aGradientThatIsItsOwnValueIsRefused() {
        DeviceTensor w = tensor(4, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CudaAdamW.Param("a", w, w));
        assertTrue(e.getMessage().contains("a") && e.getMessage().contains("shares"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new CudaAdafactor.Param("a", w, w));
    }

    @Test
    void aTensorUsedByTwoParametersIsRefusedBeforeAnyDeviceWork() {
        DeviceTensor a = tensor(4, 8);
        DeviceTensor ga = tensor(4, 8);
        DeviceTensor b = tensor(4, 8);
        DeviceTensor gb = tensor(4, 8);
        // the same value twice
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CudaAdamW(backend,
                List.of(new CudaAdamW.Param("a", a, ga), new CudaAdamW.Param("b", a, gb)), AdamWConfig.torchDefaults()));
        assertTrue(e.getMessage().contains("'b'") && e.getMessage().contains("'a'"), e.getMessage());
        // a value that is another parameter's gradient
        e = assertThrows(IllegalArgumentException.class, () -> new CudaAdafactor(backend,
                List.of(new CudaAdafactor.Param("a", a, ga), new CudaAdafactor.Param("b", ga, gb)), AdafactorConfig.hfDefaults(), true));
        assertTrue(e.getMessage().contains("'b'") && e.getMessage().contains("grad"), e.getMessage());
        // one gradient shared
        assertThrows(IllegalArgumentException.class, () -> new CudaAdamW(backend,
                List.of(new CudaAdamW.Param("a", a, ga), new CudaAdamW.Param("b", b, ga)), AdamWConfig.torchDefaults()));
    }

    /**
     * An open optimizer pins the tensors its device table points at: closing one throws (before, the
     * block went back to the caching allocator, was handed out again, and the next step wrote into
     * it). Its close unpins them even when a free fails (here: the context-less backend's
     * makeCurrent), and so does a failed constructor's cleanup.
     */
    @Test
    void anOpenOptimizerPinsItsTensorsUntilItCloses() {
        DeviceTensor w = tensor(4, 8);
        DeviceTensor g = tensor(4, 8);
        OptimizerBuffers buffers = new OptimizerBuffers(backend, "CUDA AdamW");
        buffers.pin(List.of(w, g));
        IllegalStateException e = assertThrows(IllegalStateException.class, w::close);
        assertTrue(e.getMessage().contains("[4, 8]") && e.getMessage().contains("optimizer"), e.getMessage());
        assertThrows(IllegalStateException.class, g::close);
        assertThrows(NullPointerException.class, buffers::close, "no context here");
        assertEquals(0, w.pins());
        assertEquals(0, g.pins());
        assertDoesNotThrow(buffers::close, "a second close is a no-op");
        assertEquals(0, w.pins(), "unpinned once only");

        OptimizerBuffers failed = new OptimizerBuffers(backend, "CUDA Adafactor");
        failed.pin(List.of(w, g));
        failed.freeAll();  // what a constructor that throws after pinning calls
        assertEquals(0, w.pins());
    }

    /** Closing the backend closes an optimizer still open, so its tensors can be closed afterwards. */
    @Test
    void closingTheBackendUnpinsAnOpenOptimizersTensors() {
        DeviceTensor w = tensor(4, 8);
        DeviceTensor g = tensor(4, 8);
        OptimizerBuffers buffers = new OptimizerBuffers(backend, "CUDA AdamW");
        buffers.pin(List.of(w, g));
        assertThrows(NullPointerException.class, backend::close, "no context here: the release steps fail but all run");
        assertEquals(0, w.pins());
        assertEquals(0, g.pins());
        assertDoesNotThrow(buffers::close);
        assertThrows(IllegalStateException.class, buffers::enter, "closed with the backend");
        assertDoesNotThrow(w::close);
        assertDoesNotThrow(g::close);
    }

    /**
     * A null parameter list, or a null element, is refused naming it, as the CPU optimizers refuse it
     * ({@code OptimizerParams}); before, both device optimizers threw a bare NullPointerException from
     * inside their constructors.
     */
    @Test
    void aNullParameterListOrElementIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new CudaAdamW(backend, null, AdamWConfig.torchDefaults()));
        assertEquals("AdamW needs at least one parameter, got null", e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> new CudaAdafactor(backend, null, AdafactorConfig.hfDefaults(), true));
        assertEquals("Adafactor needs at least one parameter, got null", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new CudaAdamW(backend, List.of(), AdamWConfig.torchDefaults()));
        assertEquals("AdamW needs at least one parameter, got none", e.getMessage());

        DeviceTensor a = tensor(4, 8);
        DeviceTensor ga = tensor(4, 8);
        java.util.List<CudaAdamW.Param> withNull = new java.util.ArrayList<>();
        withNull.add(new CudaAdamW.Param("a", a, ga));
        withNull.add(null);
        e = assertThrows(IllegalArgumentException.class, () -> new CudaAdamW(backend, withNull, AdamWConfig.torchDefaults()));
        assertEquals("AdamW: parameter 1 of the list is null", e.getMessage());
        java.util.List<CudaAdafactor.Param> withNullF = new java.util.ArrayList<>();
        withNullF.add(null);
        e = assertThrows(IllegalArgumentException.class,
                () -> new CudaAdafactor(backend, withNullF, AdafactorConfig.hfDefaults(), true));
        assertEquals("Adafactor: parameter 0 of the list is null", e.getMessage());
        assertEquals(0, a.pins(), "nothing pinned by a refused list");
    }
}
