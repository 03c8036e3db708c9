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
 * tests once with -XX:-UseFMA). a·b = 1 + 2⁻¹¹ + 2⁻²⁴ for a = b = 1 + 2⁻¹², so a·b − 1 is
 * 2⁻¹¹ + 2⁻²⁴ fused and 2⁻¹¹ with the product rounded first.
 */
class FmaModeTest {
    private static final float A = 1f + 0x1p-12f;
    private static final float FUSED = 0x1p-11f + 0x1p-24f;
    private static final float TWO_ROUNDINGS = 0x1p-11f;

    @Test
    void theTileAndItsRowFormRoundAsTheModeSays() {
        float expected = Fma.FUSED ? FUSED : TWO_ROUNDINGS;
        int k = 1;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment panel = arena.allocate((long) k * MicroKernel.PANEL_ROW_BYTES, 64);
            for (int c = 0; c < MicroKernel.NR; c++) {
                panel.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, c, A);
            }
            float[] a = new float[MicroKernel.MR];
            Arrays.fill(a, A);
            float[] c = new float[MicroKernel.MR * MicroKernel.NR];
            Arrays.fill(c, -1f);
            MicroKernel.mma(a, 0, 1, panel, 0, k, c, 0, true);
            for (int i = 0; i < c.length; i++) {
                assertEquals(expected, c[i], "tile element " + i + ", " + Fma.describe());
            }
            float[] row = new float[MicroKernel.NR + MicroKernel.L];
            Arrays.fill(row, -1f);
            MicroKernel.mmaRow(a, 0, panel, 0, k, row, 0, true);
            for (int i = 0; i < MicroKernel.NR; i++) {
                assertEquals(expected, row[i], "row element " + i + ", " + Fma.describe());
            }
        }
    }
}
