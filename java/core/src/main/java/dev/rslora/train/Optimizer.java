package dev.rslora.train;

import java.util.List;

/**
 * What a training loop needs from an optimizer over {@link Parameter}s ({@link AdamW},
 * {@link Adafactor}): a step from the current gradients, the step count, a learning rate that a
 * {@link LrSchedule} can set before each step, and global gradient-norm clipping.
 */
public interface Optimizer extends AutoCloseable {
    /**
     * Takes one step (t ← t + 1) from the current gradients.
     *
     * @throws IllegalStateException if the optimizer is closed, or a parameter's memory was freed (its model closed
     *                               first; the message names the parameter): nothing is updated then
     * @throws IllegalArgumentException if a gradient holds NaN or ±Inf (naming the parameter, element and value):
     *                                  nothing is updated; skip the step, as torch.amp.GradScaler does after an overflow
     */
    void step();

    /**
     * Steps taken so far.
     *
     * @return the number of completed steps, ≥ 0 (the next step is t = stepCount() + 1)
     */
    long stepCount();

    /**
     * Changes the learning rate from the next step on.
     *
     * @param lr the new learning rate (finite, ≥ 0)
     * @throws IllegalArgumentException if lr is negative, infinite or NaN
     * @throws IllegalStateException if the optimizer is closed, or computes its own step size
     *                               (Adafactor's relative_step)
     */
    void setLearningRate(double lr);

    /**
     * The parameters, in order.
     *
     * @return the parameters this optimizer updates, in the order of its state
     */
    List<Parameter> parameters();

    /**
     * The global 2-norm of all gradients (see {@link GradClip}).
     *
     * @return √(Σ g²) over every element of every parameter's gradient (NaN if any is NaN)
     */
    double gradNorm();

    /**
     * Clips all gradients to global 2-norm {@code maxNorm}.
     *
     * @param maxNorm the largest global norm to keep (finite, &gt; 0)
     * @return the global norm before clipping
     * @throws IllegalArgumentException if maxNorm is not finite and &gt; 0
     */

    double clipGradNorm(double maxNorm);

    @Override
    void close();
}
