package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.ForwardingBackend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.HeldForward;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** close() takes the layer's one-thread-at-a-time claim: it never frees memory another thread's call is using. */
class LoraLinearCloseTest {
    @Test
    void closeDuringAnotherThreadsForwardIsRefusedAndThatForwardCompletes() throws Exception {
        HeldForward slow = new HeldForward(new ReferenceBackend(), true);  // then reads A, B and writes U in the layer's arena
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 3);
            LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), slow);
            Tensor x = Tensor.allocate(arena, DType.F32, 1, 3);
            Tensor y = Tensor.allocate(arena, DType.F32, 1, 2);
            HeldForward.Held forward = slow.hold("forwarder", () -> layer.forward(x, y));
            String m;
            Throwable failure;
            try {
                m = assertThrows(IllegalStateException.class, layer::close).getMessage();
            } finally {
                failure = forward.finish();
            }
            assertTrue(m.contains("two threads at once") && m.contains("forwarder") && m.contains("closing it"), m);
            assertNull(failure, "the forward the refused close did not disturb must complete");
            assertFalse(layer.isClosed());
            layer.close();
            assertTrue(layer.isClosed());
            layer.close();  // a second close does nothing
            assertThrows(IllegalStateException.class, () -> layer.forward(x, y));
        }
    }

    @Test
    void closeFromInsideTheLayersOwnCallIsNamedAsNesting() {
        Backend ref = new ReferenceBackend();
        AtomicReference<LoraLinear> self = new AtomicReference<>();
        AtomicReference<String> message = new AtomicReference<>();
        Backend reentrant = new ForwardingBackend() {
            @Override
            public Backend inner() {
                return ref;
            }

            @Override
            public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
                message.set(assertThrows(IllegalStateException.class, () -> self.get().close()).getMessage());
                ref.forward(p, w, x, a, b, u, y);
            }
        };
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 3);
            try (LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), reentrant)) {
                self.set(layer);
                layer.forward(Tensor.allocate(arena, DType.F32, 1, 3), Tensor.allocate(arena, DType.F32, 1, 2));
                String m = message.get();
                assertTrue(m.startsWith("LoraLinear called from inside one of its own calls on thread ")
                        && m.contains("(closing it): a layer's calls do not nest"), m);
                assertFalse(layer.isClosed());
            }
        }
    }

    /**
     * A's, B's and the gradients' accessors after the layer was closed threw the JDK's bare "Already closed";
     * the message names the tensor and that a LoraLinear's close() frees them.
     */
    @Test
    void theAdapterTensorsOfAClosedLayerSayTheyWereClosed() {
        try (Arena arena = Arena.ofShared()) {
            Tensor w = Tensor.allocate(arena, DType.F32, 2, 3);
            LoraLinear layer = LoraLinear.create(w, null, LoraConfig.rslora(1, 1), new ReferenceBackend());
            Tensor a = layer.loraA();
            Tensor gradB = layer.gradB();
            float a0 = a.get(0);
            layer.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.get(0));
            assertTrue(e.getMessage().startsWith("get: tensor [1, 3] F32 is closed") && e.getMessage().contains(
                    "a LoraLinear's A, B and gradients are freed by its close()"), e.getMessage());
            e = assertThrows(IllegalStateException.class, () -> gradB.fill(0f));
            assertTrue(e.getMessage().startsWith("fill: tensor [2, 1] F32 is closed"), e.getMessage());
            assertEquals(0f, w.get(0), "the borrowed W stays usable");
            assertTrue(Float.isFinite(a0));
        }
    }
}
