package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.util.Arrays;

/**
 * A row-major tensor in device memory of a {@link CudaBackend}'s context: dtype, shape and one
 * owned {@link DeviceBuffer}. Created by {@link CudaBackend#allocate} / {@link CudaBackend#upload};
 * {@link #close()} returns the memory to the context's caching allocator. A tensor captured into a
 * {@link CudaGraph}, or a parameter or gradient of an open {@link CudaAdamW} or {@link CudaAdafactor},
 * is pinned: it cannot be closed until the graph or optimizer is (else its block would go back to the
 * allocator, be handed out again, and the replay or step would write into its new owner's memory).
 */
public final class DeviceTensor implements AutoCloseable {
    private final CudaBackend backend;
    private final DType dtype;
    private final long[] shape;
    private final long numel;
    private final DeviceBuffer buffer;
    private int pins;

    DeviceTensor(CudaBackend backend, DType dtype, long[] shape, DeviceBuffer buffer) {
        this.backend = backend;
        this.dtype = dtype;
        this.shape = shape.clone();
        long n = 1;
        for (long d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException("device tensor dimensions must be >= 1: " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        this.numel = n;
        this.buffer = buffer;
    }

    /**
     * The element type.
     *
     * @return F32, BF16 or F16
     */
    public DType dtype() {
        return dtype;
    }

    /**
     * The shape.
     *
     * @return a copy of the dimensions (each ≥ 1)
     */
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The size of dimension {@code axis}.
     *
     * @param axis in [0, rank)
     * @return that dimension
     */
    public long dim(int axis) {
        return shape[axis];
    }

    /**
     * The number of elements.
     *
     * @return the product of the dimensions
     */
    public long numel() {
        return numel;
    }

    /**
     * The shape as text, for messages.
     *
     * @return "[d0, d1, ...]"
     */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    CudaBackend backend() {
        return backend;
    }

    DeviceBuffer buffer() {
        return buffer;
    }

    /**
     * Copies (and converts) a host tensor of the same shape into this tensor; complete on return.
     *
     * @param host a host tensor of this shape, any dtype (converted, rounded to nearest even)
     */
    public void copyFrom(Tensor host) {
        CudaBackend.usableHost("copyFrom", host);
        requireSameShape(host);
        backend.copyIn(host, this);
    }

    /**
     * Copies (and converts) this tensor into a host tensor of the same shape; complete on return.
     *
     * @param host receives this tensor's values; same shape, any dtype
     */
    public void copyTo(Tensor host) {
        CudaBackend.usableHost("copyTo", host);
        requireSameShape(host);
        backend.copyOut(this, host);
    }

    private void requireSameShape(Tensor host) {
        if (!host.sameShape(shape)) {
            throw new IllegalArgumentException("host tensor " + host.shapeString() + " does not match device tensor " + shapeString());
        }
    }

    /** Pins this tensor for a graph or optimizer that holds its address; {@link #close()} is refused until unpinned. */
    synchronized void pin() {
        pins++;
    }

    synchronized void unpin() {
        pins--;
    }

    /** The open graphs and optimizers that hold this tensor (for tests). */
    synchronized int pins() {
        return pins;
    }

    /**
     * Returns the memory to the caching allocator.
     *
     * @throws IllegalStateException if an open {@link CudaGraph}, {@link CudaAdamW} or {@link CudaAdafactor} holds this tensor
     */
    @Override
    public void close() {
        synchronized (this) {
            if (pins > 0) {
                throw new IllegalStateException("device tensor " + shapeString() + " " + dtype + " is used by " + pins
                        + " open captured CUDA graph(s) or CUDA optimizer(s): close them first");
            }
        }
        backend.free(buffer);
    }

    @Override
    public String toString() {
        return "DeviceTensor" + shapeString() + " " + dtype;
    }
}
