package dev.rslora.backend.cpu;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

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
    /** Columns of a converted tensor staged per block of a transposed pack. */
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

    /** Rows per block of a direct pack from a tensor: the block's fp32 copy stays in L1/L2. */
    static int directBlockRows(int cols) {
        return Math.max(1, Math.min(32, (1 << 16) / Math.max(1, cols)));
    }

    /**
     * Direct pack of rows [row0, row1) of {@code src} [R, C] (any dtype) times {@code scale} into
     * {@code dst} (panels over C, K = R): read in place when F32 in native memory
     * ({@link #packRowsF32}), else converted in blocks of rows into {@code tmp} (at least
     * directBlockRows(C)·C floats); written panel by panel.
     */
    static void packDirect(Tensor src, float scale, MemorySegment dst, int row0, int row1, float[] tmp) {
        int rows = (int) src.dim(0);
        int cols = (int) src.dim(1);
        MemorySegment seg = src.readOnlySegment();
        if (src.dtype() == DType.F32 && Convert.vectorOk(seg)) {  // in place: no fp32 staging copy
            packRowsF32(seg, row0, cols, 0, row1 - row0, cols, scale, dst, (long) row0 * NR * 4L, (long) rows * NR * 4L);
            return;
        }
        int block = directBlockRows(cols);
        for (int r0 = row0; r0 < row1; r0 += block) {
            int nb = Math.min(block, row1 - r0);
            Convert.load(src, (long) r0 * cols, nb * cols, tmp, 0);
            packRows(tmp, 0, cols, nb, cols, scale, dst, (long) r0 * NR * 4L, (long) rows * NR * 4L);
        }
    }

    /**
     * Direct pack of an fp32 row-major block: rows i &lt; {@code rows} of {@code src} (row i at
     * off + i·ld, {@code cols} values) times {@code scale}; panel p, row i goes to byte
     * {@code base + p·panelStride + i·NR·4}. Written panel by panel (sequential stores); values past
     * cols are 0.
     */
    // packRowsF32 below is the same loop reading an F32 segment: keep the two in step
    static void packRows(float[] src, int off, int ld, int rows, int cols, float scale, MemorySegment dst,
                         long base, long panelStride) {
        int np = panels(cols);
        for (int p = 0; p < np; p++) {
            int c0 = p * NR;
            long at = base + p * panelStride;
            if (MicroKernel.SCALAR) {
                for (int i = 0; i < rows; i++, at += NR * 4L) {
                    for (int c = 0; c < NR; c++) {
                        float v = c0 + c < cols ? src[off + i * ld + c0 + c] * scale : 0f;
                        dst.set(ValueLayout.JAVA_FLOAT, at + c * 4L, v);
                    }
                }
                continue;
            }
            if (c0 + NR <= cols) {
                for (int i = 0; i < rows; i++, at += NR * 4L) {
                    int from = off + i * ld + c0;
                    for (int h = 0; h < NR; h += L) {
                        FloatVector v = FloatVector.fromArray(S, src, from + h);
                        if (scale != 1f) {
                            v = v.mul(scale);
                        }
                        v.intoMemorySegment(dst, at + h * 4L, MicroKernel.ORDER);
                    }
                }
            } else {
                // the last panel, partial: as packRowsF32's (zeros stored for a vector wholly past cols; a
                // masked load reaching past src's end through a padded copy)
                for (int h = 0; h < NR; h += L) {
                    long to = at + h * 4L;
                    if (c0 + h >= cols) {
                        for (int i = 0; i < rows; i++, to += NR * 4L) {
                            FloatVector.zero(S).intoMemorySegment(dst, to, MicroKernel.ORDER);
                        }
                        continue;
                    }
                    VectorMask<Float> m = S.indexInRange(c0 + h, cols);
                    int f = off + c0 + h;
                    int inside = SegmentEnd.rowsInside(src, f, ld, rows);
                    for (int i = 0; i < inside; i++, to += NR * 4L, f += ld) {
                        // 128-bit tiles: a plain load, the lanes past cols cleared by a blend (MicroKernel.PLAIN_MEMORY)
                        FloatVector v = MicroKernel.PLAIN_MEMORY ? FloatVector.zero(S).blend(FloatVector.fromArray(S, src, f), m)
                                : FloatVector.fromArray(S, src, f, m);
                        v.mul(scale, m).intoMemorySegment(dst, to, MicroKernel.ORDER);
                    }
                    float[] pad = inside < rows ? new float[L] : null;
                    for (int i = inside; i < rows; i++, to += NR * 4L, f += ld) {
                        SegmentEnd.pad(src, f, Math.min(L, cols - c0 - h), pad);
                        FloatVector.fromArray(S, pad, 0).mul(scale, m).intoMemorySegment(dst, to, MicroKernel.ORDER);
                    }
                }
            }
        }
    }

    /**
     * {@link #packRows} straight from an F32 tensor's segment (one pass: no fp32 staging copy; the
     * same three cases as packRows, which a change to either must keep in step):
     * rows [row0, row0 + rows) of {@code src} [*, ld], columns [col0, col0 + cols); panel p, row i
     * goes to byte {@code base + p·panelStride + i·NR·4}; values past cols are 0.
     */
    static void packRowsF32(MemorySegment src, long row0, int ld, int col0, int rows, int cols, MemorySegment dst,
                            long base, long panelStride) {
        packRowsF32(src, row0, ld, col0, rows, cols, 1f, dst, base, panelStride);
    }

    /** {@link #packRowsF32(MemorySegment, long, int, int, int, int, MemorySegment, long, long)} with every value times {@code scale}. */
    static void packRowsF32(MemorySegment src, long row0, int ld, int col0, int rows, int cols, float scale,
                            MemorySegment dst, long base, long panelStride) {
        int np = panels(cols);
        for (int p = 0; p < np; p++) {
            int c0 = p * NR;
            long at = base + p * panelStride;
            long from = (row0 * ld + col0 + c0) * 4L;
            if (MicroKernel.SCALAR || !Convert.vectorOk(src)) {  // heap: see Convert.vectorOk
                for (int i = 0; i < rows; i++, at += NR * 4L, from += ld * 4L) {
                    for (int c = 0; c < NR; c++) {
                        float v = c0 + c < cols ? src.get(DType.LE_FLOAT, from + c * 4L) * scale : 0f;
                        dst.set(ValueLayout.JAVA_FLOAT, at + c * 4L, v);
                    }
                }
                continue;
            }
            if (c0 + NR <= cols) {
                for (int i = 0; i < rows; i++, at += NR * 4L, from += ld * 4L) {
                    for (int h = 0; h < NR; h += L) {
                        FloatVector v = FloatVector.fromMemorySegment(S, src, from + h * 4L, ByteOrder.LITTLE_ENDIAN);
                        (scale != 1f ? v.mul(scale) : v).intoMemorySegment(dst, at + h * 4L, MicroKernel.ORDER);
                    }
                }
            } else {
                // the last panel, partial: lanes past cols are +0 (a vector wholly past them is stored as
                // zeros, not loaded); a masked load reaching past src's end goes through a padded copy
                for (int h = 0; h < NR; h += L) {
                    long to = at + h * 4L;
                    if (c0 + h >= cols) {
                        for (int i = 0; i < rows; i++, to += NR * 4L) {
                            FloatVector.zero(S).intoMemorySegment(dst, to, MicroKernel.ORDER);
                        }
                        continue;
                    }
                    VectorMask<Float> m = S.indexInRange(c0 + h, cols);
                    long f = from + h * 4L;
                    int inside = SegmentEnd.rowsInside(src, f, ld * 4L, rows);
                    for (int i = 0; i < inside; i++, to += NR * 4L, f += ld * 4L) {
                        // 128-bit tiles: a plain load, the lanes past cols cleared by a blend (MicroKernel.PLAIN_MEMORY)
                        FloatVector v = MicroKernel.PLAIN_MEMORY
                                ? FloatVector.zero(S).blend(FloatVector.fromMemorySegment(S, src, f, ByteOrder.LITTLE_ENDIAN), m)
                                : FloatVector.fromMemorySegment(S, src, f, ByteOrder.LITTLE_ENDIAN, m);
                        v.mul(scale, m).intoMemorySegment(dst, to, MicroKernel.ORDER);
                    }
                    float[] pad = inside < rows ? new float[L] : null;
                    for (int i = inside; i < rows; i++, to += NR * 4L, f += ld * 4L) {
                        SegmentEnd.pad(src, f, Math.min(L, cols - c0 - h), pad);
                        FloatVector.fromArray(S, pad, 0).mul(scale, m).intoMemorySegment(dst, to, MicroKernel.ORDER);
                    }
                }
            }
        }
    }

    /**
     * Transposed pack of panels [panel0, panel1) of {@code src} [R, C] (panels over its rows) into
     * {@code dst}; {@code tmp} (at least NR·T_BLOCK floats) and {@code stage} as
     * {@link #packTransposedPanel}.
     */
    static void packTransposed(Tensor src, float scale, MemorySegment dst, int panel0, int panel1, float[] tmp,
                               NativeBuffer stage) {
        long cols = src.dim(1);
        for (int p = panel0; p < panel1; p++) {
            packTransposedPanel(src, scale, p, dst, p * cols * NR * 4L, tmp, stage);
        }
    }

    /**
     * Panel p of a transposed pack of {@code src} [R, C] (its rows p·NR .. p·NR+NR, zero past R)
     * from byte {@code at0} of {@code dst} (+0 in the padding), by L×L blocks transposed in registers
     * ({@link BlockTranspose}): straight from the tensor's segment when it is F32 in native memory,
     * else from T_BLOCK columns at a time converted into {@code tmp} (at least NR·T_BLOCK floats)
     * and staged in native memory ({@code stage}; vector loads never touch the heap, see
     * {@link Convert#vectorOk}). Each value is fl(x·scale), as the scalar tile computes it.
     */
    static void packTransposedPanel(Tensor src, float scale, int p, MemorySegment dst, long at0, float[] tmp,
                                    NativeBuffer stage) {
        int rows = (int) src.dim(0);
        int cols = (int) src.dim(1);
        int r0 = p * NR;
        int valid = Math.min(NR, rows - r0);
        MemorySegment seg = src.readOnlySegment();
        if (!MicroKernel.SCALAR && src.dtype() == DType.F32 && Convert.vectorOk(seg)) {
            transposeRows(seg, (long) r0 * cols * 4, cols * 4L, valid, cols, scale, dst, at0, stage);
            return;
        }
        for (int k0 = 0; k0 < cols; k0 += T_BLOCK) {
            int kb = Math.min(T_BLOCK, cols - k0);
            for (int c = 0; c < valid; c++) {
                Convert.load(src, (long) (r0 + c) * cols + k0, kb, tmp, c * T_BLOCK);
            }
            long at = at0 + (long) k0 * NR * 4L;
            if (MicroKernel.SCALAR) {
                for (int k = 0; k < kb; k++, at += NR * 4L) {
                    for (int c = 0; c < NR; c++) {
                        dst.set(ValueLayout.JAVA_FLOAT, at + c * 4L, c < valid ? tmp[c * T_BLOCK + k] * scale : 0f);
                    }
                }
                continue;
            }
            MemorySegment staged = stageOf(stage);
            for (int c = 0; c < valid; c++) {  // the kb values of each row, kb apart (not T_BLOCK: r = 16 needs 1/16)
                MemorySegment.copy(tmp, c * T_BLOCK, staged, DType.LE_FLOAT, 4L * c * kb, kb);
            }
            transposeRows(staged, 0, 4L * kb, valid, kb, scale, dst, at, stage);
        }
    }

    /** {@code stage}'s segment: NR·T_BLOCK floats of converted rows, then one L×L block ({@link #PAD_BLOCK}). */
    private static MemorySegment stageOf(NativeBuffer stage) {
        return stage.ensure(((long) NR * T_BLOCK + (long) L * L) * 4L);
    }

    /** Byte offset in {@link #stageOf} of the zero-padded block for a panel's last rows. */
    private static final long PAD_BLOCK = (long) NR * T_BLOCK * 4L;

    /**
     * dst row k (byte to + k·NR·4) = the k-th values of {@code valid} ≤ NR rows of fp32 (row c at byte
     * from + c·stride of {@code src}) times scale, k &lt; cols; lanes c ≥ valid are 0. Whole L×L blocks
     * in registers; a block with fewer than L rows left from a zero-padded copy in {@code stage}; the
     * last cols mod L columns one value at a time.
     */
    private static void transposeRows(MemorySegment src, long from, long stride, int valid, int cols, float scale,
                                      MemorySegment dst, long to, NativeBuffer stage) {
        int full = cols / L * L;
        long rowBytes = NR * 4L;
        for (int cb = 0; cb < NR; cb += L) {
            int rowsIn = Math.max(0, Math.min(L, valid - cb));
            long first = from + cb * stride;
            long out = to + 4L * cb;
            if (rowsIn > 0) {
                MemorySegment pad = rowsIn < L ? stageOf(stage) : null;
                if (pad != null) {
                    pad.asSlice(PAD_BLOCK, 4L * L * L).fill((byte) 0);
                }
                for (int k = 0; k < full; k += L) {
                    // a block with fewer than L rows is scaled as it is staged, then transposed with
                    // scale 1: the padding stays +0 (0·γ is −0 for γ < 0); one call site of the block
                    // transpose, so that C2 inlines it once (GraphSizeTest)
                    MemorySegment in = src;
                    long at = first + 4L * k;
                    long ld = stride;
                    float sc = scale;
                    if (pad != null) {
                        for (int c = 0; c < rowsIn; c++) {
                            FloatVector.fromMemorySegment(S, src, at + c * stride, ByteOrder.LITTLE_ENDIAN).mul(scale)
                                    .intoMemorySegment(pad, PAD_BLOCK + 4L * c * L, ByteOrder.LITTLE_ENDIAN);
                        }
                        in = pad;
                        at = PAD_BLOCK;
                        ld = 4L * L;
                        sc = 1f;
                    }
                    BlockTranspose.block(in, at, ld, sc, dst, out + k * rowBytes, rowBytes);
                }
            } else {
                FloatVector zero = FloatVector.zero(S);
                for (int k = 0; k < full; k++) {
                    zero.intoMemorySegment(dst, out + k * rowBytes, MicroKernel.ORDER);
                }
            }
            for (int k = full; k < cols; k++) {
                for (int c = 0; c < L; c++) {
                    float v = c < rowsIn ? src.get(DType.LE_FLOAT, first + c * stride + 4L * k) * scale : 0f;
                    dst.set(ValueLayout.JAVA_FLOAT, out + k * rowBytes + 4L * c, v);
                }
            }
        }
    }
}
