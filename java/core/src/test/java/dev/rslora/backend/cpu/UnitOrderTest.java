package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link BackwardPass#unitOrder}: a permutation, V's units first, dX spread among the gradient writers;
 * {@link RowGrads#rowsPerUnit}: how the decoding gradients are cut into units.
 */
class UnitOrderTest {
    @Test
    void oneRowSpreadsDxAmongTheWriters() {
        // N = 1, d = 1024, r = 64, 8×32 tiles, two workers: V 0–1, dB 2–3, dX 4–7, dA 8–9
        assertArrayEquals(new int[] {0, 1, 4, 2, 5, 3, 6, 8, 7, 9}, BackwardPass.unitOrder(2, 4, 4, 10, true));
        // twice the writers: two of them after each dX unit
        assertArrayEquals(new int[] {0, 1, 6, 2, 3, 7, 4, 5, 8, 10, 11, 9, 12, 13}, BackwardPass.unitOrder(2, 6, 4, 14, true));
    }

    @Test
    void gradientUnitsAreOnePerWorkerUpTo128KBEach() {
        // dA [64, 1024] over two workers: two units of 32 rows (32K elements each)
        assertEquals(32, RowGrads.rowsPerUnit(64, 1024, 2));
        // dB [1024, 64] as 32 panels of 32 rows: two units of 16 panels
        assertEquals(16, RowGrads.rowsPerUnit(32, 32 * 64, 2));
        // dA [64, 4096]: 128K elements per worker, so four rounds of two units: 8 rows each
        assertEquals(8, RowGrads.rowsPerUnit(64, 4096, 2));
        // one worker: one unit while it fits, and never more units than rows
        assertEquals(64, RowGrads.rowsPerUnit(64, 512, 1));
        assertEquals(1, RowGrads.rowsPerUnit(3, 1 << 20, 4));
        assertEquals(1, RowGrads.rowsPerUnit(1, 1, 8));
        for (int rows = 1; rows <= 70; rows += 3) {
            for (int workers = 1; workers <= 5; workers++) {
                for (long elements : new long[] {1, 100, 1024, 5000, 40000}) {
                    int per = RowGrads.rowsPerUnit(rows, elements, workers);
                    int units = (rows + per - 1) / per;
                    String ctx = rows + " rows of " + elements + ", " + workers + " workers: " + per + " per unit";
                    assertEquals(true, per >= 1 && per <= rows, ctx);
                    assertEquals(true, per == 1 || (long) per * elements <= RowGrads.UNIT_ELEMENTS
                            || units >= Math.min(rows, workers), ctx);
                }
            }
        }
    }

    @Test
    void everyOrderIsAPermutationWithTheVUnitsFirst() {
        for (int v = 0; v <= 3; v++) {
            for (int b = 0; b <= 5; b++) {
                for (int x = 0; x <= 6; x++) {
                    for (int a = 0; a <= 7; a++) {
                        for (boolean spread : new boolean[] {false, true}) {
                            int total = v + b + x + a;
                            int[] order = BackwardPass.unitOrder(v, v + b, x, total, spread);
                            String ctx = "v " + v + " b " + b + " x " + x + " a " + a + " spread " + spread;
                            int[] sorted = order.clone();
                            Arrays.sort(sorted);
                            for (int i = 0; i < total; i++) {
                                assertEquals(i, sorted[i], ctx);
                            }
                            for (int i = 0; i < v; i++) {
                                assertEquals(i, order[i], ctx);
                            }
                            if (!spread || x == 0) {
                                for (int i = 0; i < total; i++) {
                                    assertEquals(i, order[i], ctx);
                                }
                            } else {
                                // dX units keep their order, and never two in a row while writers remain between them
                                int lastDx = -1;
                                for (int i = v; i < total; i++) {
                                    if (order[i] >= v + b && order[i] < v + b + x) {
                                        assertEquals(lastDx < 0 ? v + b : lastDx + 1, order[i], ctx);
                                        lastDx = order[i];
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
