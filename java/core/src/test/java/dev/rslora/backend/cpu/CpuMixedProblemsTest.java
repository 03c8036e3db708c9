package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The cpu backend against the reference on randomly drawn problems that the fixed-dtype sweep of
 * {@link CpuVsReferenceTest} does not reach: each of X, W, b, A, B, dY, Y, dX, dA, dB of its own
 * dtype (or all of one), 1, 2, 3 and 5 workers, arenas confined to the calling thread (the serial
 * route), a forward without U (inference) that must give the Y of one with U, dX skipped, the
 * adapter inactive (dA and dB untouched), eval mode with p &gt; 0, negative γ, N on both sides of
 * the merged route's 2·d_in and of the row-path thresholds, r above d. Seeded
 * ({@code -Drslora.test.seed}); every failing problem is printed with its shapes and dtypes.
 */
class CpuMixedProblemsTest {
    private static final long BASE_SEED = Long.getLong("rslora.test.seed", 0x313L);
    private static final int PROBLEMS = 60;
    private static final int[] NS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17, 31, 33, 48, 65, 97, 130};
    private static final int[] DS = {1, 2, 3, 5, 17, 31, 33, 63, 65, 129, 200};
    private static final int[] RS = {1, 2, 3, 7, 9, 17, 33, 70};
    private static final String[] NAMES = {"Y", "U", "dX", "dA", "dB"};
    private static final ReferenceBackend REF = new ReferenceBackend();
    private static CpuBackend[] cpus;

    @BeforeAll
    static void start() {
        cpus = new CpuBackend[] {new CpuBackend(1), new CpuBackend(2), new CpuBackend(3), new CpuBackend(5)};
    }

    @AfterAll
    static void stop() {
        for (CpuBackend c : cpus) {
            c.close();
        }
    }

    @Test
    void randomProblemsMatchTheReference() {
        List<String> bad = new ArrayList<>();
        for (int it = 0; it < PROBLEMS; it++) {
            SplittableRandom rng = new SplittableRandom(BASE_SEED * 1000003 + it);
            int n = NS[rng.nextInt(NS.length)];
            int dIn = DS[rng.nextInt(DS.length)];
            int dOut = DS[rng.nextInt(DS.length)];
            int r = RS[rng.nextInt(RS.length)];
            if (rng.nextInt(4) == 0) {
                n = Math.min(140, Math.max(1, 2 * dIn + rng.nextInt(-1, 2)));  // either side of the merged route
            }
            DType one = DType.values()[rng.nextInt(3)];
            boolean mixed = rng.nextBoolean();
            DType[] t = new DType[10];  // X, W, b, A, B, dY, Y, dX, dA, dB
            for (int k = 0; k < t.length; k++) {
                t[k] = mixed ? DType.values()[rng.nextInt(3)] : one;
            }
            float p = rng.nextBoolean() ? 0f : 0.3f;
            boolean training = rng.nextInt(4) != 0;
            boolean active = rng.nextInt(6) != 0;
            GradMode mode = rng.nextBoolean() ? GradMode.ASSIGN : GradMode.ACCUMULATE;
            boolean withBias = rng.nextBoolean();
            boolean withDx = rng.nextInt(5) != 0;
            boolean withU = rng.nextInt(5) != 0;
            CpuBackend cpu = cpus[rng.nextInt(cpus.length)];
            double gamma = (rng.nextBoolean() ? 1 : -1) * 2.0 / Math.sqrt(r) * (0.5 + rng.nextDouble());
            LoraParams par = new LoraParams(n, dIn, dOut, r, gamma, p, rng.nextLong(), rng.nextInt(100), rng.nextInt(9),
                    training, active, mode);
            boolean confined = it % 5 == 4;
            String ctx = "problem " + it + ": n=" + n + " dIn=" + dIn + " dOut=" + dOut + " r=" + r + " dtypes(X,W,b,A,B,dY,Y,dX,dA,dB)="
                    + Arrays.toString(t) + " p=" + p + " training=" + training + " active=" + active + " " + mode + " bias="
                    + withBias + " dX=" + withDx + " U=" + withU + " threads=" + cpu.threads() + (confined ? " confined" : "")
                    + " seed=" + BASE_SEED;
            try (Arena arena = confined ? Arena.ofConfined() : Arena.ofShared()) {
                Tensor x = random(arena, rng, t[0], 1, n, dIn);
                Tensor w = random(arena, rng, t[1], 1 / Math.sqrt(dIn), dOut, dIn);
                Tensor bias = withBias ? random(arena, rng, t[2], 1, dOut) : null;
                Tensor a = random(arena, rng, t[3], 1 / Math.sqrt(dIn), r, dIn);
                Tensor b = random(arena, rng, t[4], 1, dOut, r);
                Tensor dy = random(arena, rng, t[5], 1, n, dOut);
                Tensor gA0 = random(arena, rng, t[8], 1, r, dIn);
                Tensor gB0 = random(arena, rng, t[9], 1, dOut, r);
                Tensor[] ref = run(REF, par, arena, t, x, w, bias, a, b, dy, gA0, gB0, withDx, true, bad, ctx);
                Tensor[] got = run(cpu, par, arena, t, x, w, bias, a, b, dy, gA0, gB0, withDx, withU, bad, ctx);
                for (int q = 0; q < NAMES.length; q++) {
                    if (ref[q] == null || (q == 1 && !active)) {
                        continue;
                    }
                    // fp32 sums may cancel: atol a fraction of max|ref| (a bug is off by O(max|ref|)), rtol an ulp of the dtype
                    double atol = got[q].dtype() == DType.F32 ? (q < 3 ? 2e-5 : 5e-5) : (q < 3 ? 1e-4 : 1e-3);
                    String e = Compare.mismatch(NAMES[q], got[q], ref[q], atol);
                    if (e != null) {
                        bad.add(e + " (" + ctx + ")");
                    }
                }
            } catch (RuntimeException | Error e) {
                bad.add("threw " + e + " (" + ctx + ")");
            }
        }
        if (!bad.isEmpty()) {
            fail(bad.size() + " of " + PROBLEMS + " problems failed:\n" + String.join("\n", bad.subList(0, Math.min(20, bad.size()))));
        }
    }

    /**
     * Forward then backward through {@code be} with outputs poisoned (dA, dB start from gA0, gB0 when
     * accumulating or with the adapter inactive); without U, the forward runs once without it and once
     * with it, and both Ys must be the same bits. Returns Y, U, dX, dA, dB (dX null when skipped).
     */
    private static Tensor[] run(Backend be, LoraParams par, Arena arena, DType[] t, Tensor x, Tensor w, Tensor bias, Tensor a,
                                Tensor b, Tensor dy, Tensor gA0, Tensor gB0, boolean withDx, boolean withU, List<String> bad,
                                String ctx) {
        int n = par.n();
        try (FrozenWeight fw = be.prepare(w, bias)) {
            Tensor y = poisoned(arena, t[6], n, par.dOut());
            Tensor u = poisoned(arena, DType.F32, n, par.rank());
            if (!withU) {
                be.forward(par, fw, x, a, b, null, y);
                Tensor withUy = poisoned(arena, t[6], n, par.dOut());
                be.forward(par, fw, x, a, b, u, withUy);
                String e = Compare.mismatch("Y without U against Y with U", y, withUy, 0);
                if (e != null) {
                    bad.add(e + " (" + ctx + ")");
                }
            } else {
                be.forward(par, fw, x, a, b, u, y);
            }
            Tensor dx = withDx ? poisoned(arena, t[7], n, par.dIn()) : null;
            Tensor gA = poisoned(arena, t[8], par.rank(), par.dIn());
            Tensor gB = poisoned(arena, t[9], par.dOut(), par.rank());
            if (par.gradMode() == GradMode.ACCUMULATE || !par.adapterActive()) {
                gA.copyFrom(gA0);
                gB.copyFrom(gB0);
            }
            be.backward(par, fw, x, a, b, u, dy, dx, gA, gB);
            return new Tensor[] {y, u, dx, gA, gB};
        }
    }

    private static Tensor random(Arena arena, SplittableRandom rng, DType t, double scale, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        for (long i = 0; i < out.numel(); i++) {
            out.set(i, (float) (scale * rng.nextDouble(-1, 1)));
        }
        return out;
    }

    private static Tensor poisoned(Arena arena, DType t, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        out.fill(Float.NaN);
        return out;
    }
}
