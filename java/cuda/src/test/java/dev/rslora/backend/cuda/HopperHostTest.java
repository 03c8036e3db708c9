package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The host-side facts of the v3/v4 launches, without a device: the grid rules of their table rows
 * and the five tensor maps of each v3 kernel in parameter order, with the dims, strides and boxes
 * of cuda/kernels/lora_v3_launch.h.
 */
class HopperHostTest {
    @Test
    void gridRulesOfTheGemmFamilies() {
        // v3: one persistent CTA per SM at most (H200: 132), fewer when there are fewer 128×256 tiles
        assertEquals(new LaunchGeometry.Grid(132, 1, 1), LaunchGeometry.gemmGrid("persistent_dout_n", 132, 8192, 4096, 4096));
        assertEquals(new LaunchGeometry.Grid(2, 1, 1), LaunchGeometry.gemmGrid("persistent_dout_n", 132, 100, 4096, 300));
        assertEquals(new LaunchGeometry.Grid(6, 1, 1), LaunchGeometry.gemmGrid("persistent_din_n", 132, 129, 513, 8));
        // v4: every 128×256 (or 128×128) output tile one block
        assertEquals(new LaunchGeometry.Grid(64 * 16, 1, 1), LaunchGeometry.gemmGrid("flat_dout_128x256", 132, 8192, 4096, 4096));
        assertEquals(new LaunchGeometry.Grid(64 * 32, 1, 1), LaunchGeometry.gemmGrid("flat_din_128x128", 132, 8192, 4096, 11008));
        assertEquals(new LaunchGeometry.Grid(64 * 86, 1, 1), LaunchGeometry.gemmGrid("flat_dout_128x128", 132, 8192, 4096, 11008));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LaunchGeometry.gemmGrid("tiles_dout_n", 132, 1, 1, 1));
        assertTrue(e.getMessage().contains("unknown GEMM grid rule 'tiles_dout_n'"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.gemmGrid("flat_dout_1x1", 1, 1L << 31, 1, 1));
    }

    @Test
    void theV3KernelsTakeFiveMapsInParameterOrder() {
        TensorMapCacheTest.Counting enc = new TensorMapCacheTest.Counting();
        int n = 300;
        int dIn = 200;
        int dOut = 152;
        int r = 12;
        int rp = V3Maps.rPad(r);
        assertEquals(16, rp);
        DriverFfm.TensorMap wFwd = enc.encode(DriverFfm.TMA_BFLOAT16, 2, 0x5000, dIn, dOut, 2L * dIn, 64, 256, 3);
        enc.calls.clear();
        List<DriverFfm.TensorMap> fwd = V3Maps.forward(enc, DriverFfm.TMA_BFLOAT16, 2, new V3Maps.Tensor2d(0x1000, n, dIn, dIn), wFwd,
                new V3Maps.Tensor2d(0x2000, n, rp, rp), new V3Maps.Tensor2d(0x3000, dOut, rp, rp), new V3Maps.Tensor2d(0x4000, n, dOut, dOut));
        assertEquals(5, fwd.size());
        assertSame(wFwd, fwd.get(1), "W's map comes from the frozen weight's cache");
        assertEquals(List.of("9 0x1000 300x200 row 400 box 128x64 sw 3", "9 0x2000 300x16 row 32 box 128x64 sw 3",
                "9 0x3000 152x16 row 32 box 256x64 sw 3", "9 0x4000 300x152 row 304 box 64x64 sw 3"), enc.calls);
        enc.calls.clear();
        DriverFfm.TensorMap wDx = enc.encode(DriverFfm.TMA_FLOAT16, 2, 0x5000, dIn, dOut, 2L * dIn, 64, 64, 3);
        enc.calls.clear();
        List<DriverFfm.TensorMap> dx = V3Maps.dx(enc, DriverFfm.TMA_FLOAT16, 2, new V3Maps.Tensor2d(0x6000, n, rp, rp),
                new V3Maps.Tensor2d(0x7000, r, dIn, dIn), new V3Maps.Tensor2d(0x8000, n, dOut, dOut), wDx,
                new V3Maps.Tensor2d(0x9000, n, dIn, dIn));
        assertSame(wDx, dx.get(3));
        assertEquals(List.of("6 0x6000 300x16 row 32 box 128x64 sw 3", "6 0x7000 12x200 row 400 box 64x64 sw 3",
                "6 0x8000 300x152 row 304 box 128x64 sw 3", "6 0x9000 300x200 row 400 box 64x64 sw 3"), enc.calls);
    }
}
