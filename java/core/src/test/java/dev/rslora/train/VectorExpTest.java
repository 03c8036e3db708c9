package dev.rslora.train;

import dev.rslora.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link VectorExp} against Math.exp: within 2 ulp over its range, and its edges; the scaled store
 * and the blocked sum over one run of values.
 */
class VectorExpTest {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    @Test
    void withinTwoUlpOfMathExpOverItsRange() {
        int l = S.length();
        float[] in = new float[l];
        float[] out = new float[l];
        double worst = 0;
        float worstX = 0;
        int count = 0;
        // every 2^-12 step of [-87.33, 88], plus the floats next to the range ends
        for (double x0 = VectorExp.MIN_X; x0 < 88; x0 += l / 4096.0) {
            for (int i = 0; i < l; i++) {
                in[i] = (float) (x0 + i / 4096.0);
            }
            exp(in, out);
            for (int i = 0; i < l; i++) {
                double want = Math.exp(in[i]);
                double ulps = Math.abs(out[i] - want) / Math.ulp((float) want);
                count++;
                if (ulps > worst) {
                    worst = ulps;
                    worstX = in[i];
                }
            }
        }
        assertTrue(count > 700_000, "points checked: " + count);
        assertTrue(worst <= 2, "worst error " + worst + " ulp at x = " + worstX);
    }

    @Test
    void edges() {
        float[] x = {Float.NEGATIVE_INFINITY, -1000f, -87.4f, Float.NaN, 0f, -0f, 100f, Float.POSITIVE_INFINITY};
        float[] want = {0f, 0f, 0f, Float.NaN, 1f, 1f, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY};
        int l = S.length();
        for (int k = 0; k < x.length; k++) {
            float[] in = new float[l];
            java.util.Arrays.fill(in, x[k]);
            float[] out = new float[l];
            exp(in, out);
            assertEquals(want[k], out[0], "exp(" + x[k] + ")");
        }
    }

    /**
     * One run of values through both modes: the store gives scale·e^(x − shift) per value (the same
     * bits as the unscaled values times the scale), the sum the blocks' fp32 lane sums added in
     * double in lane order, from the same e^(x − shift).
     */
    @Test
    void scaledStoreAndBlockedSumOfOneRun() {
        int l = S.length();
        int count = l * (2 * VectorExp.BLOCK + 3);  // two whole blocks and a short one
        java.util.SplittableRandom rng = new java.util.SplittableRandom(5);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = arena.allocate(4L * count + 8);
            for (int i = 0; i < count; i++) {
                xs.set(DType.LE_FLOAT, 8 + 4L * i, (float) rng.nextDouble(-30, 10));
            }
            float shift = 7.25f;
            MemorySegment plain = arena.allocate(4L * count + 8);
            MemorySegment scaled = arena.allocate(4L * count + 8);
            assertEquals(0.0, VectorExp.exp(xs, 8, count, shift, plain, 1f));
            VectorExp.exp(xs, 8, count, shift, scaled, -0.375f);
            double want = 0;
            for (int b = 0; b < count; b += VectorExp.BLOCK * l) {
                float[] acc = new float[l];
                for (int v = b; v < Math.min(count, b + VectorExp.BLOCK * l); v++) {
                    float e = plain.get(DType.LE_FLOAT, 8 + 4L * v);
                    float x = xs.get(DType.LE_FLOAT, 8 + 4L * v) - shift;
                    assertTrue(Math.abs(e - Math.exp(x)) <= 2 * Math.ulp((float) Math.exp(x)), "e^" + x + ": " + e);
                    assertEquals(Float.floatToRawIntBits(-0.375f * e), Float.floatToRawIntBits(scaled.get(DType.LE_FLOAT, 8 + 4L * v)),
                            "scaled value " + v);
                    acc[v % l] += e;
                }
                for (float a : acc) {
                    want += a;
                }
            }
            assertEquals(want, VectorExp.exp(xs, 8, count, shift, null, 0f), "the blocked sum");
        }
    }

    /** out[i] = e^in[i] for the L values of in, through VectorExp's store (shift 0, scale 1: exact). */
    private static void exp(float[] in, float[] out) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = arena.allocate(4L * in.length);
            MemorySegment ds = arena.allocate(4L * in.length);
            MemorySegment.copy(in, 0, xs, DType.LE_FLOAT, 0, in.length);
            VectorExp.exp(xs, 0, in.length, 0f, ds, 1f);
            MemorySegment.copy(ds, DType.LE_FLOAT, 0, out, 0, in.length);
        }
    }
}
