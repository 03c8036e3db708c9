package dev.rslora.simd;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How multiply-adds run: fused where the JIT has FMA instructions, else a multiply then an add.
 * The build runs this once with the JVM's defaults and once with {@code -XX:-UseFMA}
 * (java/core/pom.xml, execution cpu-no-fma), each telling it what to expect in
 * {@code rslora.test.expectFma}.
 */
class FmaTest {

    @Test
    void theModeFollowsTheJitsUseFmaFlag() {
        System.out.println("multiply-add: " + Fma.describe());
        String expected = System.getProperty("rslora.test.expectFma");
        if (expected != null) {
            assertEquals(Boolean.parseBoolean(expected), Fma.FUSED, Fma.describe());
        }
        assertTrue(Fma.describe().contains("HotSpot UseFMA=" + Fma.FUSED), "read from HotSpot's flag: " + Fma.describe());
    }

    @Test
    void oneRoundingWhenFusedTwoOtherwise() {
        // a·b = 1 + 2⁻¹² + 2⁻²⁴ needs 25 bits: rounded to 1 + 2⁻¹² (ties to even) before the add, kept by the fused form
        float a = 1f + 0x1p-12f;
        float b = 1f + 0x1p-12f;
        float c = -1f;
        float fused = 0x1p-11f + 0x1p-24f;
        float twoRoundings = 0x1p-11f;
        assertEquals(fused, Math.fma(a, b, c));
        assertEquals(twoRoundings, a * b + c);
        assertEquals(Fma.FUSED ? fused : twoRoundings, Fma.fma(a, b, c));
    }
}
