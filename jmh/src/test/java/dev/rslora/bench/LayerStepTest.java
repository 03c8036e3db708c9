package dev.rslora.bench;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the backend sees of A and B in the benchmarks' steps: the cpu backend keeps packed copies of
 * them keyed by {@link Tensor#version()}, so a training step that did not move their versions would
 * reuse copies that the optimizer's update invalidates in real training.
 */
class LayerStepTest {
    /** The reference backend, recording "forward a b" / "backward a b" versions of every call with the adapter. */
    private static Backend recording(Backend real, List<String> calls) {
        return (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class}, (proxy, m, args) -> {
            if ((m.getName().equals("forward") || m.getName().equals("backward")) && args[3] != null) {
                calls.add(m.getName() + " " + ((Tensor) args[3]).version() + " " + ((Tensor) args[4]).version());
            }
            try {
                return m.invoke(real, args);
            } catch (InvocationTargetException e) {
                throw e.getCause();
            }
        });
    }

    @Test
    void everyTrainingStepSeesANewAAndB() {
        List<String> calls = new ArrayList<>();
        try (LayerStep step = new LayerStep(recording(new ReferenceBackend(), calls), 3, 8, 5, 2, 0f)) {
            step.lora();
            step.lora();
        }
        assertEquals(4, calls.size(), calls.toString());
        String[] f1 = calls.get(0).split(" ");
        String[] f2 = calls.get(2).split(" ");
        assertNotEquals(f1[1], f2[1], "A's version must move between training steps (the optimizer writes it): " + calls);
        assertNotEquals(f1[2], f2[2], "B's version must move between training steps (the optimizer writes it): " + calls);
        assertEquals(calls.get(0).substring("forward".length()), calls.get(1).substring("backward".length()),
                "the forward and the backward of one step see the same A and B: " + calls);
    }

    @Test
    void forwardOnlyStepsKeepAAndB() {
        List<String> calls = new ArrayList<>();
        try (LayerStep step = new LayerStep(recording(new ReferenceBackend(), calls), 1, 8, 5, 2, 0f)) {
            step.loraForward();
            step.loraForward();
        }
        assertEquals(2, calls.size(), calls.toString());
        assertEquals(calls.get(0), calls.get(1), "inference does not change A and B: " + calls);
    }

    @Test
    void aBf16StepHandsTheBackendBf16ActivationsAndWeightAndFp32Adapters() {
        List<String> dtypes = new ArrayList<>();
        Backend real = new ReferenceBackend();
        Backend seen = (Backend) Proxy.newProxyInstance(Backend.class.getClassLoader(), new Class<?>[] {Backend.class},
                (proxy, m, args) -> {
                    if (m.getName().equals("backward") && args[3] != null) {
                        // backward(p, w, x, a, b, u, dy, dx, gradA, gradB)
                        StringBuilder sb = new StringBuilder();
                        for (int i : new int[] {2, 3, 4, 5, 6, 7, 8, 9}) {
                            sb.append(((Tensor) args[i]).dtype()).append(' ');
                        }
                        dtypes.add(sb.toString().strip());
                    }
                    try {
                        return m.invoke(real, args);
                    } catch (InvocationTargetException e) {
                        throw e.getCause();
                    }
                });
        try (LayerStep step = new LayerStep(seen, 3, 8, 5, 2, 0.1f, DType.BF16)) {
            float sum = step.lora();
            assertTrue(Float.isFinite(sum) && sum != 0, "a bf16 step computes: " + sum);
        }
        // x a b u dy dx gradA gradB
        assertEquals(List.of("BF16 F32 F32 F32 BF16 BF16 F32 F32"), dtypes);
    }
}
