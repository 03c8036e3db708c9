package dev.rslora.backend.cpu;

import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Packing matrices into the B-operand panels of {@link MicroKernel}: fp32, NR floats per panel
 * row, zero-padded past the matrix edge.
 * <pre>
 *   direct     M [R, C] → panels over columns: panel p, row k = M[k, p·NR .. p·NR+NR)     (K = R)
 *              byte offset of (p, k) = (p·R + k)·NR·4
 *   transposed M [R, C] → panels over rows:    panel p, row k = M[p·NR .. p·NR+NR, k]    (K = C)
 *              byte offset of (p, k) = (p·C + k)·NR·4
 * </pre>
 * Direct panels make the micro-kernel compute A·M; transposed panels compute A·Mᵀ. Every value
 * is converted to fp32 and multiplied by {@code scale} (γ where it is folded in, else 1).
 */
final class Panels {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final int NR = MicroKernel.NR;
    /** Columns of a transposed pack handled per gather block. */
    static final int T_BLOCK = 256;

    private Panels() {
    }

    /** Number of NR-wide panels covering {@code n}. */
    static int panels(int n) {
        return (n + NR - 1) / NR;
    }

    /** Bytes of a packing of {@code panelDim} (padded to NR) by {@code k}. */
    static long bytes(int panelDim, int k) {
        return (long) panels(panelDim) * NR * k * 4L;
    }

    /**
     * Direct pack of rows [row0, row1) of {@code src} [R, C] (any dtype) into {@code dst}.
     * {@code rowBuf} holds at least C floats.
     */
    static void packDirect(Tensor src, float scale, MemorySegment dst, int row0, int row1, float[] rowBuf) {
        int rows = (int) src.dim(0);
        int cols = (int) src.dim(1);
        for (int r = row0; r < row1; r++) {
            Convert.load(src, (long) r * cols, cols, rowBuf, 0);
            packRow(rowBuf, 0, cols, scale, dst, (long) r * NR * 4L, (long) rows * NR * 4L);
        }
    }

    /**
     * Writes one fp32 row (cols values from src[off]) times {@code scale} into direct panels:
     * panel p's copy starts at {@code rowOffset + p·panelStride} bytes. Values past cols are 0.
     */
    static void packRow(float[] src, int off, int cols, float scale, MemorySegment dst, long rowOffset,
                        long panelStride) {
        int np = panels(cols);
        long at = rowOffset;
        for (int p = 0; p < np; p++, at += panelStride) {
            int c0 = p * NR;
            if (MicroKernel.SCALAR) {
                for (int c = 0; c < NR; c++) {
                    float v = c0 + c < cols ? src[off + c0 + c] * scale : 0f;
                    dst.set(ValueLayout.JAVA_FLOAT, at + c * 4L, v);
                }
                continue;
            }
            for (int h = 0; h < NR; h += L) {
                int c = c0 + h;
                FloatVector v;
                if (c + L <= cols) {
                    v = FloatVector.fromArray(S, src, off + c);
                } else {
                    VectorMask<Float> m = S.indexInRange(c, cols);
                    v = FloatVector.fromArray(S, src, off + c, m);
                }
                if (scale != 1f) {
                    v = v.mul(scale);
                }
                v.intoMemorySegment(dst, at + h * 4L, MicroKernel.ORDER);
            }
        }
    }

    /**
     * Transposed pack of panels [panel0, panel1) of {@code src} [R, C] (panels over its rows) into
     * {@code dst}. {@code tmp} holds at least NR·T_BLOCK floats; {@code index} is
     * {@link #gatherIndex()}.
     */
    static void packTransposed(Tensor src, float scale, MemorySegment dst, int panel0, int panel1, float[] tmp,
                               int[] index) {
        int rows = (int) src.dim(0);
        int cols = (int) src.dim(1);
        for (int p = panel0; p < panel1; p++) {
            for (int k0 = 0; k0 < cols; k0 += T_BLOCK) {
                int kb = Math.min(T_BLOCK, cols - k0);
                for (int c = 0; c < NR; c++) {
                    int r = p * NR + c;
                    if (r < rows) {
                        Convert.load(src, (long) r * cols + k0, kb, tmp, c * T_BLOCK);
                    } else {
                        java.util.Arrays.fill(tmp, c * T_BLOCK, c * T_BLOCK + kb, 0f);
                    }
                }
                long at = ((long) p * cols + k0) * NR * 4L;
                for (int k = 0; k < kb; k++, at += NR * 4L) {
                    if (MicroKernel.SCALAR) {
                        for (int c = 0; c < NR; c++) {
                            dst.set(ValueLayout.JAVA_FLOAT, at + c * 4L, tmp[c * T_BLOCK + k] * scale);
                        }
                        continue;
                    }
                    for (int h = 0; h < NR; h += L) {
                        FloatVector v = FloatVector.fromArray(S, tmp, k, index, h);
                        if (scale != 1f) {
                            v = v.mul(scale);
                        }
                        v.intoMemorySegment(dst, at + h * 4L, MicroKernel.ORDER);
                    }
                }
            }
        }
    }

    /** The gather offsets c·T_BLOCK, c &lt; NR, used by {@link #packTransposed}. */
    static int[] gatherIndex() {
        int[] index = new int[NR];
        for (int c = 0; c < NR; c++) {
            index[c] = c * T_BLOCK;
        }
        return index;
    }
}
