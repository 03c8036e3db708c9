package dev.rslora.model;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.PeftConfig;
import dev.rslora.train.Adafactor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Optimizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An optimizer that outlives the model whose parameters it updates. */
class OptimizerOverClosedModelTest {
    private static final PeftConfig CONFIG = PeftConfig.builder().targetModules("fc").r(2).loraAlpha(4).build();

    private static Map<String, float[][]> weights() {
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (String m : List.of("net.0.fc", "net.1.fc")) {
            w.put(m + ".weight", new float[][] {{1, 2, 3}, {4, 5, 6}});
        }
        return w;
    }

    private static void refused(String fragment, Executable call) {
        String msg = assertThrows(IllegalStateException.class, call).getMessage();
        assertTrue(msg.contains(fragment), "expected '" + fragment + "' in: " + msg);
    }

    /**
     * An optimizer step after the model (the arena of its parameters) was closed failed with the JDK's
     * "Already closed", naming nothing; it is refused up front naming the parameter, the step count unchanged.
     */
    @Test
    void anOptimizerOverAClosedModelIsRefusedNamingTheParameter() {
        for (String kind : List.of("adamw", "adafactor")) {
            LoraModel model = LoraModel.wrapArrays(weights(), CONFIG, new ReferenceBackend(), 5);
            try (Optimizer opt = kind.equals("adamw") ? new AdamW(model.parameters(), AdamWConfig.torchDefaults())
                    : new Adafactor(model.parameters(), AdafactorConfig.trainer(1e-3))) {
                opt.step();
                model.close();
                String first = "parameter 'net.0.fc.lora_A.weight': its value tensor's memory is freed";
                refused(first, opt::step);
                assertEquals(1, opt.stepCount(), kind);
                refused(first, opt::gradNorm);
                refused(first, () -> opt.clipGradNorm(1));
            }
        }
    }
}
