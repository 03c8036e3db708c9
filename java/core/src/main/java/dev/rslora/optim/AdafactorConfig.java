package dev.rslora.optim;

/**
 * Adafactor hyper-parameters, with the meaning, names and defaults of
 * {@code transformers.optimization.Adafactor} (Shazeer &amp; Stern 2018). A value type beside
 * {@link AdamWConfig} so that the CPU optimizer ({@code dev.rslora.train.Adafactor}) and the fused
 * CUDA one ({@code dev.rslora.backend.cuda.CudaAdafactor}) share it.
 *
 * <p>The step size of step t (t = 1, 2, …) for a parameter p is
 * <pre>
 *   ρ_t   = relativeStep ? min(warmupInit ? 1e-6·t : 1e-2, 1/√t) : lr
 *   lr_t  = (scaleParameter ? max(eps2, RMS(p)) : 1) · ρ_t
 *   β2_t  = 1 − t^decayRate
 * </pre>
 *
 * @param lr             the external learning rate (≥ 0), or null: only with {@code relativeStep}
 *                       (Hugging Face refuses a manual lr together with relative_step=True)
 * @param eps1           added to grad² before the second-moment averages (HF {@code eps[0]}, 1e-30)
 * @param eps2           lower bound of the parameter scale RMS(p) (HF {@code eps[1]}, 1e-3)
 * @param clipThreshold  the update is divided by max(1, RMS(update)/clipThreshold) (&gt; 0, HF 1.0)
 * @param decayRate      β2_t = 1 − t^decayRate (&lt; 0 for a decay towards 1, HF −0.8)
 * @param beta1          first-moment decay in [0, 1), or null for none (HF None: no exp_avg state)
 * @param weightDecay    p ← p − weightDecay·lr_t·p before the update is subtracted (≥ 0, HF 0)
 * @param scaleParameter multiply the step by max(eps2, RMS(p)) (HF True)
 * @param relativeStep   use the time-dependent ρ_t instead of lr (HF True)
 * @param warmupInit     ρ_t starts at 1e-6·t (HF False; requires relativeStep)
 */
