package dev.rslora.bench;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;

/**
 * The CPU peer: the LoRA layer step a JVM user would write as a chain of OpenBLAS sgemm calls
 * (fp32, row-major, dropout 0), and the frozen base alone, on all cores.
 *
 * <pre>
 * forward : Y  = X·Wᵀ                     sgemm(N, d_out, d_in)
 *           U  = X·Aᵀ                     sgemm(N, r, d_in)
 *           Y += γ·U·Bᵀ                   sgemm(N, d_out, r, alpha = γ, beta = 1)
 * backward: V  = dY·B                     sgemm(N, r, d_out)
 *           dB = γ·dYᵀ·U                  sgemm(d_out, r, N)
 *           dA = γ·Vᵀ·X                   sgemm(r, d_in, N)
 *           dX = dY·W                     sgemm(N, d_in, d_out)
 *           dX += γ·V·A                   sgemm(N, d_in, r, beta = 1)
 * base    : Y = X·Wᵀ and dX = dY·W only.
 * </pre>
 * Row-major cblas: C[m,n] = op(A)[m,k]·op(B)[k,n]; "X·Wᵀ" is (NoTrans, Trans) with lda = ldb = d_in.
 *
 * <p>{@code core} chooses OpenBLAS's kernel set explicitly, so the peer does not depend on the
 * caller's environment: "Haswell" (AVX2) or "Cooperlake" (AVX-512; what the bytedeco 0.3.31 build's
 * own detection picks on an AVX-512 Zen 5 when OPENBLAS_CORETYPE is unset), or "auto" (unset: the
 * detection). It is requested through OPENBLAS_CORETYPE before the library loads in the forked JVM
 * and verified (a request that does not take fails the trial). Other OPENBLAS_* variables (e.g.
 * OPENBLAS_L2_SIZE) are inherited; BenchEnv records them.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class OpenBlasLoraBenchmark {
    @Param({"512", "2048"})
    public int n;
    @Param({"1024", "4096"})
    public int d;
    @Param({"16", "64", "256"})
    public int r;
    @Param({"Haswell", "Cooperlake"})
    public String core;

    private final float gamma = 2.0f; // α/√r with α = 2√r: the value does not change the cost
    private FloatPointer x, w, a, b, u, v, y, dy, dx, dA, dB;

    @Setup(Level.Trial)
    public void setUp() {
        if (!OpenBlasInfo.requestCore(core)) {
            throw new IllegalStateException("cannot set OPENBLAS_CORETYPE=" + core + " (libc setenv/unsetenv not found)");
        }
        String running = OpenBlasInfo.coreName();
        if (!core.equalsIgnoreCase("auto") && !running.equalsIgnoreCase(core)) {
            throw new IllegalStateException("OPENBLAS_CORETYPE=" + core + " requested but OpenBLAS runs its " + running
                    + " kernels (was OpenBLAS loaded earlier in this JVM, or does this build lack " + core + "?)");
        }
        OpenBlasInfo.setThreads(Runtime.getRuntime().availableProcessors());
        System.out.println("\nOpenBLAS " + OpenBlasInfo.config() + ", core " + OpenBlasInfo.coreName()
                + ", threads " + OpenBlasInfo.threads());
        SplittableRandom rng = new SplittableRandom(42);
        x = random(rng, (long) n * d);
        w = random(rng, (long) d * d);
        a = random(rng, (long) r * d);
        b = random(rng, (long) d * r);
        dy = random(rng, (long) n * d);
        u = new FloatPointer((long) n * r);
        v = new FloatPointer((long) n * r);
        y = new FloatPointer((long) n * d);
        dx = new FloatPointer((long) n * d);
        dA = new FloatPointer((long) r * d);
        dB = new FloatPointer((long) d * r);
    }

    private static FloatPointer random(SplittableRandom rng, long count) {
        FloatPointer p = new FloatPointer(count);
        float[] chunk = new float[(int) Math.min(count, 1 << 20)];
        for (long off = 0; off < count; off += chunk.length) {
            int len = (int) Math.min(chunk.length, count - off);
            for (int i = 0; i < len; i++) {
                chunk[i] = (float) rng.nextDouble(-1, 1);
            }
            p.position(off).put(chunk, 0, len);
        }
        return p.position(0);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        for (FloatPointer p : new FloatPointer[] {x, w, a, b, u, v, y, dy, dx, dA, dB}) {
            p.close();
        }
    }

    /** LoRA forward + backward as eight sgemm calls (d_in = d_out = d). */
    @Benchmark
    public void loraForwardBackward(Blackhole bh) {
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1f, x, d, w, d, 0f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r, d, 1f, x, d, a, d, 0f, u, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, r, gamma, u, r, b, r, 1f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, d, 1f, dy, d, b, r, 0f, v, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, r, n, gamma, dy, d, u, r, 0f, dB, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, d, n, gamma, v, r, x, d, 0f, dA, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1f, dy, d, w, d, 0f, dx, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, r, gamma, v, r, a, d, 1f, dx, d);
        bh.consume(dx.get(0));
    }

    /** The frozen base linear forward + backward: Y = X·Wᵀ, dX = dY·W. */
    @Benchmark
    public void baseForwardBackward(Blackhole bh) {
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1f, x, d, w, d, 0f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1f, dy, d, w, d, 0f, dx, d);
        bh.consume(dx.get(0));
    }
}
