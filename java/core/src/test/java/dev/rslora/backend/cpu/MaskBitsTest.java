package dev.rslora.backend.cpu;

import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The cpu backend's inlined Philox keep bits equal {@link DropoutMask} exactly. */
class MaskBitsTest {

    @Test
    void bitsEqualDropoutMaskKeepAndRowMultipliers() {
        SplittableRandom rng = new SplittableRandom(0xB175L);
        for (int trial = 0; trial < 40; trial++) {
            float p = trial == 0 ? 0.5f : (float) rng.nextDouble(0.01, 0.99);
            long seed = rng.nextLong();
            long step = rng.nextLong(1L << 40);
            int layer = rng.nextInt(1000);
            LoraParams params = new LoraParams(1, 1, 1, 1, 1.0, p, seed, step, layer, true, true, GradMode.ASSIGN);
            MaskBits bits = MaskBits.of(params);
            DropoutMask mask = params.mask();
            assertEquals(mask.scale(), bits.scale());
            long row = rng.nextLong(1L << 31);
            int cols = 1 + rng.nextInt(300);
            long[] words = new long[MaskBits.words(cols)];
            bits.row(row, cols, words, 0);
            float[] expected = new float[cols];
            mask.rowMultipliers(row, 0, cols, expected);
            float[] ones = new float[cols];
            java.util.Arrays.fill(ones, 1f);
            float[] applied = new float[cols];
            bits.apply(ones, 0, words, 0, cols, applied, 0);
            for (int c = 0; c < cols; c++) {
                boolean keep = ((words[c >>> 6] >>> (c & 63)) & 1) != 0;
                String at = "p=" + p + " seed=" + seed + " step=" + step + " layer=" + layer + " row=" + row + " col=" + c;
                assertEquals(mask.keep(row, c), keep, at);
                assertEquals(expected[c], applied[c], at);
            }
            // A word sub-range writes the same words.
            if (words.length > 2) {
                long[] part = new long[words.length];
                bits.row(row, 1, words.length - 1, cols, part, 0);
                for (int wd = 1; wd < words.length - 1; wd++) {
                    assertEquals(words[wd], part[wd], "word " + wd);
                }
            }
        }
    }

    @Test
    void tileRowMaskingMatchesKeepTimesScale() {
        LoraParams params = new LoraParams(1, 1, 1, 1, 1.0, 0.3f, 99L, 4, 1, true, true, GradMode.ASSIGN);
        MaskBits bits = MaskBits.of(params);
        DropoutMask mask = params.mask();
        int cols = 4 * MicroKernel.NR;
        long[] words = new long[MaskBits.words(cols)];
        bits.row(12, cols, words, 0);
        for (int p0 = 0; p0 < cols; p0 += MicroKernel.NR) {
            float[] tile = new float[MicroKernel.NR];
            for (int c = 0; c < tile.length; c++) {
                tile[c] = c + 1;
            }
            bits.applyToTileRow(tile, 0, words, 0, p0);
            for (int c = 0; c < tile.length; c++) {
                float expected = mask.keep(12, p0 + c) ? (c + 1) * mask.scale() : 0f;
                assertEquals(expected, tile[c], "col " + (p0 + c));
            }
        }
    }

    @Test
    void inactiveWithoutDropoutOrTrainingOrAdapter() {
        assertNull(MaskBits.of(new LoraParams(1, 1, 1, 1, 1.0, 0f, 1, 0, 0, true, true, GradMode.ASSIGN)));
        assertNull(MaskBits.of(new LoraParams(1, 1, 1, 1, 1.0, 0.2f, 1, 0, 0, false, true, GradMode.ASSIGN)));
        assertNull(MaskBits.of(new LoraParams(1, 1, 1, 1, 1.0, 0.2f, 1, 0, 0, true, false, GradMode.ASSIGN)));
    }
}
