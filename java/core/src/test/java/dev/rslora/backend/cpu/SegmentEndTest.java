package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@link SegmentEnd}'s boundary: a row counts as inside exactly when its whole vector (L floats)
 * ends at or before the segment's or array's end, the JDK's own condition for the in-range path (a
 * row one float short of that is outside); the padded load gives the masked load's lanes. No output value would show an
 * off-by-one here (the JDK's out-of-range path computes the same values), so the arithmetic is
 * tested directly.
 */
class SegmentEndTest {
    private static final int L = MicroKernel.L;

    @Test
    void aRowIsInsideExactlyWhenItsWholeVectorIs() {
        try (Arena arena = Arena.ofConfined()) {
            for (int rows : new int[] {1, 2, 5}) {
                for (int stride : new int[] {L, L + 3, 3 * L}) {
                    int at = 7;
                    // the last row's vector ends exactly at the end: every row inside
                    long exact = at + (long) (rows - 1) * stride + L;
                    MemorySegment seg = arena.allocate(4 * exact);
                    float[] array = new float[(int) exact];
                    assertEquals(rows, SegmentEnd.rowsInside(seg, 4L * at, 4L * stride, rows), "segment, exact end");
                    assertEquals(rows, SegmentEnd.rowsInside(array, at, stride, rows), "array, exact end");
                    // one float short: the last row is outside, the others inside
                    MemorySegment shortSeg = arena.allocate(4 * (exact - 1));
                    float[] shortArray = new float[(int) exact - 1];
                    assertEquals(rows - 1, SegmentEnd.rowsInside(shortSeg, 4L * at, 4L * stride, rows), "segment, one short");
                    assertEquals(rows - 1, SegmentEnd.rowsInside(shortArray, at, stride, rows), "array, one short");
                    // room to spare: never more than the rows asked about
                    assertEquals(rows, SegmentEnd.rowsInside(arena.allocate(4 * (exact + 5L * stride)), 4L * at, 4L * stride, rows));
                    assertEquals(rows, SegmentEnd.rowsInside(new float[(int) exact + 5 * stride], at, stride, rows));
                }
            }
            // not even the first row's vector fits
            assertEquals(0, SegmentEnd.rowsInside(arena.allocate(4L * (L - 1)), 0, 4L * L, 3));
            assertEquals(0, SegmentEnd.rowsInside(new float[L - 1], 0, L, 3));
        }
    }

    @Test
    void paddedLoadsGiveTheMaskedLoadsLanes() {
        assumeTrue(!MicroKernel.SCALAR, "the scalar shape has no vectors (L = 1: nothing is partial)");
        float[] pad = new float[L];
        try (Arena arena = Arena.ofConfined()) {
            for (int count = 1; count < L; count++) {
                MemorySegment seg = arena.allocate(4L * (count + 2));
                float[] array = new float[count + 2];
                for (int i = 0; i < count + 2; i++) {
                    seg.set(DType.LE_FLOAT, 4L * i, i == 2 ? -0f : 10 + i);
                    array[i] = i == 2 ? -0f : 10 + i;
                }
                java.util.Arrays.fill(pad, Float.NaN);
                SegmentEnd.pad(seg, 8, count, pad);
                float[] fromSeg = pad.clone();
                java.util.Arrays.fill(pad, Float.NaN);
                SegmentEnd.pad(array, 2, count, pad);
                float[] fromArray = pad.clone();
                for (int lane = 0; lane < L; lane++) {
                    float want = lane < count ? (lane == 0 ? -0f : 10 + 2 + lane) : 0f;
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(fromSeg[lane]), "segment lane " + lane);
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(fromArray[lane]), "array lane " + lane);
                }
            }
        }
    }
}
