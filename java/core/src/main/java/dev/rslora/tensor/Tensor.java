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

    /**
     * A 2-D tensor [rows.length, rows[0].length] of {@code dtype} in {@code arena} holding
     * {@code rows} (rounded to nearest even for BF16/F16): for callers whose data lives in heap
     * arrays. Every row must have the same length ≥ 1.
     */
    public static Tensor fromMatrix(Arena arena, DType dtype, float[][] rows) {
        long[] shape = matrixShape("rows", rows);
        Tensor t = allocate(arena, dtype, shape);
        t.copyFrom(rows);
        return t;
    }

    /** The shape [rows, cols] of a rectangular {@code float[][]}; IllegalArgumentException naming the ragged row. */
    private static long[] matrixShape(String what, float[][] rows) {
        if (rows == null || rows.length == 0 || rows[0] == null || rows[0].length == 0) {
            throw new IllegalArgumentException(what + " must be a non-empty float[rows][cols]");
        }
        for (int i = 1; i < rows.length; i++) {
            if (rows[i] == null || rows[i].length != rows[0].length) {
                throw new IllegalArgumentException(what + " is ragged: row " + i + " has " + (rows[i] == null ? "null" : rows[i].length + " values")
                        + " but row 0 has " + rows[0].length);
            }
        }
        return new long[] {rows.length, rows[0].length};
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

    /** The element type. */
    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape. */
    public long[] shape() {
        return shape.clone();
    }

    /** The number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** The size of dimension {@code axis}. */
    public long dim(int axis) {
        return shape[axis];
    }

    /** The number of elements. */
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

    /** Stores {@code v} at (row, col) of a 2-D tensor, rounded to this dtype. */
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

    /**
     * Copies {@code values} (row-major, fp32) into this tensor, rounded to its dtype; the length
     * must equal {@link #numel()}.
     */
    public void copyFrom(float[] values) {
        if (values.length != numel) {
            throw new IllegalArgumentException(values.length + " values for tensor " + shapeString() + " of " + numel + " elements");
        }
        if (dtype == DType.F32) {
            MemorySegment.copy(values, 0, data, DType.LE_FLOAT, 0, values.length);
            return;
        }
        for (int i = 0; i < values.length; i++) {
            set(i, values[i]);
        }
    }

    /** Copies the rows of {@code rows} into this 2-D tensor of the same shape, rounded to its dtype. */
    public void copyFrom(float[][] rows) {
        long[] shape2 = matrixShape("rows", rows);
        if (rank() != 2 || !sameShape(shape2)) {
            throw new IllegalArgumentException("float[" + shape2[0] + "][" + shape2[1] + "] does not fit tensor " + shapeString());
        }
        int cols = rows[0].length;
        for (int r = 0; r < rows.length; r++) {
            if (dtype == DType.F32) {
                MemorySegment.copy(rows[r], 0, data, DType.LE_FLOAT, (long) r * cols * 4, cols);
            } else {
                for (int c = 0; c < cols; c++) {
                    set((long) r * cols + c, rows[r][c]);
                }
            }
        }
    }

    /** A 2-D tensor's values as fp32 rows {@code float[dim(0)][dim(1)]}: for heap-array callers and small tensors. */
    public float[][] toMatrix() {
        if (rank() != 2 || shape[0] > Integer.MAX_VALUE - 8 || shape[1] > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("toMatrix needs a 2-D tensor with fewer than 2^31 rows and columns, got " + shapeString());
        }
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[][] out = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            if (dtype == DType.F32) {
                MemorySegment.copy(data, DType.LE_FLOAT, (long) r * cols * 4, out[r], 0, cols);
            } else {
                for (int c = 0; c < cols; c++) {
                    out[r][c] = get((long) r * cols + c);
                }
            }
        }
        return out;
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
        if (dtype == DType.F32) {
            MemorySegment.copy(data, DType.LE_FLOAT, 0, out, 0, out.length);
            return out;
        }
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
