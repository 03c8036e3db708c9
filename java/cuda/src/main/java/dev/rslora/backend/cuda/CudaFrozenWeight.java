package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.tensor.Tensor;

/**
 * The cuda backend's prepared frozen weight: W [d_out, d_in] and bias [d_out] uploaded to the
 * device (in their own dtypes, converted copies on demand), plus the host tensors that merge
 * writes back into. Owned by the layer that prepared it; {@link #close()} frees the device copies.
 * A write to the host W or bias through its tensor is uploaded again by the next call ({@link #refresh}).
 */
final class CudaFrozenWeight implements FrozenWeight {
    private final CudaBackend owner;
    private final ResidentTensor weight;
    private final ResidentTensor bias;
    private boolean closed;

    CudaFrozenWeight(CudaBackend owner, ResidentTensor weight, ResidentTensor bias) {
        this.owner = owner;
        this.weight = weight;
        this.bias = bias;
    }

    CudaBackend owner() {
        return owner;
    }

    ResidentTensor residentWeight() {
        check();
        return weight;
    }

    /** Null when the layer has no bias. */
    ResidentTensor residentBias() {
        check();
        return bias;
    }

    @Override
    public Tensor weight() {
        return weight.host();
    }

    @Override
    public Tensor bias() {
        return bias == null ? null : bias.host();
    }

    /** Uploads W and the bias again where the caller wrote them since the last upload (see ResidentTensor#refresh). */
    void refresh(CudaContext ctx) {
        check();
        weight.refresh(ctx);
        if (bias != null) {
            bias.refresh(ctx);
        }
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("frozen weight " + weight.host().shapeString() + " is closed");
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        owner.release(this);
    }

    /** Frees the device copies; called by the backend under its lock. */
    void freeDeviceCopies() {
        weight.close();
        if (bias != null) {
            bias.close();
        }
    }
}
