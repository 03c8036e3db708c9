package dev.rslora.dropout;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DropoutMaskTest {

    @Test
    void maskIsAPureFunctionOfSeedStepLayerRowColumn() {
        DropoutMask m1 = new DropoutMask(42, 7, 3, 0.1f);
        DropoutMask m2 = new DropoutMask(42, 7, 3, 0.1f);
        for (int row = 0; row < 50; row++) {
            for (int col = 0; col < 50; col++) {
                assertEquals(m1.bits(row, col), m2.bits(row, col));
            }
        }
        int differ = 0;
        DropoutMask otherStep = new DropoutMask(42, 8, 3, 0.1f);
        DropoutMask otherLayer = new DropoutMask(42, 7, 4, 0.1f);
        DropoutMask otherSeed = new DropoutMask(43, 7, 3, 0.1f);
        for (int col = 0; col < 64; col++) {
            differ += m1.bits(5, col) != otherStep.bits(5, col) ? 1 : 0;
            differ += m1.bits(5, col) != otherLayer.bits(5, col) ? 1 : 0;
            differ += m1.bits(5, col) != otherSeed.bits(5, col) ? 1 : 0;
        }
        assertTrue(differ > 180, "streams of other steps/layers/seeds must differ, differ=" + differ);
    }

    @Test
    void documentedCounterLayout() {
        // Element (row 9, col 13) of seed 0x0000000500000003, step 11, layer 2:
        // counter (13>>>2, 9, 2, 11), key (3, 5), lane 13 & 3 = 1.
        DropoutMask m = new DropoutMask(0x0000000500000003L, 11, 2, 0.25f);
        int[] out = new int[4];
        Philox4x32.generate(3, 9, 2, 11, 3, 5, out);
        assertEquals(out[1], m.bits(9, 13));
        assertEquals((out[1] >>> 8) * 0x1p-24f >= 0.25f, m.keep(9, 13));
    }

    @Test
    void rowMultipliersMatchElementwiseKeep() {
        DropoutMask m = new DropoutMask(1234, 5, 0, 0.3f);
        float[] mult = new float[103];
        m.rowMultipliers(17, 5, mult.length, mult);
        for (int i = 0; i < mult.length; i++) {
            assertEquals(m.keep(17, 5 + i) ? m.scale() : 0f, mult[i], "col " + (5 + i));
        }
        assertEquals(1.0f / 0.7f, m.scale());
    }

    @Test
    void rowMultipliersRefuseBadArgumentsBeforeWriting() {
        DropoutMask m = new DropoutMask(7, 3, 1, 0.5f);
        float[] out = {9, 9, 9, 9};
        IllegalArgumentException shortOut = assertThrows(IllegalArgumentException.class, () -> m.rowMultipliers(0, 0, 8, out));
        assertTrue(shortOut.getMessage().contains("at least 8 floats, got 4"), shortOut.getMessage());
        assertArrayEquals(new float[] {9, 9, 9, 9}, out, "nothing written");
        IllegalArgumentException negCount = assertThrows(IllegalArgumentException.class, () -> m.rowMultipliers(0, 0, -1, out));
        assertTrue(negCount.getMessage().contains("count=-1"), negCount.getMessage());
        IllegalArgumentException negCol = assertThrows(IllegalArgumentException.class, () -> m.rowMultipliers(0, -3, 4, out));
        assertTrue(negCol.getMessage().contains("col0=-3"), negCol.getMessage());
        assertThrows(IllegalArgumentException.class, () -> m.rowMultipliers(0, Long.MAX_VALUE - 1, 4, out));
        IllegalArgumentException nullOut = assertThrows(IllegalArgumentException.class, () -> m.rowMultipliers(0, 0, 2, null));
        assertTrue(nullOut.getMessage().contains("null"), nullOut.getMessage());
        m.rowMultipliers(0, 0, 0, new float[0]);
        IllegalArgumentException lane = assertThrows(IllegalArgumentException.class, () -> Philox4x32.draw(0, 0, 0, 0, 0, 0, 4));
        assertTrue(lane.getMessage().contains("lane=4"), lane.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Philox4x32.draw(0, 0, 0, 0, 0, 0, -1));
        IllegalArgumentException words = assertThrows(IllegalArgumentException.class, () -> Philox4x32.generate(0, 0, 0, 0, 0, 0, new int[2]));
        assertTrue(words.getMessage().contains("out holds 2"), words.getMessage());
    }

    @Test
    void thresholdAgreesWithFloatComparison() {
        for (float p : new float[] {0f, 0.1f, 0.25f, 0.5f, 0.999f, Math.nextDown(1f), 1e-9f}) {
            DropoutMask m = new DropoutMask(9, 9, 9, p);
            for (int col = 0; col < 4000; col++) {
                int bits = m.bits(3, col);
                assertEquals((bits >>> 8) >= m.threshold(), m.keep(3, col), "p=" + p + " col=" + col);
            }
        }
        // Boundary: a draw of exactly p is kept (u >= p).
        float p = 0.5f;
        assertEquals(0x800000, new DropoutMask(0, 0, 0, p).threshold());
    }

    @Test
    void keepRateWithinBinomialConfidenceInterval() {
        double p = 0.1;
        DropoutMask m = new DropoutMask(777, 1, 1, (float) p);
        int n = 1000 * 1000;
        int kept = 0;
        float[] row = new float[1000];
        for (int r = 0; r < 1000; r++) {
            m.rowMultipliers(r, 0, 1000, row);
            for (float v : row) {
                kept += v != 0 ? 1 : 0;
            }
        }
        double mean = n * (1 - p);
        double sd = Math.sqrt(n * p * (1 - p));
        assertTrue(Math.abs(kept - mean) < 5 * sd, "kept " + kept + " of " + n + ", expected " + mean + " ± " + 5 * sd);
    }

    @Test
    void rejectsBadP() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new DropoutMask(0, 0, 0, 1f));
        assertTrue(e.getMessage().contains("p=1.0"));
        assertThrows(IllegalArgumentException.class, () -> new DropoutMask(0, 0, 0, -0.1f));
        assertThrows(IllegalArgumentException.class, () -> new DropoutMask(0, 0, 0, Float.NaN));
        assertNotEquals(0, new DropoutMask(0, 0, 0, 0.5f).threshold());
    }
}
