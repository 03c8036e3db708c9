package dev.rslora.optim;

/**
 * AdamW hyper-parameters, with the meaning and defaults of {@code torch.optim.AdamW}. A value type
 * in {@code core} (with {@link AdamWState}) so that the CPU optimizer ({@code dev.rslora.train.AdamW})
 * and the fused CUDA one ({@code dev.rslora.backend.cuda.CudaAdamW}) share it without a backend
 * depending on the training layer.
 *
 * @param lr          learning rate (≥ 0)
 * @param beta1       first-moment decay β1 in [0, 1)
 * @param beta2       second-moment decay β2 in [0, 1)
 * @param eps         added to the bias-corrected √v (≥ 0): {@code denom = √v/√(1−β2^t) + eps}
 * @param weightDecay decoupled weight decay λ (≥ 0): {@code p ← p·(1 − lr·λ)} before the Adam step
 */
public record AdamWConfig(double lr, double beta1, double beta2, double eps, double weightDecay) {

    /** Checks every hyper-parameter (IllegalArgumentException naming the bad value). */
    public AdamWConfig {
        if (!(lr >= 0) || Double.isInfinite(lr)) {
            throw new IllegalArgumentException("lr must be finite and >= 0, got lr=" + lr);
        }
        if (!(beta1 >= 0 && beta1 < 1)) {
            throw new IllegalArgumentException("beta1 must be in [0, 1), got beta1=" + beta1);
        }
        if (!(beta2 >= 0 && beta2 < 1)) {
            throw new IllegalArgumentException("beta2 must be in [0, 1), got beta2=" + beta2);
        }
        if (!(eps >= 0) || Double.isInfinite(eps)) {
            throw new IllegalArgumentException("eps must be finite and >= 0, got eps=" + eps);
        }
        if (!(weightDecay >= 0) || Double.isInfinite(weightDecay)) {
            throw new IllegalArgumentException("weight_decay must be finite and >= 0, got weight_decay=" + weightDecay);
        }
    }

    /**
     * PyTorch's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01.
     *
     * @return {@code torch.optim.AdamW}'s defaults
     */
    public static AdamWConfig torchDefaults() {
        return new AdamWConfig(1e-3, 0.9, 0.999, 1e-8, 0.01);
    }

    /**
     * This config with learning rate {@code newLr}.
     *
     * @param newLr the learning rate (finite, ≥ 0)
     * @return a copy with lr = newLr
     * @throws IllegalArgumentException if newLr is negative, infinite or NaN
     */
    public AdamWConfig withLr(double newLr) {
        return new AdamWConfig(newLr, beta1, beta2, eps, weightDecay);
    }

    /**
     * This config with decoupled weight decay {@code wd}.
     *
     * @param wd λ in p ← p·(1 − lr·λ) (finite, ≥ 0; 0 = none)
     * @return a copy with weightDecay = wd
     */
    public AdamWConfig withWeightDecay(double wd) {
        return new AdamWConfig(lr, beta1, beta2, eps, wd);
    }

    /**
     * This config with eps {@code newEps}.
     *
     * @param newEps added to the bias-corrected √v (finite, ≥ 0)
     * @return a copy with eps = newEps
     */
    public AdamWConfig withEps(double newEps) {
        return new AdamWConfig(lr, beta1, beta2, newEps, weightDecay);
    }

    /**
     * This config with β1 = {@code b1}, β2 = {@code b2}.
     *
     * @param b1 first-moment decay in [0, 1)
     * @param b2 second-moment decay in [0, 1)
     * @return a copy with the new betas
     */

    public AdamWConfig withBetas(double b1, double b2) {
        return new AdamWConfig(lr, b1, b2, eps, weightDecay);
    }
}
