package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link CudaBackend#allocate} refuses a bad shape before any device call, so a refused shape
 * leaves no device memory behind (two negative dimensions multiply to a positive element count:
 * the memory was allocated, then the tensor refused). The backend here has no context: a device
 * call would fail with a NullPointerException instead of the refusal.
 */
class CudaBackendAllocateTest {
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);

    @Test
    void aShapeWithADimensionBelowOneIsRefusedBeforeAnyDeviceCall() {
        for (long[] shape : new long[][] {{-2, -3}, {0, 4}, {4, 0}, {3, -1, -1}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.allocate(DType.F32, shape));
            assertTrue(e.getMessage().contains("must be >= 1"), e.getMessage());
        }
    }

    @Test
    void anElementCountPastALongIsRefusedBeforeAnyDeviceCall() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.allocate(DType.F32, 1L << 40, 1L << 40));
        assertTrue(e.getMessage().contains("[1099511627776, 1099511627776]"), e.getMessage());
    }

    /**
     * An element count that fits a long but whose bytes do not (2^62 F32 elements) was an
     * ArithmeticException "long overflow" naming nothing, thrown after the context was entered; a null
     * dtype or shape a NullPointerException. Now all are refused before any device call, naming them.
     */
    @Test
    void aByteCountPastALongOrANullDtypeIsRefusedBeforeAnyDeviceCall() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.allocate(DType.F32, 1L << 31, 1L << 31));
        assertTrue(e.getMessage().contains("[2147483648, 2147483648] F32") && e.getMessage().contains("bytes"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> backend.allocate(null, 4, 8));
        assertTrue(e.getMessage().contains("dtype is null"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> backend.allocate(DType.F32, (long[]) null));
        assertTrue(e.getMessage().contains("shape is null"), e.getMessage());
    }

    /** upload of a null host tensor or of one whose arena was closed: named, before any device call (was an NPE / FFM's "Already closed"). */
    @Test
    void uploadOfANullOrClosedHostTensorIsRefusedBeforeAnyDeviceCall() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.upload(null));
        assertEquals("upload: the host tensor is null", e.getMessage());
        java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared();
        dev.rslora.tensor.Tensor host = dev.rslora.tensor.Tensor.allocate(arena, DType.F32, 2, 3);
        arena.close();
        e = assertThrows(IllegalArgumentException.class, () -> backend.upload(host));
        assertTrue(e.getMessage().startsWith("upload: host tensor [2, 3]") && e.getMessage().contains("arena is closed"), e.getMessage());
    }
}
