package dev.rslora.demo;

import dev.rslora.core.Scaling;

/**
 * The record of one training run: per step t = 0 … steps−1, the loss before the update and the
 * global adapter gradient 2-norm (over dA, dB of both layers, before any clipping).
 *
 * @param scaling  LoRA or rsLoRA
 * @param rank     the adapter rank r
 * @param seed     the run's seed
 * @param loss     the MSE loss per step, before that step's update
 * @param gradNorm the global adapter gradient norm per step (same length as loss)
 */
public record RunCurve(Scaling scaling, int rank, long seed, double[] loss, double[] gradNorm) {

    /** Checks that loss and gradNorm have one value per step each. */
    public RunCurve {
        if (loss.length != gradNorm.length) {
            throw new IllegalArgumentException("loss has " + loss.length + " steps, gradNorm " + gradNorm.length);
        }
    }

    /**
     * "lora" or "rslora", as in the JSON and CSV.
     *
     * @return the scaling's lower-case name
     */
    public String scalingName() {
        return label(scaling);
    }

    /**
     * The mean loss over the last {@code window} steps.
     *
     * @param window the number of last steps averaged, in [1, steps]
     * @return their mean loss
     */
    public double finalLoss(int window) {
        if (window < 1 || window > loss.length) {
            throw new IllegalArgumentException("window " + window + " outside [1, " + loss.length + "]");
        }
        double s = 0;
        for (int t = loss.length - window; t < loss.length; t++) {
            s += loss[t];
        }
        return s / window;
    }

    /**
     * The lower-case name of a scaling: "lora" or "rslora".
     *
     * @param s the scaling
     * @return "lora" or "rslora"
     */
    public static String label(Scaling s) {
        return s == Scaling.LORA ? "lora" : "rslora";
    }
}
