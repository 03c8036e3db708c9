package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link BackendChecks#firstDestroyed}: how the cuda backend checks a merge result downloaded from the
 * device before W takes it (device-free; the device path itself is CudaBackendGpuTest's).
 */
class MergeResultCheckTest {

    @Test
    void findsTheFirstElementThatBecameNonFiniteWhereWWasFinite() {
        try (Arena arena = Arena.ofConfined()) {
            for (DType dt : DType.values()) {
                Tensor w = Tensor.allocate(arena, dt, 3, 4);
                w.fill(1f);
                w.set(0, 1, Float.POSITIVE_INFINITY);  // already infinite in W: the caller's, not the merge's doing
                Tensor result = w.to(arena, dt);
                result.fill(2f);
                result.set(0, 1, Float.NEGATIVE_INFINITY);
                assertEquals(-1, BackendChecks.firstDestroyed(w, result), dt.toString());
                result.set(2, 3, Float.NaN);
                result.set(1, 2, Float.POSITIVE_INFINITY);
                assertEquals(1 * 4 + 2, BackendChecks.firstDestroyed(w, result), dt.toString());
            }
        }
    }

    @Test
    void refusesAResultOfAnotherShapeOrDtype() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.allocate(arena, DType.F16, 2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> BackendChecks.firstDestroyed(w, Tensor.allocate(arena, DType.F16, 3, 2)));
            assertTrue(e.getMessage().contains("does not match W"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> BackendChecks.firstDestroyed(w, Tensor.allocate(arena, DType.F32, 2, 3)));
        }
    }
}
