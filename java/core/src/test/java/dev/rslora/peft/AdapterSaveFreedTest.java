package dev.rslora.peft;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.model.LoraModel;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AdapterSet.save of a set whose tensors were freed (its model closed): refused naming the module, nothing written. */
class AdapterSaveFreedTest {
    @TempDir
    Path tmp;

    @ParameterizedTest
    @EnumSource(DType.class)
    void saveAfterTheModelIsClosedNamesTheModule(DType dtype) throws Exception {
        PeftConfig c = PeftConfig.builder().targetModules("q_proj").r(2).loraAlpha(4).build();
        Map<String, float[][]> w = new LinkedHashMap<>();
        w.put("model.q_proj.weight", new float[4][4]);
        LoraModel m = LoraModel.wrapArrays(w, c, new ReferenceBackend(), 0);
        AdapterSet set = m.adapters();
        m.close();
        Path dir = tmp.resolve("out");
        String msg = assertThrows(IllegalArgumentException.class, () -> set.save(dir, dtype)).getMessage();
        assertTrue(msg.startsWith("module model.q_proj: lora_A [2, 4]: its arena is closed") && msg.contains("nothing was written"),
                msg);
        try (var left = Files.list(tmp)) {
            assertEquals(List.of(), left.toList(), "no folder, no staging leftovers");
        }
    }
}
