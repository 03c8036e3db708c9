package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.core.Scaling;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The paper's DPO claims at a small fixed-seed scale (a few seconds on the cpu backend): d = 32,
 * K = 64 responses, 32 pairs per step, 150 steps, one seed, Adafactor lr 3e-4 with the linear 10 %
 * warmup, β = 0.1, dropout 0.1, α = 16, 512 held-out prompts. rsLoRA r = 256 beats both LoRA rows,
 * the two LoRA rows sit close to each other, and every trained row beats the base policy. Measured
 * when written (cpu backend): score gains over the base LoRA r16 +0.0411, LoRA r256 +0.0431,
 * rsLoRA r256 +0.346.
 */
class DpoClaimsTest {
    private static DpoResult result;

    static DpoConfig config() {
        return DpoConfig.defaults().withDim(32).withResponses(64).withBatch(32).withSteps(150).withSeeds(1).withLr(3e-4)
                .withEvalPrompts(512);
    }

    static Backend backend() {
        return Backends.probeAll().get("cpu").available() ? Backends.get("cpu") : Backends.get("reference");
    }

    @BeforeAll
    static void run() {
        result = DpoExperiment.run(config(), backend(), SweepProgress.NONE);
    }

    private static double gain(Scaling s, int rank) {
        return result.summary(new DpoConfig.Row(s, rank)).gain(result.baseScore());
    }

    private static String table() {
        return "\n" + DpoTable.format(result);
    }

    @Test
    void rsloraAtRank256BeatsBothLoraRowsWhichSitClose() {
        double lora16 = gain(Scaling.LORA, 16);
        double lora256 = gain(Scaling.LORA, 256);
        double rs256 = gain(Scaling.RSLORA, 256);
        double bestLora = Math.max(lora16, lora256);
        assertTrue(rs256 > 2 * bestLora, "rsLoRA r256 gain " + rs256 + " vs LoRA " + lora16 + ", " + lora256 + table());
        assertTrue(Math.abs(lora16 - lora256) < 0.25 * (rs256 - bestLora),
                "LoRA r16 and r256 sit close compared with rsLoRA's lead" + table());
    }

    @Test
    void everyTrainedRowBeatsTheBase() {
        for (DpoResult.Summary s : result.summaries()) {
            assertTrue(s.gain(result.baseScore()) > 0, s.row().label() + " gain " + s.gain(result.baseScore()) + table());
            assertTrue(s.klMean() > 0, s.row().label() + " moved away from the reference");
            assertTrue(s.rewardAccuracyMean() > 0.5, s.row().label() + " held-out reward accuracy" + table());
        }
        assertEquals(3, result.runs().size());
    }

    @Test
    void thePolicysDisabledAdapterIsTheWorldsReferenceBitForBit() {
        // the reference log-probs of DPO come from LoraLinear.disableAdapter(): the same numbers as the frozen base network
        DpoConfig c = config();
        Backend b = backend();
        try (DpoWorld world = new DpoWorld(c, b); Arena arena = Arena.ofConfined();
             DpoPolicy p = new DpoPolicy(world, c, new DpoConfig.Row(Scaling.RSLORA, 256), 77, b)) {
            Tensor x = Tensor.allocate(arena, DType.F32, c.batch(), c.dim());
            DpoWorld.gaussianFill(x, new SplittableRandom(3));
            Tensor ref = Tensor.allocate(arena, DType.F32, c.batch(), c.responses());
            world.referenceLogits(x, ref);
            int[] chosen = new int[c.batch()];
            int[] rejected = new int[c.batch()];
            for (int i = 0; i < c.batch(); i++) {
                chosen[i] = i % c.responses();
                rejected[i] = (i + 1) % c.responses();
            }
            for (int t = 0; t < 3; t++) {
                p.step(x, chosen, rejected);  // B moves away from 0: the adapter is no longer a no-op
            }
            assertArrayEquals(ref.toFloatArray(), p.referenceLogits(x));
        }
    }
}
