package dev.rslora.demo;

import dev.rslora.core.Scaling;

import java.util.ArrayList;
import java.util.List;

/**
 * The settings of the DPO experiment (the rsLoRA paper's comparison on a toy policy). The world —
 * frozen network, response embeddings, true reward, held-out prompts — comes from {@code worldSeed}
 * and is the same for every run; the training seeds drive the adapter initialisation, dropout masks,
 * prompts, sampled pairs and their labels. All rows of one seed see the same pairs.
 *
 * <pre>
 *   policy    π(y|x) = softmax_y(E·tanh(W2·tanh(W1·x)))   x ∈ R^d, y ∈ [0, K), E [K, d] ~ N(0, 1), W_l [d, d] ~ N(0, 1/d)
 *   reward    r*(x, y) = E_y·tanh(T2·tanh(T1·x)),  T_l = W_l + U_l·diag(s)·V_lᵀ, s_i = teacherScale/√(1+i)
 *   data      per step: batch fresh prompts, two distinct responses from π_ref, chosen by Bradley–Terry on r*
 *   training  LoRA (dropout) on W1 and W2, DPO sigmoid loss (β), Adafactor (Trainer defaults, fixed lr),
 *             linear schedule with warmupRatio warmup
 *   score     E_x E_{y~π} r*(x, y) over evalPrompts held-out prompts (the paper's judge score stand-in)
 * </pre>
 *
 * @param dim          d
 * @param responses    K
 * @param batch        preference pairs per step
 * @param steps        optimizer steps per run
 * @param rows         the trained rows (scaling, rank), in report order
 * @param alpha        α of every row (the paper: 16)
 * @param seeds        number of training seeds, 1 to {@link SweepConfig#MAX_SEEDS} (baseSeed, baseSeed+1, …)
 * @param baseSeed     first training seed
 * @param worldSeed    seed of the frozen world
 * @param lr           Adafactor learning rate (peak of the schedule)
 * @param beta         DPO β
 * @param dropout      LoRA dropout
 * @param warmupRatio  the Trainer's warmup_ratio of the linear schedule
 * @param teacherScale the largest singular value of the reward's perturbation of each layer
 * @param evalPrompts  held-out prompts for the score, the KL and the reward accuracy (one pair each)
 */
