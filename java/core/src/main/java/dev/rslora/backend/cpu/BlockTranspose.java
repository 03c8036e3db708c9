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
 * log2(L) stages. Stage h pairs the rows i and i + h (bit h of i clear) and swaps their lanes
 * whose bit h differs: row i keeps its lanes with bit h clear and takes row i + h's lanes l ^ h
 * for the others; row i + h the other way round (with 16 lanes two two-vector selections per pair,
 * else one permute l → l ^ h and one blend per row). After the stages for every bit, row k holds
 * column k. No arithmetic but the product by the scale, rounded once per value: the packed panels
 * have the gathers' bits. Measured (one thread, 512-bit vectors, fp32, all panels of one matrix,
 * 2026-12-06): (γB)ᵀ of B [1024, 64] from 27 µs with 16-lane gathers to 7 µs; Aᵀ of A [64, 1024]
 * from 25 µs to 9 µs (9.0 µs in the rolled form below, 9.1 µs in the straight-line form it
 * replaced, alternated in one JVM, 2026-12-07).
 */
final class BlockTranspose {
    private static final VectorSpecies<Float> S = MicroKernel.SPECIES;
    private static final int L = MicroKernel.L;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorShuffle<Float> X1 = Lanes.xor(1);
    private static final VectorShuffle<Float> X2 = Lanes.xor(2);
    private static final VectorShuffle<Float> X4 = Lanes.xor(4);
    private static final VectorMask<Float> HI1 = Lanes.set(1);
    private static final VectorMask<Float> HI2 = Lanes.set(2);
    private static final VectorMask<Float> HI4 = Lanes.set(4);
    private static final VectorMask<Float> LO1 = Lanes.clear(1);
    private static final VectorMask<Float> LO2 = Lanes.clear(2);
    private static final VectorMask<Float> LO4 = Lanes.clear(4);
    // the 16-lane block's two-vector selections (L = 16 only): LOWh for row i, HIGHh for row i + h
    private static final FloatVector LOW1 = Lanes.pick(1, false);
    private static final FloatVector LOW2 = Lanes.pick(2, false);
    private static final FloatVector LOW4 = Lanes.pick(4, false);
    private static final FloatVector LOW8 = Lanes.pick(8, false);
    private static final FloatVector HIGH1 = Lanes.pick(1, true);
    private static final FloatVector HIGH2 = Lanes.pick(2, true);
    private static final FloatVector HIGH4 = Lanes.pick(4, true);
    private static final FloatVector HIGH8 = Lanes.pick(8, true);

    private BlockTranspose() {
    }

    /**
     * The whole block as in the class comment (every row and column present). Each lane count's
     * block is one method that C2 parses below its inlining cutoff ({@link GraphSizeTest}): with
     * helpers for missing rows, masked columns or the blends, C2 reached its node limit inside the
     * 16-lane block, left calls out of line, boxed their vectors and packed 8× slower than the
     * gathers it replaces. Written straight through (16 loads, 64 blends and permutes, 16 stores;
     * then in two methods, 45 000 and 31 000 nodes), it was past that cutoff, and in some orders of
     * the cpu tests C2 kept virtual calls on boxed vectors in it: 8–51 KB per training step
     * (StepAllocationTest, JFR: FloatVector.blendTemplate under block16Stages84, 2026-12-07). So
     * the stages run in rolled loops over quads of rows, two stages per pass through the
     * destination rows (13 000 nodes). Vector shapes only.
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

    /**
     * The 16-lane block in two rolled loops over quads of rows, each quad's four rows in registers
     * for two stages: stages 8 and 4 on rows {i, i + 4, i + 8, i + 12} (i &lt; 4), from the source
     * rows to the destination rows; then stages 2 and 1 on rows {4j, …, 4j + 3} in place there.
     * One exchange is two selections from the pair ({@link Lanes#pick}: one two-source permute each, C2's SelectFromTwoVector).
     */
    private static void block16(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                long ds) {
        FloatVector gv = FloatVector.broadcast(S, g);
        for (int i = 0; i < 4; i++) {
            FloatVector r0 = FloatVector.fromMemorySegment(S, src, f + i * ss, LE).mul(gv);
            FloatVector r4 = FloatVector.fromMemorySegment(S, src, f + (i + 4) * ss, LE).mul(gv);
            FloatVector r8 = FloatVector.fromMemorySegment(S, src, f + (i + 8) * ss, LE).mul(gv);
            FloatVector r12 = FloatVector.fromMemorySegment(S, src, f + (i + 12) * ss, LE).mul(gv);
            FloatVector a = r0;
            r0 = LOW8.selectFrom(a, r8);
            r8 = HIGH8.selectFrom(a, r8);
            a = r4;
            r4 = LOW8.selectFrom(a, r12);
            r12 = HIGH8.selectFrom(a, r12);
            a = r0;
            r0 = LOW4.selectFrom(a, r4);
            r4 = HIGH4.selectFrom(a, r4);
            a = r8;
            r8 = LOW4.selectFrom(a, r12);
            r12 = HIGH4.selectFrom(a, r12);
            r0.intoMemorySegment(dst, t + i * ds, MicroKernel.ORDER);
            r4.intoMemorySegment(dst, t + (i + 4) * ds, MicroKernel.ORDER);
            r8.intoMemorySegment(dst, t + (i + 8) * ds, MicroKernel.ORDER);
            r12.intoMemorySegment(dst, t + (i + 12) * ds, MicroKernel.ORDER);
        }
        for (int j = 0; j < 4; j++) {
            long at = t + 4L * j * ds;
            FloatVector r0 = FloatVector.fromMemorySegment(S, dst, at, MicroKernel.ORDER);
            FloatVector r1 = FloatVector.fromMemorySegment(S, dst, at + ds, MicroKernel.ORDER);
            FloatVector r2 = FloatVector.fromMemorySegment(S, dst, at + 2 * ds, MicroKernel.ORDER);
            FloatVector r3 = FloatVector.fromMemorySegment(S, dst, at + 3 * ds, MicroKernel.ORDER);
            FloatVector a = r0;
            r0 = LOW2.selectFrom(a, r2);
            r2 = HIGH2.selectFrom(a, r2);
            a = r1;
            r1 = LOW2.selectFrom(a, r3);
            r3 = HIGH2.selectFrom(a, r3);
            a = r0;
            r0 = LOW1.selectFrom(a, r1);
            r1 = HIGH1.selectFrom(a, r1);
            a = r2;
            r2 = LOW1.selectFrom(a, r3);
            r3 = HIGH1.selectFrom(a, r3);
            r0.intoMemorySegment(dst, at, MicroKernel.ORDER);
            r1.intoMemorySegment(dst, at + ds, MicroKernel.ORDER);
            r2.intoMemorySegment(dst, at + 2 * ds, MicroKernel.ORDER);
            r3.intoMemorySegment(dst, at + 3 * ds, MicroKernel.ORDER);
        }
    }

