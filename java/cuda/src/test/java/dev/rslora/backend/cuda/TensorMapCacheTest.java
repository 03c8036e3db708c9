package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

/** A frozen weight's TMA descriptors are encoded once per box, and again only when the base moves. */
class TensorMapCacheTest {
    /** Records every encode and returns a descriptor whose first byte counts them. */
    static final class Counting implements TensorMapCache.Encoder {
        final List<String> calls = new ArrayList<>();

        @Override
        public DriverFfm.TensorMap encode(int dtype, int elementBytes, long base, long inner, long outer, long rowStrideBytes,
                                          int boxInner, int boxOuter, int swizzle) {
            calls.add(dtype + " 0x" + Long.toHexString(base) + " " + outer + "x" + inner + " row " + rowStrideBytes + " box " + boxOuter + "x"
                    + boxInner + " sw " + swizzle);
            byte[] b = new byte[DriverFfm.TENSOR_MAP_BYTES];
            b[0] = (byte) calls.size();
            return new DriverFfm.TensorMap(b, base, dtype, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle);
        }
    }

    @Test
    void eachBoxOfAWeightIsEncodedOnceAndAgainOnlyForANewBase() {
        Counting enc = new Counting();
        TensorMapCache cache = new TensorMapCache();
        long w = 0x7f00_0000_0000L;
        // W [d_out = 4096, d_in = 4096] bf16: the v3 forward's box {64, 256} and the v3 dX's {64, 64}
        DriverFfm.TensorMap fwd = cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w, 4096, 4096, 8192, 64, 256, DriverFfm.TMA_SWIZZLE_128B);
        DriverFfm.TensorMap dx = cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w, 4096, 4096, 8192, 64, 64, DriverFfm.TMA_SWIZZLE_128B);
        for (int step = 0; step < 100; step++) {  // every later step (and a merge, which rewrites W in place) reuses them
            assertSame(fwd, cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w, 4096, 4096, 8192, 64, 256, DriverFfm.TMA_SWIZZLE_128B));
            assertSame(dx, cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w, 4096, 4096, 8192, 64, 64, DriverFfm.TMA_SWIZZLE_128B));
        }
        assertEquals(2, cache.encoded());
        assertEquals(List.of("9 0x7f0000000000 4096x4096 row 8192 box 256x64 sw 3", "9 0x7f0000000000 4096x4096 row 8192 box 64x64 sw 3"),
                enc.calls);
        // the same weight at a new address (a new buffer): encoded again, once
        DriverFfm.TensorMap moved = cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w + 0x1000_0000L, 4096, 4096, 8192, 64, 256,
                DriverFfm.TMA_SWIZZLE_128B);
        assertEquals(w + 0x1000_0000L, moved.base());
        assertSame(moved, cache.get(enc, DriverFfm.TMA_BFLOAT16, 2, w + 0x1000_0000L, 4096, 4096, 8192, 64, 256,
                DriverFfm.TMA_SWIZZLE_128B));
        assertEquals(3, cache.encoded());
    }
}
