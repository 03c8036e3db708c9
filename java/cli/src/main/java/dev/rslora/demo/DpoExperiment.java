package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The rsLoRA paper's DPO comparison on a toy policy (see {@link DpoConfig}): per seed, every trained
 * row learns in lockstep from the same prompts and preference pairs (sampled from the reference policy,
 * labelled by Bradley–Terry on the hidden true reward); rows of one seed share the adapter seed, so
 * LoRA r = 256 and rsLoRA r = 256 start from the same A and differ only in γ. After training each row
 * is evaluated on the world's held-out prompts; the base row is the reference policy itself.
 */
public final class DpoExperiment {
    private static final long STREAM_ADAPTER = 210;
    private static final long STREAM_DATA = 220;

    private DpoExperiment() {
    }

    /**
     * Runs the experiment on {@code backend}, one progress unit per (seed, step).
     *
     * @param c        the settings
     * @param backend  the backend every layer runs on
     * @param progress told of each (seed, step) done
     * @return every row's runs, the base score and the wall time
     */
    public static DpoResult run(DpoConfig c, Backend backend, SweepProgress progress) {
        long started = System.nanoTime();
        List<DpoResult.Run> runs = new ArrayList<>();
        double base;
        try (DpoWorld world = new DpoWorld(c, backend)) {
            base = world.baseScore();
            List<Long> seeds = c.seedValues();
            progress.start((long) seeds.size() * c.steps());
            try {
                List<List<DpoResult.Run>> bySeed = new ArrayList<>();
                for (int si = 0; si < seeds.size(); si++) {
                    bySeed.add(runSeed(c, world, seeds.get(si), backend, progress, "seed " + (si + 1) + "/" + seeds.size()));
                }
                for (int row = 0; row < c.rows().size(); row++) {
                    for (List<DpoResult.Run> s : bySeed) {
                        runs.add(s.get(row));
                    }
                }
            } finally {
                progress.finish();
            }
        }
        return new DpoResult(c, backend.name(), base, runs, (System.nanoTime() - started) / 1e9);
    }

    private static List<DpoResult.Run> runSeed(DpoConfig c, DpoWorld world, long seed, Backend backend, SweepProgress progress,
                                               String label) {
        long adapterSeed = RandomMatrices.subSeed(seed, STREAM_ADAPTER);
        SplittableRandom data = new SplittableRandom(RandomMatrices.subSeed(seed, STREAM_DATA));
        List<DpoPolicy> policies = new ArrayList<>();
        int rows = c.rows().size();
        double[][] loss = new double[rows][c.steps()];
        double[][] margin = new double[rows][c.steps()];
        List<DpoResult.Run> out = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            for (DpoConfig.Row row : c.rows()) {
                policies.add(new DpoPolicy(world, c, row, adapterSeed, backend));
            }
            Tensor x = Tensor.allocate(arena, DType.F32, c.batch(), c.dim());
            Tensor refLogits = Tensor.allocate(arena, DType.F32, c.batch(), c.responses());
            Tensor rewards = Tensor.allocate(arena, DType.F32, c.batch(), c.responses());
            int[] chosen = new int[c.batch()];
            int[] rejected = new int[c.batch()];
            for (int t = 0; t < c.steps(); t++) {
                DpoWorld.gaussianFill(x, data);
                world.referenceLogits(x, refLogits);
                world.trueRewards(x, rewards);
                double[][] refLogp = DpoWorld.logSoftmaxRows(refLogits);
                double[][] r = DpoWorld.rows(rewards);
                for (int b = 0; b < c.batch(); b++) {
                    int[] pair = DpoWorld.samplePair(refLogp[b], r[b], data);
                    chosen[b] = pair[0];
                    rejected[b] = pair[1];
                }
                for (int k = 0; k < rows; k++) {
                    DpoPolicy.StepRecord rec = policies.get(k).step(x, chosen, rejected);
                    loss[k][t] = rec.loss();
                    margin[k][t] = rec.rewardMargin();
                }
                progress.advance(label);
            }
            for (int k = 0; k < rows; k++) {
                DpoPolicy.Evaluation e = policies.get(k).evaluate(c.beta());
                out.add(new DpoResult.Run(c.rows().get(k), seed, e.score(), e.rewardAccuracy(), e.kl(), loss[k], margin[k]));
            }
        } finally {
            for (DpoPolicy p : policies) {
                p.close();
            }
        }
        return out;
    }
}