public record DpoConfig(int dim, int responses, int batch, int steps, List<Row> rows, double alpha, int seeds, long baseSeed,
                        long worldSeed, double lr, double beta, double dropout, double warmupRatio, double teacherScale,
                        int evalPrompts) {

    /**
     * One trained row of the table: LoRA or rsLoRA at a rank.
     *
     * @param scaling LoRA (γ = α/r) or rsLoRA (γ = α/√r)
     * @param rank    the adapter rank r, ≥ 1
     */
    public record Row(Scaling scaling, int rank) {
        /** Checks the row: a scaling and r ≥ 1. */
        public Row {
            if (scaling == null || rank < 1) {
                throw new IllegalArgumentException("row needs a scaling and a rank >= 1, got " + scaling + " r=" + rank);
            }
        }

        /**
         * "lora" | "rslora".
         *
         * @return "lora" or "rslora"
         */
        public String scalingName() {
            return scaling == Scaling.RSLORA ? "rslora" : "lora";
        }

        /**
         * "LoRA r=16" / "rsLoRA r=256".
         *
         * @return the row's label in tables and plots
         */
        public String label() {
            return (scaling == Scaling.RSLORA ? "rsLoRA" : "LoRA") + " r=" + rank;
        }
    }

    /** The paper's three trained rows: LoRA r = 16, LoRA r = 256, rsLoRA r = 256 (α = 16 each). */
    public static final List<Row> PAPER_ROWS = List.of(new Row(Scaling.LORA, 16), new Row(Scaling.LORA, 256),
            new Row(Scaling.RSLORA, 256));

    /** Checks every setting (IllegalArgumentException naming the bad value). */
    public DpoConfig {
        require(dim >= 1, "dim must be >= 1, got " + dim);
        require(responses >= 2, "responses must be >= 2 (a pair needs two), got " + responses);
        require(batch >= 1, "batch must be >= 1, got " + batch);
        require(steps >= 1, "steps must be >= 1, got " + steps);
        require(rows != null && !rows.isEmpty(), "rows must not be empty");
        rows = List.copyOf(rows);
        require(alpha > 0 && !Double.isInfinite(alpha), "alpha must be finite and > 0, got " + alpha);
        require(seeds >= 1 && seeds <= SweepConfig.MAX_SEEDS, "seeds must be in [1, " + SweepConfig.MAX_SEEDS + "], got " + seeds);
        require(lr >= 0 && !Double.isInfinite(lr), "lr must be finite and >= 0, got " + lr);
        require(beta > 0 && !Double.isInfinite(beta), "beta must be finite and > 0, got " + beta);
        require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got " + dropout);
        require(warmupRatio >= 0 && warmupRatio <= 1, "warmup ratio must be in [0, 1], got " + warmupRatio);
        require(teacherScale >= 0 && !Double.isInfinite(teacherScale), "teacher scale must be finite and >= 0, got " + teacherScale);
        require(evalPrompts >= 1, "eval prompts must be >= 1, got " + evalPrompts);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException(message);
        }
    }

    /**
     * The full experiment: d = 128, K = 256, 64 pairs per step, 300 steps, the paper's rows at α = 16,
     * 3 seeds, Adafactor lr 1e-4 with 10 % warmup, β = 0.1, dropout 0.1, 4096 held-out prompts.
     *
     * @return the settings of {@code rslora demo --experiment dpo}
     */
    public static DpoConfig defaults() {
        return new DpoConfig(128, 256, 64, 300, PAPER_ROWS, 16.0, 3, 0, 0, 1e-4, 0.1, 0.1, 0.1, 0.5, 4096);
    }

    /**
     * {@code --quick}: the same world and rows, 2 seeds of 150 steps with 32 pairs, 1024 held-out prompts.
     *
     * @return the reduced settings of {@code --quick}
     */
    public static DpoConfig quick() {
        return defaults().withSeeds(2).withSteps(150).withBatch(32).withEvalPrompts(1024);
    }

    /**
     * This config with width d.
     *
     * @param d the hidden width, ≥ 1
     * @return a copy
     */
    public DpoConfig withDim(int d) {
        return new DpoConfig(d, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with K responses.
     *
     * @param k the number of responses, ≥ 2
     * @return a copy
     */
    public DpoConfig withResponses(int k) {
        return new DpoConfig(dim, k, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with b pairs per step.
     *
     * @param b preference pairs per step, ≥ 1
     * @return a copy
     */
    public DpoConfig withBatch(int b) {
        return new DpoConfig(dim, responses, b, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with s optimizer steps per run.
     *
     * @param s steps, ≥ 1
     * @return a copy
     */
    public DpoConfig withSteps(int s) {
        return new DpoConfig(dim, responses, batch, s, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with the trained rows r.
     *
     * @param r the rows, in report order (not empty)
     * @return a copy
     */
    public DpoConfig withRows(List<Row> r) {
        return new DpoConfig(dim, responses, batch, steps, r, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with α = a for every row.
     *
     * @param a α &gt; 0
     * @return a copy
     */
    public DpoConfig withAlpha(double a) {
        return new DpoConfig(dim, responses, batch, steps, rows, a, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with n training seeds.
     *
     * @param n the number of seeds, ≥ 1
     * @return a copy
     */
    public DpoConfig withSeeds(int n) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, n, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with first training seed s.
     *
     * @param s the first seed
     * @return a copy
     */
    public DpoConfig withBaseSeed(long s) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, s, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with world seed s.
     *
     * @param s seeds the frozen network, embeddings, reward and held-out prompts
     * @return a copy
     */
    public DpoConfig withWorldSeed(long s) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, s, lr, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with Adafactor learning rate l.
     *
     * @param l the peak learning rate of the schedule (finite, ≥ 0)
     * @return a copy
     */
    public DpoConfig withLr(double l) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, l, beta, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with DPO β = b.
     *
     * @param b β &gt; 0
     * @return a copy
     */
    public DpoConfig withBeta(double b) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, b, dropout, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with LoRA dropout p.
     *
     * @param p in [0, 1)
     * @return a copy
     */
    public DpoConfig withDropout(double p) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, p, warmupRatio,
                teacherScale, evalPrompts);
    }

    /**
     * This config with warmup ratio w.
     *
     * @param w the linear schedule's warmup_ratio, in [0, 1]
     * @return a copy
     */
    public DpoConfig withWarmupRatio(double w) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, w,
                teacherScale, evalPrompts);
    }

    /**
     * This config with n held-out prompts.
     *
     * @param n prompts for the score, KL and reward accuracy, ≥ 1
     * @return a copy
     */
    public DpoConfig withEvalPrompts(int n) {
        return new DpoConfig(dim, responses, batch, steps, rows, alpha, seeds, baseSeed, worldSeed, lr, beta, dropout, warmupRatio,
                teacherScale, n);
    }

    /**
     * The training seed values, baseSeed … baseSeed + seeds − 1.
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
