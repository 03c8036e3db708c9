package dev.rslora.bench;

import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.openblas.global.openblas_nolapack;

import java.util.SplittableRandom;

import static org.bytedeco.openblas.global.openblas_nolapack.CblasNoTrans;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasRowMajor;
import static org.bytedeco.openblas.global.openblas_nolapack.CblasTrans;

/**
 * The CPU peer: the LoRA layer step a JVM user would write as a chain of OpenBLAS sgemm calls
 * (fp32, row-major, dropout 0, d_in = d_out = d), and the frozen base alone, on all cores.
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
 */
final class OpenBlasChain implements AutoCloseable {
    private final int n;
    private final int d;
    private final int r;
    private final float gamma = 2.0f; // α/√r with α = 2√r: the value does not change the cost
    private final FloatPointer x, w, a, b, u, v, y, dy, dx, dA, dB;

    /**
     * Loads OpenBLAS with kernel set {@code core} ("Haswell", "Cooperlake", or "auto": its own
     * detection), requested through OPENBLAS_CORETYPE before the library loads and verified, on
     * all cores. Must run before anything else touches OpenBLAS in this JVM.
     */
    static void load(String core) {
        load(core, Runtime.getRuntime().availableProcessors());
    }

    /** {@link #load(String)} with {@code threads} OpenBLAS threads (1: every call runs on the caller). */
    static void load(String core, int threads) {
        if (!OpenBlasInfo.requestCore(core)) {
            throw new IllegalStateException("cannot set OPENBLAS_CORETYPE=" + core + " (libc setenv/unsetenv not found)");
        }
        String running = OpenBlasInfo.coreName();
        if (!core.equalsIgnoreCase("auto") && !running.equalsIgnoreCase(core)) {
            throw new IllegalStateException("OPENBLAS_CORETYPE=" + core + " requested but OpenBLAS runs its " + running
                    + " kernels (was OpenBLAS loaded earlier in this JVM, or does this build lack " + core + "?)");
        }
        OpenBlasInfo.setThreads(threads);
        System.out.println("\nOpenBLAS " + OpenBlasInfo.config() + ", core " + OpenBlasInfo.coreName()
                + ", threads " + OpenBlasInfo.threads());
    }

    OpenBlasChain(int n, int d, int r) {
        this.n = n;
        this.d = d;
        this.r = r;
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

    /** LoRA forward + backward as eight sgemm calls; returns dX[0] to consume. */
    float lora() {
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1f, x, d, w, d, 0f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, r, d, 1f, x, d, a, d, 0f, u, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, r, gamma, u, r, b, r, 1f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, r, d, 1f, dy, d, b, r, 0f, v, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, r, n, gamma, dy, d, u, r, 0f, dB, r);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, d, n, gamma, v, r, x, d, 0f, dA, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1f, dy, d, w, d, 0f, dx, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, r, gamma, v, r, a, d, 1f, dx, d);
        return dx.get(0);
    }

    /** The frozen base linear forward + backward: Y = X·Wᵀ, dX = dY·W; returns dX[0]. */
    float base() {
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, d, 1f, x, d, w, d, 0f, y, d);
        openblas_nolapack.cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, d, d, 1f, dy, d, w, d, 0f, dx, d);
        return dx.get(0);
    }

    @Override
    public void close() {
        for (FloatPointer p : new FloatPointer[] {x, w, a, b, u, v, y, dy, dx, dA, dB}) {
            p.close();
        }
    }
}
