package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The register tile and its one-row form multiply-add as {@link Fma#FUSED} says: one rounding
 * where the JIT has FMA instructions, a multiply then an add otherwise (the build runs the cpu
 * tests once with -XX:-UseFMA). Each row is a = (−1, 0, A) against panel rows of 1s, 0s and As,
 * A = 1 + 2⁻¹²: the sum reaches −1 exactly, then A·A − 1 is 2⁻¹¹ + 2⁻²⁴ fused and 2⁻¹¹ with the
 * product rounded first (the row form's even-k chain holds k = 0 and 2, its odd one k = 1).
 * Accumulating onto C = 1/2 adds that value to 1/2 (exact in fp32): the tile through
 * {@link MicroKernel#mmaAdd}, the row form in its chain.
 */
class FmaModeTest {
    private static final float A = 1f + 0x1p-12f;
    private static final float FUSED = 0x1p-11f + 0x1p-24f;
    private static final float TWO_ROUNDINGS = 0x1p-11f;

    @Test
    void theTileAndItsRowFormRoundAsTheModeSays() {
        float expected = Fma.FUSED ? FUSED : TWO_ROUNDINGS;
        int k = 3;
        int mr = MicroKernel.MR;
        int nr = MicroKernel.NR;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment panel = arena.allocate((long) k * MicroKernel.PANEL_ROW_BYTES, 64);
            for (int c = 0; c < nr; c++) {
                panel.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, c, 1f);
                panel.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, nr + c, 0f);
                panel.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 2L * nr + c, A);
            }
            float[] a = new float[mr * k];
            for (int m = 0; m < mr; m++) {
                a[m * k] = -1f;
                a[m * k + 2] = A;
            }
            for (boolean add : new boolean[] {false, true}) {
                float base = add ? 0.5f : 0f;
                String what = (add ? "accumulated onto 1/2" : "assigned") + ", " + Fma.describe();
                float[] c = new float[mr * nr];
                Arrays.fill(c, add ? 0.5f : Float.NaN);
                if (add) {
                    MicroKernel.mmaAdd(a, 0, k, panel, 0, k, c, 0, nr, new float[mr * nr]);
                } else {
                    MicroKernel.mma(a, 0, k, panel, 0, k, c, 0);
                }
                for (int i = 0; i < c.length; i++) {
                    assertEquals(base + expected, c[i], "tile element " + i + ", " + what);
                }
                float[] row = new float[nr + MicroKernel.L];
                Arrays.fill(row, add ? 0.5f : Float.NaN);
                MicroKernel.mmaRow(a, 0, panel, 0, k, row, 0, add);
                for (int i = 0; i < nr; i++) {
                    assertEquals(base + expected, row[i], "row element " + i + ", " + what);
                }
            }
        }
    }
}
