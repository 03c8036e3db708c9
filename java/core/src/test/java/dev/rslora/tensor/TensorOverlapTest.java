package dev.rslora.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link Tensor#overlaps}: what the backends use to refuse an output that aliases an input. */
class TensorOverlapTest {
    @Test
    void overlapsSeesSharedMemoryOnly() {
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.allocate(arena, DType.F32, 4, 4);
            Tensor other = Tensor.allocate(arena, DType.F32, 4, 4);
            assertTrue(x.overlaps(x));
            assertTrue(x.overlaps(Tensor.wrap(x.segment(), DType.BF16, 4, 8)), "another view of the same memory");
            assertTrue(x.overlaps(Tensor.wrap(x.segment().asSlice(60, 4), DType.F32, 1)), "its last element");
            assertTrue(Tensor.wrap(x.readOnlySegment(), DType.F32, 16).overlaps(x), "a read-only view");
            assertFalse(x.overlaps(Tensor.wrap(x.segment().asSlice(0, 0), DType.F32, 0)), "an empty tensor overlaps nothing");
            Tensor emptyInside = Tensor.wrap(x.segment().asSlice(20, 0), DType.F32, 0);
            assertFalse(x.overlaps(emptyInside), "not even one that starts inside the other");
            assertFalse(emptyInside.overlaps(x), "either way round");
            assertFalse(emptyInside.overlaps(emptyInside), "nor itself");
            assertFalse(x.overlaps(other));
            assertFalse(x.overlaps(null));
        }
    }
}
