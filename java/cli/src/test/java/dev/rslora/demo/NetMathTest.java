package dev.rslora.demo;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class NetMathTest {

    @Test
    void mseIsTheMeanOfSquaresAndItsGradientIsTwoDiffOverN() {
        try (Arena arena = Arena.ofShared()) {
            Tensor y = Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            Tensor t = Tensor.of(arena, DType.F32, new float[] {1, 0, 3, 5, 5, 4}, 2, 3);
            Tensor dy = TestData.poisoned(arena, DType.F32, 2, 3);
            assertEquals((4 + 1 + 4) / 6.0, NetMath.mse(y, t, dy), 1e-15);
            float[] want = {0, 4f / 6, 0, -2f / 6, 0, 4f / 6};
            for (int i = 0; i < 6; i++) {
                assertEquals(want[i], dy.get(i), 1e-7);
            }
        }
    }

    @Test
    void tanhAndItsBackwardMatchFiniteDifferences() {
        long seed = 21;
        SplittableRandom rng = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            Tensor z = TestData.uniform(arena, DType.F32, rng, 3, 50);
            Tensor out = z.to(arena, DType.F32);
            NetMath.tanhInPlace(out);
            Tensor g = TestData.uniform(arena, DType.F32, rng, 1, 50);
            float[] upstream = g.toFloatArray();
            NetMath.tanhBackwardInPlace(g, out);
            for (int i = 0; i < 50; i++) {
                double zi = z.get(i);
                assertEquals(Math.tanh(zi), out.get(i), 1e-7);
                double h = 1e-4;
                double fd = (Math.tanh(zi + h) - Math.tanh(zi - h)) / (2 * h);
                assertEquals(upstream[i] * fd, g.get(i), 1e-5, "seed=" + seed + " element " + i);
            }
            Tensor bf = Tensor.allocate(arena, DType.BF16, 50);
            assertThrows(IllegalArgumentException.class, () -> NetMath.tanhInPlace(bf));
        }
    }

    @Test
    void theTensorsOnlyReadKeepTheirVersions() {
        // a tensor read here may be a layer's input between its forward and backward, where a moved
        // version makes the backward refuse ("written after the forward")
        try (Arena arena = Arena.ofShared()) {
            Tensor y = Tensor.of(arena, DType.F32, new float[] {1, 2, 3}, 1, 3);
            Tensor t = Tensor.of(arena, DType.F32, new float[] {0, 2, 1}, 1, 3);
            Tensor dy = Tensor.allocate(arena, DType.F32, 1, 3);
            long yv = y.version();
            long tv = t.version();
            long dyv = dy.version();
            NetMath.mse(y, t, dy);
            assertEquals(yv, y.version(), "mse reads y");
            assertEquals(tv, t.version(), "mse reads the target");
            assertNotEquals(dyv, dy.version(), "mse writes dy");
            Tensor out = Tensor.of(arena, DType.F32, new float[] {0.1f, 0.2f, 0.3f}, 1, 3);
            long ov = out.version();
            NetMath.tanhBackwardInPlace(dy, out);
            assertEquals(ov, out.version(), "tanh's backward reads its output");
        }
    }
}
