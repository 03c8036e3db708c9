package dev.rslora.train;

import dev.rslora.simd.Fma;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * e^x of fp32 lanes from fma, multiplies, adds and an exponent shift only, so that every compiler
 * tier gives the same bits. The Vector API's {@code lanewise(EXP)} does not: C2 calls a vector math
 * library, the interpreter and C1 compute {@code (float) Math.exp} per lane, and they differ in
 * the last bit of some lanes, so a run's results depended on when its loops got compiled
 * ({@code TierBitsTest} caught it in SeqLogprob).
 * <pre>
 *   n = round(x·log₂e)            (adding and subtracting 1.5·2²³)
 *   t = x − n·ln2                  (ln2 split in two, Cody–Waite; |t| ≤ ln2/2)
 *   e^t ≈ 1 + t + t²·P(t)          (P of degree 5: Cephes expf's minimax coefficients)
 *   e^x = e^t · 2ⁿ                 (2ⁿ built in the exponent bits)
 * </pre>
 * Within 2 ulp of the exact value for x in [−87.33, 88] ({@code VectorExpTest}); 0 below
 * −87.33 (where e^x leaves the normal floats: the scalar path's subnormals there are flushed),
 * +Inf above 88.7, NaN for NaN (SeqLogprob passes x ≤ 0).
 */
final class VectorExp {
    /** Multiply-adds fused, or a multiply then an add where the JIT has no FMA instructions ({@link Fma}). */
    private static final boolean FUSED = Fma.FUSED;
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f;  // 1.5·2²³
    /** ln(2⁻¹²⁶): the smallest x whose e^x is a normal float. */
    static final float MIN_X = -87.33654f;
    private static final float MAX_X = 88.72283f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Vectors summed in fp32 before the block's lanes are added in double (512 values at 16 lanes). */
    static final int BLOCK = 32;

    private VectorExp() {
    }

    /**
     * e^(x − shift) for count fp32 values x (count a multiple of the lane count), little-endian from
     * byte {@code off} of xs. With {@code ds} null, returns their sum: {@link #BLOCK} vectors summed
     * in fp32 lanes, each block's lanes then added to a double in lane order (through an array of L
     * floats; reduceLanes(ADD) leaves the order to the JIT, and the interpreter's differs from
     * C2's, so a run's bits would depend on when the method was compiled: TierBitsTest). Otherwise
     * stores scale·e^(x − shift) at the same byte of ds and returns 0.
     * <p>The loop and the polynomial are one method, for both uses: a vector passed to or returned
     * from a call is boxed on the heap unless C2 inlines the call, and C2 never inlined e^x as a
     * method of its own (434 bytes of bytecode, over -XX:FreqInlineSize's 325): SeqLogprob's
     * forward and backward over 8 rows of 32000 logits allocated 6.1 MB per call, 192 bytes per
     * vector (JDK 25, 512-bit, 2026-12-07).
     */
    static double exp(MemorySegment xs, long off, int count, float shift, MemorySegment ds, float scale) {
        int l = S.length();
        float[] lanes = ds == null ? new float[l] : null;
        FloatVector sh = FloatVector.broadcast(S, shift);
        FloatVector round = FloatVector.broadcast(S, ROUND);
        FloatVector negLn2Hi = FloatVector.broadcast(S, -LN2_HI);
        FloatVector negLn2Lo = FloatVector.broadcast(S, -LN2_LO);
        FloatVector c2 = FloatVector.broadcast(S, P2);
        FloatVector c3 = FloatVector.broadcast(S, P3);
        FloatVector c4 = FloatVector.broadcast(S, P4);
        FloatVector c5 = FloatVector.broadcast(S, P5);
        double sum = 0;
        int v = 0;
        while (v < count) {
            FloatVector acc = FloatVector.zero(S);
            int end = Math.min(count, v + BLOCK * l);
            for (; v < end; v += l) {
                long at = off + (long) v * Float.BYTES;
                FloatVector x = FloatVector.fromMemorySegment(S, xs, at, LE).sub(sh);
                VectorMask<Float> under = x.compare(VectorOperators.LT, MIN_X);
                FloatVector xc = x.max(MIN_X).min(MAX_X);  // NaN stays NaN
                FloatVector n = (FUSED ? xc.fma(LOG2E, ROUND) : xc.mul(LOG2E).add(ROUND)).sub(round);
                FloatVector t = FUSED ? n.fma(negLn2Hi, xc) : n.mul(negLn2Hi).add(xc);
                t = FUSED ? n.fma(negLn2Lo, t) : n.mul(negLn2Lo).add(t);
                FloatVector p = FUSED ? t.fma(P0, P1) : t.mul(P0).add(P1);
                p = FUSED ? p.fma(t, c2) : p.mul(t).add(c2);
                p = FUSED ? p.fma(t, c3) : p.mul(t).add(c3);
                p = FUSED ? p.fma(t, c4) : p.mul(t).add(c4);
                p = FUSED ? p.fma(t, c5) : p.mul(t).add(c5);
                FloatVector pt = p.mul(t);
                FloatVector et = (FUSED ? pt.fma(t, t) : pt.mul(t).add(t)).add(1f);  // 1 + t + t²·P(t)
                IntVector bits = ((IntVector) n.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
                FloatVector e = et.mul(bits.reinterpretAsFloats()).blend(0f, under);
                if (ds == null) {
                    acc = acc.add(e);
                } else {
                    e.mul(scale).intoMemorySegment(ds, at, LE);
                }
            }
            if (ds == null) {
                acc.intoArray(lanes, 0);
                for (int i = 0; i < l; i++) {
                    sum += lanes[i];
                }
            }
        }
        return sum;
    }
}
