package dev.rslora.backend.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * One L×L block of fp32 (L = {@link MicroKernel#L} lanes) transposed in registers, for the
 * transposed packs ({@link Panels#packTransposedPanel}):
 * <pre>
 *   dst[k][c] = src[c][k]·scale      c, k &lt; L; row c of src at byte from + c·srcStride (fp32
 *                                    little-endian, as tensors hold it), row k of dst at byte
 *                                    to + k·dstStride (the panels' byte order, MicroKernel.ORDER)
 * </pre>
 * L loads, log2(L) stages, L stores. Stage h pairs the rows i and i + h (bit h of i clear) and
 * swaps their lanes whose bit h differs: row i keeps its lanes with bit h clear and takes row
 * i + h's lanes l ^ h for the others; row i + h the other way round (one permute l → l ^ h and one
 * blend per row and stage). After the stages for every bit, row k holds column k. No arithmetic
 * but the product by the scale, rounded once per value: the packed panels have the gathers' bits.
 * Measured (one thread, 512-bit vectors, fp32, all panels of one matrix, 2026-12-06): (γB)ᵀ of
 * B [1024, 64] from 27 µs with 16-lane gathers to 7 µs; Aᵀ of A [64, 1024] from 25 µs to 9 µs.
 */
final class BlockTranspose {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorShuffle<Float> X1 = Lanes.xor(1);
    private static final VectorShuffle<Float> X2 = Lanes.xor(2);
    private static final VectorShuffle<Float> X4 = Lanes.xor(4);
    private static final VectorShuffle<Float> X8 = Lanes.xor(8);
    private static final VectorMask<Float> HI1 = Lanes.set(1);
    private static final VectorMask<Float> HI2 = Lanes.set(2);
    private static final VectorMask<Float> HI4 = Lanes.set(4);
    private static final VectorMask<Float> HI8 = Lanes.set(8);
    private static final VectorMask<Float> LO1 = Lanes.clear(1);
    private static final VectorMask<Float> LO2 = Lanes.clear(2);
    private static final VectorMask<Float> LO4 = Lanes.clear(4);
    private static final VectorMask<Float> LO8 = Lanes.clear(8);

    private BlockTranspose() {
    }

    /**
     * The whole block as in the class comment (every row and column present). Written as one
     * straight run of Vector API calls per lane count: with helpers for missing rows, masked columns
     * or the blends, C2 reached its node limit inside the 16-lane block (NodeCountInliningCutoff),
     * left calls out of line, boxed their vectors and packed 8× slower than the gathers it replaces.
     * The 16-lane block runs in two methods, stages 8 and 4 then 2 and 1, through the destination
     * rows (16 stores and loads more, forwarded from the store buffer): whole, C2 compiled it on
     * its own (never inlined: 1804 bytes), but in some JVMs ran out of nodes near its end and left
     * the last blends to the Java fallback (JFR: FloatVector.blendTemplate in stage 1; 10–21 KB
     * per training step after the other cpu tests, -XX:-UseFMA; StepAllocationTest, 2026-12-07).
     * Vector shapes only.
     */
    static void block(MemorySegment src, long from, long srcStride, float scale, MemorySegment dst, long to,
                      long dstStride) {
        if (L == 16) {
            block16(src, from, srcStride, scale, dst, to, dstStride);
        } else if (L == 8) {
            block8(src, from, srcStride, scale, dst, to, dstStride);
        } else {
            block4(src, from, srcStride, scale, dst, to, dstStride);
        }
    }

    private static void block16(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                long ds) {
        block16Stages84(src, f, ss, g, dst, t, ds);
        block16Stages21(dst, t, ds);
    }

    /** The 16-lane block's loads and its stages 8 and 4, stored to the destination rows. */
    private static void block16Stages84(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                        long ds) {
        FloatVector v0 = FloatVector.fromMemorySegment(S, src, f, LE).mul(g);
        FloatVector v1 = FloatVector.fromMemorySegment(S, src, f + ss, LE).mul(g);
        FloatVector v2 = FloatVector.fromMemorySegment(S, src, f + 2 * ss, LE).mul(g);
        FloatVector v3 = FloatVector.fromMemorySegment(S, src, f + 3 * ss, LE).mul(g);
        FloatVector v4 = FloatVector.fromMemorySegment(S, src, f + 4 * ss, LE).mul(g);
        FloatVector v5 = FloatVector.fromMemorySegment(S, src, f + 5 * ss, LE).mul(g);
        FloatVector v6 = FloatVector.fromMemorySegment(S, src, f + 6 * ss, LE).mul(g);
        FloatVector v7 = FloatVector.fromMemorySegment(S, src, f + 7 * ss, LE).mul(g);
        FloatVector v8 = FloatVector.fromMemorySegment(S, src, f + 8 * ss, LE).mul(g);
        FloatVector v9 = FloatVector.fromMemorySegment(S, src, f + 9 * ss, LE).mul(g);
        FloatVector va = FloatVector.fromMemorySegment(S, src, f + 10 * ss, LE).mul(g);
        FloatVector vb = FloatVector.fromMemorySegment(S, src, f + 11 * ss, LE).mul(g);
        FloatVector vc = FloatVector.fromMemorySegment(S, src, f + 12 * ss, LE).mul(g);
        FloatVector vd = FloatVector.fromMemorySegment(S, src, f + 13 * ss, LE).mul(g);
        FloatVector ve = FloatVector.fromMemorySegment(S, src, f + 14 * ss, LE).mul(g);
        FloatVector vf = FloatVector.fromMemorySegment(S, src, f + 15 * ss, LE).mul(g);
        FloatVector a;
        // stage 8: rows (i, i + 8)
        a = v0; v0 = a.blend(v8.rearrange(X8), HI8); v8 = v8.blend(a.rearrange(X8), LO8);
        a = v1; v1 = a.blend(v9.rearrange(X8), HI8); v9 = v9.blend(a.rearrange(X8), LO8);
        a = v2; v2 = a.blend(va.rearrange(X8), HI8); va = va.blend(a.rearrange(X8), LO8);
        a = v3; v3 = a.blend(vb.rearrange(X8), HI8); vb = vb.blend(a.rearrange(X8), LO8);
        a = v4; v4 = a.blend(vc.rearrange(X8), HI8); vc = vc.blend(a.rearrange(X8), LO8);
        a = v5; v5 = a.blend(vd.rearrange(X8), HI8); vd = vd.blend(a.rearrange(X8), LO8);
        a = v6; v6 = a.blend(ve.rearrange(X8), HI8); ve = ve.blend(a.rearrange(X8), LO8);
        a = v7; v7 = a.blend(vf.rearrange(X8), HI8); vf = vf.blend(a.rearrange(X8), LO8);
        // stage 4
        a = v0; v0 = a.blend(v4.rearrange(X4), HI4); v4 = v4.blend(a.rearrange(X4), LO4);
        a = v1; v1 = a.blend(v5.rearrange(X4), HI4); v5 = v5.blend(a.rearrange(X4), LO4);
        a = v2; v2 = a.blend(v6.rearrange(X4), HI4); v6 = v6.blend(a.rearrange(X4), LO4);
        a = v3; v3 = a.blend(v7.rearrange(X4), HI4); v7 = v7.blend(a.rearrange(X4), LO4);
        a = v8; v8 = a.blend(vc.rearrange(X4), HI4); vc = vc.blend(a.rearrange(X4), LO4);
        a = v9; v9 = a.blend(vd.rearrange(X4), HI4); vd = vd.blend(a.rearrange(X4), LO4);
        a = va; va = a.blend(ve.rearrange(X4), HI4); ve = ve.blend(a.rearrange(X4), LO4);
        a = vb; vb = a.blend(vf.rearrange(X4), HI4); vf = vf.blend(a.rearrange(X4), LO4);
        v0.intoMemorySegment(dst, t, MicroKernel.ORDER);
        v1.intoMemorySegment(dst, t + ds, MicroKernel.ORDER);
        v2.intoMemorySegment(dst, t + 2 * ds, MicroKernel.ORDER);
        v3.intoMemorySegment(dst, t + 3 * ds, MicroKernel.ORDER);
        v4.intoMemorySegment(dst, t + 4 * ds, MicroKernel.ORDER);
        v5.intoMemorySegment(dst, t + 5 * ds, MicroKernel.ORDER);
        v6.intoMemorySegment(dst, t + 6 * ds, MicroKernel.ORDER);
        v7.intoMemorySegment(dst, t + 7 * ds, MicroKernel.ORDER);
        v8.intoMemorySegment(dst, t + 8 * ds, MicroKernel.ORDER);
        v9.intoMemorySegment(dst, t + 9 * ds, MicroKernel.ORDER);
        va.intoMemorySegment(dst, t + 10 * ds, MicroKernel.ORDER);
        vb.intoMemorySegment(dst, t + 11 * ds, MicroKernel.ORDER);
        vc.intoMemorySegment(dst, t + 12 * ds, MicroKernel.ORDER);
        vd.intoMemorySegment(dst, t + 13 * ds, MicroKernel.ORDER);
        ve.intoMemorySegment(dst, t + 14 * ds, MicroKernel.ORDER);
        vf.intoMemorySegment(dst, t + 15 * ds, MicroKernel.ORDER);
    }

    /** The 16-lane block's stages 2 and 1, in place on the destination rows. */
    private static void block16Stages21(MemorySegment dst, long t, long ds) {
        FloatVector v0 = FloatVector.fromMemorySegment(S, dst, t, MicroKernel.ORDER);
        FloatVector v1 = FloatVector.fromMemorySegment(S, dst, t + ds, MicroKernel.ORDER);
        FloatVector v2 = FloatVector.fromMemorySegment(S, dst, t + 2 * ds, MicroKernel.ORDER);
        FloatVector v3 = FloatVector.fromMemorySegment(S, dst, t + 3 * ds, MicroKernel.ORDER);
        FloatVector v4 = FloatVector.fromMemorySegment(S, dst, t + 4 * ds, MicroKernel.ORDER);
        FloatVector v5 = FloatVector.fromMemorySegment(S, dst, t + 5 * ds, MicroKernel.ORDER);
        FloatVector v6 = FloatVector.fromMemorySegment(S, dst, t + 6 * ds, MicroKernel.ORDER);
        FloatVector v7 = FloatVector.fromMemorySegment(S, dst, t + 7 * ds, MicroKernel.ORDER);
        FloatVector v8 = FloatVector.fromMemorySegment(S, dst, t + 8 * ds, MicroKernel.ORDER);
        FloatVector v9 = FloatVector.fromMemorySegment(S, dst, t + 9 * ds, MicroKernel.ORDER);
        FloatVector va = FloatVector.fromMemorySegment(S, dst, t + 10 * ds, MicroKernel.ORDER);
        FloatVector vb = FloatVector.fromMemorySegment(S, dst, t + 11 * ds, MicroKernel.ORDER);
        FloatVector vc = FloatVector.fromMemorySegment(S, dst, t + 12 * ds, MicroKernel.ORDER);
        FloatVector vd = FloatVector.fromMemorySegment(S, dst, t + 13 * ds, MicroKernel.ORDER);
        FloatVector ve = FloatVector.fromMemorySegment(S, dst, t + 14 * ds, MicroKernel.ORDER);
        FloatVector vf = FloatVector.fromMemorySegment(S, dst, t + 15 * ds, MicroKernel.ORDER);
        FloatVector a;
        // stage 2
        a = v0; v0 = a.blend(v2.rearrange(X2), HI2); v2 = v2.blend(a.rearrange(X2), LO2);
        a = v1; v1 = a.blend(v3.rearrange(X2), HI2); v3 = v3.blend(a.rearrange(X2), LO2);
        a = v4; v4 = a.blend(v6.rearrange(X2), HI2); v6 = v6.blend(a.rearrange(X2), LO2);
        a = v5; v5 = a.blend(v7.rearrange(X2), HI2); v7 = v7.blend(a.rearrange(X2), LO2);
        a = v8; v8 = a.blend(va.rearrange(X2), HI2); va = va.blend(a.rearrange(X2), LO2);
        a = v9; v9 = a.blend(vb.rearrange(X2), HI2); vb = vb.blend(a.rearrange(X2), LO2);
        a = vc; vc = a.blend(ve.rearrange(X2), HI2); ve = ve.blend(a.rearrange(X2), LO2);
        a = vd; vd = a.blend(vf.rearrange(X2), HI2); vf = vf.blend(a.rearrange(X2), LO2);
        // stage 1
        a = v0; v0 = a.blend(v1.rearrange(X1), HI1); v1 = v1.blend(a.rearrange(X1), LO1);
        a = v2; v2 = a.blend(v3.rearrange(X1), HI1); v3 = v3.blend(a.rearrange(X1), LO1);
        a = v4; v4 = a.blend(v5.rearrange(X1), HI1); v5 = v5.blend(a.rearrange(X1), LO1);
        a = v6; v6 = a.blend(v7.rearrange(X1), HI1); v7 = v7.blend(a.rearrange(X1), LO1);
        a = v8; v8 = a.blend(v9.rearrange(X1), HI1); v9 = v9.blend(a.rearrange(X1), LO1);
        a = va; va = a.blend(vb.rearrange(X1), HI1); vb = vb.blend(a.rearrange(X1), LO1);
        a = vc; vc = a.blend(vd.rearrange(X1), HI1); vd = vd.blend(a.rearrange(X1), LO1);
        a = ve; ve = a.blend(vf.rearrange(X1), HI1); vf = vf.blend(a.rearrange(X1), LO1);
        v0.intoMemorySegment(dst, t, MicroKernel.ORDER);
        v1.intoMemorySegment(dst, t + ds, MicroKernel.ORDER);
        v2.intoMemorySegment(dst, t + 2 * ds, MicroKernel.ORDER);
        v3.intoMemorySegment(dst, t + 3 * ds, MicroKernel.ORDER);
        v4.intoMemorySegment(dst, t + 4 * ds, MicroKernel.ORDER);
        v5.intoMemorySegment(dst, t + 5 * ds, MicroKernel.ORDER);
        v6.intoMemorySegment(dst, t + 6 * ds, MicroKernel.ORDER);
        v7.intoMemorySegment(dst, t + 7 * ds, MicroKernel.ORDER);
        v8.intoMemorySegment(dst, t + 8 * ds, MicroKernel.ORDER);
        v9.intoMemorySegment(dst, t + 9 * ds, MicroKernel.ORDER);
        va.intoMemorySegment(dst, t + 10 * ds, MicroKernel.ORDER);
        vb.intoMemorySegment(dst, t + 11 * ds, MicroKernel.ORDER);
        vc.intoMemorySegment(dst, t + 12 * ds, MicroKernel.ORDER);
        vd.intoMemorySegment(dst, t + 13 * ds, MicroKernel.ORDER);
        ve.intoMemorySegment(dst, t + 14 * ds, MicroKernel.ORDER);
        vf.intoMemorySegment(dst, t + 15 * ds, MicroKernel.ORDER);
    }

    private static void block8(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                long ds) {
        FloatVector v0 = FloatVector.fromMemorySegment(S, src, f, LE).mul(g);
        FloatVector v1 = FloatVector.fromMemorySegment(S, src, f + ss, LE).mul(g);
        FloatVector v2 = FloatVector.fromMemorySegment(S, src, f + 2 * ss, LE).mul(g);
        FloatVector v3 = FloatVector.fromMemorySegment(S, src, f + 3 * ss, LE).mul(g);
        FloatVector v4 = FloatVector.fromMemorySegment(S, src, f + 4 * ss, LE).mul(g);
        FloatVector v5 = FloatVector.fromMemorySegment(S, src, f + 5 * ss, LE).mul(g);
        FloatVector v6 = FloatVector.fromMemorySegment(S, src, f + 6 * ss, LE).mul(g);
        FloatVector v7 = FloatVector.fromMemorySegment(S, src, f + 7 * ss, LE).mul(g);
        FloatVector a;
        a = v0; v0 = a.blend(v4.rearrange(X4), HI4); v4 = v4.blend(a.rearrange(X4), LO4);
        a = v1; v1 = a.blend(v5.rearrange(X4), HI4); v5 = v5.blend(a.rearrange(X4), LO4);
        a = v2; v2 = a.blend(v6.rearrange(X4), HI4); v6 = v6.blend(a.rearrange(X4), LO4);
        a = v3; v3 = a.blend(v7.rearrange(X4), HI4); v7 = v7.blend(a.rearrange(X4), LO4);
        a = v0; v0 = a.blend(v2.rearrange(X2), HI2); v2 = v2.blend(a.rearrange(X2), LO2);
        a = v1; v1 = a.blend(v3.rearrange(X2), HI2); v3 = v3.blend(a.rearrange(X2), LO2);
        a = v4; v4 = a.blend(v6.rearrange(X2), HI2); v6 = v6.blend(a.rearrange(X2), LO2);
        a = v5; v5 = a.blend(v7.rearrange(X2), HI2); v7 = v7.blend(a.rearrange(X2), LO2);
        a = v0; v0 = a.blend(v1.rearrange(X1), HI1); v1 = v1.blend(a.rearrange(X1), LO1);
        a = v2; v2 = a.blend(v3.rearrange(X1), HI1); v3 = v3.blend(a.rearrange(X1), LO1);
        a = v4; v4 = a.blend(v5.rearrange(X1), HI1); v5 = v5.blend(a.rearrange(X1), LO1);
        a = v6; v6 = a.blend(v7.rearrange(X1), HI1); v7 = v7.blend(a.rearrange(X1), LO1);
        v0.intoMemorySegment(dst, t, MicroKernel.ORDER);
        v1.intoMemorySegment(dst, t + ds, MicroKernel.ORDER);
        v2.intoMemorySegment(dst, t + 2 * ds, MicroKernel.ORDER);
        v3.intoMemorySegment(dst, t + 3 * ds, MicroKernel.ORDER);
        v4.intoMemorySegment(dst, t + 4 * ds, MicroKernel.ORDER);
        v5.intoMemorySegment(dst, t + 5 * ds, MicroKernel.ORDER);
        v6.intoMemorySegment(dst, t + 6 * ds, MicroKernel.ORDER);
        v7.intoMemorySegment(dst, t + 7 * ds, MicroKernel.ORDER);
    }

    private static void block4(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                long ds) {
        FloatVector v0 = FloatVector.fromMemorySegment(S, src, f, LE).mul(g);
        FloatVector v1 = FloatVector.fromMemorySegment(S, src, f + ss, LE).mul(g);
        FloatVector v2 = FloatVector.fromMemorySegment(S, src, f + 2 * ss, LE).mul(g);
        FloatVector v3 = FloatVector.fromMemorySegment(S, src, f + 3 * ss, LE).mul(g);
        FloatVector a;
        a = v0; v0 = a.blend(v2.rearrange(X2), HI2); v2 = v2.blend(a.rearrange(X2), LO2);
        a = v1; v1 = a.blend(v3.rearrange(X2), HI2); v3 = v3.blend(a.rearrange(X2), LO2);
        a = v0; v0 = a.blend(v1.rearrange(X1), HI1); v1 = v1.blend(a.rearrange(X1), LO1);
        a = v2; v2 = a.blend(v3.rearrange(X1), HI1); v3 = v3.blend(a.rearrange(X1), LO1);
        v0.intoMemorySegment(dst, t, MicroKernel.ORDER);
        v1.intoMemorySegment(dst, t + ds, MicroKernel.ORDER);
        v2.intoMemorySegment(dst, t + 2 * ds, MicroKernel.ORDER);
        v3.intoMemorySegment(dst, t + 3 * ds, MicroKernel.ORDER);
    }
}
