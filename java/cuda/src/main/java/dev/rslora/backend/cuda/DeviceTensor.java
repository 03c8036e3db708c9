package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.util.Arrays;

/**
 * A row-major tensor in device memory of a {@link CudaBackend}'s context: dtype, shape and one
 * owned {@link DeviceBuffer}. Created by {@link CudaBackend#allocate} / {@link CudaBackend#upload};
 * {@link #close()} returns the memory to the context's caching allocator. A tensor captured into a
 * {@link CudaGraph} cannot be closed until the graph is.
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

    public DType dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    public long dim(int axis) {
        return shape[axis];
    }

    public long numel() {
        return numel;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    CudaBackend backend() {
        return backend;
    }

    DeviceBuffer buffer() {
        return buffer;
    }

    /** Copies (and converts) a host tensor of the same shape into this tensor; complete on return. */
    public void copyFrom(Tensor host) {
        requireSameShape(host);
        backend.copyIn(host, this);
    }

    /** Copies (and converts) this tensor into a host tensor of the same shape; complete on return. */
    public void copyTo(Tensor host) {
        requireSameShape(host);
        backend.copyOut(this, host);
    }

    private void requireSameShape(Tensor host) {
        if (!host.sameShape(shape)) {
            throw new IllegalArgumentException("host tensor " + host.shapeString() + " does not match device tensor " + shapeString());
        }
    }

    synchronized void pin() {
        pins++;
    }

    synchronized void unpin() {
        pins--;
    }

    @Override
    public void close() {
        synchronized (this) {
            if (pins > 0) {
                throw new IllegalStateException("device tensor " + shapeString() + " is used by " + pins
                        + " captured CUDA graph(s): close them first");
            }
        }
        backend.free(buffer);
    }

    @Override
    public String toString() {
        return "DeviceTensor" + shapeString() + " " + dtype;
    }
}
