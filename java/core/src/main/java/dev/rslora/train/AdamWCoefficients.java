package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;

/**
 * The fp32 scalars of one AdamW step t (t ≥ 1), computed in double from the config and rounded
 * once, as PyTorch does when it passes Python floats to fp32 tensor ops.
 *
 * <pre>
 *   decay      = 1 − lr·λ                       (decoupled weight decay)
 *   oneMinusB1 = 1 − β1,  beta2 = β2,  oneMinusB2 = 1 − β2
 *   stepSize   = lr / (1 − β1^t)                (bias correction 1)
 *   bc2Sqrt    = √(1 − β2^t)                    (bias correction 2)
 *   eps
 * </pre>
 */
record AdamWCoefficients(float decay, float oneMinusB1, float beta2, float oneMinusB2, float stepSize,
                         float bc2Sqrt, float eps) {

    static AdamWCoefficients of(AdamWConfig c, long t) {
        if (t < 1) {
            throw new IllegalArgumentException("AdamW step must be >= 1, got t=" + t);
        }
        double bc1 = 1 - Math.pow(c.beta1(), t);
        double bc2 = 1 - Math.pow(c.beta2(), t);
        return new AdamWCoefficients((float) (1 - c.lr() * c.weightDecay()), (float) (1 - c.beta1()), (float) c.beta2(),
                (float) (1 - c.beta2()), (float) (c.lr() / bc1), (float) Math.sqrt(bc2), (float) c.eps());
    }
}
