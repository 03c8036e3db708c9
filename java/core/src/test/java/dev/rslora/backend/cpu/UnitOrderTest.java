package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link BackwardPass#unitOrder}: a permutation, V's units first, dX spread among the gradient writers. */
class UnitOrderTest {
    @Test
    void oneRowSpreadsDxAmongTheWriters() {
        // N = 1, d = 1024, r = 64 with 8×32 tiles: V 0–1, dB 2–5, dX 6–9, dA 10–13
        int[] order = BackwardPass.unitOrder(2, 6, 4, 14, true);
        assertArrayEquals(new int[] {0, 1, 6, 2, 3, 7, 4, 5, 8, 10, 11, 9, 12, 13}, order);
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
