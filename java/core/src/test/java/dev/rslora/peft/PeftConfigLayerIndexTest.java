package dev.rslora.peft;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.model.LoraModel;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * layers_to_transform against layer indices of any size, and layers_pattern with a group of its own
 * (PEFT: {@code int(re.match(rf".*\.{pattern}\.(\d+)\.", key).group(1)) in layers_to_transform}).
 */
class PeftConfigLayerIndexTest {
    private static final String BASE = "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"q_proj\"],";

    @Test
    void aLayerIndexPastIntsRangeIsInNoneOfTheLayersAsInPython() throws Exception {
        PeftConfig c = PeftConfigReader.parse(BASE + "\"layers_to_transform\":[0, 7]}", "cfg");
        assertFalse(c.targets("model.layers.99999999999.q_proj"));
        assertFalse(c.targets("model.layers.4294967296.q_proj"));   // 2^32: not layer 0 (an index truncated to 32 bits would be)
        assertFalse(c.targets("model.layers.4294967303.q_proj"));   // 2^32 + 7: not layer 7
        assertTrue(c.targets("model.layers.0.q_proj"));
        assertTrue(c.targets("model.layers.0000000000000000000007.q_proj"), "int(\"00...07\") is 7");
        Map<String, float[][]> w = new LinkedHashMap<>();
        w.put("model.layers.0.q_proj.weight", new float[4][4]);
        w.put("model.layers.99999999999.q_proj.weight", new float[4][4]);
        try (LoraModel m = LoraModel.wrapArrays(w, c, new ReferenceBackend(), 0)) {
            assertEquals(java.util.Set.of("model.layers.0.q_proj"), m.layers().keySet());
        }
    }

    @Test
    void aLayersPatternWithACapturingGroupIsRefusedWhenTheConfigIsRead() throws Exception {
        String msg = assertThrows(PeftFormatException.class, () -> PeftConfigReader.parse(
                BASE + "\"layers_to_transform\":[0],\"layers_pattern\":[\"h\", \"(layers|h)\"]}", "cfg")).getMessage();
        assertTrue(msg.contains("layers_pattern \"(layers|h)\"") && msg.contains("capturing group") && msg.contains("(?:"), msg);
        // the non-capturing form PEFT can use works
        PeftConfig c = PeftConfigReader.parse(BASE + "\"layers_to_transform\":[0],\"layers_pattern\":\"(?:layers|h)\"}", "cfg");
        assertTrue(c.targets("model.layers.0.q_proj"));
        assertTrue(c.targets("transformer.h.0.q_proj"));
        assertFalse(c.targets("model.layers.1.q_proj"));
    }
}
