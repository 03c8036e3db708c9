package dev.rslora.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.math.BigDecimal;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bf16/f16 conversions: round to nearest even exactly as CUDA's _rn intrinsics, NaN preserved. */
class ConversionsTest {

    /** Exact RNE to bf16 computed by a different method: compare distances with BigDecimal. */
    private static short bf16Oracle(float f) {
        if (Float.isNaN(f)) {
            return Bf16.CANONICAL_NAN;
        }
        int x = Float.floatToRawIntBits(f);
        short down = (short) (x >>> 16);
        short up = (short) (down + 1);
        if ((x & 0xFFFF) == 0) {
            return down;
        }
        BigDecimal v = new BigDecimal(f);
        BigDecimal dDown = v.subtract(new BigDecimal(Bf16.toFloat(down))).abs();
        float upF = Bf16.toFloat(up);
        if (Float.isInfinite(upF)) {
            // overflow boundary: halfway between max bf16 and 2^128 rounds to infinity (IEEE RNE)
            BigDecimal max = new BigDecimal(Bf16.toFloat(down));
            BigDecimal next = new BigDecimal(2).pow(128);
            BigDecimal dUp = next.subtract(v.abs());
            int c = dDown.compareTo(dUp);
            return c < 0 ? down : (c > 0 ? up : ((down & 1) == 0 ? down : up));
        }
        BigDecimal dUp = new BigDecimal(upF).subtract(v).abs();
        int c = dDown.compareTo(dUp);
        if (c < 0) {
            return down;
        }
        if (c > 0) {
            return up;
        }
        return (down & 1) == 0 ? down : up;
    }

    @Test
    void bf16MatchesExactRoundingOnRandomBitPatterns() {
        SplittableRandom rng = new SplittableRandom(20261128);
        for (int i = 0; i < 200_000; i++) {
            float f = Float.intBitsToFloat(rng.nextInt());
            short want = bf16Oracle(f);
            short got = Bf16.fromFloat(f);
            assertEquals(want, got, () -> "bf16(" + f + " = 0x" + Integer.toHexString(Float.floatToRawIntBits(f)) + ")");
        }
    }

    @Test
    void bf16TiesGoToEven() {
        // 1 + 2^-8 is exactly halfway between bf16 1.0 (0x3F80) and 1.0078125 (0x3F81): even wins.
        assertEquals((short) 0x3F80, Bf16.fromFloat(Float.intBitsToFloat(0x3F808000)));
        // halfway between 0x3F81 and 0x3F82 goes up to the even 0x3F82
        assertEquals((short) 0x3F82, Bf16.fromFloat(Float.intBitsToFloat(0x3F818000)));
        assertEquals((short) 0x3F81, Bf16.fromFloat(Float.intBitsToFloat(0x3F808001)));
    }

    @Test
    void bf16SpecialValues() {
        assertEquals((short) 0x7F80, Bf16.fromFloat(Float.POSITIVE_INFINITY));
        assertEquals((short) 0xFF80, Bf16.fromFloat(Float.NEGATIVE_INFINITY));
        assertEquals((short) 0x7F80, Bf16.fromFloat(Float.MAX_VALUE), "max float rounds to +inf in bf16");
        assertEquals((short) 0x8000, Bf16.fromFloat(-0.0f));
        assertEquals(Bf16.CANONICAL_NAN, Bf16.fromFloat(Float.NaN));
        assertEquals(Bf16.CANONICAL_NAN, Bf16.fromFloat(Float.intBitsToFloat(0xFFC00001)));
        assertTrue(Float.isNaN(Bf16.toFloat(Bf16.fromFloat(Float.intBitsToFloat(0x7F800001)))), "signalling NaN stays NaN");
        assertEquals(1.0f, Bf16.toFloat((short) 0x3F80));
    }

    @Test
    void fp16RoundTripsEveryHalfAndRoundsToNearestEven() {
        for (int h = 0; h < 0x10000; h++) {
            float f = Fp16.toFloat((short) h);
            if (Float.isNaN(f)) {
                assertEquals(Fp16.CANONICAL_NAN, Fp16.fromFloat(f));
            } else {
                assertEquals((short) h, Fp16.fromFloat(f), "half 0x" + Integer.toHexString(h));
            }
        }
        // halfway between 1.0 (0x3C00) and 1 + 2^-10 (0x3C01): ties to even
        assertEquals((short) 0x3C00, Fp16.fromFloat(1.0f + 0x1p-11f));
        assertEquals((short) 0x3C02, Fp16.fromFloat(1.0f + 3 * 0x1p-11f));
        assertEquals((short) 0x7C00, Fp16.fromFloat(65520f), "65520 rounds to +inf");
        assertEquals((short) 0x7BFF, Fp16.fromFloat(65519f));
        assertEquals((short) 0x0001, Fp16.fromFloat(0x1p-24f), "smallest subnormal");
        assertEquals((short) 0x0000, Fp16.fromFloat(0x1p-25f), "half of the smallest subnormal ties to even zero");
        assertEquals((short) 0x0002, Fp16.fromFloat(0x1.8p-24f), "1.5 subnormal ulps ties to even 2");
    }

    @Test
    void tensorStoresRoundOnceAndLoadsWiden() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, DType.BF16, new float[] {1.0f, 1.00390625f, -2.5f, Float.NaN}, 2, 2);
            assertEquals(1.0f, t.get(0, 0));
            assertEquals(1.0f, t.get(0, 1), "1 + 2^-8 ties to even bf16 1.0");
            assertEquals(-2.5f, t.get(1, 0));
            assertTrue(Float.isNaN(t.get(1, 1)));
            assertEquals(8, t.segment().byteSize());
            // little-endian storage: 1.0 bf16 = 0x3F80 -> bytes 80 3F
            assertEquals((byte) 0x80, t.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
            assertEquals((byte) 0x3F, t.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, 1));
        }
    }

    /** DType.overflows at the edges of each range: the last value that rounds down to the largest finite one, and the first that does not. */
    @Test
    void overflowsIsTrueExactlyForFiniteValuesThatRoundToInfinity() {
        assertTrue(!DType.F16.overflows(65504f) && !DType.F16.overflows(Math.nextDown(65520f)) && !DType.F16.overflows(-65519f));
        assertTrue(DType.F16.overflows(65520f) && DType.F16.overflows(-65520f) && DType.F16.overflows(1e6f));
        float bf16Half = Float.intBitsToFloat(0x7F7F8000);  // halfway from BF16's largest finite to 2^128: ties to even, up
        assertTrue(!DType.BF16.overflows(Math.nextDown(bf16Half)) && DType.BF16.overflows(bf16Half) && DType.BF16.overflows(Float.MAX_VALUE));
        assertTrue(!DType.F32.overflows(Float.MAX_VALUE));
        for (DType d : DType.values()) {
            assertTrue(!d.overflows(Float.NaN) && !d.overflows(Float.POSITIVE_INFINITY) && !d.overflows(Float.NEGATIVE_INFINITY), d.name());
        }
        for (float v : new float[] {65520f, 1e6f, Math.nextDown(65520f)}) {
            assertEquals(Float.isInfinite(DType.F16.round(v)), DType.F16.overflows(v), "F16 " + v);
        }
    }
}
