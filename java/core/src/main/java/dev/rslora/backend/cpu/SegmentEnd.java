package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;

import java.lang.foreign.MemorySegment;

/**
 * Masked loads kept inside their segment or array. A masked {@code fromMemorySegment}
 * (or {@code fromArray}, {@code intoMemorySegment}, {@code intoArray}) whose whole vector (L floats)
 * does not lie inside its segment or array takes the JDK's out-of-range path: correct, but its code
 * in a hot method kept C2 from inlining the method's helpers, which then boxed every vector (172–197
 * KB per call in {@link AdapterRows}, 2026-12-06), and a branch profile that saw it taken keeps that
 * code in every method that inlines the load. Callers load the rows whose vector lies inside
 * directly ({@link #rowsInside}) and the rest, the last rows of a segment, through a zero-padded
 * copy ({@link #pad}), which gives the masked load's lanes. Every masked memory access of the
 * backend lies inside its segment or array, by these helpers, by slack its buffer is allocated with
 * or (Convert.storeTileRow) by a plain store at the end, except RowGrads' tail vectors on the last
 * rows of its operands and gradients, where a pad measured slower (RowGrads.sumMasked).
 */
final class SegmentEnd {
    private static final int L = MicroKernel.L;

    private SegmentEnd() {
    }

    /**
     * How many of {@code rows} rows, the first at byte {@code at} and each {@code stride} bytes
     * after the last, have a whole vector (4·L bytes from the row's byte) inside {@code seg}: rows
     * [0, result) do, rows [result, rows) do not (stride > 0).
     */
    static int rowsInside(MemorySegment seg, long at, long stride, int rows) {
        long room = seg.byteSize() - 4L * L - at;
        return room < 0 ? 0 : (int) Math.min(rows, room / stride + 1);
    }

    /**
     * The masked load of the first {@code count} floats (0 &lt; count &lt; L) from byte {@code at}
     * of {@code seg} (fp32 little-endian), made readable as a whole vector: {@code pad} (L floats)
     * gets those values, zeros after, and the caller loads pad. Not returned as a vector: a vector
     * returned from a call that C2 leaves out of line is boxed (see the package comment).
     */
    static void pad(MemorySegment seg, long at, int count, float[] pad) {
        MemorySegment.copy(seg, DType.LE_FLOAT, at, pad, 0, count);
        java.util.Arrays.fill(pad, count, L, 0f);
    }

    /**
     * {@link #rowsInside(MemorySegment, long, long, int)} for a heap array: how many of {@code rows}
     * rows, the first at index {@code at} and each {@code stride} after the last, have a whole vector
     * (L floats) inside {@code a}: rows [0, result) do, rows [result, rows) do not (stride &gt; 0).
     */
    static int rowsInside(float[] a, long at, long stride, int rows) {
        long room = a.length - (long) L - at;
        return room < 0 ? 0 : (int) Math.min(rows, room / stride + 1);
    }

    /**
     * {@link #pad(MemorySegment, long, int, float[])} for a heap array: pad gets the first
     * {@code count} floats (0 &lt; count &lt; L) from index {@code at} of {@code a}, zeros after.
     */
    static void pad(float[] a, int at, int count, float[] pad) {
        System.arraycopy(a, at, pad, 0, count);
        java.util.Arrays.fill(pad, count, L, 0f);
    }
}