    /**
     * The 8-lane block in two rolled loops: stages 4 and 2 on rows {i, i + 2, i + 4, i + 6} (i &lt;
     * 2), from the source rows to the destination rows; then stage 1 on rows {4j, …, 4j + 3} in
     * place there. One exchange is a permute and a blend per row (AVX2 has no two-vector selection).
     */
    private static void block8(MemorySegment src, long f, long ss, float g, MemorySegment dst, long t,
                                long ds) {
        FloatVector gv = FloatVector.broadcast(S, g);
        for (int i = 0; i < 2; i++) {
            FloatVector r0 = FloatVector.fromMemorySegment(S, src, f + i * ss, LE).mul(gv);
            FloatVector r2 = FloatVector.fromMemorySegment(S, src, f + (i + 2) * ss, LE).mul(gv);
            FloatVector r4 = FloatVector.fromMemorySegment(S, src, f + (i + 4) * ss, LE).mul(gv);
            FloatVector r6 = FloatVector.fromMemorySegment(S, src, f + (i + 6) * ss, LE).mul(gv);
            FloatVector a = r0;
            r0 = a.blend(r4.rearrange(X4), HI4);
            r4 = r4.blend(a.rearrange(X4), LO4);
            a = r2;
            r2 = a.blend(r6.rearrange(X4), HI4);
            r6 = r6.blend(a.rearrange(X4), LO4);
            a = r0;
            r0 = a.blend(r2.rearrange(X2), HI2);
            r2 = r2.blend(a.rearrange(X2), LO2);
            a = r4;
            r4 = a.blend(r6.rearrange(X2), HI2);
            r6 = r6.blend(a.rearrange(X2), LO2);
            r0.intoMemorySegment(dst, t + i * ds, MicroKernel.ORDER);
            r2.intoMemorySegment(dst, t + (i + 2) * ds, MicroKernel.ORDER);
            r4.intoMemorySegment(dst, t + (i + 4) * ds, MicroKernel.ORDER);
            r6.intoMemorySegment(dst, t + (i + 6) * ds, MicroKernel.ORDER);
        }
        for (int j = 0; j < 2; j++) {
            long at = t + 4L * j * ds;
            FloatVector r0 = FloatVector.fromMemorySegment(S, dst, at, MicroKernel.ORDER);
            FloatVector r1 = FloatVector.fromMemorySegment(S, dst, at + ds, MicroKernel.ORDER);
            FloatVector r2 = FloatVector.fromMemorySegment(S, dst, at + 2 * ds, MicroKernel.ORDER);
            FloatVector r3 = FloatVector.fromMemorySegment(S, dst, at + 3 * ds, MicroKernel.ORDER);
            FloatVector a = r0;
            r0 = a.blend(r1.rearrange(X1), HI1);
            r1 = r1.blend(a.rearrange(X1), LO1);
            a = r2;
            r2 = a.blend(r3.rearrange(X1), HI1);
            r3 = r3.blend(a.rearrange(X1), LO1);
            r0.intoMemorySegment(dst, at, MicroKernel.ORDER);
            r1.intoMemorySegment(dst, at + ds, MicroKernel.ORDER);
            r2.intoMemorySegment(dst, at + 2 * ds, MicroKernel.ORDER);
            r3.intoMemorySegment(dst, at + 3 * ds, MicroKernel.ORDER);
        }
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
