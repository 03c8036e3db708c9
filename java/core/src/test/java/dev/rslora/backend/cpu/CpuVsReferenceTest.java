package dev.rslora.backend.cpu;

import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The cpu backend against the double-accumulating reference over a covering subset of
 * N ∈ {1, 4, 7, 8, 9, 20, 64, 65, 70, 1025}, d ∈ {1, 3, 64, 129, 1024}, r ∈ {1, 2, 8, 16, 64, 256}:
 * every small shape in every dtype × dropout {0, 0.1} × {assign, accumulate}; the large shapes
 * (where the O(n·d²) oracle is slow) on a few combinations. N ≤ RowGrads.MAX_ROWS (64) takes the
 * row path (no cached adapter panels, outer-product gradients; N = 1 the one-row kernel); above,
 * N ≥ 2·MR·workers goes by chunks of rows, smaller N by columns with the gradient GEMMs (8
 * workers); some cases use 3 workers. Tolerances (SPEC.md §7): |got − ref| ≤
 * atol·max|ref| + rtol·|ref| per tensor and dtype, looser atol for dA/dB (sums over N); for BF16
 * and F16 the max error must also be at most 2× that of {@link NaiveLayer} (+1e-6·max|ref|).
 */
class CpuVsReferenceTest {
    private static final long BASE_SEED = Long.getLong("rslora.test.seed", 0x5EED_CAFEL);
    private static CpuBackend cpu;
    private static CpuBackend cpu3;
    private static CpuBackend cpu8;
    private static final ReferenceBackend REF = new ReferenceBackend();

