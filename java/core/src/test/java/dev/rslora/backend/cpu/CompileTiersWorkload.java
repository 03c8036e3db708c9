package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;

import java.io.File;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.Arrays;

/**
 * The child JVM of {@link CompileTiersTest}: runs the cpu backend (two workers, eight for one case)
 * through each of its paths — one row (N = 1), the row path (N ≤ RowGrads.MAX_ROWS: N = 5, 8, 20),
 * the column split of small N with the gradient GEMMs (N = 70, eight workers), chunks of rows with them, the merged route ({@link MergedWeight}) — with dropout, accumulation, bf16/f16 and shapes that leave tails.
 * Each case runs on the backend's classes loaded afresh (a class loader of its own), so each case's
 * hottest loops get compiled on stack anew: the JIT compiles a method on stack at the loop whose
 * back-edge count trips first, and then compiles the whole method, which ends on-stack compiles of
 * its other loops. Prints "done" at the end.
 */
public final class CompileTiersWorkload {
    private record Case(int n, int r, DType dtype, float dropout, GradMode mode, int workers) {
        Case(int n, int r, DType dtype, float dropout, GradMode mode) {
            this(n, r, dtype, dropout, mode, 2);
        }
    }

    private static final Case[] CASES = {
        new Case(1, 16, DType.F32, 0f, GradMode.ASSIGN),
        new Case(8, 16, DType.F32, 0f, GradMode.ASSIGN),
        new Case(8, 8, DType.F32, 0.1f, GradMode.ACCUMULATE),
        new Case(5, 40, DType.F32, 0f, GradMode.ASSIGN),
        new Case(5, 40, DType.BF16, 0f, GradMode.ACCUMULATE),
        new Case(20, 24, DType.F32, 0.1f, GradMode.ASSIGN),
        new Case(70, 16, DType.F32, 0f, GradMode.ACCUMULATE),
        new Case(70, 8, DType.F16, 0.1f, GradMode.ASSIGN),
        new Case(70, 24, DType.F32, 0.1f, GradMode.ACCUMULATE, 8),  // N < 2·MR·workers: columns, gradient GEMMs
        new Case(200, 16, DType.F32, 0f, GradMode.ASSIGN),  // N ≥ 2·d: both passes on the merged route
    };

    private CompileTiersWorkload() {
    }

    public static void main(String[] args) throws ReflectiveOperationException, MalformedURLException {
        int reps = Integer.parseInt(args[0]);
        String[] entries = System.getProperty("java.class.path").split(File.pathSeparator);
        URL[] urls = new URL[entries.length];
        for (int i = 0; i < entries.length; i++) {
            urls[i] = new File(entries[i]).toURI().toURL();
        }
        for (int c = 0; c < CASES.length; c++) {
            try (URLClassLoader fresh = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader())) {
                fresh.loadClass(CompileTiersWorkload.class.getName()).getMethod("runCase", int.class, int.class)
                        .invoke(null, c, reps);
            } catch (java.io.IOException e) {
                throw new IllegalStateException(e);
            }
        }
        groups();
        System.out.println("done " + Arrays.toString(CASES));
    }

    /**
     * {@link AdapterRows#addGroup} over long rows: the layer cases' rows (r ≤ 40) give its k loop a
     * back-edge or two per call, too few for an on-stack compile, so its one method per shape (L + 2
     * vectors live) would never meet C1 here.
     */
    private static void groups() {
        int len = 1024;
        int lanes = MicroKernel.L;
        if (MicroKernel.SCALAR) {
            return;  // the scalar shape never groups (AdapterRows.addY adds one output at a time)
        }
        float[] x = new float[len + lanes];
        float[] out = new float[lanes];
        java.util.Arrays.fill(x, 0.5f);
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            java.lang.foreign.MemorySegment y = arena.allocate(4L * (len * lanes + lanes));
            for (int i = 0; i < 40; i++) {
                AdapterRows.addGroup(x, 0, y, 0, 4L * len, len, out, 0);
            }
        }
    }

    /** Case {@code c}: prepare, forward and backward {@code reps} times. */
    public static void runCase(int c, int reps) {
        Case k = CASES[c];
        try (CpuBackend backend = new CpuBackend(k.workers());
             LayerFixture f = new LayerFixture(k.n(), 72, 80, k.r(), k.dtype(), k.dropout(), k.mode(), true,
                     k.n() * 31L + k.r())) {
            for (int i = 0; i < reps; i++) {
                f.run(backend);
            }
        }
    }
}
