package dev.rslora.backend.cpu;

import dev.rslora.tensor.Tensor;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Elementwise checks {@code |got − ref| ≤ atol + rtol·|ref|} (SPEC.md §7). atol is given as a
 * fraction of the tensor's largest |ref| (sums over K grow with K; a bug is off by O(|ref|)).
 */
final class Compare {
    private Compare() {
    }

    static float[] values(Tensor t) {
        return t.toFloatArray();
    }

    static double maxAbs(float[] v) {
        double m = 0;
        for (float f : v) {
            m = Math.max(m, Math.abs(f));
        }
        return m;
    }

    /** Largest |got − ref|; NaN anywhere (a poisoned output left unwritten) gives +∞. */
    static double maxError(float[] got, float[] ref) {
        double m = 0;
        for (int i = 0; i < got.length; i++) {
            double e = Math.abs((double) got[i] - ref[i]);
            if (Double.isNaN(e)) {
                return Double.POSITIVE_INFINITY;
            }
            m = Math.max(m, e);
        }
        return m;
    }

    static void close(String what, Tensor got, Tensor ref, double atolFraction, double rtol, String context) {
        close(what, values(got), values(ref), atolFraction, rtol, cols(ref), context);
    }

    static void close(String what, float[] got, float[] ref, double atolFraction, double rtol, long cols,
                      String context) {
        double atol = atolFraction * Math.max(maxAbs(ref), 1e-30);
        int bad = 0;
        StringBuilder first = new StringBuilder();
        for (int i = 0; i < ref.length; i++) {
            double err = Math.abs((double) got[i] - ref[i]);
            if (!(err <= atol + rtol * Math.abs(ref[i]))) {
                if (bad < 5) {
                    first.append(String.format("%n  [%d, %d] got %s ref %s err %.3g (allowed %.3g)", i / cols,
                            i % cols, got[i], ref[i], err, atol + rtol * Math.abs(ref[i])));
                }
                bad++;
            }
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + ref.length + " elements out of tolerance (" + context + ")" + first);
        }
    }

    static long cols(Tensor t) {
        return t.rank() == 2 ? t.dim(1) : t.numel();
    }

    static void bitEqual(String what, Tensor got, Tensor ref, String context) {
        float[] g = values(got);
        float[] e = values(ref);
        for (int i = 0; i < e.length; i++) {
            if (Float.floatToRawIntBits(g[i]) != Float.floatToRawIntBits(e[i])) {
                fail(what + " differs at flat index " + i + ": got " + g[i] + " expected " + e[i] + " (" + context + ")");
            }
        }
    }

    /**
     * The elements with |got − ref| &gt; atol·max|finite ref| + ulp(dtype)·|ref| (an infinite or NaN
     * element must equal its reference exactly), as text naming the first and the worst error, or
     * null when there is none.
     */
    static String mismatch(String what, Tensor got, Tensor ref, double atolFraction) {
        float[] g = got.toFloatArray();
        float[] e = ref.toFloatArray();
        double rtol = switch (ref.dtype()) {
            case F32 -> 1e-5;
            case BF16 -> 0x1p-7;
            case F16 -> 0x1p-10;
        } * 1.01;
        double mx = 0;
        for (float f : e) {
            if (Float.isFinite(f)) {
                mx = Math.max(mx, Math.abs(f));
            }
        }
        double atol = atolFraction * Math.max(mx, 1e-30);
        int bad = 0;
        String first = null;
        double worst = 0;
        for (int i = 0; i < e.length; i++) {
            double err = Math.abs((double) g[i] - e[i]);
            if (!Float.isFinite(e[i]) || !Float.isFinite(g[i])) {
                if (Float.compare(g[i], e[i]) == 0) {
                    continue;
                }
                err = Double.NaN;
            }
            if (!(err <= atol + rtol * Math.abs(e[i]))) {
                if (first == null) {
                    first = "[" + i / Compare.cols(ref) + ", " + i % Compare.cols(ref) + "] got " + g[i] + " ref " + e[i];
                }
                bad++;
                worst = Double.isNaN(err) ? Double.POSITIVE_INFINITY : Math.max(worst, err);
            }
        }
        return first == null ? null : what + ": " + bad + "/" + e.length + " bad, first " + first + " worst err " + worst
                + " maxAbsRef " + Compare.maxAbs(e);
    }
}
