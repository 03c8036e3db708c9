package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The merged route ({@link MergedWeight}): when a pass takes it, and that both routes match the
 * reference on the same shapes (CpuVsReferenceTest covers the route across dtypes and paths; here
 * one backend with the route off runs the same inputs, so a shape that takes the route is also
 * checked on the segment route).
 */
class MergedWeightTest {
    private static LoraParams params(int n, int dIn, int dOut, int r, float p, boolean training, boolean active) {
        return new LoraParams(n, dIn, dOut, r, 0.5, p, 1L, 0L, 0, training, active, GradMode.ASSIGN);
    }

    @Test
    void takenFromTwiceTheFormedDimensionWithoutDropout() {
        assertTrue(MergedWeight.use(params(128, 64, 32, 8, 0f, true, true), 64, true));
        assertFalse(MergedWeight.use(params(127, 64, 32, 8, 0f, true, true), 64, true), "N below 2·d_in");
        assertTrue(MergedWeight.use(params(64, 64, 32, 8, 0f, true, true), 32, true), "the backward forms over d_out");
        assertFalse(MergedWeight.use(params(128, 64, 32, 8, 0.1f, true, true), 64, true), "dropout mask");
        assertTrue(MergedWeight.use(params(128, 64, 32, 8, 0.1f, false, true), 64, true), "eval mode: no mask");
        assertFalse(MergedWeight.use(params(128, 64, 32, 8, 0f, true, false), 64, true), "adapter inactive");
        assertFalse(MergedWeight.use(params(128, 64, 32, 8, 0f, true, true), 64, false), "route off");
        // W' above MAX_BYTES (64 MiB of packed fp32): d_out = d_in = 4160 packs to 66 MiB
        assertFalse(MergedWeight.use(params(1 << 14, 4160, 4160, 8, 0f, true, true), 4160, true), "W' too large");
        assertTrue(MergedWeight.use(params(1 << 14, 4000, 4000, 8, 0f, true, true), 4000, true), "W' within 64 MiB at every tile width");
        // the A operand [padRows(formed), r] past a Java array
        assertFalse(MergedWeight.use(params(Integer.MAX_VALUE, 1, 1, 1 << 30, 0f, true, true), 1, true), "Aᵀ rows too large");
    }

    @Test
    void offReadsTheProperty() {
        String old = System.getProperty(MergedWeight.PROPERTY);
        try {
            System.setProperty(MergedWeight.PROPERTY, "off");
            assertFalse(MergedWeight.enabledByProperty());
            System.setProperty(MergedWeight.PROPERTY, "auto");
            assertTrue(MergedWeight.enabledByProperty());
            System.clearProperty(MergedWeight.PROPERTY);
            assertTrue(MergedWeight.enabledByProperty());
        } finally {
            if (old == null) {
                System.clearProperty(MergedWeight.PROPERTY);
            } else {
                System.setProperty(MergedWeight.PROPERTY, old);
            }
        }
    }

