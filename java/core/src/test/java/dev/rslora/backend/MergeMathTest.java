package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** MergeMath against a double oracle, exactly on integer data, chunked, transposed, and merge→unmerge. */
class MergeMathTest {

    /** Σ_j B[o,j]·A[j,i] in double: ΔW[o, i] without γ. */
    private static double ba(Tensor a, Tensor b, long o, long i) {
        double s = 0;
        for (long j = 0; j < a.dim(0); j++) {
            s += (double) b.get(o, j) * a.get(j, i);
        }
        return s;
    }

    /** One ulp of {@code v} in {@code dt}. */
    private static double ulp(DType dt, float v) {
        return switch (dt) {
            case F32 -> Math.ulp(v);
            case BF16 -> Math.ulp(v) * 65536.0;
            case F16 -> Math.max(Math.ulp(v) * 8192.0, 0x1p-24);
        };
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void mergedWeightIsTheRoundedSumWithinOneUlp(DType dt) {
        long seed = 0x5eed_0001L + dt.ordinal();
        SplittableRandom rng = new SplittableRandom(seed);
        int dOut = 37;
        int dIn = 23;
        int r = 5;
        double gamma = 8 / Math.sqrt(r);
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = TestData.uniform(arena, dt, rng, 0.5, dOut, dIn);
            Tensor a = TestData.uniform(arena, DType.F32, rng, 0.3, r, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 0.3, dOut, r);
            Tensor out = TestData.poisoned(arena, dt, dOut, dIn);
            MergeMath.prepare(a, b, gamma, +1, false, w.shape()).apply(w, out);
            for (long o = 0; o < dOut; o++) {
                for (long i = 0; i < dIn; i++) {
                    double delta = gamma * ba(a, b, o, i);
                    double ref = w.get(o, i) + delta;
                    float got = out.get(o, i);
                    // fp32 intermediates (a few fp32 ulps of the larger operand) then one rounding to dt
                    double operands = Math.max(Math.abs(w.get(o, i)), Math.abs(delta));
                    assertTrue(Math.abs(got - ref) <= ulp(dt, (float) ref) + 4 * Math.ulp((float) operands),
                            "seed " + seed + " [" + o + "," + i + "] got " + got + " ref " + ref);
                }
            }
        }
    }

