package dev.rslora.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The register tile every GEMM of the cpu backend is built from:
 * <pre>
 *   C[MR, NR] (=|+=) Σ_{k&lt;K} a[aOff + m·lda + k] · panel[k][0..NR)
 * </pre>
 * A is a heap float[] read row-major (K contiguous, rows {@code lda} apart; the caller pads A to
 * MR rows so pad rows may hold stale values: they only reach pad rows of C). The B operand is a
 * packed panel in native memory: K consecutive groups of NR floats (see {@link Panels}); its
 * constant stride lets the JIT drop the per-load range checks (a B operand read with a run-time
 * row stride measured 15% slower). C is a contiguous MR×NR tile in a heap float[] (row m at
 * {@code cOff + m·NR}).
 *
 * <p>MR = 8 rows × NR = 2 vectors (32 lanes with 512-bit vectors): 16 accumulators, 2 panel loads
 * and 8 broadcasts per k. {@code -Drslora.cpu.scalar=true} selects a scalar loop with the same
 * contract (for comparison only).
 */
final class MicroKernel {
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    /** Lanes per vector. */
    static final int L = SPECIES.length();
    /** Rows of the register tile. */
    static final int MR = 8;
    /** Columns of the register tile and width of every packed panel. */
    static final int NR = 2 * L;
    /** Bytes of one packed panel row (NR floats). */
    static final long PANEL_ROW_BYTES = NR * 4L;
    static final boolean SCALAR = Boolean.getBoolean("rslora.cpu.scalar");
    static final ByteOrder ORDER = ByteOrder.nativeOrder();

    private MicroKernel() {
    }

    /** C tile (=|+=) A[MR, K]·panel[K, NR]. */
    static void mma(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c, int cOff,
                    boolean accumulate) {
        if (SCALAR) {
            mmaScalar(a, aOff, lda, b, bOff, k, c, cOff, accumulate);
        } else {
            mmaVector(a, aOff, lda, b, bOff, k, c, cOff, accumulate);
        }
    }

    private static void mmaVector(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c,
                                  int cOff, boolean accumulate) {
        FloatVector c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
        if (accumulate) {
            int o = cOff;
            c00 = FloatVector.fromArray(SPECIES, c, o); c01 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c10 = FloatVector.fromArray(SPECIES, c, o); c11 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c20 = FloatVector.fromArray(SPECIES, c, o); c21 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c30 = FloatVector.fromArray(SPECIES, c, o); c31 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c40 = FloatVector.fromArray(SPECIES, c, o); c41 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c50 = FloatVector.fromArray(SPECIES, c, o); c51 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c60 = FloatVector.fromArray(SPECIES, c, o); c61 = FloatVector.fromArray(SPECIES, c, o + L); o += NR;
            c70 = FloatVector.fromArray(SPECIES, c, o); c71 = FloatVector.fromArray(SPECIES, c, o + L);
        } else {
            FloatVector z = FloatVector.zero(SPECIES);
            c00 = z; c01 = z; c10 = z; c11 = z; c20 = z; c21 = z; c30 = z; c31 = z;
            c40 = z; c41 = z; c50 = z; c51 = z; c60 = z; c61 = z; c70 = z; c71 = z;
        }
        long bp = bOff;
        for (int kk = 0; kk < k; kk++, bp += PANEL_ROW_BYTES) {
            FloatVector b0 = FloatVector.fromMemorySegment(SPECIES, b, bp, ORDER);
            FloatVector b1 = FloatVector.fromMemorySegment(SPECIES, b, bp + L * 4L, ORDER);
            int ai = aOff + kk;
            FloatVector x;
            x = FloatVector.broadcast(SPECIES, a[ai]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c60 = x.fma(b0, c60); c61 = x.fma(b1, c61); ai += lda;
            x = FloatVector.broadcast(SPECIES, a[ai]); c70 = x.fma(b0, c70); c71 = x.fma(b1, c71);
        }
        int o = cOff;
        c00.intoArray(c, o); c01.intoArray(c, o + L); o += NR;
        c10.intoArray(c, o); c11.intoArray(c, o + L); o += NR;
        c20.intoArray(c, o); c21.intoArray(c, o + L); o += NR;
        c30.intoArray(c, o); c31.intoArray(c, o + L); o += NR;
        c40.intoArray(c, o); c41.intoArray(c, o + L); o += NR;
        c50.intoArray(c, o); c51.intoArray(c, o + L); o += NR;
        c60.intoArray(c, o); c61.intoArray(c, o + L); o += NR;
        c70.intoArray(c, o); c71.intoArray(c, o + L);
    }

    private static void mmaScalar(float[] a, int aOff, int lda, MemorySegment b, long bOff, int k, float[] c,
                                  int cOff, boolean accumulate) {
        for (int m = 0; m < MR; m++) {
            for (int n = 0; n < NR; n++) {
                float s = accumulate ? c[cOff + m * NR + n] : 0f;
                for (int kk = 0; kk < k; kk++) {
                    s = Math.fma(a[aOff + m * lda + kk],
                            b.get(ValueLayout.JAVA_FLOAT, bOff + kk * PANEL_ROW_BYTES + n * 4L), s);
                }
                c[cOff + m * NR + n] = s;
            }
        }
    }
}
