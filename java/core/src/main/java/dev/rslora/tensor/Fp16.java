package dev.rslora.tensor;

/**
 * IEEE binary16 conversions, bit-identical to CUDA's {@code __float2half_rn} and
 * {@code __half2float}: round to nearest, ties to even (subnormals included), overflow to
 * ±infinity, and every NaN becomes the canonical NaN 0x7FFF as CUDA produces.
 */
public final class Fp16 {
    /** The canonical NaN CUDA produces for any NaN input. */
    public static final short CANONICAL_NAN = 0x7FFF;

    private Fp16() {
    }

    /**
     * {@code f} rounded to half-precision bits, to nearest even (NaN to the canonical NaN), as CUDA's {@code __float2half_rn}.
     *
     * @param f any float (beyond ±65504 rounds to ±infinity, below 2^-24 to subnormals or ±0)
     * @return the 16 IEEE binary16 bits
     */
    public static short fromFloat(float f) {
        if (Float.isNaN(f)) {
            return CANONICAL_NAN;
        }
        return Float.floatToFloat16(f); // IEEE round-to-nearest-even, as cvt.rn.f16.f32
    }

    /**
     * The float of half-precision bits {@code h} (exact).
     *
     * @param h IEEE binary16 bits
     * @return the same value as a float
     */

    public static float toFloat(short h) {
        return Float.float16ToFloat(h);
    }
}
