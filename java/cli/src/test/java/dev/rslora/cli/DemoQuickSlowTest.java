package dev.rslora.cli;


import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real {@code rslora demo --quick} on the auto backend (about a minute on the reference
 * backend, seconds on cpu), and the rsLoRA claims on its JSON. Tagged slow.
 */
@Tag("slow")
class DemoQuickSlowTest {
    @TempDir
    Path dir;

    @Test
    void quickDemoShowsTheRsloraEffect() throws Exception {
        CliRun r = DemoCommandTest.cli("demo", "--quick", "--out", dir.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode results = new ObjectMapper().readTree(dir.resolve("rank_sweep.json").toFile()).get("results");
        assertEquals(8, results.size());
        double[] loraLoss = new double[4];
        double[] rsLoss = new double[4];
        double[] loraG = new double[4];
        double[] rsG = new double[4];
        for (int i = 0; i < 4; i++) {
            loraLoss[i] = results.get(i).get("final_loss_mean").asDouble();
            loraG[i] = results.get(i).get("initial_grad_norm_mean").asDouble();
            rsLoss[i] = results.get(4 + i).get("final_loss_mean").asDouble();
            rsG[i] = results.get(4 + i).get("initial_grad_norm_mean").asDouble();
        }
        String table = r.out();
        // ranks 4 → 256 (×64): LoRA's initial norm falls about 8×, rsLoRA's stays within 30 %
        assertTrue(loraG[0] / loraG[3] > 5 && loraG[0] / loraG[3] < 12, table);
        assertTrue(Math.max(Math.max(rsG[0], rsG[1]), Math.max(rsG[2], rsG[3]))
                / Math.min(Math.min(rsG[0], rsG[1]), Math.min(rsG[2], rsG[3])) < 1.3, table);
        assertTrue(rsLoss[3] < 0.8 * loraLoss[3], table);
        assertTrue(rsLoss[3] < rsLoss[2] && rsLoss[2] < rsLoss[1] && rsLoss[1] < rsLoss[0], table);
    }
}
