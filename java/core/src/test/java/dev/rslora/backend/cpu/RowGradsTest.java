package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link RowGrads#combineInto} writes, bit for bit, its scalar definition (the same fp32 operations in
 * the same order as the reference's and {@link Convert#storeScaled}'s epilogue), with and without an
 * old value, at lengths around the vector width (vector blocks, single vectors, masked tails), for
 * one row and for several consecutive rows, and nothing outside its run; also where the run ends
 * exactly at the end of its output's or its old values' segment, or both (the last row's masked
 * store and old value then take the JDK's out-of-range path), with and without slack after src's
 * last row.
 */
class RowGradsTest {
    @Test
    void combineIntoIsItsScalarDefinition() {
        SplittableRandom rng = new SplittableRandom(0xD0A5L);
        int l = MicroKernel.L;
        try (Arena arena = Arena.ofConfined()) {
            for (int n : new int[] {1, 2, 5, 8}) {
                for (int count : new int[] {1, l - 1, l, l + 3, 4 * l, 4 * l + l + 2, 64, 1029}) {
                    if (count < 1) {
                        continue;
                    }
                    for (int rows : new int[] {1, 3}) {
                        // floats after the run in the old values' tensor and in the output's, and after src's last row
                        for (int[] ends : new int[][] {{4, 4, l}, {0, 0, 0}, {5, 0, 0}, {0, 5, l}}) {
                            for (boolean withOld : new boolean[] {false, true}) {
                                int afterOld = ends[0];
                                int after = ends[1];
                                int ld = after == 0 ? count : count + 3;
                                int wStride = 3;
                                int wOff = 2;
                                float[] src = new float[(n - 1) * ld + count + ends[2]];
                                float[] w = new float[wOff + rows + n * wStride];
                                for (int i = 0; i < src.length; i++) {
                                    // mixed magnitudes, so that a different order or rounding would show
                                    src[i] = (float) (rng.nextDouble(-1, 1) * Math.pow(2, rng.nextInt(-20, 20)));
                                }
                                for (int i = 0; i < w.length; i++) {
                                    w[i] = (float) rng.nextDouble(-3, 3);
                                }
                                float g = (float) (16 / Math.sqrt(64)) * 1.1f;
                                int at = 5;
                                long span = (long) rows * count;
                                Tensor old = Tensor.allocate(arena, DType.F32, at + span + afterOld);
                                for (long i = 0; i < old.numel(); i++) {
                                    old.set(i, (float) rng.nextDouble(-1, 1));
                                }
                                Tensor want = Tensor.allocate(arena, DType.F32, at + span + after);
                                Tensor got = Tensor.allocate(arena, DType.F32, at + span + after);
                                for (long i = 0; i < want.numel(); i++) {
                                    want.set(i, Float.NaN);
                                    got.set(i, Float.NaN);
                                }
                                for (int q = 0; q < rows; q++) {
                                    for (int c = 0; c < count; c++) {
                                        // the definition, scalar: the first term a product, then fma in increasing i; × g; + old
                                        float acc = src[c] * w[wOff + q];
                                        for (int i = 1; i < n; i++) {
                                            acc = Fma.fma(src[i * ld + c], w[wOff + q + i * wStride], acc);  // fused, or not, as the backend
                                        }
                                        acc *= g;
                                        long e = at + (long) q * count + c;
                                        if (withOld) {
                                            acc += old.get(e);
                                        }
                                        want.set(e, acc);
                                    }
                                }
                                MemorySegment prior = withOld ? old.readOnlySegment() : null;
                                RowGrads.combineInto(src, ld, count, w, wOff, wStride, n, g, prior, at * 4L, got.segment(), at * 4L,
                                        rows);
                                for (long i = 0; i < want.numel(); i++) {
                                    assertEquals(Float.floatToRawIntBits(want.get(i)), Float.floatToRawIntBits(got.get(i)),
                                            "n " + n + " count " + count + " rows " + rows + " old " + withOld + " ends " + java.util.Arrays.toString(ends)
                                                    + " at element " + i);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
