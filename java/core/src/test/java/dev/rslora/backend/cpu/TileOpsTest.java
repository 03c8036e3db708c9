package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link TileOps#transpose} against the element-wise definition, at the tile width the suite runs with. */
class TileOpsTest {
    @Test
    void transposeMatchesTheDefinitionAndWritesNothingElse() {
        SplittableRandom rng = new SplittableRandom(0x7A5L);
        // rows below, at and past one vector of rows; column ranges from the start, the middle and the end
        for (int rows : new int[] {1, 3, MicroKernel.L, MicroKernel.L + 1, 2 * MicroKernel.L + 5, 64}) {
            for (int lds : new int[] {1, 7, 16, 64}) {
                for (int[] cols : new int[][] {{0, lds}, {lds / 2, lds}, {0, Math.max(1, lds / 3)}}) {
                    int j0 = cols[0];
                    int j1 = cols[1];
                    int srcOff = 5;
                    int dstOff = 3;
                    int ldd = rows + 9;
                    float[] src = new float[srcOff + rows * lds];
                    for (int i = 0; i < src.length; i++) {
                        src[i] = (float) rng.nextDouble(-1, 1);
                    }
                    float[] dst = new float[dstOff + lds * ldd + 4];
                    java.util.Arrays.fill(dst, Float.NaN);
                    TileOps.transpose(src, srcOff, lds, rows, j0, j1, dst, dstOff, ldd, TileOps.gatherRows(lds));
                    for (int j = 0; j < lds; j++) {
                        for (int i = 0; i < ldd; i++) {
                            float got = dst[dstOff + j * ldd + i];
                            String where = "rows " + rows + " lds " + lds + " cols [" + j0 + ", " + j1 + ") at j " + j + " i " + i;
                            if (j >= j0 && j < j1 && i < rows) {
                                assertEquals(src[srcOff + i * lds + j], got, where);
                            } else {
                                assertEquals(Float.NaN, got, "written outside the block: " + where);
                            }
                        }
                    }
                    assertEquals(Float.NaN, dst[0]);
                }
            }
        }
    }

    /** {@link TileOps#allFinite}: false for one NaN or ±Inf at any position (vector body or tail), true for finite extremes. */
    @Test
    void allFiniteFindsOneNonFiniteValueAnywhere() {
        for (int n : new int[] {0, 1, MicroKernel.L - 1, MicroKernel.L, 3 * MicroKernel.L + 2, 64}) {
            int off = 3;
            float[] a = new float[off + n + 2];
            java.util.Arrays.fill(a, Float.NaN);   // outside [off, off + n): never read
            for (int i = 0; i < n; i++) {
                a[off + i] = i % 2 == 0 ? Float.MAX_VALUE : -Float.MIN_VALUE;
            }
            java.lang.foreign.MemorySegment seg = java.lang.foreign.MemorySegment.ofArray(a);   // the same values, little-endian (x86, aarch64)
            assertEquals(true, TileOps.allFinite(a, off, n), "finite, n " + n);
            assertEquals(true, TileOps.allFinite(seg, 4L * off, n), "finite, segment, n " + n);
            for (int i = 0; i < n; i++) {
                for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                    float keep = a[off + i];
                    a[off + i] = bad;
                    assertEquals(false, TileOps.allFinite(a, off, n), bad + " at " + i + " of " + n);
                    assertEquals(false, TileOps.allFinite(seg, 4L * off, n), bad + " at " + i + " of " + n + ", segment");
                    a[off + i] = keep;
                }
            }
        }
    }
}
