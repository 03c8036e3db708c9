package dev.rslora.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Objects;

/**
 * A host tensor: a row-major, little-endian view of off-heap memory with a dtype and a shape.
 *
 * <p>A tensor never owns memory; the {@link Arena} that allocated (or memory-mapped) its segment
 * does, and closing that arena invalidates the tensor: its accessors then throw an
 * IllegalStateException naming it (a layer's A, B and gradients die with {@code LoraLinear.close()},
 * a model's with {@code LoraModel.close()}). Use a shared arena
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
    /**
     * The most elements of a Java array (Integer.MAX_VALUE − 8, as the JDK's growable collections
     * assume): the limit of the heap-array views ({@link #toFloatArray}, {@link #toMatrix}) and of
     * every heap buffer the library sizes from a tensor's shape.
     */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 8;
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
        long need = byteSize(this.shape, numel, dtype);
        if (data.byteSize() != need) {
            throw new IllegalArgumentException("tensor of shape " + Arrays.toString(shape) + " " + dtype
                    + " needs " + need + " bytes but the segment holds " + data.byteSize());
        }
        this.data = data;
        this.readOnly = data.asReadOnly();
    }

    /**
     * Allocates a zero-filled tensor in {@code arena}.
     *
     * @param arena the arena that owns the memory (64-byte aligned); the tensor dies with it
     * @param dtype the element type
     * @param shape the dimensions, each ≥ 0 (none: a scalar of one element)
     * @return the new tensor, all elements 0
     * @throws IllegalArgumentException if a dimension is negative, or the byte size overflows a long (the message
     *                                  names the shape)
     */
    public static Tensor allocate(Arena arena, DType dtype, long... shape) {
        long bytes = byteSize(shape, numel(shape), dtype);
        return new Tensor(dtype, shape, arena.allocate(bytes, 64));
    }

    /**
     * Views existing memory (for example a memory-mapped safetensors region) without copying.
     *
     * @param data  the memory, little-endian and row-major; its size must be exactly numel·dtype bytes
     * @param dtype the element type
     * @param shape the dimensions, each ≥ 0
     * @return a tensor over {@code data} (writes go to that memory; a read-only segment makes writes throw)
     * @throws IllegalArgumentException if the segment's size does not match the shape and dtype, a dimension is
     *                                  negative, or the byte size overflows a long
     */
    public static Tensor wrap(MemorySegment data, DType dtype, long... shape) {
        return new Tensor(dtype, shape, data);
    }

    /**
     * Copies fp32 values into a new tensor of {@code dtype} (rounded to nearest even). For tests and setup, not hot paths.
     *
     * @param arena  the arena that owns the memory
     * @param dtype  the element type
     * @param values the elements in row-major order; exactly numel(shape) of them
     * @param shape  the dimensions, each ≥ 0
     * @return the new tensor
     * @throws IllegalArgumentException if the number of values does not match the shape (checked before allocating)
     */
    public static Tensor of(Arena arena, DType dtype, float[] values, long... shape) {
        if (values.length != numel(shape)) {
            throw new IllegalArgumentException(values.length + " values for shape " + Arrays.toString(shape));
        }
        Tensor t = allocate(arena, dtype, shape);
        for (int i = 0; i < values.length; i++) {
            t.set(i, values[i]);
        }
        return t;
    }

    /**
     * A 2-D tensor [rows.length, rows[0].length] of {@code dtype} in {@code arena} holding
     * {@code rows} (rounded to nearest even for BF16/F16): for callers whose data lives in heap
     * arrays. Every row must have the same length ≥ 1.
     *
     * @param arena the arena that owns the memory
     * @param dtype the element type
     * @param rows  the values, {@code rows[r][c]} at (r, c); at least one row of at least one value
     * @return a new [rows.length, rows[0].length] tensor
     * @throws IllegalArgumentException if rows is empty or ragged (the message names the row)
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

    /**
     * The product of the dimensions; IllegalArgumentException naming the shape for a negative dimension or a
     * product past a long (a shape with a 0 has 0 elements, however large the others).
     */
    private static long numel(long[] shape) {
        boolean empty = false;
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] < 0) {
                throw new IllegalArgumentException("negative dimension " + shape[i] + " at axis " + i + " in shape " + Arrays.toString(shape));
            }
            empty |= shape[i] == 0;
        }
        if (empty) {
            return 0;
        }
        long n = 1;
        for (long d : shape) {
            if (n > Long.MAX_VALUE / d) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has more than " + Long.MAX_VALUE
                        + " elements (the product overflows a signed 64-bit integer)");
            }
            n *= d;
        }
        return n;
    }

    /** numel·dtype bytes; IllegalArgumentException naming the shape when that overflows a long. */
    private static long byteSize(long[] shape, long numel, DType dtype) {
        if (numel > Long.MAX_VALUE / dtype.byteSize()) {
            throw new IllegalArgumentException("tensor of shape " + Arrays.toString(shape) + " " + dtype + ": " + numel
                    + " elements × " + dtype.byteSize() + " bytes overflows a signed 64-bit integer");
        }
        return numel * dtype.byteSize();
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
     * @return a copy of the dimensions (the caller may modify it)
     */
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The number of dimensions.
     *
     * @return the rank, ≥ 0 (0 for a scalar)
     */
    public int rank() {
        return shape.length;
    }

    /**
     * The size of dimension {@code axis}.
     *
     * @param axis in [0, rank())
     * @return that dimension
     * @throws ArrayIndexOutOfBoundsException if axis is outside [0, rank()), naming it and the shape
     */
    public long dim(int axis) {
        if (axis < 0 || axis >= shape.length) {
            throw new ArrayIndexOutOfBoundsException("axis " + axis + " of the " + shape.length + "-D tensor " + shapeString()
                    + ": axes are 0.." + (shape.length - 1));
        }
        return shape[axis];
    }

    /**
     * The number of elements.
     *
     * @return the product of the dimensions (1 for a scalar, 0 if a dimension is 0)
     */
    public long numel() {
        return numel;
    }

    /**
     * The tensor's memory, for reading and writing. Counts as a write: every call bumps
     * {@link #version()}. Use {@link #readOnlySegment()} to read.
     *
     * @return the writable segment of numel·dtype bytes (little-endian, row-major)
     */
    public MemorySegment segment() {
        version++;
        return data;
    }

    /**
     * The tensor's memory as a read-only view (writes through it throw); does not bump the version.
     *
     * @return a read-only view of the same numel·dtype bytes
     */
    public MemorySegment readOnlySegment() {
        return readOnly;
    }

    /**
     * A stamp that changes whenever this tensor's contents may have changed through it (see the
     * class comment): equal stamps at two moments mean no write path of this tensor ran between them.
     *
     * @return the current stamp; compare it only with earlier stamps of this tensor
     */
    public long version() {
        return version;
    }

    /**
     * Whether the memory is read-only (a tensor {@link #wrap}ped around a read-only segment, such as a
     * memory-mapped safetensors file's): every write path then throws. Does not bump the version.
     *
     * @return true when writes through this tensor are impossible
     */
    public boolean isReadOnly() {
        return data.isReadOnly();
    }

    /** Records a write made through a segment obtained earlier from {@link #segment()}: bumps {@link #version()}. */
    public void markWritten() {
        version++;
    }

    /**
     * Element {@code i} of the flattened tensor, widened to fp32.
     *
     * @param i the row-major flat index, in [0, numel())
     * @return the element, exactly (BF16 and F16 widen without rounding)
     * @throws IndexOutOfBoundsException if i is outside the tensor
     * @throws IllegalStateException     if the arena that owns the memory was closed (naming the tensor), as for
     *                                   every accessor that reads or writes the elements
     */
    public float get(long i) {
        try {
            return dtype.load(data, i);
        } catch (IllegalStateException e) {
            throw closed(e, "get");
        }
    }

    /**
     * Element (row, col) of a 2-D tensor, widened to fp32.
     *
     * @param row in [0, dim(0))
     * @param col in [0, dim(1)); not checked against the row length (an out-of-range col reads the next row)
     * @return the element, exactly
     * @throws IllegalStateException if the tensor is not 2-D, or the arena that owns its memory was closed
     */
    public float get(long row, long col) {
        long cols = cols2d("get");
        try {
            return dtype.load(data, row * cols + col);
        } catch (IllegalStateException e) {
            throw closed(e, "get");
        }
    }

    /**
     * Stores {@code v} at flat index {@code i}, rounded to this dtype.
     *
     * @param i the row-major flat index, in [0, numel())
     * @param v the value; rounded to nearest even for BF16/F16
     * @throws IllegalStateException if the arena that owns the memory was closed (naming the tensor)
     */
    public void set(long i, float v) {
        version++;
        try {
            dtype.store(data, i, v);
        } catch (IllegalStateException e) {
            throw closed(e, "set");
        }
    }

    /**
     * Stores {@code v} at (row, col) of a 2-D tensor, rounded to this dtype.
     *
     * @param row in [0, dim(0))
     * @param col in [0, dim(1)); not checked against the row length
     * @param v   the value; rounded to nearest even for BF16/F16
     * @throws IllegalStateException if the tensor is not 2-D, or the arena that owns its memory was closed
     */
    public void set(long row, long col, float v) {
        long cols = cols2d("set");
        version++;
        try {
            dtype.store(data, row * cols + col, v);
        } catch (IllegalStateException e) {
            throw closed(e, "set");
        }
    }

    /** dim(1) of a 2-D tensor, for the (row, col) accessors; any other rank would read the wrong element or none. */
    private long cols2d(String op) {
        if (shape.length != 2) {
            throw new IllegalStateException(op + "(row, col) needs a 2-D tensor, got " + shapeString() + " (use the flat index)");
        }
        return shape[1];
    }

    /**
     * Sets every element to {@code v}.
     *
     * @param v the value, rounded once to this dtype
     */
    public void fill(float v) {
        version++;
        try {
            for (long i = 0; i < numel; i++) {
                dtype.store(data, i, v);
            }
        } catch (IllegalStateException e) {
            throw closed(e, "fill");
        }
    }

    /**
     * Copies {@code src} into this tensor, converting the dtype; shapes must be equal.
     *
     * @param src the source, any dtype (narrowing rounds to nearest even); of the same dtype it may
     *            share memory with this tensor (copied as if through a temporary), of another dtype it may not
     * @throws IllegalArgumentException if the shapes differ, or src of another dtype shares memory with this tensor
     */
    public void copyFrom(Tensor src) {
        // before the overlap check: the memory of a closed tensor may have been handed out again (to this one)
        if (!isAlive()) {
            throw closed(null, "copyFrom");
        }
        if (!src.isAlive()) {
            throw src.closed(null, "copyFrom (the source)");
        }
        if (!Arrays.equals(shape, src.shape)) {
            throw new IllegalArgumentException("copy from shape " + src.shapeString() + " into " + shapeString());
        }
        if (src.dtype != dtype && overlaps(src)) {
            // element i of src and element i of this sit at different byte offsets: converting in place
            // would overwrite source elements before they are read
            throw new IllegalArgumentException("copy from " + src + " into " + this + ": the source shares memory with the"
                    + " destination, which a dtype conversion cannot copy in place (convert into a separate tensor)");
        }
        version++;
        try {
            if (src.dtype == dtype) {
                data.copyFrom(src.data);
                return;
            }
            for (long i = 0; i < numel; i++) {
                dtype.store(data, i, src.dtype.load(src.data, i));
            }
        } catch (IllegalStateException e) {
            throw isAlive() ? src.closed(e, "copyFrom (the source)") : closed(e, "copyFrom");
        }
    }

    /**
     * Copies {@code values} (row-major, fp32) into this tensor, rounded to its dtype; the length
     * must equal {@link #numel()}.
     *
     * @param values the elements in row-major order
     * @throws IllegalArgumentException if values.length ≠ numel()
     */
    public void copyFrom(float[] values) {
        if (values.length != numel) {
            throw new IllegalArgumentException(values.length + " values for tensor " + shapeString() + " of " + numel + " elements");
        }
        if (dtype == DType.F32) {
            version++;
            try {
                MemorySegment.copy(values, 0, data, DType.LE_FLOAT, 0, values.length);
            } catch (IllegalStateException e) {
                throw closed(e, "copyFrom");
            }
            return;
        }
        for (int i = 0; i < values.length; i++) {
            set(i, values[i]);
        }
    }

    /**
     * Copies the rows of {@code rows} into this 2-D tensor of the same shape, rounded to its dtype.
     *
     * @param rows {@code rows[r][c]} goes to (r, c); rectangular, [dim(0)][dim(1)]
     * @throws IllegalArgumentException if rows is empty, ragged, or does not match this 2-D shape
     */
    public void copyFrom(float[][] rows) {
        long[] shape2 = matrixShape("rows", rows);
        if (rank() != 2 || !sameShape(shape2)) {
            throw new IllegalArgumentException("float[" + shape2[0] + "][" + shape2[1] + "] does not fit tensor " + shapeString());
        }
        int cols = rows[0].length;
        version++;
        for (int r = 0; r < rows.length; r++) {
            if (dtype == DType.F32) {
                try {
                    MemorySegment.copy(rows[r], 0, data, DType.LE_FLOAT, (long) r * cols * 4, cols);
                } catch (IllegalStateException e) {
                    throw closed(e, "copyFrom");
                }
            } else {
                for (int c = 0; c < cols; c++) {
                    set((long) r * cols + c, rows[r][c]);
                }
            }
        }
    }

    /**
     * A 2-D tensor's values as fp32 rows {@code float[dim(0)][dim(1)]}: for heap-array callers and small tensors.
     *
     * @return a new array, {@code [r][c]} = element (r, c), widened exactly
     * @throws IllegalStateException if the tensor is not 2-D or a dimension does not fit an array
     */
    public float[][] toMatrix() {
        if (rank() != 2 || shape[0] > MAX_ARRAY || shape[1] > MAX_ARRAY) {
            throw new IllegalStateException("toMatrix needs a 2-D tensor of at most " + MAX_ARRAY
                    + " rows and columns (a Java array's limit), got " + shapeString());
        }
        int rows = (int) shape[0];
        int cols = (int) shape[1];
        float[][] out = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            if (dtype == DType.F32) {
                try {
                    MemorySegment.copy(data, DType.LE_FLOAT, (long) r * cols * 4, out[r], 0, cols);
                } catch (IllegalStateException e) {
                    throw closed(e, "toMatrix");
                }
            } else {
                for (int c = 0; c < cols; c++) {
                    out[r][c] = get((long) r * cols + c);
                }
            }
        }
        return out;
    }

    /**
     * A new tensor in {@code arena} holding these values converted to {@code target}.
     *
     * @param arena  the arena that owns the new memory
     * @param target the new dtype (narrowing rounds to nearest even)
     * @return a copy of the same shape
     */
    public Tensor to(Arena arena, DType target) {
        Tensor t = allocate(arena, target, shape);
        t.copyFrom(this);
        return t;
    }

    /**
     * All values as fp32 in a heap array: for tests and small tensors, never on hot paths.
     *
     * @return a new array of numel() values in row-major order, widened exactly
     * @throws IllegalStateException if the tensor has too many elements for an array
     */
    public float[] toFloatArray() {
        if (numel > MAX_ARRAY) {
            throw new IllegalStateException("tensor " + shapeString() + " has " + numel + " elements, more than a float[] holds ("
                    + MAX_ARRAY + ")");
        }
        float[] out = new float[(int) numel];
        if (dtype == DType.F32) {
            try {
                MemorySegment.copy(data, DType.LE_FLOAT, 0, out, 0, out.length);
            } catch (IllegalStateException e) {
                throw closed(e, "toFloatArray");
            }
            return out;
        }
        for (int i = 0; i < out.length; i++) {
            out[i] = get(i);
        }
        return out;
    }

    /** Whether the arena that owns this tensor's memory is still open. */
    private boolean isAlive() {
        return data.scope().isAlive();
    }

    /**
     * The exception for a failed access in {@code op}: the JDK's bare "Already closed" replaced by one
     * naming this tensor and why its memory is gone; {@code e} itself when this tensor is still alive (the
     * failure is something else). Called only after an access threw (or with a null {@code e} once this tensor
     * is known to be closed), so the accessors pay nothing for it.
     */
    private IllegalStateException closed(IllegalStateException e, String op) {
        if (isAlive()) {
            return e;
        }
        return new IllegalStateException(op + ": tensor " + shapeString() + " " + dtype + " is closed: the arena that"
                + " owns its memory was closed, freeing it (a LoraLinear's A, B and gradients are freed by its close(), a"
                + " LoraModel's by the model's close()); read or copy the values before closing", e);
    }

    /**
     * The shape as text, for messages.
     *
     * @return "[d0, d1, ...]" ("[]" for a scalar)
     */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    /**
     * Whether this tensor and {@code other} share memory: the same tensor, two tensors
     * {@link #wrap}ped around one buffer, or overlapping slices of one. For refusing an output that
     * would overwrite an input (or another output) while it is still being read.
     *
     * @param other another tensor, or null (which overlaps nothing)
     * @return true when at least one byte of the two tensors is the same memory (an empty tensor overlaps nothing)
     */
    public boolean overlaps(Tensor other) {
        // zero bytes share no memory; asOverlappingSlice alone reports an empty segment whose address
        // lies strictly inside the other one as overlapping
        return other != null && readOnly.byteSize() > 0 && other.readOnly.byteSize() > 0
                && readOnly.asOverlappingSlice(other.readOnly).isPresent();
    }

    /**
     * Whether this tensor has the given shape.
     *
     * @param other the dimensions to compare with
     * @return true when the rank and every dimension are equal
     */

    public boolean sameShape(long... other) {
        return Arrays.equals(shape, other);
    }

    @Override
    public String toString() {
        return "Tensor" + shapeString() + " " + dtype;
    }
}
