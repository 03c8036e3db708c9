package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cuBLAS baseline refuses tensors that are not 2-D and tensors of another backend before any
 * device work, naming them: a rank-1 tensor failed with an ArrayIndexOutOfBoundsException, a 3-D Y
 * [n, d_out, k] passed as [n, d_out] (cuBLAS would write its first n·d_out elements and leave the rest),
 * and another backend's tensor would reach cuBLAS with an address of another context. The backend here
 * has no context (a device call would fail with a NullPointerException), the GEMMs go to a recorder.
 */
class BaseLinearBaselineArgumentsTest {
    private final CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);
    private final SplitStepTest.Stream gemms = new SplitStepTest.Stream();
    private final BaseLinearBaseline base = new BaseLinearBaseline(backend, gemms, "recorder");

    private DeviceTensor tensor(CudaBackend owner, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return new DeviceTensor(owner, DType.BF16, shape, alloc.allocate(2 * n));
    }

    @Test
    void aTensorThatIsNot2dIsRefusedNamingIt() {
        DeviceTensor x = tensor(backend, 4, 8);
        DeviceTensor w = tensor(backend, 6, 8);
        DeviceTensor y = tensor(backend, 4, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> base.forward(tensor(backend, 32), w, y));
        assertTrue(e.getMessage().contains("[32]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.forward(x, w, tensor(backend, 4, 6, 5)));
        assertTrue(e.getMessage().contains("[4, 6, 5]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.forward(x, tensor(backend, 6, 8, 1), y));
        assertTrue(e.getMessage().contains("[6, 8, 1]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.backwardData(tensor(backend, 4, 6, 2), w, tensor(backend, 4, 8)));
        assertTrue(e.getMessage().contains("[4, 6, 2]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> base.backwardData(y, w, tensor(backend, 32)));
        assertTrue(e.getMessage().contains("[32]"), e.getMessage());
        assertTrue(gemms.events.isEmpty(), "nothing reached cuBLAS: " + gemms.kinds());
    }

    @Test
    void anotherBackendsTensorIsRefused() {
        CudaBackend other = new CudaBackend(null, 1L << 20, 1);
        DeviceTensor x = tensor(backend, 4, 8);
        DeviceTensor w = tensor(backend, 6, 8);
        DeviceTensor y = tensor(backend, 4, 6);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> base.forward(x, tensor(other, 6, 8), y));
        assertTrue(e.getMessage().contains("another cuda backend"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> base.forward(tensor(other, 4, 8), w, y));
        assertThrows(IllegalArgumentException.class, () -> base.backwardData(y, w, tensor(other, 4, 8)));
        assertTrue(gemms.events.isEmpty(), "nothing reached cuBLAS: " + gemms.kinds());
    }
}
