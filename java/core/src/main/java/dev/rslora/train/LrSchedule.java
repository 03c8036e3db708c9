package dev.rslora.train;

import java.util.Locale;

/**
 * Learning-rate schedules with the exact values of the Hugging Face Trainer's
 * ({@code transformers.get_scheduler} on a {@code LambdaLR}): {@code lr = baseLr·λ(k)}, where k is the
 * number of scheduler steps taken so far. The Trainer creates the scheduler (k = 0) and calls
 * {@code scheduler.step()} after every {@code optimizer.step()}, so <b>optimizer step t (t = 1, 2, …)
 * runs with λ(t − 1)</b>: with warmup, the first step has learning rate 0. {@link #lr(long)} takes t.
 *
 * <pre>
 *   constant:  λ(k) = 1
 *   linear:    λ(k) = k / max(1, W)                          for k &lt; W
 *              λ(k) = max(0, (N − k) / max(1, N − W))        otherwise
 *   cosine:    λ(k) = k / max(1, W)                          for k &lt; W
 *              λ(k) = max(0, ½(1 + cos(π·2·c·p))), p = (k − W) / max(1, N − W), c = 0.5 cycles
 * </pre>
 *
 * W from a ratio is {@link #warmupSteps}: {@code ceil(N·ratio)} in double, as
 * {@code TrainingArguments.get_warmup_steps} (so 7 % of 100 steps is 8, since 100·0.07 = 7.000000000000001).
 * The cosine factor is clamped below at 0 only: past N it rises again, as in Hugging Face.
 *
 * @param kind          constant, linear or cosine
 * @param baseLr        the peak learning rate (the Trainer's {@code learning_rate})
 * @param warmupSteps   W ≥ 0
 * @param trainingSteps N ≥ 0 (ignored by constant)
 */
public record LrSchedule(Kind kind, double baseLr, long warmupSteps, long trainingSteps) {

    /** The Trainer's {@code lr_scheduler_type} values implemented here. */
    public enum Kind {
        /** λ = 1. */
        CONSTANT,
        /** Linear warmup, then linear decay to 0. */
        LINEAR,
        /** Linear warmup, then a half cosine to 0. */
        COSINE;

        /**
         * The kind with the Hugging Face name.
         *
         * @param name "constant", "linear" or "cosine" (lower case, as {@code lr_scheduler_type})
         * @return the kind
         * @throws IllegalArgumentException if the name is none of these (the message quotes it)
         */
        public static Kind fromName(String name) {
            for (Kind k : values()) {
                if (k.name().toLowerCase(Locale.ROOT).equals(name)) {
                    return k;
                }
            }
            throw new IllegalArgumentException("lr_scheduler_type must be constant, linear or cosine, got '" + name + "'");
        }

