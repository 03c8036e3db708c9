package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Randomized differential sequences of steps on one layer, with writes between the steps: each
 * problem (d_in, d_out, r drawn from awkward sizes, r above d, one dtype or each tensor its own, a
 * bias or none, tensors native, at an odd address, or over heap long[] or byte[] arrays, outputs
 * native or not, a shared or confined arena) runs 1 to 5 steps of forward (with or without U,
 * training or eval, dropout with p from 1e-9 to 1 − 2^-24 and seed, step and layer over their whole
 * ranges, the adapter active or not) and backward (dX or not, assign or accumulate, dY sharing X's
 * memory), N changing from step to step around the row-path, row/column-split and merged-route
 * limits, ±Inf and NaN now and then in X or dY. Between steps: A written element by element or
 * copied, B written through a kept segment view, an element of W or the bias written, the other
 * adapter (possibly of another rank) swapped in, γ changed, merge or unmerge, ±Inf/NaN written
 * into A, B or W. Every output is compared with the reference (tolerances of
 * {@link CpuMixedProblemsTest}), and bit for bit between cpu backends of 1, 2 and 3 workers that
 * keep their prepared weights from step to step and a new backend of 1 to 8 workers that prepares
 * a fresh weight every step (stale packed panels or stamps, or a result that depends on the
 * worker count, show as a bit difference); merged Ws are compared too.
 *
 * <p>The test runs {@link #PROBLEMS} problems of a fixed seed ({@code -Drslora.test.seed}); for
 * longer runs, {@code main(SECONDS, SEED)} on the test class path, with {@code -Dfuzz.big=true}
 * for packed Ws past 8 MB (streamed chunks) and {@code -Drslora.cpu.vectorBits} for other tiles.
 */
public final class CpuStepSequenceTest {
    static final int PROBLEMS = 30;
    static boolean allowBig = true;

    @org.junit.jupiter.api.Test
    void stepSequencesMatchTheReferenceAndEachOther() {
        long seed = Long.getLong("rslora.test.seed", 0x5E9L);
        allowBig = false;
        failures.clear();
        cpus = new CpuBackend[] {new CpuBackend(1), new CpuBackend(2), new CpuBackend(3)};
        try {
            for (int it = 0; it < PROBLEMS && failures.isEmpty(); it++) {
                try {
                    scenario(seed, it);
                } catch (RuntimeException | Error e) {
                    fail("problem " + it + " threw " + e);
                } finally {
                    if (fresh != null) {
                        fresh.close();
                    }
                }
            }
        } finally {
            for (CpuBackend c : cpus) {
                c.close();
            }
        }
        if (!failures.isEmpty()) {
            org.junit.jupiter.api.Assertions.fail(failures.size() + " mismatches:\n"
                    + String.join("\n", failures.subList(0, Math.min(10, failures.size()))));
        }
    }

    static final int[] DS = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 257};
    static final int[] NS = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 95, 96, 97, 127, 128, 129, 255, 256, 257, 300};
    static final int[] RS = {1, 2, 3, 7, 8, 9, 16, 33, 64};
    static final String[] NAMES = {"Y", "U", "dX", "dA", "dB"};
    static final ReferenceBackend REF = new ReferenceBackend();
    static CpuBackend[] cpus;
    static CpuBackend fresh;
    static final List<String> failures = new ArrayList<>();
    static boolean verbose = Boolean.getBoolean("fuzz.verbose");

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 60;
        long seed = args.length > 1 ? Long.parseLong(args[1]) : System.nanoTime();
        int only = args.length > 2 ? Integer.parseInt(args[2]) : -1;
        cpus = new CpuBackend[] {new CpuBackend(1), new CpuBackend(2), new CpuBackend(3)};
        System.out.println("tile: " + CpuBackend.tileShape() + " seed=" + seed);
        long end = System.nanoTime() + (long) (seconds * 1e9);
        int it = 0;
        int steps = 0;
        for (; only >= 0 ? it <= only : System.nanoTime() < end; it++) {
            if (only >= 0 && it != only) {
                continue;
            }
            try {
                steps += scenario(seed, it);
            } catch (RuntimeException | Error e) {
                fail("scenario " + it + " threw " + e);
                e.printStackTrace(System.out);
            } finally {
                if (fresh != null) {
                    fresh.close();
                }
            }
            if (failures.size() > 40) {
                break;
            }
        }
        System.out.println("scenarios=" + it + " steps=" + steps + " failures=" + failures.size());
        for (CpuBackend c : cpus) {
            c.close();
        }
        System.exit(failures.isEmpty() ? 0 : 1);
    }

    static void fail(String s) {
        failures.add(s);
        if (allowBig) {
            System.out.println("FAIL " + s);
        }
    }

    static int pick(SplittableRandom rng, int[] v) {
        return v[rng.nextInt(v.length)];
    }

    static DType dt(SplittableRandom rng) {
        return DType.values()[rng.nextInt(3)];
    }

    static final class Layer {
        Tensor[] w = new Tensor[5];   // ref, cpu1, cpu2, cpu3, fresh copy
        FrozenWeight[] fw = new FrozenWeight[4];
    }

    static int scenario(long seed, int it) {
        SplittableRandom rng = new SplittableRandom(seed * 1000003L + it);
        int dIn = pick(rng, DS);
        int dOut = pick(rng, DS);
        if ((rng.nextInt(30) == 0 && allowBig) || Boolean.getBoolean("fuzz.big")) {
            dIn = 700 + rng.nextInt(1200);
            dOut = 1300 + rng.nextInt(800);   // packed W past 8 MB: streamed
        }
        int r = pick(rng, RS);
        if (rng.nextInt(8) == 0) {
            r = Math.max(dIn, dOut) + 1 + rng.nextInt(5);
        }
        if ((long) dIn * dOut * r > 4_000_000L) {
            r = Math.max(1, (int) (4_000_000L / ((long) dIn * dOut)));
        }
        boolean mixed = rng.nextBoolean();
        DType one = dt(rng);
        DType[] t = new DType[10];  // X, W, b, A, B, dY, Y, dX, dA, dB
        for (int k = 0; k < t.length; k++) {
            t[k] = mixed ? dt(rng) : one;
        }
        boolean withBias = rng.nextBoolean();
        boolean confined = rng.nextInt(8) == 0;
        int heapMode = rng.nextInt(6);  // 0: inputs on heap (long[]), 1: heap byte[], 2: native at an odd address
        double gamma = (rng.nextBoolean() ? 1 : -1) * Math.exp(rng.nextDouble(-4, 4));
        long dseed = rng.nextLong();
        int layerId = rng.nextBoolean() ? rng.nextInt(50) : rng.nextInt();
        long step0 = rng.nextBoolean() ? 0 : rng.nextLong();
        float[] ps = {1e-9f, 1e-7f, 0.1f, 0.3f, 0.5f, 0.9f, 0.99f, 0.99999994f, (float) rng.nextDouble()};
        float pChoice = ps[rng.nextInt(ps.length)];
        int r2 = rng.nextInt(3) == 0 ? pick(rng, RS) : r;
        int nSteps = 1 + rng.nextInt(5);
        String head = "it=" + it + " seed=" + seed + " dIn=" + dIn + " dOut=" + dOut + " r=" + r + " dtypes(X,W,b,A,B,dY,Y,dX,dA,dB)="
                + Arrays.toString(t) + " bias=" + withBias + (confined ? " confined" : "") + (heapMode == 0 ? " heap" : heapMode == 1 ? " heapBytes" : heapMode == 2 ? " odd" : "");
        if (verbose) {
            System.out.println(head);
        }
        fresh = new CpuBackend(1 + rng.nextInt(8));
        head += " freshThreads=" + fresh.threads();
        try (Arena arena = confined ? Arena.ofConfined() : Arena.ofShared()) {
            Alloc al = new Alloc(arena, heapMode);
            al.outHeap = rng.nextBoolean();
            Layer L = new Layer();
            Tensor w0 = al.random(rng, t[1], 1 / Math.sqrt(dIn), dOut, dIn);
            for (int k = 0; k < 5; k++) {
                L.w[k] = al.copy(w0);
            }
            Tensor bias = withBias ? al.random(rng, t[2], 1, dOut) : null;
            Tensor[] as = {al.random(rng, t[3], 1 / Math.sqrt(dIn), r, dIn), al.random(rng, t[3], 1 / Math.sqrt(dIn), r2, dIn)};
            Tensor[] bs = {al.random(rng, t[4], 1, dOut, r), al.random(rng, t[4], 1, dOut, r2)};
            int which = 0;
            L.fw[0] = REF.prepare(L.w[0], bias);
            for (int k = 0; k < 3; k++) {
                L.fw[k + 1] = cpus[k].prepare(L.w[k + 1], bias);
            }
            boolean merged = false;
            StringBuilder hist = new StringBuilder();
            for (int s = 0; s < nSteps; s++) {
                int n;
                int choice = rng.nextInt(5);
                if (choice == 0) {
                    n = Math.max(1, 2 * dIn + rng.nextInt(-1, 2));
                } else if (choice == 1) {
                    n = Math.max(1, 2 * dOut + rng.nextInt(-1, 2));
                } else {
                    n = pick(rng, NS);
                }
                if (Boolean.getBoolean("fuzz.big")) {
                    n = new int[] {1, 3, 9, 65, 129, 200, 257}[rng.nextInt(7)];
                } else if ((long) n * dIn * dOut > 40_000_000L) {
                    n = Math.max(1, (int) (40_000_000L / ((long) dIn * dOut)));
                }
                if (n > 600) {
                    n = 600;
                }
                float p = rng.nextInt(3) == 0 ? pChoice : 0f;
                boolean training = rng.nextInt(4) != 0;
                boolean active = merged ? rng.nextInt(4) == 0 : rng.nextInt(8) != 0;
                GradMode mode = rng.nextBoolean() ? GradMode.ASSIGN : GradMode.ACCUMULATE;
                boolean withDx = rng.nextInt(4) != 0;
                boolean withU = rng.nextInt(4) != 0;
                boolean doBackward = rng.nextInt(5) != 0;
                int rr = which == 0 ? r : r2;
                LoraParams par = new LoraParams(n, dIn, dOut, rr, gamma, p, dseed, step0 + s, layerId, training, active, mode);
                String ctx = head + " | history[" + hist + "] | step " + s + ": n=" + n + " p=" + p + " training=" + training
                        + " active=" + active + " " + mode + " dX=" + withDx + " U=" + withU + " bwd=" + doBackward
                        + " gamma=" + gamma + " adapter=" + which;
                if (verbose) {
                    System.out.println("  " + ctx.substring(head.length()));
                }
                Tensor x = al.random(rng, t[0], 1, n, dIn);
                Tensor dy = al.random(rng, t[5], 1, n, dOut);
                String inj = "";
                if (rng.nextInt(10) == 0) {
                    float[] vals = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN};
                    for (int c = 1 + rng.nextInt(2); c > 0; c--) {
                        Tensor tgt = rng.nextBoolean() ? x : dy;
                        long i = rng.nextLong(tgt.numel());
                        float v = vals[rng.nextInt(3)];
                        tgt.set(i, v);
                        inj += (tgt == x ? "X" : "dY") + "[" + i + "]=" + v + ",";
                    }
                    ctx += " inject " + inj;
                }
                if (dIn == dOut && t[0] == t[5] && rng.nextInt(4) == 0) {
                    dy = x;   // inputs may share memory
                    ctx += " dY=X";
                }
                Tensor gA0 = al.random(rng, t[8], 1, rr, dIn);
                Tensor gB0 = al.random(rng, t[9], 1, dOut, rr);
                Tensor a = as[which];
                Tensor b = bs[which];
                // a freshly prepared weight on a copy of cpu2's current W
                L.w[4].copyFrom(L.w[2]);
                Tensor[][] out = new Tensor[5][];
                out[0] = run(REF, L.fw[0], par, al, t, x, a, b, dy, gA0, gB0, withDx, true, doBackward, ctx);
                for (int k = 0; k < 3; k++) {
                    out[k + 1] = run(cpus[k], L.fw[k + 1], par, al, t, x, a, b, dy, gA0, gB0, withDx, withU, doBackward, ctx);
                }
                try (FrozenWeight ffw = fresh.prepare(L.w[4], bias)) {
                    out[4] = run(fresh, ffw, par, al, t, x, a, b, dy, gA0, gB0, withDx, withU, doBackward, ctx);
                }
                for (int q = 0; q < NAMES.length; q++) {
                    if (out[0][q] == null || (q == 1 && !active)) {
                        continue;
                    }
                    double atol = out[1][q].dtype() == DType.F32 ? (q < 3 ? 2e-5 : 5e-5) : (q < 3 ? 1e-4 : 1e-3);
                    String e = Compare.mismatch(NAMES[q], out[1][q], out[0][q], atol);
                    if (e != null) {
                        fail(e + " cpu1 vs ref (" + ctx + ")");
                    }
                    for (int k = 2; k <= 4; k++) {
                        String d = bitDiff(NAMES[q], out[k][q], out[1][q]);
                        if (d != null) {
                            fail(d + " " + (k == 4 ? "fresh-prepared cpu2" : "cpu" + k) + " vs cpu1 (" + ctx + ")");
                        }
                    }
                }
                // a write between steps
                int m = rng.nextInt(12);
                switch (m) {
                    case 0, 1 -> { // optimizer-like update of A: all elements through the segment + markWritten, or set
                        Tensor ta = as[which];
                        if (rng.nextBoolean()) {
                            for (long i = 0; i < ta.numel(); i++) {
                                ta.set(i, ta.get(i) - 0.01f * (float) rng.nextDouble(-1, 1));
                            }
                            hist.append("A-set;");
                        } else {
                            Tensor tmp = al.random(rng, ta.dtype(), 1 / Math.sqrt(dIn), ta.dim(0), dIn);
                            ta.copyFrom(tmp);
                            hist.append("A-copy;");
                        }
                    }
                    case 2, 3 -> {
                        Tensor tb = bs[which];
                        if (rng.nextBoolean()) {
                            long i = rng.nextLong(tb.numel());
                            tb.set(i, tb.get(i) + 0.5f);
                            hist.append("B-set1;");
                        } else {
                            MemorySegment seg = tb.segment();
                            Tensor view = Tensor.wrap(seg, tb.dtype(), dOut, tb.dim(1));
                            Tensor tmp = al.random(rng, tb.dtype(), 1, dOut, tb.dim(1));
                            view.copyFrom(tmp);
                            hist.append("B-seg;");
                        }
                    }
                    case 4 -> {
                        long i = rng.nextLong(w0.numel());
                        float v = (float) rng.nextDouble(-1, 1);
                        for (int k = 0; k < 4; k++) {
                            L.w[k].set(i, v);
                        }
                        hist.append("W-set;");
                    }
                    case 5 -> {
                        if (bias != null) {
                            bias.set(rng.nextLong(dOut), (float) rng.nextDouble(-1, 1));
                            hist.append("bias-set;");
                        }
                    }
                    case 6 -> {
                        which ^= 1;
                        hist.append("swap-adapter;");
                    }
                    case 7 -> {
                        gamma = gamma * (rng.nextBoolean() ? 2 : 0.7);
                        hist.append("gamma;");
                    }
                    case 8, 9 -> {
                        if (hist.indexOf("]=") >= 0) {
                            hist.append("no-merge;");
                            break;
                        }
                        int sign = merged ? -1 : 1;
                        doMerge(L, as[which], bs[which], gamma, sign, head + " | history[" + hist + "]");
                        merged = !merged;
                        hist.append(sign > 0 ? "merge;" : "unmerge;");
                    }
                    case 10 -> {
                        if (rng.nextInt(4) == 0) {
                            float[] vals = {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, Float.NaN, 60000f, -1e4f};
                            float v = vals[rng.nextInt(vals.length)];
                            int tg = rng.nextInt(3);
                            if (tg == 0) {
                                long i = rng.nextLong(as[which].numel());
                                as[which].set(i, v);
                                hist.append("A[" + i + "]=" + v + ";");
                            } else if (tg == 1) {
                                long i = rng.nextLong(bs[which].numel());
                                bs[which].set(i, v);
                                hist.append("B[" + i + "]=" + v + ";");
                            } else if (!merged) {
                                long i = rng.nextLong(w0.numel());
                                for (int k = 0; k < 4; k++) {
                                    L.w[k].set(i, v);
                                }
                                hist.append("W[" + i + "]=" + v + ";");
                            }
                        } else {
                            hist.append("-;");
                        }
                    }
                    default -> hist.append("-;");
                }
            }
            for (FrozenWeight f : L.fw) {
                f.close();
            }
        }
        return nSteps;
    }

    static void doMerge(Layer L, Tensor a, Tensor b, double gamma, int sign, String ctx) {
        float[] before = L.w[0].toFloatArray();
        REF.merge(L.fw[0], a, b, gamma, sign);
        float[] after = L.w[0].toFloatArray();
        double dmax = 0;
        for (int i = 0; i < before.length; i++) {
            dmax = Math.max(dmax, Math.abs((double) after[i] - before[i]));
        }
        double frac = 4e-6 * (Compare.maxAbs(after) + dmax) / Math.max(Compare.maxAbs(after), 1e-30);
        for (int k = 0; k < 3; k++) {
            cpus[k].merge(L.fw[k + 1], a, b, gamma, sign);
        }
        String e = Compare.mismatch("merged W", L.w[1], L.w[0], frac);
        if (e != null) {
            fail(e + " (sign " + sign + ") cpu1 vs ref (" + ctx + ")");
        }
        for (int k = 2; k <= 3; k++) {
            String d = bitDiff("merged W", L.w[k], L.w[1]);
            if (d != null) {
                fail(d + " cpu" + k + " vs cpu1 (" + ctx + ")");
            }
        }
        L.w[0].copyFrom(L.w[1]);  // the reference continues from cpu's rounding
    }

    static Tensor[] run(Backend be, FrozenWeight fw, LoraParams par, Alloc al, DType[] t, Tensor x, Tensor a, Tensor b,
                        Tensor dy, Tensor gA0, Tensor gB0, boolean withDx, boolean withU, boolean doBackward, String ctx) {
        int n = par.n();
        Tensor y = al.poisoned(t[6], n, par.dOut());
        Tensor u = al.poisoned(DType.F32, n, par.rank());
        boolean nullAdapter = !par.adapterActive() && (n & 1) == 0;
        Tensor aa = nullAdapter ? null : a;
        Tensor bb = nullAdapter ? null : b;
        if (!withU) {
            be.forward(par, fw, x, aa, bb, null, y);
            Tensor y2 = al.poisoned(t[6], n, par.dOut());
            be.forward(par, fw, x, aa, bb, nullAdapter ? null : u, y2);
            String e = bitDiff("Y without U vs with U", y, y2);
            if (e != null) {
                fail(e + " " + be.name() + " (" + ctx + ")");
            }
        } else {
            be.forward(par, fw, x, aa, bb, nullAdapter ? null : u, y);
        }
        if (!doBackward) {
            return new Tensor[] {y, u, null, null, null};
        }
        Tensor dx = withDx ? al.poisoned(t[7], n, par.dIn()) : null;
        Tensor gA = al.poisoned(t[8], par.rank(), par.dIn());
        Tensor gB = al.poisoned(t[9], par.dOut(), par.rank());
        if (par.gradMode() == GradMode.ACCUMULATE || !par.adapterActive()) {
            gA.copyFrom(gA0);
            gB.copyFrom(gB0);
        }
        be.backward(par, fw, x, aa, bb, nullAdapter ? null : u, dy, dx, nullAdapter ? null : gA, nullAdapter ? null : gB);
        return new Tensor[] {y, u, dx, gA, gB};
    }

    static final class Alloc {
        final Arena arena;
        final int heap;
        boolean outHeap;

        Alloc(Arena arena, int heap) {
            this.arena = arena;
            this.heap = heap;
        }

        Tensor alloc(DType t, long... shape) {
            long numel = 1;
            for (long d : shape) {
                numel *= d;
            }
            long bytes = numel * t.byteSize();
            if (heap == 0) {
                return Tensor.wrap(MemorySegment.ofArray(new long[(int) ((bytes + 7) / 8)]).asSlice(0, bytes), t, shape);
            }
            if (heap == 1) {
                return Tensor.wrap(MemorySegment.ofArray(new byte[(int) bytes]), t, shape);
            }
            if (heap == 2) {
                return Tensor.wrap(arena.allocate(bytes + 2, 64).asSlice(2, bytes), t, shape);
            }
            return Tensor.allocate(arena, t, shape);
        }

        Tensor random(SplittableRandom rng, DType t, double scale, long... shape) {
            Tensor out = alloc(t, shape);
            for (long i = 0; i < out.numel(); i++) {
                out.set(i, (float) (scale * rng.nextDouble(-1, 1)));
            }
            return out;
        }

        Tensor copy(Tensor src) {
            Tensor out = alloc(src.dtype(), src.shape());
            out.copyFrom(src);
            return out;
        }

        Tensor poisoned(DType t, long... shape) {
            Tensor out = outHeap ? alloc(t, shape) : Tensor.allocate(arena, t, shape);
            out.fill(Float.NaN);
            return out;
        }
    }

    static String bitDiff(String what, Tensor got, Tensor ref) {
        float[] g = got.toFloatArray();
        float[] e = ref.toFloatArray();
        for (int i = 0; i < e.length; i++) {
            if (Float.floatToRawIntBits(g[i]) != Float.floatToRawIntBits(e[i])) {
                return what + " bits differ [" + i / Compare.cols(ref) + ", " + i % Compare.cols(ref) + "] got " + g[i] + " vs " + e[i];
            }
        }
        return null;
    }
}