public record AdafactorConfig(Double lr, double eps1, double eps2, double clipThreshold, double decayRate, Double beta1,
                              double weightDecay, boolean scaleParameter, boolean relativeStep, boolean warmupInit) {

    /** Validates the hyper-parameters with Hugging Face's rules (lr xor relative_step, warmup_init needs relative_step). */
    public AdafactorConfig {
        if (lr != null && relativeStep) {
            throw new IllegalArgumentException("lr=" + lr + " cannot be combined with relative_step=true "
                    + "(Hugging Face: \"Cannot combine manual lr and relative_step=True options\")");
        }
        if (lr == null && !relativeStep) {
            throw new IllegalArgumentException("lr is required when relative_step=false");
        }
        if (lr != null && (!(lr >= 0) || Double.isInfinite(lr))) {
            throw new IllegalArgumentException("lr must be finite and >= 0, got lr=" + lr);
        }
        if (warmupInit && !relativeStep) {
            throw new IllegalArgumentException("warmup_init=true requires relative_step=true");
        }
        if (!(eps1 >= 0) || Double.isInfinite(eps1)) {
            throw new IllegalArgumentException("eps1 must be finite and >= 0, got eps1=" + eps1);
        }
        if (!(eps2 >= 0) || Double.isInfinite(eps2)) {
            throw new IllegalArgumentException("eps2 must be finite and >= 0, got eps2=" + eps2);
        }
        if (!(clipThreshold > 0) || Double.isInfinite(clipThreshold)) {
            throw new IllegalArgumentException("clip_threshold must be finite and > 0, got clip_threshold=" + clipThreshold);
        }
        if (!(decayRate < 0) || Double.isInfinite(decayRate)) {
            throw new IllegalArgumentException("decay_rate must be finite and < 0 (β2_t = 1 - t^decay_rate), got decay_rate="
                    + decayRate);
        }
        if (beta1 != null && !(beta1 >= 0 && beta1 < 1)) {
            throw new IllegalArgumentException("beta1 must be in [0, 1), got beta1=" + beta1);
        }
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new IllegalArgumentException("weight_decay must be finite and >= 0, got weight_decay=" + weightDecay);
        }
    }

    /**
     * The defaults of {@code Adafactor(params)}: lr None, eps (1e-30, 1e-3), clip_threshold 1.0,
     * decay_rate −0.8, beta1 None, weight_decay 0, scale_parameter, relative_step, no warmup_init.
     *
     * @return Hugging Face's defaults
     */
    public static AdafactorConfig hfDefaults() {
        return new AdafactorConfig(null, 1e-30, 1e-3, 1.0, -0.8, null, 0.0, true, true, false);
    }

    /**
     * What the Hugging Face Trainer builds for {@code optim="adafactor"}: the defaults with
     * {@code scale_parameter=False, relative_step=False} and the given learning rate (the
     * rsLoRA paper's DPO recipe: lr 5e-7).
     *
     * @param lr the learning rate ρ_t of every step (finite, ≥ 0)
     * @return the Trainer's config with that learning rate
     * @throws IllegalArgumentException if lr is negative, infinite or NaN
     */
    public static AdafactorConfig trainer(double lr) {
        return new AdafactorConfig(lr, 1e-30, 1e-3, 1.0, -0.8, null, 0.0, false, false, false);
    }

    /**
     * Whether a first moment is kept.
     *
     * @return true when beta1 is set (the state has an exp_avg per parameter)
     */
    public boolean usesFirstMoment() {
        return beta1 != null;
    }

    /**
     * The same config with learning rate {@code newLr} (for schedules; refused with relative_step).
     *
     * @param newLr the learning rate (finite, ≥ 0)
     * @return a copy with lr = newLr
     * @throws IllegalStateException if relative_step is on (it computes its own step size)
     * @throws IllegalArgumentException if newLr is negative, infinite or NaN
     */
    public AdafactorConfig withLr(double newLr) {
        if (relativeStep) {
            throw new IllegalStateException("relative_step=true computes its own step size: no learning rate to set");
        }
        return new AdafactorConfig(newLr, eps1, eps2, clipThreshold, decayRate, beta1, weightDecay, scaleParameter, false,
                warmupInit);
    }

    /**
     * The same config with eps = (e1, e2).
     *
     * @param e1 added to grad² (eps1, finite, ≥ 0)
     * @param e2 lower bound of RMS(p) (eps2, finite, ≥ 0)
     * @return a copy with the new eps
     */
    public AdafactorConfig withEps(double e1, double e2) {
        return new AdafactorConfig(lr, e1, e2, clipThreshold, decayRate, beta1, weightDecay, scaleParameter, relativeStep,
                warmupInit);
    }

    /**
     * The same config with clip_threshold c.
     *
     * @param c the update-RMS threshold (finite, &gt; 0)
     * @return a copy with clip_threshold = c
     */
    public AdafactorConfig withClipThreshold(double c) {
        return new AdafactorConfig(lr, eps1, eps2, c, decayRate, beta1, weightDecay, scaleParameter, relativeStep, warmupInit);
    }

    /**
     * The same config with decay_rate d.
     *
     * @param d the exponent of β2_t = 1 − t^d (finite, &lt; 0)
     * @return a copy with decay_rate = d
     */
    public AdafactorConfig withDecayRate(double d) {
        return new AdafactorConfig(lr, eps1, eps2, clipThreshold, d, beta1, weightDecay, scaleParameter, relativeStep, warmupInit);
    }

    /**
     * The same config with first-moment decay {@code b1}.
     *
     * @param b1 in [0, 1), or null for no first moment (no exp_avg state)
     * @return a copy with beta1 = b1
     */
    public AdafactorConfig withBeta1(Double b1) {
        return new AdafactorConfig(lr, eps1, eps2, clipThreshold, decayRate, b1, weightDecay, scaleParameter, relativeStep,
                warmupInit);
    }

    /**
     * The same config with weight_decay wd.
     *
     * @param wd the decoupled weight decay (finite, ≥ 0; 0 = none)
     * @return a copy with weight_decay = wd
     */
    public AdafactorConfig withWeightDecay(double wd) {
        return new AdafactorConfig(lr, eps1, eps2, clipThreshold, decayRate, beta1, wd, scaleParameter, relativeStep, warmupInit);
    }

    /**
     * The same config with scale_parameter on or off.
     *
     * @param on whether lr_t is multiplied by max(eps2, RMS(p))
     * @return a copy with scale_parameter = on
     */
    public AdafactorConfig withScaleParameter(boolean on) {
        return new AdafactorConfig(lr, eps1, eps2, clipThreshold, decayRate, beta1, weightDecay, on, relativeStep, warmupInit);
    }

    /**
     * Relative step on (lr dropped) or off with learning rate {@code lrWhenOff}; warmup_init is kept
     * only when relative step stays on.
     *
     * @param on        relative step on (lr dropped) or off
     * @param lrWhenOff the learning rate when {@code on} is false (required then, finite, ≥ 0); ignored when on
     * @param warmup    warmup_init (only allowed when {@code on})
     * @return a copy with the new step-size mode
     * @throws IllegalArgumentException if the combination is one Hugging Face refuses
     */

    public AdafactorConfig withRelativeStep(boolean on, Double lrWhenOff, boolean warmup) {
        return new AdafactorConfig(on ? null : lrWhenOff, eps1, eps2, clipThreshold, decayRate, beta1, weightDecay,
                scaleParameter, on, warmup);
    }
}
