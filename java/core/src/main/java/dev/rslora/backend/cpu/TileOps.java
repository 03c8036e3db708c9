package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/** Small vector helpers on register-tile rows, fp32 rows and blocks. */
final class TileOps {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;

    private TileOps() {
    }

    /** a[aOff + c] += b[bOff + c] for c &lt; n (n a multiple of L: tile rows, padded rows). */
    static void addPadded(float[] a, int aOff, float[] b, int bOff, int n) {
        if (MicroKernel.SCALAR) {
            for (int c = 0; c < n; c++) {
                a[aOff + c] += b[bOff + c];
            }
            return;
        }
        for (int c = 0; c < n; c += L) {
            FloatVector.fromArray(S, a, aOff + c).add(FloatVector.fromArray(S, b, bOff + c)).intoArray(a, aOff + c);
        }
    }

    /**
     * Whether a[off .. off+n) holds no NaN or ±Inf (the V rows of the merged route's backward), by
     * the same sum as {@link #allFinite(MemorySegment, long, int)} but with array loads.
     * Not that method on {@code MemorySegment.ofArray(a)}: the JDK keeps one type profile for the
     * segment accesses of all vector loads and stores, and one heap segment among the native ones
     * made the micro-kernel's panel loads polymorphic for the rest of the JVM's life. Measured
     * (JMH, d = 1024, r = 64, N = 2048, one thread, the merged route, 2026-12-06): 91–95 ms a step
     * with this scan on a heap segment, 52–53 ms without the scan. No code of this backend wraps
     * a heap array in a segment (NoHeapSegmentsTest).
     */
    static boolean allFinite(float[] a, int off, int n) {
        int c = 0;
        float z = 0f;
        if (!MicroKernel.SCALAR) {
            FloatVector acc = FloatVector.zero(S);
            for (; c + L <= n; c += L) {
                acc = acc.add(FloatVector.fromArray(S, a, off + c).mul(0f));
            }
            z = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; c < n; c++) {
            z += a[off + c] * 0f;
        }
        return z == 0f;
    }

    /**
     * Whether n little-endian fp32 values at byte offset {@code at} of {@code seg} hold no NaN or
     * ±Inf: x·0 is 0 for every finite x and NaN otherwise, summed a vector at a time (one scalar
     * chain of dependent adds ran at the add latency). The tail reads through the constant layout
     * {@link DType#LE_FLOAT}: a layout made per call ({@code withOrder}) was not a constant for the
     * JIT, and each call allocated it and its access path, 20–40 KB per merged-route step at r = 24
     * (StepAllocationTest, 2026-12-07).
     */
    static boolean allFinite(MemorySegment seg, long at, int n) {
        int c = 0;
        float z = 0f;
        if (!MicroKernel.SCALAR && Convert.vectorOk(seg)) {
            FloatVector acc = FloatVector.zero(S);
            for (; c + L <= n; c += L) {
                acc = acc.add(FloatVector.fromMemorySegment(S, seg, at + 4L * c, ByteOrder.LITTLE_ENDIAN).mul(0f));
            }
            z = acc.reduceLanes(VectorOperators.ADD);
        }
        for (; c < n; c++) {
            z += seg.get(DType.LE_FLOAT, at + 4L * c) * 0f;
        }
        return z == 0f;
    }

    /** The gather offsets i·ld, i &lt; L, that {@link #transpose} reads one column of L rows with. */
    static int[] gatherRows(int ld) {
        int[] index = new int[L];
        for (int i = 0; i < L; i++) {
            index[i] = i * ld;
        }
        return index;
    }

    /**
     * dst[dstOff + j·ldd + i] = src[srcOff + i·lds + j] for rows i &lt; rows and columns j in [j0, j1):
     * columns of L rows at a time through vector gathers ({@code index} = gatherRows(lds)), each
     * stored as L consecutive floats of a dst row, instead of one scalar store per element.
     * {@link BlockTranspose}'s L×L blocks on heap-segment views of the two arrays were tried and
     * not kept: Vᵀ of V [512, 64] by 64-row chunks took 35–46 µs against 12–13, of V [512, 256]
     * 33–204 µs against 45–49 (one thread, 512-bit, 2026-12-06, two runs each; the 16-lane block is
     * compiled out of line, and why it ran this slowly was not pinned down); an array flavour would
     * need its own copy of the blocks.
     */
    static void transpose(float[] src, int srcOff, int lds, int rows, int j0, int j1, float[] dst, int dstOff, int ldd,
                          int[] index) {
        int i0 = 0;
        if (!MicroKernel.SCALAR && !MicroKernel.PLAIN_MEMORY) {  // no gathers with 128-bit tiles
            for (; i0 + L <= rows; i0 += L) {
                for (int j = j0; j < j1; j++) {
                    FloatVector.fromArray(S, src, srcOff + i0 * lds + j, index, 0).intoArray(dst, dstOff + j * ldd + i0);
                }
            }
        }
        for (int j = j0; j < j1; j++) {
            for (int i = i0; i < rows; i++) {
                dst[dstOff + j * ldd + i] = src[srcOff + i * lds + j];
            }
        }
    }
}
