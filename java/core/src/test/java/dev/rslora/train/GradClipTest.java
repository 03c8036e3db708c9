package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GradClipTest {

    private static double exactNorm(List<Tensor> grads) {
        double s = 0;
        for (Tensor g : grads) {
            for (float v : g.toFloatArray()) {
                s += (double) v * v;
            }
        }
        return Math.sqrt(s);
    }

    @Test
    void clipsTheGlobalNormWithTorchSemantics() {
        long seed = 4242;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            List<Tensor> grads = List.of(TestData.uniform(arena, DType.F32, rng, 2, 17, 5),
                    TestData.uniform(arena, DType.BF16, rng, 0.5, 129), TestData.uniform(arena, DType.F32, rng, 1, 3));
            double before = exactNorm(grads);
            List<float[]> original = grads.stream().map(Tensor::toFloatArray).toList();
            double max = before / 4;
            double returned = GradClip.clipGlobalNorm(grads, max);
            assertEquals(before, returned, 1e-12 * before, "seed=" + seed + ": returns the norm before clipping");
            double coef = max / (before + GradClip.EPS);
            for (int k = 0; k < grads.size(); k++) {
                Tensor g = grads.get(k);
                for (int i = 0; i < g.numel(); i++) {
                    float want = g.dtype().round(original.get(k)[i] * (float) coef);
                    assertEquals(want, g.get(i), "seed=" + seed + " tensor " + k + " element " + i);
                }
            }
            // fp32/bf16 rounding of each element moves the norm by at most a few bf16 ulps relative
            assertEquals(max, exactNorm(grads), 4e-3 * max, "seed=" + seed);
        }
    }

    @Test
    void leavesGradientsBelowTheLimitBitForBit() {
        SplittableRandom rng = new SplittableRandom(9);
        try (Arena arena = Arena.ofShared()) {
            Tensor g = TestData.uniform(arena, DType.F32, rng, 1, 64);
            float[] before = g.toFloatArray();
            double norm = GradClip.globalNorm(List.of(g));
            assertEquals(norm, GradClip.clipGlobalNorm(List.of(g), norm * 1.01));
            float[] after = g.toFloatArray();
            for (int i = 0; i < before.length; i++) {
                assertEquals(Float.floatToRawIntBits(before[i]), Float.floatToRawIntBits(after[i]));
            }
        }
    }

    @Test
    void nonFiniteNormPropagatesAsInTorchAndBadLimitsAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            Tensor g = Tensor.of(arena, DType.F32, new float[] {1f, Float.NaN, 2f}, 3);
            assertTrue(Double.isNaN(GradClip.clipGlobalNorm(List.of(g), 1.0)));
            assertTrue(Float.isNaN(g.get(0)) && Float.isNaN(g.get(2)));
            Tensor h = Tensor.of(arena, DType.F32, new float[] {1f}, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(List.of(h), 0));
            assertTrue(e.getMessage().contains("maxNorm=0"), e.getMessage());
        }
    }

    @Test
    void aFreedGradientIsNamedBeforeAnyIsScaled() {
        try (Arena arena = Arena.ofShared()) {
            Tensor live = Tensor.of(arena, DType.F32, new float[] {30f, 40f}, 2);
            Arena gone = Arena.ofShared();
            Tensor freed = Tensor.of(gone, DType.F32, new float[] {1f}, 1);
            gone.close();
            for (boolean clip : new boolean[] {false, true}) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> {
                    if (clip) {
                        GradClip.clipGlobalNorm(List.of(live, freed), 1.0);
                    } else {
                        GradClip.globalNorm(List.of(live, freed));
                    }
                });
                assertTrue(e.getMessage().contains("grads[1] [1]: its arena is closed"), e.getMessage());
            }
            assertArrayEquals(new float[] {30f, 40f}, live.toFloatArray());  // not scaled
        }
    }

    @Test
    void aGradientListedTwiceOrSharingMemoryIsRefusedBeforeScaling() {
        try (Arena arena = Arena.ofShared()) {
            Tensor g = Tensor.of(arena, DType.F32, new float[] {3f, 4f}, 2);
            Tensor other = Tensor.of(arena, DType.F32, new float[] {1f, 1f}, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(List.of(g, other, g), 1.0));
            assertTrue(e.getMessage().startsWith("grads[2] Tensor[2] F32 shares memory with grads[0]"), e.getMessage());
            assertArrayEquals(new float[] {3f, 4f}, g.toFloatArray(), "nothing scaled");
            Tensor tail = Tensor.wrap(g.segment().asSlice(4, 4), DType.F32, 1);
            e = assertThrows(IllegalArgumentException.class, () -> GradClip.globalNorm(List.of(tail, other, g)));
            assertTrue(e.getMessage().startsWith("grads[2] Tensor[2] F32 shares memory with grads[0] Tensor[1] F32"), e.getMessage());
            float[] heap = {3f, 4f};
            Tensor h1 = Tensor.wrap(java.lang.foreign.MemorySegment.ofArray(heap), DType.F32, 2);
            Tensor h2 = Tensor.wrap(java.lang.foreign.MemorySegment.ofArray(heap), DType.F32, 2);
            Tensor h3 = Tensor.wrap(java.lang.foreign.MemorySegment.ofArray(new float[] {0f, 0f}), DType.F32, 2);
            assertEquals(5.0, GradClip.globalNorm(List.of(h1, h3)), "two heap arrays are separate memory");
            e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(List.of(h1, h3, h2), 1.0));
            assertTrue(e.getMessage().startsWith("grads[2]") && e.getMessage().contains("grads[0]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(java.util.Arrays.asList(g, null), 1.0));
            assertTrue(e.getMessage().contains("grads[1] is null"), e.getMessage());
            Tensor empty = Tensor.allocate(arena, DType.F32, 0);
            assertEquals(5.0, GradClip.clipGlobalNorm(List.of(g, empty, empty), 10.0), 1e-12);
            // adjacent (not overlapping) views of one buffer are separate gradients
            Tensor head = Tensor.wrap(g.segment().asSlice(0, 4), DType.F32, 1);
            assertEquals(5.0, GradClip.globalNorm(List.of(tail, head)), 1e-12);
        }
    }

    /** A read-only gradient used to fail midway, after the gradients before it were scaled. */
    @Test
    void aReadOnlyGradientIsRefusedBeforeAnythingIsScaled() {
        try (Arena arena = Arena.ofShared()) {
            Tensor g = Tensor.of(arena, DType.F32, new float[] {3f, 4f}, 2);
            Tensor ro = Tensor.wrap(Tensor.of(arena, DType.F32, new float[] {30f, 40f}, 2).readOnlySegment(), DType.F32, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GradClip.clipGlobalNorm(List.of(g, ro), 1.0));
            assertTrue(e.getMessage().startsWith("grads[1]") && e.getMessage().contains("read-only"), e.getMessage());
            assertArrayEquals(new float[] {3f, 4f}, g.toFloatArray(), "nothing scaled");
            assertEquals(Math.sqrt(2525), GradClip.globalNorm(List.of(g, ro)), 1e-9, "reading the norm needs no write");
        }
    }

    /**
     * Of several clashes, the message names the first in list order (the smallest later index, then
     * the smallest earlier one), not the one at the lowest address: the same list gives the same
     * message whatever memory its tensors were given.
     */
    @Test
    void ofSeveralSharedGradientsTheFirstInListOrderIsNamed() {
        try (Arena arena = Arena.ofShared()) {
            Tensor buffer = Tensor.allocate(arena, DType.F32, 4);
            Tensor high = Tensor.wrap(buffer.segment().asSlice(8, 8), DType.F32, 2);
            Tensor low = Tensor.wrap(buffer.segment().asSlice(0, 8), DType.F32, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> GradClip.globalNorm(List.of(high, low, high, low)));
            assertTrue(e.getMessage().startsWith("grads[2] Tensor[2] F32 shares memory with grads[0] Tensor[2] F32"), e.getMessage());
        }
    }

    @Test
    void optimizerClipsItsOwnGradients() {
        try (Arena arena = Arena.ofShared()) {
            Tensor p = Tensor.allocate(arena, DType.F32, 2);
            Tensor g = Tensor.of(arena, DType.F32, new float[] {3f, 4f}, 2);
            try (AdamW opt = new AdamW(List.of(new Parameter("p", p, g)), AdamWConfig.torchDefaults())) {
                assertEquals(5.0, opt.gradNorm(), 1e-12);
                assertEquals(5.0, opt.clipGradNorm(1.0), 1e-12);
                assertEquals(1.0, opt.gradNorm(), 1e-6);
            }
        }
    }
}