    record Case(int n, int dIn, int dOut, int r, DType dtype, float p, GradMode mode, int threads) {
        @Override
        public String toString() {
            return "n=" + n + " dIn=" + dIn + " dOut=" + dOut + " r=" + r + " " + dtype + " p=" + p + " " + mode
                    + (threads != 2 ? " threads=" + threads : "");
        }
    }

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
        cpu3 = new CpuBackend(3);
        cpu8 = new CpuBackend(8);
    }

    @AfterAll
    static void stop() {
        cpu.close();
        cpu3.close();
        cpu8.close();
    }

    static List<Case> cases() {
        List<Case> out = new ArrayList<>();
        int[][] small = {{1, 1, 1, 1}, {7, 3, 64, 2}, {64, 129, 3, 8}, {7, 64, 129, 16}, {64, 3, 1, 64},
                {1, 129, 64, 256}, {33, 64, 64, 16}, {8, 129, 70, 24}, {4, 100, 33, 40}};
        for (int[] s : small) {
            for (DType t : DType.values()) {
                for (float p : new float[] {0f, 0.1f}) {
                    for (GradMode m : GradMode.values()) {
                        out.add(new Case(s[0], s[1], s[2], s[3], t, p, m, 2));
                    }
                }
            }
        }
        out.add(new Case(1025, 129, 64, 16, DType.F32, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(1025, 129, 64, 16, DType.BF16, 0f, GradMode.ASSIGN, 2));
        out.add(new Case(64, 1024, 1024, 64, DType.F32, 0.1f, GradMode.ASSIGN, 2));
        out.add(new Case(64, 1024, 1024, 64, DType.BF16, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(1025, 1024, 3, 8, DType.F16, 0.1f, GradMode.ASSIGN, 2));
        out.add(new Case(1025, 1024, 3, 8, DType.F32, 0f, GradMode.ACCUMULATE, 2));
        out.add(new Case(7, 1024, 1024, 256, DType.F32, 0.1f, GradMode.ASSIGN, 2));
        out.add(new Case(7, 1024, 129, 256, DType.F16, 0f, GradMode.ACCUMULATE, 2));
        out.add(new Case(1025, 3, 1024, 2, DType.F32, 0f, GradMode.ASSIGN, 2));
        out.add(new Case(1, 1024, 129, 1, DType.BF16, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(1025, 64, 129, 256, DType.F32, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(131, 129, 64, 64, DType.BF16, 0.1f, GradMode.ACCUMULATE, 3));
        // small N around the row-vector (N ≤ 8) and small-path (N < 2·MR·workers) boundaries
        out.add(new Case(8, 129, 70, 24, DType.F32, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(9, 129, 70, 24, DType.F16, 0.1f, GradMode.ASSIGN, 2));
        out.add(new Case(20, 300, 129, 40, DType.F32, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(20, 64, 257, 33, DType.BF16, 0f, GradMode.ASSIGN, 3));
        // the row path's last N and the first past it (RowGrads.MAX_ROWS); with 8 workers N = 70 is
        // below 2·MR·workers: the column split with the gradient GEMMs (two or three workers never get there)
        out.add(new Case(RowGrads.MAX_ROWS, 129, 70, 24, DType.BF16, 0.1f, GradMode.ACCUMULATE, 2));
        out.add(new Case(RowGrads.MAX_ROWS + 1, 129, 70, 24, DType.F32, 0.1f, GradMode.ASSIGN, 2));
        out.add(new Case(70, 129, 70, 24, DType.F16, 0.1f, GradMode.ACCUMULATE, 8));
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void matchesReference(Case c) {
        long seed = BASE_SEED ^ (c.toString().hashCode() * 0x9E3779B97F4A7C15L);
        try (LayerFixture f = new LayerFixture(c.n(), c.dIn(), c.dOut(), c.r(), c.dtype(), c.p(), c.mode(),
                (c.n() + c.dIn()) % 2 == 0, seed)) {
            String ctx = f.describe() + " (rerun with -Drslora.test.seed=" + BASE_SEED + ")";
            LayerFixture.Outputs ref = f.run(REF);
            LayerFixture.Outputs got = f.run(c.threads() == 3 ? cpu3 : c.threads() == 8 ? cpu8 : cpu);
            Tol tol = Tol.of(c.dtype());
            Compare.close("U", got.u(), ref.u(), 1e-5, 1e-5, ctx);
            Compare.close("Y", got.y(), ref.y(), tol.atol, tol.rtol, ctx);
            Compare.close("dX", got.dx(), ref.dx(), tol.atol, tol.rtol, ctx);
            Compare.close("dA", got.gradA(), ref.gradA(), tol.atolReduced, tol.rtol, ctx);
            Compare.close("dB", got.gradB(), ref.gradB(), tol.atolReduced, tol.rtol, ctx);
            if (c.dtype() != DType.F32) {
                NaiveLayer naive = new NaiveLayer(f);
                twiceNaive("Y", got.y().toFloatArray(), naive.y, ref.y().toFloatArray(), ctx);
                twiceNaive("dX", got.dx().toFloatArray(), naive.dx, ref.dx().toFloatArray(), ctx);
                twiceNaive("dA", got.gradA().toFloatArray(), naive.gradA, ref.gradA().toFloatArray(), ctx);
                twiceNaive("dB", got.gradB().toFloatArray(), naive.gradB, ref.gradB().toFloatArray(), ctx);
            }
        }
    }

    private static void twiceNaive(String what, float[] got, float[] naive, float[] ref, String ctx) {
        double e = Compare.maxError(got, ref);
        double en = Compare.maxError(naive, ref);
        double slack = 1e-6 * Compare.maxAbs(ref);
        assertTrue(e <= 2 * en + slack, what + ": cpu max error " + e + " > 2 × naive same-precision error " + en
                + " (" + ctx + ")");
    }

    /**
     * Per-dtype tolerances: atol as a fraction of max|ref| (Y, dX / dA, dB), rtol per element.
     * The oracle's output is itself rounded to the dtype, so two correct results may differ by
     * one unit in the last place: rtol is one ulp (2^-7 for BF16, 2^-10 for F16).
     */
    record Tol(double atol, double atolReduced, double rtol) {
        static Tol of(DType t) {
            return switch (t) {
                case F32 -> new Tol(2e-6, 1e-5, 1e-5);
                case BF16 -> new Tol(1e-4, 1e-3, 0x1p-7);
                case F16 -> new Tol(1e-4, 1e-3, 0x1p-10);
            };
        }
    }
}
