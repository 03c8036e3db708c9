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

    /** A null config, entry list, entry or entry field: an IllegalArgumentException naming it (were NullPointerExceptions). */
    @Test
    void nullPartsOfAStateAreNamed() {
        AdamWState.Entry e = new AdamWState.Entry("p", new long[] {0}, NONE, NONE, null);
        java.util.List<AdamWState.Entry> withNull = java.util.Arrays.asList(e, null);
        record Case(String message, org.junit.jupiter.api.function.Executable call) {
        }
        for (Case c : java.util.List.of(
                new Case("AdamWState: config is null", () -> new AdamWState(0, null, java.util.List.of())),
                new Case("AdamWState: entries is null", () -> new AdamWState(0, AdamWConfig.torchDefaults(), null)),
                new Case("AdamWState: entry 1 is null", () -> new AdamWState(0, AdamWConfig.torchDefaults(), withNull)),
                new Case("AdamWState.Entry: name is null", () -> new AdamWState.Entry(null, new long[] {0}, NONE, NONE, null)),
                new Case("AdamWState.Entry p: shape is null", () -> new AdamWState.Entry("p", null, NONE, NONE, null)),
                new Case("AdamWState.Entry p: m is null", () -> new AdamWState.Entry("p", new long[] {0}, null, NONE, null)),
                new Case("AdamWState.Entry p: v is null", () -> new AdamWState.Entry("p", new long[] {0}, NONE, null, null)),
                new Case("AdafactorState: config is null", () -> new AdafactorState(0, null, java.util.List.of())),
                new Case("AdafactorState.Entry: name is null",
                        () -> new AdafactorState.Entry(null, new long[] {0}, null, null, NONE, null, null)),
                new Case("AdafactorState.Entry q: shape is null",
                        () -> new AdafactorState.Entry("q", null, null, null, NONE, null, null)))) {
            assertEquals(c.message(), assertThrows(IllegalArgumentException.class, c.call(), c.message()).getMessage());
        }
    }
}