        /**
         * The Hugging Face name.
         *
         * @return "constant", "linear" or "cosine"
         */
        public String hfName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Validates the schedule: a kind, a finite lr ≥ 0 and step counts ≥ 0. */
    public LrSchedule {
        if (kind == null) {
            throw new IllegalArgumentException("schedule kind is null");
        }
        if (!(baseLr >= 0) || Double.isInfinite(baseLr)) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + baseLr);
        }
        if (warmupSteps < 0 || trainingSteps < 0) {
            throw new IllegalArgumentException("warmup and training steps must be >= 0, got warmup=" + warmupSteps
                    + " training=" + trainingSteps);
        }
    }

    /**
     * {@code get_constant_schedule}: λ = 1.
     *
     * @param baseLr the learning rate of every step (finite, ≥ 0)
     * @return the constant schedule
     */
    public static LrSchedule constant(double baseLr) {
        return new LrSchedule(Kind.CONSTANT, baseLr, 0, 0);
    }

    /**
     * {@code get_linear_schedule_with_warmup(W, N)}.
     *
     * @param baseLr        the peak learning rate, reached after W steps (finite, ≥ 0)
     * @param warmupSteps   W ≥ 0 (0: no warmup, step 1 runs at baseLr)
     * @param trainingSteps N ≥ 0, the step at which the rate reaches 0
     * @return the linear schedule
     */
    public static LrSchedule linear(double baseLr, long warmupSteps, long trainingSteps) {
        return new LrSchedule(Kind.LINEAR, baseLr, warmupSteps, trainingSteps);
    }

    /**
     * {@code get_cosine_schedule_with_warmup(W, N)} with the default half cycle.
     *
     * @param baseLr        the peak learning rate, reached after W steps (finite, ≥ 0)
     * @param warmupSteps   W ≥ 0
     * @param trainingSteps N ≥ 0, the step at which the half cosine reaches 0
     * @return the cosine schedule
     */
    public static LrSchedule cosine(double baseLr, long warmupSteps, long trainingSteps) {
        return new LrSchedule(Kind.COSINE, baseLr, warmupSteps, trainingSteps);
    }

    /**
     * The Trainer's schedule {@code kind} with {@code warmup_ratio} over N steps.
     *
     * @param kind          constant, linear or cosine
     * @param baseLr        the peak learning rate (finite, ≥ 0)
     * @param warmupRatio   the fraction of N spent warming up, in [0, 1]; W = {@link #warmupSteps}
     * @param trainingSteps N ≥ 0
     * @return the schedule with W = ceil(N·warmupRatio)
     * @throws IllegalArgumentException if warmupRatio is outside [0, 1] or another value is invalid
     */
    public static LrSchedule withWarmupRatio(Kind kind, double baseLr, double warmupRatio, long trainingSteps) {
        return new LrSchedule(kind, baseLr, warmupSteps(trainingSteps, warmupRatio), trainingSteps);
    }

    /**
     * {@code math.ceil(num_training_steps * warmup_ratio)} (ratio in [0, 1]).
     *
     * @param trainingSteps N ≥ 0
     * @param warmupRatio   in [0, 1]
     * @return W, rounded up in double arithmetic exactly as Python does
     * @throws IllegalArgumentException if warmupRatio is outside [0, 1] (or NaN), or trainingSteps &lt; 0
     */
    public static long warmupSteps(long trainingSteps, double warmupRatio) {
        if (trainingSteps < 0) {
            throw new IllegalArgumentException("training steps must be >= 0, got " + trainingSteps);
        }
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
            throw new IllegalArgumentException("warmup_ratio must be in [0, 1], got " + warmupRatio);
        }
        return (long) Math.ceil(trainingSteps * warmupRatio);
    }

    /**
     * λ(k) after k ≥ 0 scheduler steps.
     *
     * @param k the number of scheduler steps taken (optimizer step t uses k = t − 1)
     * @return the multiplier of baseLr, in [0, 1]
     * @throws IllegalArgumentException if k &lt; 0
     */
    public double factor(long k) {
        if (k < 0) {
            throw new IllegalArgumentException("scheduler step must be >= 0, got " + k);
        }
        if (kind == Kind.CONSTANT) {
            return 1.0;
        }
        if (k < warmupSteps) {
            return (double) k / (double) Math.max(1, warmupSteps);
        }
        if (kind == Kind.LINEAR) {
            return Math.max(0.0, (double) (trainingSteps - k) / (double) Math.max(1, trainingSteps - warmupSteps));
        }
        double progress = (double) (k - warmupSteps) / (double) Math.max(1, trainingSteps - warmupSteps);
        return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * 0.5 * 2.0 * progress)));
    }

    /**
     * The learning rate of optimizer step t ≥ 1: baseLr·λ(t − 1), computed as LambdaLR does (base · λ).
     *
     * @param t the optimizer step, ≥ 1 (the first step is 1)
     * @return the learning rate that step runs with
     * @throws IllegalArgumentException if t &lt; 1
     */
    public double lr(long t) {
        if (t < 1) {
            throw new IllegalArgumentException("optimizer step must be >= 1, got t=" + t);
        }
        return baseLr * factor(t - 1);
    }

    /**
     * Sets the learning rate of {@code optimizer}'s next step (call right before {@code step()}).
     *
     * @param optimizer the optimizer whose next step, t = stepCount() + 1, gets {@link #lr lr(t)}
     * @throws IllegalStateException if the optimizer computes its own step size (Adafactor's relative_step)
     * @throws IllegalArgumentException if optimizer is null
     */

    public void apply(Optimizer optimizer) {
        if (optimizer == null) {
            throw new IllegalArgumentException("LrSchedule.apply: optimizer is null");
        }
        optimizer.setLearningRate(lr(optimizer.stepCount() + 1));
    }
}
