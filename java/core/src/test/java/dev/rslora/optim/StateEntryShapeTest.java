package dev.rslora.optim;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Optimizer state entries with a shape whose element count overflows a long, or a negative dimension: named. */
class StateEntryShapeTest {
    private static final float[] NONE = new float[0];

    @Test
    void adamWEntryNamesTheParameterOfAnOverflowingShape() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> new AdamWState.Entry("p", new long[] {Long.MAX_VALUE, 2}, NONE, NONE, null)).getMessage();
        assertEquals("entry p: shape [9223372036854775807, 2] has more than 2^63 - 1 elements", m);
    }

    @Test
    void adafactorEntryNamesTheParameterOfAnOverflowingOrNegativeShape() {
        String m = assertThrows(IllegalArgumentException.class,
                () -> new AdafactorState.Entry("q", new long[] {Long.MAX_VALUE, 2}, NONE, NONE, null, null, null)).getMessage();
        assertEquals("entry q: shape [9223372036854775807, 2] has more than 2^63 - 1 elements", m);
        m = assertThrows(IllegalArgumentException.class,
                () -> new AdafactorState.Entry("q", new long[] {3, -1}, NONE, NONE, null, null, null)).getMessage();
        assertEquals("entry q: negative dimension in shape [3, -1]", m);
    }

    @Test
    void aShapeWithAZeroDimensionHoldsNoElementWhateverTheOthers() {
        long[] shape = {Long.MAX_VALUE, 2, 0};
        assertEquals(0, new AdamWState.Entry("p", shape, NONE, NONE, null).m().length);
    }
}
