package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

/**
 * A backend's prepared copy of a frozen base weight W [d_out, d_in] and optional bias b [d_out]:
 * the packed panels of the {@code cpu} backend, the device copy of the {@code cuda} backend, or
 * just the host tensors for {@code reference}. Created once per layer by
 * {@link Backend#prepare}, closed by its owner. The copies follow the host tensors: {@link Backend#merge}
 * updates both, and a write to W or the bias through its tensor (set, copyFrom, fill, segment(), or a
 * kept segment plus markWritten: see {@link Tensor#version()}) is picked up by the next call, as the
 * reference backend, which reads the host tensors, sees it.
 */
public interface FrozenWeight extends AutoCloseable {
    /**
     * The host W [d_out, d_in]; merge writes into it.
     *
     * @return the caller's W tensor
     */
    Tensor weight();

    /**
     * The host bias [d_out], or null.
     *
     * @return the caller's bias, or null when the layer has none
     */
    Tensor bias();

    /**
     * d_out, the rows of W [d_out, d_in].
     *
     * @return the output width
     */
    default int dOut() {
        return (int) weight().dim(0);
    }

    /**
     * d_in, the columns of W [d_out, d_in].
     *
     * @return the input width
     */

    default int dIn() {
        return (int) weight().dim(1);
    }

    @Override
    void close();
}
