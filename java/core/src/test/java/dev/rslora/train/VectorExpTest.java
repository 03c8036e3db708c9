package dev.rslora.train;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link VectorExp} against Math.exp: within 2 ulp over its range, and its edges. */
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
            VectorExp.exp(FloatVector.fromArray(S, in, 0)).intoArray(out, 0);
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
            VectorExp.exp(FloatVector.fromArray(S, in, 0)).intoArray(out, 0);
            assertEquals(want[k], out[0], "exp(" + x[k] + ")");
        }
    }
}
