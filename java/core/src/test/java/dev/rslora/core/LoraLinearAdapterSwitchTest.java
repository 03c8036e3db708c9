package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link LoraLinear#disableAdapter()} (PEFT's {@code disable_adapter()}): with a trained adapter
 * (B ≠ 0, dropout on, training mode) the disabled forward equals the base layer {@code X·Wᵀ + b}
 * bit for bit, as the same backend computes it for a frozen weight alone; the dropout stream does
 * not advance; the backward gives dX = dY·W and no adapter gradient; closing the scope restores the
 * adapter, and the enabled forward is unchanged by the detour. On the reference and cpu backends, F32 and BF16.
 */
class LoraLinearAdapterSwitchTest {

    static Stream<Arguments> cases() {
        return Stream.of("reference", "cpu").filter(b -> Backends.probeAll().get(b).available())
                .flatMap(b -> Stream.of(Arguments.of(b, DType.F32), Arguments.of(b, DType.BF16)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void disabledForwardIsTheBaseLayerExactly(String backendName, DType dt) {
        Backend backend = Backends.get(backendName);
        long seed = 0x5A17CL;
        SplittableRandom rnd = new SplittableRandom(seed);
        int n = 37;
        int dIn = 70;
        int dOut = 45;
        int r = 8;
        try (Arena arena = Arena.ofShared()) {
            Tensor w = TestData.uniform(arena, dt, rnd, 0.5, dOut, dIn);
            Tensor bias = TestData.uniform(arena, dt, rnd, 0.5, dOut);
            Tensor a = TestData.uniform(arena, DType.F32, rnd, 0.3, r, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rnd, 0.3, dOut, r);  // a "trained" adapter: B ≠ 0
            Tensor x = TestData.uniform(arena, dt, rnd, 1, n, dIn);
            LoraConfig cfg = LoraConfig.rslora(r, 16).withDropout(0.1).withSeed(4);
            try (LoraLinear layer = LoraLinear.withAdapter(w, bias, a, b, cfg, backend, 3);
                 FrozenWeight frozen = backend.prepare(w, bias)) {
                layer.train(true);
                Tensor base = TestData.poisoned(arena, dt, n, dOut);
                backend.forward(new LoraParams(n, dIn, dOut, r, 0.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN), frozen, x, null,
                        null, null, base);
                Tensor enabled1 = TestData.poisoned(arena, dt, n, dOut);
                layer.setStep(5);
                layer.forward(x, enabled1);
                assertEquals(6, layer.step(), "an enabled training forward draws a mask");
                assertNotEquals(0, diff(enabled1, base), "the adapter changes the output");

                Tensor off = TestData.poisoned(arena, dt, n, dOut);
                try (LoraLinear.AdapterScope s = layer.disableAdapter()) {
                    assertFalse(layer.isAdapterEnabled());
                    layer.forward(x, off);
                    assertEquals(6, layer.step(), "a disabled forward draws no mask");
                    // backward after the disabled forward: dX = dY·W, gradients of A and B untouched by any adapter term
                    Tensor dy = TestData.uniform(arena, dt, rnd, 1, n, dOut);
                    Tensor dx = TestData.poisoned(arena, dt, n, dIn);
                    Tensor dxBase = TestData.poisoned(arena, dt, n, dIn);
                    layer.gradA().fill(7f);
                    layer.setGradMode(GradMode.ACCUMULATE);
                    layer.backward(dy, dx);
                    assertEquals(7f, layer.gradA().get(0), "accumulate: the disabled pass adds nothing");
                    layer.setGradMode(GradMode.ASSIGN);
                    layer.backward(dy, dx);
                    for (float v : layer.gradA().toFloatArray()) {
                        assertEquals(0f, v, "assign: the disabled pass's gradient is 0");
                    }
                    backend.backward(new LoraParams(n, dIn, dOut, r, 0.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN), frozen, x,
                            null, null, null, dy, dxBase, null, null);
                    assertArrayEquals(dxBase.toFloatArray(), dx.toFloatArray(), "dX = dY·W");
                }
                assertTrue(layer.isAdapterEnabled(), "closing the scope restores the adapter");
                assertArrayEquals(base.toFloatArray(), off.toFloatArray(), "disabled forward = X·Wᵀ + b bit for bit (seed " + seed + ")");

                Tensor enabled2 = TestData.poisoned(arena, dt, n, dOut);
                layer.setStep(5);
                layer.forward(x, enabled2);
                assertArrayEquals(enabled1.toFloatArray(), enabled2.toFloatArray(), "the same step after the detour: the same output");
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("cases")
    void mergedAdaptersCannotBeDisabledNorDisabledOnesMerged(String backendName, DType dt) {
        Backend backend = Backends.get(backendName);
        try (Arena arena = Arena.ofShared()) {
            Tensor w = TestData.uniform(arena, dt, new SplittableRandom(1), 0.5, 6, 5);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(2, 4), dt, backend, 0)) {
                layer.merge();
                IllegalStateException e = assertThrows(IllegalStateException.class, layer::disableAdapter);
                assertTrue(e.getMessage().contains("unmerge"), e.getMessage());
                layer.unmerge();
                try (LoraLinear.AdapterScope s = layer.disableAdapter()) {
                    e = assertThrows(IllegalStateException.class, layer::merge);
                    assertTrue(e.getMessage().contains("disabled"), e.getMessage());
                    try (LoraLinear.AdapterScope nested = layer.disableAdapter()) {
                        assertFalse(layer.isAdapterEnabled());
                    }
                    assertFalse(layer.isAdapterEnabled(), "a nested scope restores the state it found: still disabled");
                }
                assertTrue(layer.isAdapterEnabled());
            }
        }
    }

    private static double diff(Tensor a, Tensor b) {
        double d = 0;
        for (long i = 0; i < a.numel(); i++) {
            d = Math.max(d, Math.abs(a.get(i) - b.get(i)));
        }
        return d;
    }
}
