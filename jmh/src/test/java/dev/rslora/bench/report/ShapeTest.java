package dev.rslora.bench.report;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The cpu step's FLOP ratios on both routes (the merged one from N ≥ 2·d without dropout). */
class ShapeTest {
    @Test
    void segmentRouteBelowTwiceDOrWithDropout() {
        assertEquals(1 + 3.0 * 64 / 1024, new Shape(512, 1024, 1024, 64).cpuStepFlopRatio(false), 1e-12);
        assertEquals(1 + 3.0 * 64 / 1024, new Shape(2048, 1024, 1024, 64).cpuStepFlopRatio(true), 1e-12);
        assertEquals(1 + 3.0 * 256 / 1024, new Shape(2047, 1024, 1024, 256).cpuStepFlopRatio(false), 1e-12);
        assertEquals(1 + 64.0 * 2048 / (1024.0 * 1024), new Shape(8, 1024, 1024, 64).cpuForwardFlopRatio(false), 1e-12);
    }

    @Test
    void mergedRouteFromTwiceD() {
        // 1 + 2r/d + r/N: 1.125 + 0.03125
        assertEquals(1.15625, new Shape(2048, 1024, 1024, 64).cpuStepFlopRatio(false), 1e-12);
        assertEquals(1 + 0.5 + 256.0 / 8192, new Shape(8192, 1024, 1024, 256).cpuStepFlopRatio(false), 1e-12);
        // forward alone: 1 + r/d + r/N
        assertEquals(1 + 64.0 / 1024 + 64.0 / 2048, new Shape(2048, 1024, 1024, 64).cpuForwardFlopRatio(false), 1e-12);
        // d_in = 512, d_out = 2048, N = 2048: the forward forms W'ᵀ (N ≥ 2·512), dX keeps its segment (N < 2·2048)
        Shape s = new Shape(2048, 512, 2048, 64);
        double extra = 4.0 * 2048 * 64 * (512 + 2048) + 2.0 * 64 * 512 * 2048 + 2.0 * 2048 * 64 * 512;
        assertEquals(1 + extra / (4.0 * 2048 * 512 * 2048), s.cpuStepFlopRatio(false), 1e-12);
        // W' above 64 MiB keeps the segments
        assertEquals(1 + 3.0 * 64 / 8192, new Shape(1 << 15, 8192, 8192, 64).cpuStepFlopRatio(false), 1e-12);
    }
}
