package dev.rslora.demo;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
}
