package dev.rslora.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Hugging Face Trainer's schedules at their boundaries (values worked out by hand from
 * {@code transformers.optimization}'s lambdas and {@code TrainingArguments.get_warmup_steps}).
 */
class LrScheduleTest {

    @Test
    void warmupStepsAreTheCeilingOfTheDoubleProduct() {
        assertEquals(30, LrSchedule.warmupSteps(300, 0.1), "300 * 0.1 = 30.0 in double");
        assertEquals(8, LrSchedule.warmupSteps(100, 0.07), "100 * 0.07 = 7.000000000000001 in double: the ceiling is 8");
        assertEquals(10, LrSchedule.warmupSteps(100, 0.1), "100 * 0.1 = 10.0 exactly");
        assertEquals(1, LrSchedule.warmupSteps(5, 0.1), "ceil(0.5)");
        assertEquals(0, LrSchedule.warmupSteps(300, 0.0));
        assertEquals(300, LrSchedule.warmupSteps(300, 1.0));
        assertEquals(15, LrSchedule.warmupSteps(150, 0.1));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupSteps(10, 1.5));
    }

    @Test
    void aNegativeStepCountIsRefusedNamingIt() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.warmupSteps(-5, 0.5));
        assertTrue(e.getMessage().contains("training steps must be >= 0, got -5"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> LrSchedule.withWarmupRatio(LrSchedule.Kind.LINEAR, 1e-3, 0.5, -5));
        assertTrue(e.getMessage().contains("got -5"), e.getMessage());
    }

    @Test
    void linearRisesFromZeroThenFallsToZero() {
        LrSchedule s = LrSchedule.linear(2.0, 4, 10);
        // λ(k) = k/4 for k < 4, then (10 − k)/6, clamped at 0
        double[] want = {0, 0.25, 0.5, 0.75, 1, 5.0 / 6, 4.0 / 6, 3.0 / 6, 2.0 / 6, 1.0 / 6, 0, 0};
        for (int k = 0; k < want.length; k++) {
            assertEquals(want[k], s.factor(k), 1e-15, "λ(" + k + ")");
        }
        // optimizer step t runs with λ(t − 1): the first step has lr 0, the peak is step W + 1, the last step N has 2·1/6
        assertEquals(0.0, s.lr(1));
        assertEquals(2.0, s.lr(5));
        assertEquals(2.0 / 6, s.lr(10), 1e-15);
        assertThrows(IllegalArgumentException.class, () -> s.lr(0));
        assertThrows(IllegalArgumentException.class, () -> s.factor(-1));
    }

    @Test
    void withoutWarmupTheFirstStepHasTheFullRate() {
        LrSchedule s = LrSchedule.linear(1.0, 0, 4);
        assertEquals(1.0, s.lr(1));
        assertEquals(0.75, s.lr(2));
        assertEquals(0.25, s.lr(4));
        LrSchedule degenerate = LrSchedule.linear(1.0, 5, 5);  // warmup as long as training: max(1, N − W) guards the division
        assertEquals(0.8, degenerate.factor(4));
        assertEquals(0.0, degenerate.factor(5));
    }

    @Test
    void cosineIsAHalfCycleAfterWarmup() {
        LrSchedule s = LrSchedule.cosine(1.0, 2, 10);
        assertEquals(0.0, s.factor(0));
        assertEquals(0.5, s.factor(1));
        assertEquals(1.0, s.factor(2));
        assertEquals(0.5, s.factor(6), 1e-15, "half way through the decay: cos(π/2)");
        assertEquals(0.0, s.factor(10), 1e-15);
        // Hugging Face clamps only below 0: past N the half cycle continues and rises again
        assertEquals(0.5 * (1 + Math.cos(Math.PI * 0.5 * 2.0 * 1.125)), s.factor(11), 0.0);
        assertTrue(s.factor(11) > 0);
        assertEquals(0.5 * (1 + Math.cos(Math.PI * 0.5 * 2.0 * 0.125)), s.factor(3), 0.0);
    }

    @Test
    void constantIsOneAndNamesAreTheTrainers() {
        LrSchedule c = LrSchedule.constant(3e-4);
        assertEquals(3e-4, c.lr(1));
        assertEquals(3e-4, c.lr(1_000_000));
        assertEquals(LrSchedule.Kind.LINEAR, LrSchedule.Kind.fromName("linear"));
        assertEquals("cosine", LrSchedule.Kind.COSINE.hfName());
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.Kind.fromName("polynomial"));
        assertThrows(IllegalArgumentException.class, () -> LrSchedule.linear(-1, 0, 1));
        assertEquals(30, LrSchedule.withWarmupRatio(LrSchedule.Kind.LINEAR, 1, 0.1, 300).warmupSteps());
    }

    /** apply(null) was a bare NullPointerException ("because \"optimizer\" is null"); it names the argument. */
    @Test
    void applyToANullOptimizerIsNamed() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LrSchedule.constant(1e-3).apply(null));
        assertEquals("LrSchedule.apply: optimizer is null", e.getMessage());
    }
}
