package dev.rslora.backend.cpu;

import dev.rslora.tensor.Bf16;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Fp16;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The vectorised conversions are bit-identical to the scalar definitions in dev.rslora.tensor. */
class ConvertTest {
    private static final float[] SPECIAL = {0f, -0f, Float.NaN, Float.intBitsToFloat(0xFFC0_0001), Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY, Float.MAX_VALUE, -Float.MAX_VALUE, Float.MIN_VALUE, Float.MIN_NORMAL,
            Float.intBitsToFloat(0x3F80_8000), Float.intBitsToFloat(0x3F81_8000), Float.intBitsToFloat(0x7F7F_FFFF),
            Float.intBitsToFloat(0x7F7F_8000), 65504f, 65520f, 1e-8f, 6.1e-5f, -2.5f, 1.00048828125f};

    private static float[] samples(long seed, int count) {
        SplittableRandom rng = new SplittableRandom(seed);
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = i < SPECIAL.length ? SPECIAL[i] : Float.intBitsToFloat(rng.nextInt());
        }
        return v;
    }

    @Test
    void bf16StoreIsBitIdenticalToBf16FromFloat() {
        float[] v = samples(0xBF16L, 100_003);
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.allocate(arena, DType.BF16, v.length);
            Convert.store(v, 0, v.length, Convert.Sink.of(t), 0);
            for (int i = 0; i < v.length; i++) {
                short got = t.segment().getAtIndex(DType.LE_SHORT, i);
                assertEquals(Bf16.fromFloat(v[i]), got, "bits 0x" + Integer.toHexString(Float.floatToRawIntBits(v[i])));
            }
        }
    }

    @Test
    void storesAndLoadsMatchDTypeForEveryDtypeAndOffset() {
        float[] v = samples(0xF16L, 1000);
        try (Arena arena = Arena.ofConfined()) {
            for (DType d : DType.values()) {
                for (int start : new int[] {0, 1, 17}) {
                    Tensor t = Tensor.allocate(arena, d, v.length + start);
                    Convert.store(v, 3, v.length - 3, Convert.Sink.of(t), start);
                    float[] back = new float[v.length];
                    Convert.load(t, start, v.length - 3, back, 0);
                    for (int i = 0; i < v.length - 3; i++) {
                        float expected = d.round(v[i + 3]);
                        assertEquals(Float.floatToRawIntBits(d.load(t.segment(), start + i)),
                                Float.floatToRawIntBits(back[i]), d + " load at " + i);
                        if (d == DType.F16) {
                            assertEquals(Fp16.fromFloat(v[i + 3]), t.segment().getAtIndex(DType.LE_SHORT, start + i));
                        } else if (!Float.isNaN(expected)) {
                            assertEquals(expected, back[i], d + " round trip at " + i);
                        }
                    }
                }
            }
        }
    }

    /**
     * {@link Convert#storeTileRow} writes what {@link Convert#store} writes, bit for bit, and nothing
     * past its run: lengths around the vector width, the run in the middle of its tensor and ending
     * exactly at the tensor's end (where the last values' masked store would reach past it and those
     * values go by {@link Convert#store}), F32 and BF16 (F16 rows, and every row at the scalar shape,
     * go by {@link Convert#store} whole: nothing to compare).
     */
    @Test
    void tileRowStoresMatchStoreUpToTheTensorsEnd() {
        assumeTrue(!MicroKernel.SCALAR, "the scalar shape stores tile rows by Convert.store");
        int l = MicroKernel.L;
        float[] v = samples(0x711EL, 4 * MicroKernel.NR);
        float sentinel = -7.25f;  // exact in every dtype
        try (Arena arena = Arena.ofConfined()) {
            for (DType d : new DType[] {DType.F32, DType.BF16}) {
                for (int count : new int[] {1, l - 1, l, l + 3, MicroKernel.NR - 1, MicroKernel.NR}) {
                    for (int after : new int[] {0, 1, l + 5}) {
                        int start = 3;
                        Tensor want = Tensor.allocate(arena, d, start + count + after);
                        Tensor got = Tensor.allocate(arena, d, start + count + after);
                        for (long i = 0; i < want.numel(); i++) {
                            want.set(i, sentinel);
                            got.set(i, sentinel);
                        }
                        Convert.store(v, 5, count, Convert.Sink.of(want), start);
                        Convert.storeTileRow(v, 5, count, Convert.Sink.of(got), start);
                        long bytes = want.segment().byteSize();
                        for (long b = 0; b < bytes; b++) {
                            assertEquals(want.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, b),
                                    got.segment().get(java.lang.foreign.ValueLayout.JAVA_BYTE, b),
                                    d + " count " + count + " after " + after + " at byte " + b);
                        }
                    }
                }
            }
        }
    }
}
