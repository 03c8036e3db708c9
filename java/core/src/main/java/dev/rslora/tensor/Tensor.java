package dev.rslora.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * A host tensor: a row-major, little-endian view of off-heap memory with a dtype and a shape.
 *
 * <p>A tensor never owns memory; the {@link Arena} that allocated (or memory-mapped) its segment
 * does, and closing that arena invalidates the tensor. Use a shared arena
 * ({@link Arena#ofShared()}) for tensors that the multi-threaded {@code cpu} backend touches.
 *
 * <p>Version stamp: {@link #version()} changes whenever the contents may have changed, so that a
 * consumer can cache something derived from them (the {@code cpu} backend keeps its packed copies
 * of the adapter A and B per layer and repacks when their stamps move). Every write path bumps it:
 * {@link #set}, {@link #fill}, {@link #copyFrom}, and {@link #segment()}, which hands out write
 * access and therefore counts as a write each time it is called. Readers that do not write use
 * {@link #readOnlySegment()}, which does not bump it. Two rules follow: code that keeps a segment
 * from {@code segment()} and writes through it later calls {@link #markWritten()} (or
 * {@code segment()} again) after writing; and a second tensor {@link #wrap}ped around the same
 * memory has its own stamp, so writes through it are not seen in this one's.
 */
public final class Tensor {
    private final DType dtype;
    private final long[] shape;
    private final long numel;
    private final MemorySegment data;
    private final MemorySegment readOnly;
    /** Bumped by every write path (a plain field: it only has to differ from a value read earlier). */
    private long version;

    private Tensor(DType dtype, long[] shape, MemorySegment data) {
        this.dtype = Objects.requireNonNull(dtype, "dtype");
        this.shape = shape.clone();
        this.numel = numel(this.shape);
        long need = Math.multiplyExact(numel, (long) dtype.byteSize());
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("tensor of shape " + Arrays.toString(shape) + " " + dtype
                    + " needs " + need + " bytes but the segment holds " + data.byteSize());
        }
        this.data = data;
        this.readOnly = data.asReadOnly();
    }

    /** Allocates a zero-filled tensor in {@code arena}. */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long bytes = Math.multiplyExact(numel(shape), (long) dtype.byteSize());
        return new Tensor(dtype, shape, arena.allocate(bytes, 64));
    }

    /** Views existing memory (for example a memory-mapped safetensors region) without copying. */
    public static Tensor wrap(MemorySegment data, DType dtype, long... shape) {
        return new Tensor(dtype, shape, data);
    }

    /** Copies fp32 values into a new tensor of {@code dtype} (rounded to nearest even). For tests and setup, not hot paths. */
    public static Tensor of(Arena arena, DType dtype, float[] values, long... shape) {
        Tensor t = allocate(arena, dtype, shape);
        if (values.length != t.numel) {
            throw new IllegalArgumentException(values.length + " values for shape " + Arrays.toString(shape));
        }
        for (int i = 0; i < values.length; i++) {
            t.set(i, values[i]);
        }
        return t;
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("negative dimension " + shape[i] + " at axis " + i + " in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, shape[i]);
        }
        return n;
    }

    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int axis) {
        return shape[axis];
    }

    public long numel() {
        return numel;
    }

    /**
     * The tensor's memory, for reading and writing. Counts as a write: every call bumps
     * {@link #version()}. Use {@link #readOnlySegment()} to read.
     */
    public MemorySegment segment() {
        version++;
        return data;
    }

    /** The tensor's memory as a read-only view (writes through it throw); does not bump the version. */
    public MemorySegment readOnlySegment() {
        return readOnly;
    }

    /**
     * A stamp that changes whenever this tensor's contents may have changed through it (see the
     * class comment): equal stamps at two moments mean no write path of this tensor ran between them.
     */
    public long version() {
        return version;
    }

    /** Records a write made through a segment obtained earlier from {@link #segment()}: bumps {@link #version()}. */
    public void markWritten() {
        version++;
    }

    /** Element {@code i} of the flattened tensor, widened to fp32. */
    public float get(long i) {
        return dtype.load(data, i);
    }

    /** Element (row, col) of a 2-D tensor, widened to fp32. */
    public float get(long row, long col) {
        return dtype.load(data, row * shape[1] + col);
    }

    /** Stores {@code v} at flat index {@code i}, rounded to this dtype. */
    public void set(long i, float v) {
        version++;
        dtype.store(data, i, v);
    }

    public void set(long row, long col, float v) {
        version++;
        dtype.store(data, row * shape[1] + col, v);
    }

    /** Sets every element to {@code v}. */
    public void fill(float v) {
        version++;
        for (long i = 0; i < numel; i++) {
            dtype.store(data, i, v);
        }
    }

    /** Copies {@code src} into this tensor, converting the dtype; shapes must be equal. */
    public void copyFrom(Tensor src) {
        if (!Arrays.equals(shape, src.shape)) {
            throw new IllegalArgumentException("copy from shape " + src.shapeString() + " into " + shapeString());
        }
        version++;
        if (src.dtype == dtype) {
            data.copyFrom(src.data);
            return;
        }
        for (long i = 0; i < numel; i++) {
            dtype.store(data, i, src.dtype.load(src.data, i));
        }
    }

    /** A new tensor in {@code arena} holding these values converted to {@code target}. */
    public Tensor to(Arena arena, DType target) {
        Tensor t = allocate(arena, target, shape);
        t.copyFrom(this);
        return t;
    }

    /** All values as fp32 in a heap array: for tests and small tensors, never on hot paths. */
    public float[] toFloatArray() {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + shapeString() + " too large for a float[]");
        }
        float[] out = new float[(int) numel];
        for (int i = 0; i < out.length; i++) {
            out[i] = get(i);
        }
        return out;
    }

    /** "[d0, d1, ...]". */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    /** True when both tensors have the same shape. */
    public boolean sameShape(long... other) {
        return Arrays.equals(shape, other);
    }

    @Override
    public String toString() {
        return "Tensor" + shapeString() + " " + dtype;
    }
}
