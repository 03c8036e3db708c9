package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * merge() and unmerge() refuse a result that would not be finite in W's dtype (W + γ·B·A past F16's
 * range, say), naming the element, before writing any element: unmerge could not restore an Infinity.
 */
class LoraLinearMergeRangeTest {
    static Stream<Arguments> backendsAndDtypes() {
        List<Arguments> out = new ArrayList<>();
        for (String be : List.of("reference", "cpu")) {
            for (DType dt : DType.values()) {
                out.add(Arguments.of(be, dt));
            }
        }
        return out.stream();
    }

    private static Backend backend(String name) {
        return Backends.get(name);
    }

    /** Just past the dtype's largest finite value once 1·(B·A) = 1·big·big is added to W's big values. */
    private static float big(DType dt) {
        return switch (dt) {
            case F16 -> 60000f;         // 60000 + 10000 = 70000 > 65504
            case BF16 -> 3e38f;         // 3e38 + 3e38 > 3.39e38
            case F32 -> 3e38f;          // 3e38 + 3e38 > 3.4028235e38
        };
    }

    @ParameterizedTest
    @MethodSource("backendsAndDtypes")
    void mergeBeyondTheDtypesRangeIsRefusedAndWIsUnchanged(String backendName, DType dt) {
        try (Arena arena = Arena.ofShared()) {
            Backend backend = backend(backendName);
            // W [3, 4]: row 0 small, so a backend writing row by row would have changed it before reaching row 1
            Tensor w = Tensor.allocate(arena, dt, 3, 4);
            w.fill(1f);
            float big = big(dt);
            w.set(1, 2, big);
            w.set(2, 0, big);
            float[] before = w.toFloatArray();
            // r = 1, α = 1, γ = 1/√1 = 1; B·A = b·a per element
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), backend)) {
                float factor = dt == DType.F16 ? 100f : (float) Math.sqrt(big);
                layer.loraA().fill(factor);
                layer.loraB().fill(factor);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, layer::merge);
                String m = e.getMessage();
                assertTrue(m.contains("W[1, 2]"), m);                  // the first offending element, row-major
                assertTrue(m.contains(dt.toString()), m);
                assertTrue(m.contains(Float.toString(w.get(1, 2))), m);  // W's value there
                assertTrue(m.contains("Infinity") && m.contains("unchanged"), m);
                assertArrayEquals(before, w.toFloatArray(), "W must be unchanged by a refused merge");
                assertFalse(layer.isMerged());
                // with a small adapter the same layer merges and unmerges as before
                layer.loraA().fill(0.5f);
                layer.loraB().fill(0.5f);
                layer.merge();
                layer.unmerge();
            }
        }
    }

    @ParameterizedTest
    @MethodSource("backendsAndDtypes")
    void aNonFiniteAdapterIsNotMergedIntoAFiniteWeight(String backendName, DType dt) {
        try (Arena arena = Arena.ofShared()) {
            Backend backend = backend(backendName);
            Tensor w = Tensor.allocate(arena, dt, 2, 3);
            w.fill(0.25f);
            float[] before = w.toFloatArray();
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), backend)) {
                layer.loraA().fill(1f);
                layer.loraA().set(0, 1, Float.NaN);
                layer.loraB().fill(1f);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, layer::merge);
                assertTrue(e.getMessage().contains("W[0, 1]") && e.getMessage().contains("NaN"), e.getMessage());
                assertArrayEquals(before, w.toFloatArray());
            }
        }
    }

    /**
     * The exact result fits but the cpu backend's fp32 sum of B·A overflows on the way (3e38 + 3e38, then
     * − 3e38): refused, and the message says so instead of calling the exact value out of range.
     */
    @org.junit.jupiter.api.Test
    void anFp32OverflowOnTheWayIsNamedAsSuch() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 1, 1);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(3, (float) Math.sqrt(3)), backend("cpu"))) {
                layer.loraA().copyFrom(new float[] {3e38f, 3e38f, -3e38f});
                layer.loraB().fill(1f);
                String m = assertThrows(IllegalArgumentException.class, layer::merge).getMessage();
                assertTrue(m.contains("is within F32's range, but the merge's fp32 arithmetic overflows"), m);
                assertArrayEquals(new float[] {0f}, w.toFloatArray());
            }
        }
    }
}