    /** Both routes against the reference on shapes where both passes take the merged route (dropout 0, N ≥ 2·d). */
    @Test
    void bothRoutesMatchTheReference() {
        String old = System.getProperty(MergedWeight.PROPERTY);
        CpuBackend segment;
        try {
            System.setProperty(MergedWeight.PROPERTY, "off");
            segment = new CpuBackend(2);
        } finally {
            if (old == null) {
                System.clearProperty(MergedWeight.PROPERTY);
            } else {
                System.setProperty(MergedWeight.PROPERTY, old);
            }
        }
        ReferenceBackend ref = new ReferenceBackend();
        // row path (N ≥ 2·MR·workers), and the column split of small N ({20, 9, 5, 3})
        int[][] shapes = {{300, 129, 70, 24}, {260, 64, 129, 256}, {40, 17, 3, 5}, {20, 9, 5, 3}};
        try (segment; CpuBackend merged = new CpuBackend(2)) {
            for (int[] s : shapes) {
                for (DType t : new DType[] {DType.F32, DType.BF16}) {
                    for (GradMode m : GradMode.values()) {
                        try (LayerFixture f = new LayerFixture(s[0], s[1], s[2], s[3], t, 0f, m, true, 77L * s[0] + s[3])) {
                            String ctx = f.describe();
                            LayerFixture.Outputs want = f.run(ref);
                            CpuVsReferenceTest.Tol tol = CpuVsReferenceTest.Tol.of(t);
                            for (CpuBackend be : new CpuBackend[] {merged, segment}) {
                                LayerFixture.Outputs got = f.run(be);
                                String who = (be == merged ? "merged route " : "segment route ") + ctx;
                                Compare.close("U", got.u(), want.u(), 1e-5, 1e-5, who);
                                Compare.close("Y", got.y(), want.y(), tol.atol(), tol.rtol(), who);
                                Compare.close("dX", got.dx(), want.dx(), tol.atol(), tol.rtol(), who);
                                Compare.close("dA", got.gradA(), want.gradA(), tol.atolReduced(), tol.rtol(), who);
                                Compare.close("dB", got.gradB(), want.gradB(), tol.atolReduced(), tol.rtol(), who);
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * A row of X (or dY) holding ±Inf gives the reference's kind of result on both routes: NaN where
     * γ·U·Bᵀ (γ·V·A) meets Inf·0 or Infs of both signs, ±Inf or finite where the reference has them.
     * W' = W + γB·A folds the adapter in before X meets it, so without the per-row redo those rows came
     * out ±Inf on the merged route (the kind depended on the batch size). Row path and column split,
     * B = 0 (a fresh adapter) and B random.
     */
    @Test
    void nonFiniteRowsGiveTheReferencesKindOfResultOnBothRoutes() {
        ReferenceBackend ref = new ReferenceBackend();
        int[][] shapes = {{300, 129, 70, 24}, {20, 9, 5, 3}};
        try (CpuBackend segment = segmentBackend(); CpuBackend merged = new CpuBackend(2)) {
            for (int[] s : shapes) {
                for (boolean zeroB : new boolean[] {true, false}) {
                    try (LayerFixture f = new LayerFixture(s[0], s[1], s[2], s[3], DType.F32, 0f, GradMode.ASSIGN, true, 5L * s[0])) {
                        if (zeroB) {
                            f.b.fill(0f);
                        }
                        f.x.set(1, 0, Float.POSITIVE_INFINITY);
                        f.x.set(s[0] - 2, s[1] - 1, Float.NEGATIVE_INFINITY);
                        f.dy.set(2, 0, Float.NEGATIVE_INFINITY);
                        f.dy.set(s[0] - 1, s[2] - 1, Float.POSITIVE_INFINITY);
                        String ctx = f.describe() + (zeroB ? ", B = 0" : "");
                        assertTrue(MergedWeight.use(f.params, s[1], true) && MergedWeight.use(f.params, s[2], true), ctx);
                        LayerFixture.Outputs want = f.run(ref);
                        for (CpuBackend be : new CpuBackend[] {merged, segment}) {
                            LayerFixture.Outputs got = f.run(be);
                            String who = (be == merged ? "merged route " : "segment route ") + ctx;
                            sameKinds("Y", got.y(), want.y(), who);
                            sameKinds("dX", got.dx(), want.dx(), who);
                            sameKinds("dA", got.gradA(), want.gradA(), who);
                            sameKinds("dB", got.gradB(), want.gradB(), who);
                        }
                    }
                }
            }
        }
    }

    /**
     * W' = W + γB·A that is not finite somewhere sends the pass to the segment route, which gives the
     * reference's result: γB·A past fp32's range while Y = X·Wᵀ + γ(X·Aᵀ)·Bᵀ stays finite (A = 1e30,
     * B = 1e10, X = 1e-20: the merged route gave Y = Inf and dX = NaN where the reference gives 2.6e22 and
     * ±Inf), an Inf in B or in A (NaN from the merged route where the reference gives ±Inf), and an Inf in
     * W. Both shapes take the route in both passes; the second has N ≤ 64 (the row-path gradients).
     */
    @Test
    void wPrimeNotFiniteTakesTheSegmentRoute() {
        ReferenceBackend ref = new ReferenceBackend();
        int[][] shapes = {{300, 129, 70, 24}, {40, 16, 16, 4}};
        String[] cases = {"overflowing γB·A", "B[0, 0] = +Inf", "A[0, 2] = +Inf", "W[1, 1] = +Inf"};
        try (CpuBackend merged = new CpuBackend(2)) {
            for (int[] s : shapes) {
                for (String c : cases) {
                    try (LayerFixture f = new LayerFixture(s[0], s[1], s[2], s[3], DType.F32, 0f, GradMode.ASSIGN, true, 7L * s[0])) {
                        switch (c) {
                            case "overflowing γB·A" -> {
                                f.a.fill(1e30f);
                                f.b.fill(1e10f);
                                f.x.fill(1e-20f);
                            }
                            case "B[0, 0] = +Inf" -> f.b.set(0, 0, Float.POSITIVE_INFINITY);
                            case "A[0, 2] = +Inf" -> f.a.set(0, 2, Float.POSITIVE_INFINITY);
                            default -> f.w.set(1, 1, Float.POSITIVE_INFINITY);
                        }
                        String ctx = f.describe() + ", " + c;
                        assertTrue(MergedWeight.use(f.params, s[1], true) && MergedWeight.use(f.params, s[2], true), ctx);
                        LayerFixture.Outputs want = f.run(ref);
                        LayerFixture.Outputs got = f.run(merged);
                        sameValues("Y", got.y(), want.y(), ctx);
                        sameValues("dX", got.dx(), want.dx(), ctx);
                        sameValues("dA", got.gradA(), want.gradA(), ctx);
                        sameValues("dB", got.gradB(), want.gradB(), ctx);
                    }
                }
            }
        }
    }

    /** NaN, +Inf and −Inf where the reference has them, and finite values within 1e-4 of its, relative to the largest. */
    private static void sameValues(String what, Tensor got, Tensor want, String ctx) {
        double scale = 0;
        for (long i = 0; i < want.numel(); i++) {
            float w = want.get(i);
            if (Float.isFinite(w)) {
                scale = Math.max(scale, Math.abs(w));
            }
        }
        for (long i = 0; i < want.numel(); i++) {
            float g = got.get(i);
            float w = want.get(i);
            boolean same = Float.isNaN(w) ? Float.isNaN(g)
                    : Float.isInfinite(w) ? g == w
                    : Float.isFinite(g) && Math.abs(g - w) <= 1e-4 * Math.max(scale, Float.MIN_NORMAL);
            if (!same) {
                fail(what + "[" + i + "]: " + g + ", the reference " + w + " (" + ctx + ")");
            }
        }
    }

    /** Every element NaN, +Inf, −Inf or finite exactly where the reference's is. */
    private static void sameKinds(String what, Tensor got, Tensor want, String ctx) {
        int nonFinite = 0;
        for (long i = 0; i < want.numel(); i++) {
            float g = got.get(i);
            float w = want.get(i);
            boolean same = Float.isNaN(w) ? Float.isNaN(g) : Float.isInfinite(w) ? g == w : Float.isFinite(g);
            if (!same) {
                fail(what + "[" + i + "]: " + g + ", the reference " + w + " (" + ctx + ")");
            }
            nonFinite += Float.isFinite(w) ? 0 : 1;
        }
        if (what.equals("Y") || what.equals("dX")) {
            assertTrue(nonFinite > 0, what + ": the infinite rows reach it (" + ctx + ")");
        }
    }

    private static CpuBackend segmentBackend() {
        String old = System.getProperty(MergedWeight.PROPERTY);
        try {
            System.setProperty(MergedWeight.PROPERTY, "off");
            return new CpuBackend(2);
        } finally {
            if (old == null) {
                System.clearProperty(MergedWeight.PROPERTY);
            } else {
                System.setProperty(MergedWeight.PROPERTY, old);
            }
        }
    }
}
