package dev.rslora.model;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** LoraModel.wrap over a map with a null tensor: refused naming the key (as wrapArrays does). */
class WrapNullWeightTest {
    @Test
    void aNullTensorIsNamed() {
        PeftConfig c = PeftConfig.builder().targetModules("q_proj").r(2).loraAlpha(4).build();
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> w = new LinkedHashMap<>();
            w.put("model.k_proj.weight", Tensor.allocate(arena, DType.F32, 4, 4));
            w.put("model.q_proj.weight", null);
            String m = assertThrows(IllegalArgumentException.class, () -> LoraModel.wrap(w, c, new ReferenceBackend(), 0))
                    .getMessage();
            assertEquals("weight model.q_proj.weight is null: every entry of the map must hold a tensor", m);
        }
    }
}
