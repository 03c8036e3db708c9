package dev.rslora.train;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** {@link Parameter#of}: a layer's A and B under PEFT's names, and its null arguments refused by name. */
class ParameterTest {
    /**
     * A null layer was a bare NullPointerException ("because \"layer\" is null"), and a null prefix silently
     * named the parameters "null.lora_A.weight"; both are IllegalArgumentExceptions naming the argument.
     */
    @Test
    void ofNamesALayersTensorsAndRefusesNulls() {
        try (Arena arena = Arena.ofShared();
             LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 2, 3), null, LoraConfig.rslora(1, 1),
                     new ReferenceBackend())) {
            List<Parameter> ps = Parameter.of(layer, "model.q_proj");
            assertEquals("model.q_proj.lora_A.weight", ps.get(0).name());
            assertEquals("model.q_proj.lora_B.weight", ps.get(1).name());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Parameter.of(null, "model.q_proj"));
            assertEquals("Parameter.of: layer is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> Parameter.of(layer, null));
            assertEquals("Parameter.of: prefix is null", e.getMessage());
        }
    }
}
