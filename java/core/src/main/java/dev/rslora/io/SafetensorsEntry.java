package dev.rslora.io;

import java.util.Arrays;
import java.util.Objects;

/**
 * One tensor of a safetensors header: name, dtype, shape (row-major, outermost first) and its byte
 * range [begin, end) relative to the start of the data buffer (file offset 8 + N).
 *
 * @param name  the tensor's name, e.g. {@code base_model.model.q_proj.lora_A.weight}
 * @param dtype the header's dtype
 * @param shape the dimensions, outermost first ([] for a scalar)
 * @param begin the first byte, relative to the data buffer
 * @param end   one past the last byte, relative to the data buffer
 */
public record SafetensorsEntry(String name, SafetensorsDtype dtype, long[] shape, long begin, long end) {

    /** Checks the entry (IllegalArgumentException naming the bad value). */
    public SafetensorsEntry {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(dtype, "dtype");
        shape = shape.clone();
    }

    /**
     * The dtype name as written in the header.
     *
     * @return e.g. "BF16"
     */
    public String dtypeName() {
        return dtype.name();
    }

    /**
     * The shape.
     *
     * @return a copy of the dimensions; [] for a rank-0 scalar
     */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The number of dimensions.
     *
     * @return the rank, 0 for a scalar
     */
    public int rank() {
        return shape.length;
    }

    /**
     * Number of elements; validated not to overflow.
     *
     * @return the product of the dimensions: 1 for a scalar, 0 when a dimension is 0
     * @throws ArithmeticException if the product overflows a long
     */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /**
     * The size of the tensor's data.
     *
     * @return end − begin, in bytes
     */
    public long byteLength() {
        return end - begin;
    }

    /**
     * The shape as text, for messages.
     *
     * @return "[d0, d1, ...]"
     */

    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof SafetensorsEntry e && name.equals(e.name) && dtype == e.dtype
                && Arrays.equals(shape, e.shape) && begin == e.begin && end == e.end;
    }

    @Override
    public int hashCode() {
        return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + shapeString() + " [" + begin + ", " + end + ")";
    }
}
