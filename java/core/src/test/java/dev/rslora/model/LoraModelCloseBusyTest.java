package dev.rslora.model;

import dev.rslora.backend.HeldForward;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.LoraLinear;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoraModel.close() while another thread is inside one of its layers' calls: the other layers close,
 * the busy one, the copied weights it reads and the model stay open, and a second close frees the rest.
 */
class LoraModelCloseBusyTest {
    @Test
    void aBusyLayerKeepsTheModelOpenUntilClosedAgain() throws Exception {
        HeldForward slow = new HeldForward(new ReferenceBackend(), true);  // then reads the copied W, A and B
        PeftConfig c = PeftConfig.builder().targetModules("q_proj", "k_proj").r(2).loraAlpha(4).build();
        Map<String, float[][]> weights = new LinkedHashMap<>();
        weights.put("model.q_proj.weight", new float[3][4]);
        weights.put("model.k_proj.weight", new float[3][4]);
        LoraModel model = LoraModel.wrapArrays(weights, c, slow, 0);
        LoraLinear q = model.layer("model.q_proj");
        LoraLinear k = model.layer("model.k_proj");
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.allocate(arena, DType.F32, 1, 4);
            Tensor y = Tensor.allocate(arena, DType.F32, 1, 3);
            HeldForward.Held forward = slow.hold("forwarder", () -> q.forward(x, y));
            String m;
            Throwable failure;
            try {
                m = assertThrows(IllegalStateException.class, model::close).getMessage();
                assertTrue(k.isClosed(), "the idle layer is closed");
                assertFalse(q.isClosed(), "the busy layer stays open");
                model.layer("model.q_proj");  // the model is still open: no "LoraModel is closed"
            } finally {
                failure = forward.finish();
            }
            assertTrue(m.contains("forwarder") && m.contains("closing it"), m);
            assertNull(failure, "the busy layer's forward must complete on the memory it was using");
            model.close();
            assertTrue(q.isClosed());
            assertThrows(IllegalStateException.class, () -> model.layer("model.q_proj"));
            model.close();  // closed: nothing more to do
        }
    }
}
