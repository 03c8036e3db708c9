package dev.rslora.tensor;

/**
 * bfloat16 conversions, bit-identical to CUDA's {@code __float2bfloat16_rn} and
 * {@code __bfloat162float}: round to nearest, ties to even; every NaN becomes the canonical
 * quiet NaN 0x7FFF (what both the CUDA host path and {@code cvt.rn.bf16.f32} produce);
 * overflow rounds to ±infinity.
 */
public final class Bf16 {
    /** The canonical NaN CUDA produces for any NaN input. */
    public static final short CANONICAL_NAN = 0x7FFF;

    private Bf16() {
    }

    /**
     * {@code f} rounded to bfloat16 bits, to nearest even (NaN to the canonical NaN), as CUDA's {@code __float2bfloat16_rn}.
     *
     * @param f any float (values beyond bfloat16's range round to ±infinity)
     * @return the 16 bits: sign, 8 exponent bits, 7 mantissa bits
     */
    public static short fromFloat(float f) {
        int x = Float.floatToRawIntBits(f);
        if ((x & 0x7FFF_FFFF) > 0x7F80_0000) {
            return CANONICAL_NAN;
        }
        // Add 0x7FFF plus the lowest kept bit: rounds to nearest, ties to even. Carries into the
        // exponent produce the correct next binade or infinity.
        int lsb = (x >>> 16) & 1;
        return (short) ((x + 0x7FFF + lsb) >>> 16);
    }

    /**
     * The float of bfloat16 bits {@code h} (exact).
     *
     * @param h bfloat16 bits
     * @return the same value as a float
     */

    public static float toFloat(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }
}