    @Test
    void integerDataAndPowerOfTwoGammaAreBitExact() {
        long seed = 0x5eed_0002L;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = TestData.integers(arena, DType.BF16, rng, 64, 9, 13);
            Tensor a = TestData.integers(arena, DType.F32, rng, 8, 3, 13);
            Tensor b = TestData.integers(arena, DType.F32, rng, 8, 9, 3);
            Tensor out = TestData.poisoned(arena, DType.BF16, 9, 13);
            MergeMath.prepare(a, b, 0.25, -1, false, w.shape()).apply(w, out);
            for (long o = 0; o < 9; o++) {
                for (long i = 0; i < 13; i++) {
                    float exact = (float) (w.get(o, i) - 0.25 * ba(a, b, o, i));
                    assertEquals(DType.BF16.round(exact), out.get(o, i), "seed " + seed + " [" + o + "," + i + "]");
                }
            }
        }
    }

    @Test
    void fanInFanOutAddsTheTransposedDelta() {
        long seed = 0x5eed_0003L;
        SplittableRandom rng = new SplittableRandom(seed);
        int dOut = 12;
        int dIn = 7;
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = TestData.uniform(arena, DType.F32, rng, 0.3, 4, dIn);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 0.3, dOut, 4);
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, dOut, dIn);
            Tensor wt = Tensor.allocate(arena, DType.F32, dIn, dOut);      // Conv1D layout [in, out]
            for (long o = 0; o < dOut; o++) {
                for (long i = 0; i < dIn; i++) {
                    wt.set(i, o, w.get(o, i));
                }
            }
            Tensor merged = TestData.poisoned(arena, DType.F32, dOut, dIn);
            Tensor mergedT = TestData.poisoned(arena, DType.F32, dIn, dOut);
            MergeMath.prepare(a, b, 1.5, +1, false, w.shape()).apply(w, merged);
            MergeMath.prepare(a, b, 1.5, +1, true, wt.shape()).apply(wt, mergedT);
            for (long o = 0; o < dOut; o++) {
                for (long i = 0; i < dIn; i++) {
                    assertEquals(merged.get(o, i), mergedT.get(i, o), "seed " + seed + " [" + o + "," + i + "]");
                }
            }
        }
    }

    @Test
    void anySplitIntoRangesGivesTheSameBytes() {
        long seed = 0x5eed_0004L;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = TestData.uniform(arena, DType.BF16, rng, 1, 31, 17);
            Tensor a = TestData.uniform(arena, DType.BF16, rng, 0.3, 6, 17);
            Tensor b = TestData.uniform(arena, DType.F16, rng, 0.3, 31, 6);
            MergeMath m = MergeMath.prepare(a, b, 3.0, +1, false, w.shape());
            Tensor whole = TestData.poisoned(arena, DType.BF16, 31, 17);
            m.apply(w, whole);
            Tensor pieces = TestData.poisoned(arena, DType.BF16, 31, 17);
            long e = 0;
            while (e < w.numel()) {
                long n = Math.min(w.numel() - e, 1 + rng.nextInt(40));
                m.apply(w, e, n, pieces.segment().asSlice(e * 2, n * 2), DType.BF16);
                e += n;
            }
            assertEquals(-1, whole.segment().mismatch(pieces.segment()), "seed " + seed);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void mergeThenUnmergeIsWithinOneUlpOfTheBase(DType dt) {
        long seed = 0x5eed_0005L + dt.ordinal();
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = TestData.uniform(arena, dt, rng, 1, 19, 29);
            Tensor a = TestData.uniform(arena, DType.F32, rng, 0.1, 8, 29);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 0.1, 19, 8);
            Tensor merged = Tensor.allocate(arena, dt, 19, 29);
            Tensor back = Tensor.allocate(arena, dt, 19, 29);
            MergeMath.prepare(a, b, 16 / Math.sqrt(8), +1, false, w.shape()).apply(w, merged);
            MergeMath.prepare(a, b, 16 / Math.sqrt(8), -1, false, w.shape()).apply(merged, back);
            for (long k = 0; k < w.numel(); k++) {
                float base = w.get(k);
                // the merged value rounds once (≤ ½ ulp of the merged magnitude), unmerge once more
                double tol = ulp(dt, Math.max(Math.abs(base), Math.abs(merged.get(k))));
                assertTrue(Math.abs(back.get(k) - base) <= tol, "seed " + seed + " element " + k + ": " + back.get(k) + " vs " + base);
            }
        }
    }

    @Test
    void shapesThatDoNotFitAreRefusedWithAllThreeShapes() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 4, 16);
            Tensor b = Tensor.allocate(arena, DType.F32, 8, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MergeMath.prepare(a, b, 1, 1, false, new long[] {8, 15}));
            assertTrue(e.getMessage().contains("[4, 16]") && e.getMessage().contains("[8, 4]") && e.getMessage().contains("[8, 15]"),
                    e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> MergeMath.prepare(a, b, 1, 1, false, new long[] {16, 8}));
            MergeMath.prepare(a, b, 1, 1, true, new long[] {16, 8});
        }
    }

    /**
     * A merged value beyond the stored dtype's range was written as ±Infinity (PyTorch's in-place
     * add does the same, silently): refused, naming the element. W [1, 2] = {64992, 1} in F16 (65000
     * stored) plus γ·B·A = {1000, 1}: 65992 would be Infinity; with γ·B·A = 504, 65496 rounds to
     * 65504 (F16's largest) and is kept, and BF16 holds 65992.
     */
    @Test
    void aMergedValueBeyondTheWeightsRangeIsRefusedNotStoredAsInfinity() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = Tensor.of(arena, DType.F32, new float[] {1000, 1}, 1, 2);
            Tensor b = Tensor.of(arena, DType.F32, new float[] {1}, 1, 1);
            Tensor w = Tensor.of(arena, DType.F16, new float[] {65000, 1}, 1, 2);
            Tensor out = Tensor.allocate(arena, DType.F16, 1, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MergeMath.prepare(a, b, 1.0, +1, false, w.shape()).apply(w, out));
            assertEquals("the merged W[0, 0] = 65992.0 is beyond F16's range: it would be stored as Infinity", e.getMessage());
            MergeMath.prepare(a, b, 0.504, +1, false, w.shape()).apply(w, out);
            assertEquals(65504f, out.get(0));
            Tensor outBf16 = Tensor.allocate(arena, DType.BF16, 1, 2);
            MergeMath.prepare(a, b, 1.0, +1, false, w.shape()).apply(w, outBf16);
            assertEquals(DType.BF16.round(65992f), outBf16.get(0));
        }
    }

    /**
     * NaN or ±Inf in A or B made the merged element NaN or ±Inf, and it was written (the CLI's merge then
     * put 2304 NaN into a checkpoint, exit 0): refused, naming the element, as the backends' merge refuses
     * it. W's own non-finite element stays the caller's: merged over, it is written as it comes out.
     */
    @Test
    void aNonFiniteAdapterIsRefusedWhereWIsFinite() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor w = Tensor.of(arena, DType.F32, new float[] {1, 2}, 1, 2);
            Tensor b = Tensor.of(arena, DType.F32, new float[] {1}, 1, 1);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, 2);
            Tensor nanA = Tensor.of(arena, DType.F32, new float[] {0.5f, Float.NaN}, 1, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> MergeMath.prepare(nanA, b, 1.0, +1, false, w.shape()).apply(w, out));
            assertEquals("the merged W[0, 1] = 2.0 + γ·(B·A) = NaN is not finite while W's element is (lora_A or lora_B"
                    + " holds a non-finite value, or γ·B·A overflows fp32): it would be stored as NaN", e.getMessage());
            Tensor infB = Tensor.of(arena, DType.F32, new float[] {Float.NEGATIVE_INFINITY}, 1, 1);
            Tensor a = Tensor.of(arena, DType.F32, new float[] {0.5f, 1}, 1, 2);
            e = assertThrows(IllegalArgumentException.class, () -> MergeMath.prepare(a, infB, 1.0, -1, false, w.shape()).apply(w, out));
            assertTrue(e.getMessage().startsWith("the merged W[0, 0] = 1.0 - γ·(B·A) = Infinity is not finite"), e.getMessage());
            Tensor infW = Tensor.of(arena, DType.F32, new float[] {Float.POSITIVE_INFINITY, 2}, 1, 2);
            MergeMath.prepare(a, b, 1.0, +1, false, infW.shape()).apply(infW, out);
            assertEquals(Float.POSITIVE_INFINITY, out.get(0));
            assertEquals(3f, out.get(1));
        }
    }
}
