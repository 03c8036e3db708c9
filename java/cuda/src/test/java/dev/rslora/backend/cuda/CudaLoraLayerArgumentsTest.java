package dev.rslora.backend.cuda;

import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device-resident layer refuses what the host backends refuse, before any device work: a γ that
 * is not finite in fp32 (the backend here has no context, so a device call would fail with a
 * NullPointerException), and an output that is an input or another output.
 */
class CudaLoraLayerArgumentsTest {
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);

    @Test
    void aGammaThatIsNotFiniteInFp32IsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 6, 8);
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 8);
            Tensor b = Tensor.allocate(arena, DType.F32, 6, 2);
            for (double gamma : new double[] {Double.NaN, Double.POSITIVE_INFINITY, -1e39}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> new CudaLoraLayer(backend, w, null, a, b, gamma, 0f, 1, 0, 4, GradMode.ASSIGN), "gamma " + gamma);
                assertTrue(e.getMessage().contains("gamma=" + gamma), e.getMessage());
            }
        }
    }

    /**
     * n past 65,535 row tiles of 64 (CUDA's gridDim.y) is refused at construction, naming n and the limit,
     * not at the first step with a grid in the message (after prep and down of a table family had run).
     */
    @Test
    void rowsPastTheGridLimitAreRefusedAtConstruction() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.allocate(arena, DType.BF16, 6, 8);
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 8);
            Tensor b = Tensor.allocate(arena, DType.F32, 6, 2);
            assertTrue(LaunchGeometry.MAX_ROWS == 4_194_240);
            for (int n : new int[] {4_194_241, Integer.MAX_VALUE}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> new CudaLoraLayer(backend, w, null, a, b, 1.0, 0f, 1, 0, n, GradMode.ASSIGN), "n " + n);
                assertTrue(e.getMessage().contains("n = " + n) && e.getMessage().contains("4194240"), e.getMessage());
            }
            // the largest n that launches passes the check (and reaches the device: no context here)
            assertThrows(NullPointerException.class,
                    () -> new CudaLoraLayer(backend, w, null, a, b, 1.0, 0f, 1, 0, 4_194_240, GradMode.ASSIGN));
            assertDoesNotThrow(() -> LaunchGeometry.down(4_194_240, 2));
            assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.down(4_194_241, 2));
        }
    }

    @Test
    void anOutputThatIsAnInputIsRefused() {
        CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
        DeviceTensor x = new DeviceTensor(backend, DType.BF16, new long[] {4, 8}, alloc.allocate(64));
        DeviceTensor y = new DeviceTensor(backend, DType.BF16, new long[] {4, 8}, alloc.allocate(64));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> CudaLoraLayer.disjoint("y", x, "x", x));
        assertTrue(e.getMessage().startsWith("y DeviceTensor[4, 8] BF16 is also x"), e.getMessage());
        assertDoesNotThrow(() -> CudaLoraLayer.disjoint("y", y, "x", x));
        assertDoesNotThrow(() -> CudaLoraLayer.disjoint("grad_x", null, "x", x));
    }

    /**
     * A null grad mode was taken as ASSIGN without a word (LoraParams, and so every host backend,
     * refuses it: "gradMode is null"); an empty adapter (A [0, d_in], B [d_out, 0]: rank 0) passed the
     * shape check and reached the device. Both are refused before any device work (the backend here has
     * no context: a device call would throw a NullPointerException), as are null tensors, naming them.
     */
    @Test
    void aNullGradModeAnEmptyAdapterOrANullTensorIsRefusedBeforeAnyDeviceWork() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 6, 8);
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 8);
            Tensor b = Tensor.allocate(arena, DType.F32, 6, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new CudaLoraLayer(backend, w, null, a, b, 1.0, 0f, 1, 0, 4, null));
            assertTrue(e.getMessage().contains("gradMode is null"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> new CudaLoraLayer(backend, w, null, null, b, 1.0, 0f, 1, 0, 4, GradMode.ASSIGN));
            assertTrue(e.getMessage().contains("A is null"), e.getMessage());
            Tensor a0 = Tensor.allocate(arena, DType.F32, 0, 8);
            Tensor b0 = Tensor.allocate(arena, DType.F32, 6, 0);
            e = assertThrows(IllegalArgumentException.class,
                    () -> new CudaLoraLayer(backend, w, null, a0, b0, 1.0, 0f, 1, 0, 4, GradMode.ASSIGN));
            assertTrue(e.getMessage().contains("A [0, 8]"), e.getMessage());
        }
    }
}
