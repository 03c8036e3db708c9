package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Closing a backend frees the device memory of its tensors still open, also while another backend on
 * the same device keeps the primary context (and so its allocations) alive; the tensors' later close
 * is a no-op. Skipped with the probe's reason where CUDA is unavailable.
 */
@Tag("gpu")
class CudaContextCloseGpuTest {
    private static final long BIG = 256L << 20;

    @Test
    void closingABackendFreesItsOpenTensorsWhileAnotherKeepsTheDevice() {
        CudaBackend shared = GpuSupport.backend();  // skips without a GPU; retains the primary context
        CudaBackend own = (CudaBackend) new CudaBackendFactory().create();
        DeviceTensor big = own.allocate(DType.F32, BIG / 4);
        own.synchronize();
        long before = freeBytes(shared);
        own.close();
        long after = freeBytes(shared);
        assertTrue(after - before >= BIG, "closing the backend gave back " + (after - before) + " bytes, expected >= " + BIG
                + " (its open tensor)");
        assertDoesNotThrow(big::close, "closing a tensor after its backend is a no-op");
        assertThrows(IllegalStateException.class, () -> own.allocate(DType.F32, 4), "the backend is closed");
        assertTrue(freeBytes(shared) >= after - (8L << 20), "the late close freed nothing twice and took nothing back");
    }

    private static long freeBytes(CudaBackend b) {
        synchronized (b) {
            b.context().makeCurrent();
            return b.context().memoryInfo()[0];
        }
    }
}
