package dev.rslora.demo;

import dev.rslora.optim.AdamWConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The settings of one rank sweep. The network is {@code y = tanh(W2·tanh(W1·x))} with d×d frozen
 * weights W_l ~ N(0, 1/d) and no biases; the teacher is the same network with
 * W_l + U_l·diag(s)·V_lᵀ, s_i = teacherScale/√(1+i). Every (scaling, rank) run of one seed sees the
 * same network, teacher, adapter initialisation of A (per rank) and data; only γ differs.
 *
 * @param dim          d (input, hidden and output width)
 * @param batch        fresh N(0, 1) inputs per step
 * @param steps        optimizer steps per run
 * @param ranks        adapter ranks, ascending, distinct
 * @param seeds        number of seeds, 1 to {@link #MAX_SEEDS}; seed values are baseSeed, baseSeed+1, …
 * @param baseSeed     first seed
 * @param alpha        α (γ = α/r for LoRA, α/√r for rsLoRA)
 * @param optimizer    AdamW hyper-parameters (constant learning rate)
 * @param teacherScale the largest singular value of each teacher perturbation
 * @param finalWindow  the final loss of a run is the mean loss over its last finalWindow steps
 * @param maxGradNorm  global gradient-norm clipping limit; 0 = no clipping
 */
public record SweepConfig(int dim, int batch, int steps, List<Integer> ranks, int seeds, long baseSeed, double alpha,
                          AdamWConfig optimizer, double teacherScale, int finalWindow, double maxGradNorm) {

    /**
     * The optimizer of the PyTorch prototype: {@code torch.optim.AdamW(params, lr=5e-5)}, so
     * PyTorch's default betas (0.9, 0.999), eps 1e-8 and weight decay 0.01 (whose effect over 200
     * steps is a factor (1 − 5e-7)^200 ≈ 1 − 1e-4 on the adapters: negligible).
     */
    public static final AdamWConfig PROTOTYPE_OPTIMIZER = AdamWConfig.torchDefaults().withLr(5e-5);

    /**
     * The most seeds a demo runs (each is a whole training run per rank): far more than a mean ± sd
     * needs, and a bound that refuses a typo such as 2147483647 by name instead of running out of
     * memory listing the seeds.
     */
    public static final int MAX_SEEDS = 10_000;

    /** Checks every setting (IllegalArgumentException naming the bad value). */
    public SweepConfig {
        require(dim >= 1, "dim must be >= 1, got dim=" + dim);
        require(batch >= 1, "batch must be >= 1, got batch=" + batch);
        require(steps >= 1, "steps must be >= 1, got steps=" + steps);
        require(seeds >= 1 && seeds <= MAX_SEEDS, "seeds must be in [1, " + MAX_SEEDS + "], got seeds=" + seeds);
        require(ranks != null && !ranks.isEmpty(), "ranks must not be empty");
        ranks = List.copyOf(ranks);
        for (int i = 0; i < ranks.size(); i++) {
            require(ranks.get(i) >= 1, "ranks must be >= 1, got " + ranks.get(i));
            require(i == 0 || ranks.get(i) > ranks.get(i - 1), "ranks must be ascending and distinct, got " + ranks);
        }
        require(alpha > 0 && !Double.isInfinite(alpha), "alpha must be finite and > 0, got alpha=" + alpha);
        require(optimizer != null, "optimizer is null");
        require(teacherScale >= 0 && !Double.isInfinite(teacherScale), "teacherScale must be finite and >= 0, got " + teacherScale);
        // named as the demo's options (--final-window, --max-grad-norm), which is where these come from
        require(finalWindow >= 1 && finalWindow <= steps,
                "final window (--final-window) must be in [1, steps=" + steps + "], got " + finalWindow);
        require(maxGradNorm >= 0 && !Double.isInfinite(maxGradNorm),
                "max grad norm (--max-grad-norm) must be finite and >= 0, got " + maxGradNorm);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /**
     * The full experiment, the PyTorch prototype's setup: d = 128, batch 256, 200 steps, ranks
     * {4, 16, 64, 256}, 3 seeds, α = 8, AdamW lr 5e-5, final loss over the last 20 steps.
     *
     * @return the settings of {@code rslora demo}
     */
    public static SweepConfig defaults() {
        return new SweepConfig(128, 256, 200, List.of(4, 16, 64, 256), 3, 0, 8.0, PROTOTYPE_OPTIMIZER, 0.5, 20, 0.0);
    }

    /**
     * {@code --quick}: the same network, ranks, seeds and optimizer, half the steps (100) and half
     * the batch (128); the effect is already clear at step 100 (rsLoRA's high ranks separate from
     * the bunched LoRA curves within the first 50 steps).
     *
     * @return the reduced settings of {@code --quick}
     */
    public static SweepConfig quick() {
        return defaults().withSteps(100).withBatch(128);
    }

    /**
     * This config with width d.
     *
     * @param d input, hidden and output width, ≥ 1
     * @return a copy
     */
    public SweepConfig withDim(int d) {
        return new SweepConfig(d, batch, steps, ranks, seeds, baseSeed, alpha, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with n inputs per step.
     *
     * @param n fresh inputs per step, ≥ 1
     * @return a copy
     */
    public SweepConfig withBatch(int n) {
        return new SweepConfig(dim, n, steps, ranks, seeds, baseSeed, alpha, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * Changes the step count; the final-loss window shrinks to at most a tenth of the steps (at least 1).
     *
     * @param s optimizer steps per run, ≥ 1
     * @return a copy
     */
    public SweepConfig withSteps(int s) {
        int window = Math.max(1, Math.min(finalWindow, s / 10));
        return new SweepConfig(dim, batch, s, ranks, seeds, baseSeed, alpha, optimizer, teacherScale, window, maxGradNorm);
    }

    /**
     * This config with ranks r.
     *
     * @param r ranks, ascending and distinct, each ≥ 1
     * @return a copy
     */
    public SweepConfig withRanks(List<Integer> r) {
        List<Integer> sorted = new ArrayList<>(r);
        sorted.sort(null);
        return new SweepConfig(dim, batch, steps, sorted, seeds, baseSeed, alpha, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with n seeds.
     *
     * @param n the number of seeds, ≥ 1
     * @return a copy
     */
    public SweepConfig withSeeds(int n) {
        return new SweepConfig(dim, batch, steps, ranks, n, baseSeed, alpha, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with first seed s.
     *
     * @param s the first seed
     * @return a copy
     */
    public SweepConfig withBaseSeed(long s) {
        return new SweepConfig(dim, batch, steps, ranks, seeds, s, alpha, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with α = a.
     *
     * @param a α (finite, &gt; 0)
     * @return a copy
     */
    public SweepConfig withAlpha(double a) {
        return new SweepConfig(dim, batch, steps, ranks, seeds, baseSeed, a, optimizer, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with AdamW hyper-parameters o.
     *
     * @param o the optimizer settings (constant learning rate)
     * @return a copy
     */
    public SweepConfig withOptimizer(AdamWConfig o) {
        return new SweepConfig(dim, batch, steps, ranks, seeds, baseSeed, alpha, o, teacherScale, finalWindow, maxGradNorm);
    }

    /**
     * This config with final-loss window w.
     *
     * @param w the last steps averaged into a run's final loss, in [1, steps]
     * @return a copy
     */
    public SweepConfig withFinalWindow(int w) {
        return new SweepConfig(dim, batch, steps, ranks, seeds, baseSeed, alpha, optimizer, teacherScale, w, maxGradNorm);
    }

    /**
     * This config with gradient clipping at m.
     *
     * @param m the global gradient-norm limit (finite, ≥ 0; 0 = no clipping)
     * @return a copy
     */
    public SweepConfig withMaxGradNorm(double m) {
        return new SweepConfig(dim, batch, steps, ranks, seeds, baseSeed, alpha, optimizer, teacherScale, finalWindow, m);
    }

    /**
     * The seed values, baseSeed … baseSeed + seeds − 1.
     *
     * @return the seeds in ascending order
     */
    public List<Long> seedValues() {
        List<Long> s = new ArrayList<>(seeds);
        for (int i = 0; i < seeds; i++) {
            s.add(baseSeed + i);
        }
        return s;
    }
}
