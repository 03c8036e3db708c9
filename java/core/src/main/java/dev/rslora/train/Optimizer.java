package dev.rslora.train;

import java.util.List;

/**
 * What a training loop needs from an optimizer over {@link Parameter}s ({@link AdamW},
 * {@link Adafactor}): a step from the current gradients, the step count, a learning rate that a
 * {@link LrSchedule} can set before each step, and global gradient-norm clipping.
 */
public interface Optimizer extends AutoCloseable {
    /** Takes one step (t ← t + 1) from the current gradients. */
    void step();

    /** Steps taken so far (the next step is t = stepCount() + 1). */
    long stepCount();

    /** Changes the learning rate from the next step on. */
    void setLearningRate(double lr);

    /** The parameters, in order. */
    List<Parameter> parameters();

    /** The global 2-norm of all gradients (see {@link GradClip}). */
    double gradNorm();

    /** Clips all gradients to global 2-norm {@code maxNorm}; returns the norm before clipping. */
    double clipGradNorm(double maxNorm);

    @Override
    void close();
}
