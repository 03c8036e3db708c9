package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static dev.rslora.backend.cpu.MicroKernel.NR;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * {@link Panels#packTransposedPanel} against its definition at the tile width the suite runs with:
 * panel p, row k = fl(src[p·NR + c, k]·scale) for c &lt; NR (0 past the last row), bit for bit, every
 * panel byte written and none past it, +0 in the padding whatever the scale's sign; F32 read in
 * place, BF16, F16 and heap tensors through the staged copy; row counts below, at and past a
 * vector and a panel, column counts below, at and past a vector and a staging block; scales 1,
 * positive and negative; signed zeros, infinities and NaN among the values.
 */
class PanelsTest {
    private static final int L = MicroKernel.L;
    /** Values whose product by the scale must come out as the scalar product's bits: signed zeros, infinities, NaN. */
    private static final float[] SPECIALS = {-0f, 0f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};

    @Test
    void transposedPanelsMatchTheDefinition() {
        SplittableRandom rng = new SplittableRandom(0x9A3E1L);
        int[] rowCounts = {1, 5, L, L + 3, NR - 1, NR, NR + 3, 2 * NR + 7};
        int[] colCounts = {1, 3, L, L + 1, 64, Panels.T_BLOCK, Panels.T_BLOCK + L + 3};
        try (Arena arena = Arena.ofConfined(); NativeBuffer stage = new NativeBuffer()) {
            float[] tmp = new float[NR * Panels.T_BLOCK];
            for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                for (boolean heap : new boolean[] {false, true}) {
                    for (int rows : rowCounts) {
                        for (int cols : colCounts) {
                            for (float scale : new float[] {1f, 0.3711f, -1.75f}) {
                                Tensor native_ = Tensor.allocate(arena, dtype, rows, cols);
                                for (long i = 0; i < native_.numel(); i++) {
                                    native_.set(i, (float) rng.nextDouble(-3, 3));
                                }
                                for (float special : SPECIALS) {  // at random places, some overwritten by later ones
                                    native_.set(rng.nextLong(native_.numel()), special);
                                }
                                Tensor src = heap ? HeapTensorTest.heap(native_) : native_;
                                check(src, scale, tmp, stage, arena, dtype + (heap ? " heap" : "") + " [" + rows + ", "
                                        + cols + "] scale " + scale);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * {@link Panels#packDirect} of a range of rows against its definition: panel p, row k = fl(src[k,
     * p·NR + c]·scale) (0 past the last column) for the rows packed, bit for bit, nothing else written;
     * F32 in place, heap F32, BF16 and F16 through the staged rows.
     */
    @Test
    void directPanelsMatchTheDefinition() {
        SplittableRandom rng = new SplittableRandom(0xD17EC7L);
        try (Arena arena = Arena.ofConfined()) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                for (boolean heap : new boolean[] {false, true}) {
                    for (int[] shape : new int[][] {{1, 1}, {7, 3}, {64, NR}, {37, NR + 5}, {70, 2 * NR + L + 1}, {5, 1000}}) {
                        for (float scale : new float[] {1f, -0.625f}) {
                            int rows = shape[0];
                            int cols = shape[1];
                            Tensor t = Tensor.allocate(arena, dtype, rows, cols);
                            for (long i = 0; i < t.numel(); i++) {
                                t.set(i, (float) rng.nextDouble(-3, 3));
                            }
                            t.set(rng.nextLong(t.numel()), Float.NaN);
                            t.set(rng.nextLong(t.numel()), -0f);
                            Tensor src = heap ? HeapTensorTest.heap(t) : t;
                            long panelBytes = (long) rows * NR * 4;
                            int panels = Panels.panels(cols);
                            MemorySegment dst = arena.allocate(panels * panelBytes, 64);
                            dst.fill((byte) 0x7f);
                            int row0 = rows / 3;
                            int row1 = Math.max(row0 + 1, rows - rows / 4);
                            Panels.packDirect(src, scale, dst, row0, row1, new float[Panels.directBlockRows(cols) * cols]);
                            String what = dtype + (heap ? " heap" : "") + " [" + rows + ", " + cols + "] rows [" + row0 + ", "
                                    + row1 + ") scale " + scale;
                            for (int p = 0; p < panels; p++) {
                                for (int k = 0; k < rows; k++) {
                                    for (int c = 0; c < NR; c++) {
                                        int col = p * NR + c;
                                        float want = k < row0 || k >= row1 ? Float.intBitsToFloat(0x7f7f7f7f)
                                                : col < cols ? t.get((long) k * cols + col) * scale : 0f;
                                        float got = dst.get(ValueLayout.JAVA_FLOAT, p * panelBytes + ((long) k * NR + c) * 4);
                                        if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(got)) {
                                            fail(what + ": panel " + p + " row " + k + " lane " + c + " want " + want + " got " + got);
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * {@link Panels#packRows} from a heap block whose last row ends at the array's end (its partial
     * panel's last vectors would reach past it: they go through a padded copy): the definition, bit
     * for bit, +0 past cols, nothing written past the panels.
     */
    @Test
    void rowPacksFromAnArrayEndingAtItsLastValue() {
        SplittableRandom rng = new SplittableRandom(0x9ACC5L);
        try (Arena arena = Arena.ofConfined()) {
            for (int cols : new int[] {1, L - 1, L + 1, NR - 1, NR + 5, 2 * NR + L + 1}) {
                for (int rows : new int[] {1, 3, 8}) {
                    for (float scale : new float[] {1f, -0.625f}) {
                        int off = 2;
                        int ld = cols + (rows % 2);
                        float[] src = new float[off + (rows - 1) * ld + cols];
                        for (int i = 0; i < src.length; i++) {
                            src[i] = (float) rng.nextDouble(-3, 3);
                        }
                        int panels = Panels.panels(cols);
                        long panelBytes = (long) rows * NR * 4;
                        long guard = 64;
                        MemorySegment dst = arena.allocate(panels * panelBytes + guard, 64);
                        dst.fill((byte) 0x7f);
                        Panels.packRows(src, off, ld, rows, cols, scale, dst, 0, panelBytes);
                        String what = "[" + rows + ", " + cols + "] ld " + ld + " scale " + scale;
                        for (int p = 0; p < panels; p++) {
                            for (int k = 0; k < rows; k++) {
                                for (int c = 0; c < NR; c++) {
                                    int col = p * NR + c;
                                    float want = col < cols ? src[off + k * ld + col] * scale : 0f;
                                    float got = dst.get(ValueLayout.JAVA_FLOAT, p * panelBytes + ((long) k * NR + c) * 4);
                                    if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(got)) {
                                        fail(what + ": panel " + p + " row " + k + " lane " + c + " want " + want + " got " + got);
                                    }
                                }
                            }
                        }
                        for (long b = 0; b < guard; b += 4) {
                            assertEquals(Float.intBitsToFloat(0x7f7f7f7f), dst.get(ValueLayout.JAVA_FLOAT, panels * panelBytes + b),
                                    what + ": written past the panels");
                        }
                    }
                }
            }
        }
    }

    private static void check(Tensor src, float scale, float[] tmp, NativeBuffer stage, Arena arena, String what) {
        int rows = (int) src.dim(0);
        int cols = (int) src.dim(1);
        int panels = Panels.panels(rows);
        long panelBytes = (long) cols * NR * 4;
        long guard = 64;
        MemorySegment dst = arena.allocate(guard + panels * panelBytes + guard, 64);
        dst.fill((byte) 0x7f);  // 0x7f7f7f7f: a finite sentinel no packed value here can equal
        for (int p = 0; p < panels; p++) {
            Panels.packTransposedPanel(src, scale, p, dst, guard + p * panelBytes, tmp, stage);
        }
        float sentinel = Float.intBitsToFloat(0x7f7f7f7f);
        for (long b = 0; b < guard; b += 4) {
            assertEquals(sentinel, dst.get(ValueLayout.JAVA_FLOAT, b), what + ": written before the panels");
            assertEquals(sentinel, dst.get(ValueLayout.JAVA_FLOAT, guard + panels * panelBytes + b),
                    what + ": written past the panels");
        }
        for (int p = 0; p < panels; p++) {
            for (int k = 0; k < cols; k++) {
                for (int c = 0; c < NR; c++) {
                    int row = p * NR + c;
                    float want = row < rows ? src.get((long) row * cols + k) * scale : 0f;  // +0 past the rows
                    float got = dst.get(ValueLayout.JAVA_FLOAT, guard + p * panelBytes + ((long) k * NR + c) * 4);
                    if (Float.floatToRawIntBits(want) != Float.floatToRawIntBits(got)) {  // a message per value costs seconds
                        fail(what + ": panel " + p + " row " + k + " lane " + c + " want " + want + " got " + got);
                    }
                }
            }
        }
    }
}
