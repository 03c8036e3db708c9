package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SizeClassesTest {

    @Test
    void examples() {
        assertEquals(512, SizeClasses.classOf(1));
        assertEquals(512, SizeClasses.classOf(512));
        assertEquals(1024, SizeClasses.classOf(513));
        assertEquals(1L << 20, SizeClasses.classOf((1L << 20) - 1));
        assertEquals(1L << 20, SizeClasses.classOf(1L << 20));
        assertEquals((1L << 20) + (1L << 17), SizeClasses.classOf((1L << 20) + 1));
        assertEquals(2L << 20, SizeClasses.classOf(2L << 20));
        assertEquals(67_108_864L + 8_388_608L, SizeClasses.classOf(67_108_865L));
        assertThrows(IllegalArgumentException.class, () -> SizeClasses.classOf(0));
    }

    @Test
    void classesAreMonotoneBoundedAndIdempotent() {
        long prev = 0;
        for (long b = 1; b < (1L << 36); b = b < 4096 ? b + 1 : b + b / 7 + 3) {
            long c = SizeClasses.classOf(b);
            assertTrue(c >= b, "class " + c + " < request " + b);
            assertTrue(c >= prev, "not monotone at " + b);
            assertEquals(c, SizeClasses.classOf(c), "class of a class size " + c);
            if (b > SizeClasses.POW2_LIMIT) {
                assertTrue(c - b <= b / 8 + 1, "padding over 12.5% at " + b + ": " + c);
            }
            assertEquals(0, c % 512, "class " + c + " not a multiple of 512");
            prev = c;
        }
    }

    /**
     * A request near 2^63 bytes: its class was computed as (bytes + step - 1) / step · step, whose sum
     * wrapped to a negative class (Long.MAX_VALUE - 3 gave -8,646,911,284,551,352,320), handed to the
     * driver (cuMemAlloc of a negative size) and counted as negative bytes in use. Now refused naming it.
     */
    @Test
    void aRequestWhoseClassPassesALongIsRefused() {
        for (long bytes : new long[] {Long.MAX_VALUE, Long.MAX_VALUE - 3, (1L << 62) + (1L << 59) * 7 + 1}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SizeClasses.classOf(bytes), "" + bytes);
            assertTrue(e.getMessage().contains(Long.toString(bytes)), e.getMessage());
        }
        assertEquals((1L << 62) + (1L << 59) * 7, SizeClasses.classOf((1L << 62) + (1L << 59) * 7), "the largest class");
        assertEquals(1L << 62, SizeClasses.classOf((1L << 62) - 5));
        CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
        assertThrows(IllegalArgumentException.class, () -> alloc.allocate(Long.MAX_VALUE - 3));
        assertEquals(0, alloc.stats().bytesInUse());
    }
}
