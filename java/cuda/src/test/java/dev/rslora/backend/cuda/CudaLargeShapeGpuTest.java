package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The large shapes (N up to 8192, d 4096/11008, r 16..256, bf16) against a sampled
 * double-precision reference: whole rows of Y, U and dX at sampled row indices (the mask uses the
 * absolute row), sampled entries of dB (given the kernel's U, which is checked on its own rows) and
 * of dA (with V recomputed in double over all N). Skipped where CUDA is unavailable.
 */
@Tag("gpu")
class CudaLargeShapeGpuTest {

    record Big(int n, int dIn, int dOut, int r, float p, GradMode mode) {
        long seed() {
            return ((long) n * 1_000_003L + dIn * 1009L + dOut * 13L + r) ^ (mode == GradMode.ACCUMULATE ? 77 : 0);
        }
    }

    static List<Big> shapes() {
        return List.of(
                new Big(8192, 4096, 4096, 16, 0.1f, GradMode.ASSIGN),
                new Big(8192, 4096, 11008, 64, 0.1f, GradMode.ACCUMULATE),
                new Big(1000, 11008, 4096, 256, 0.1f, GradMode.ASSIGN),
                new Big(8192, 11008, 4096, 256, 0f, GradMode.ASSIGN));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("shapes")
    void sampledRowsAndEntriesMatchDoublePrecision(Big c) {
        CudaBackend cuda = GpuSupport.backend();
        long seed = c.seed();
        SplittableRandom rnd = new SplittableRandom(seed);
        DType t = DType.BF16;
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.allocate(arena, t, c.n(), c.dIn());
            Tensor w = Tensor.allocate(arena, t, c.dOut(), c.dIn());
            Tensor bias = Tensor.allocate(arena, t, c.dOut());
            Tensor a = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor b = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            Tensor dy = Tensor.allocate(arena, t, c.n(), c.dOut());
            for (Tensor tt : new Tensor[] {x, w, bias, a, b, dy}) {
                GpuSupport.fill(tt, rnd, -1, 1);
            }
            double gamma = 16.0 / Math.sqrt(c.r());
            LoraParams p = new LoraParams(c.n(), c.dIn(), c.dOut(), c.r(), gamma, c.p(), seed, 11, 4, true, true, c.mode());
            DropoutMask mask = p.mask();
            Tensor u = GpuSupportNaN.of(arena, DType.F32, c.n(), c.r());
            Tensor y = GpuSupportNaN.of(arena, t, c.n(), c.dOut());
            Tensor dx = GpuSupportNaN.of(arena, t, c.n(), c.dIn());
            Tensor gA = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor gB = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            Tensor gA0 = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor gB0 = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            if (c.mode() == GradMode.ACCUMULATE) {
                GpuSupport.fill(gA0, rnd, -1, 1);
                GpuSupport.fill(gB0, rnd, -1, 1);
                gA.copyFrom(gA0);
                gB.copyFrom(gB0);
            }
            try (FrozenWeight fw = cuda.prepare(w, bias)) {
                cuda.forward(p, fw, x, a, b, u, y);
                cuda.backward(p, fw, x, a, b, u, dy, dx, gA, gB);
            }
            String ctx = c + " seed " + seed;
            TreeSet<Integer> rows = new TreeSet<>(List.of(0, 1, 63, 64, c.n() / 2, c.n() - 1));
            while (rows.size() < 7) {
                rows.add(rnd.nextInt(c.n()));
            }
            for (int i : rows) {
                double[] uRow = new double[c.r()];
                for (int j = 0; j < c.r(); j++) {
                    double s = 0;
                    for (int k = 0; k < c.dIn(); k++) {
                        s += dropped(mask, x, i, k) * a.get(j, k);
                    }
                    uRow[j] = s;
                }
                double[] yRow = new double[c.dOut()];
                for (int o = 0; o < c.dOut(); o++) {
                    double s = bias.get(o);
                    for (int k = 0; k < c.dIn(); k++) {
                        s += (double) x.get(i, k) * w.get(o, k);
                    }
                    double l = 0;
                    for (int j = 0; j < c.r(); j++) {
                        l += uRow[j] * b.get(o, j);
                    }
                    yRow[o] = s + gamma * l;
                }
                double[] vRow = new double[c.r()];
                for (int j = 0; j < c.r(); j++) {
                    double s = 0;
                    for (int o = 0; o < c.dOut(); o++) {
                        s += (double) dy.get(i, o) * b.get(o, j);
                    }
                    vRow[j] = s;
                }
                double[] dxRow = new double[c.dIn()];
                for (int k = 0; k < c.dIn(); k++) {
                    double s = 0;
                    for (int o = 0; o < c.dOut(); o++) {
                        s += (double) dy.get(i, o) * w.get(o, k);
                    }
                    double l = 0;
                    for (int j = 0; j < c.r(); j++) {
                        l += vRow[j] * a.get(j, k);
                    }
                    double m = mask == null ? 1 : mask.keep(i, k) ? mask.scale() : 0;
                    dxRow[k] = s + gamma * l * m;
                }
                check("U row " + i, u, i, uRow, 1e-5, 1e-5, ctx);
                check("Y row " + i, y, i, yRow, GpuSupport.rtol(t), 1e-5, ctx);
                check("dX row " + i, dx, i, dxRow, GpuSupport.rtol(t), 1e-5, ctx);
            }
            // dB[o][j] = (gB0 +) γ·Σ_i dY[i,o]·U[i,j] with the kernel's U (checked above on its rows)
            double[] dbRef = new double[16];
            double[] dbGot = new double[16];
            for (int q = 0; q < 16; q++) {
                int o = q == 0 ? c.dOut() - 1 : rnd.nextInt(c.dOut());
                int j = q == 1 ? c.r() - 1 : rnd.nextInt(c.r());
                double s = 0;
                for (int i = 0; i < c.n(); i++) {
                    s += (double) dy.get(i, o) * u.get(i, j);
                }
                dbRef[q] = (c.mode() == GradMode.ACCUMULATE ? gB0.get(o, j) : 0) + gamma * s;
                dbGot[q] = gB.get(o, j);
            }
            compare("dB samples", dbGot, dbRef, 1e-5, 1e-4, ctx);
            // dA[j][k] = (gA0 +) γ·Σ_i V[i,j]·D(X)[i,k], V column j in double over all N
            for (int j : new int[] {0, c.r() - 1}) {
                double[] vCol = new double[c.n()];
                for (int i = 0; i < c.n(); i++) {
                    double s = 0;
                    for (int o = 0; o < c.dOut(); o++) {
                        s += (double) dy.get(i, o) * b.get(o, j);
                    }
                    vCol[i] = s;
                }
                double[] daRef = new double[8];
                double[] daGot = new double[8];
                for (int q = 0; q < 8; q++) {
                    int k = q == 0 ? c.dIn() - 1 : rnd.nextInt(c.dIn());
                    double s = 0;
                    for (int i = 0; i < c.n(); i++) {
                        s += vCol[i] * dropped(mask, x, i, k);
                    }
                    daRef[q] = (c.mode() == GradMode.ACCUMULATE ? gA0.get(j, k) : 0) + gamma * s;
                    daGot[q] = gA.get(j, k);
                }
                compare("dA samples of row " + j, daGot, daRef, 1e-5, 1e-4, ctx);
            }
        }
    }

    private static double dropped(DropoutMask mask, Tensor x, int i, int k) {
        float v = x.get(i, k);
        return mask == null ? v : mask.keep(i, k) ? (double) (v * mask.scale()) : 0.0;
    }

    private static void check(String what, Tensor got, int row, double[] ref, double rtol, double atolFactor, String ctx) {
        double[] g = new double[ref.length];
        for (int k = 0; k < ref.length; k++) {
            g[k] = got.get(row, k);
        }
        compare(what, g, ref, rtol, atolFactor, ctx);
    }

    private static void compare(String what, double[] got, double[] ref, double rtol, double atolFactor, String ctx) {
        double max = 1e-30;
        for (double r : ref) {
            max = Math.max(max, Math.abs(r));
        }
        double atol = atolFactor * max;
        for (int k = 0; k < ref.length; k++) {
            double err = Math.abs(got[k] - ref[k]);
            if (!(err <= atol + rtol * Math.abs(ref[k]))) {
                fail(what + "[" + k + "]: got " + got[k] + " ref " + ref[k] + " (atol " + atol + ", rtol " + rtol + "), " + ctx);
            }
        }
    }

    /** NaN-filled outputs. */
    static final class GpuSupportNaN {
        static Tensor of(Arena arena, DType t, long... shape) {
            Tensor r = Tensor.allocate(arena, t, shape);
            r.fill(Float.NaN);
            return r;
        }
    }
}
