package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The caching allocator over a fake device (no GPU needed). */
class CachingAllocatorTest {

    /** Addresses from a counter; tracks live blocks, fills, and can run out of memory. */
    static final class FakeDevice implements RawDeviceMemory {
        final Set<Long> live = new HashSet<>();
        long next = 0x7f00_0000_0000L;
        long liveBytes;
        long limit = Long.MAX_VALUE;
        int fills;
        boolean failFill;
        /** When on, every free throws (after forgetting the block, as a driver that fails the call). */
        boolean failFree;
        int frees;

        @Override
        public RawBlock allocate(long bytes) {
            if (liveBytes + bytes > limit) {
                throw new IllegalStateException("fake out of memory: " + bytes);
            }
            long a = next;
            next += bytes + 4096;
            live.add(a);
            liveBytes += bytes;
            return new RawBlock(a, bytes, null);
        }

        @Override
        public void free(RawBlock block) {
            frees++;
            if (failFree) {
                throw new IllegalStateException("fake free failure " + frees);
            }
            assertTrue(live.remove(block.address()), "double free of " + Long.toHexString(block.address()));
            liveBytes -= block.bytes();
        }

        @Override
        public void fill(RawBlock block, long bytes, byte value) {
            assertTrue(live.contains(block.address()));
            if (failFill) {
                throw new IllegalStateException("fake fill failure");
            }
            fills++;
        }
    }

    @Test
    void reusesClosedBlocksOfTheSameClass() {
        FakeDevice dev = new FakeDevice();
        CachingAllocator a = new CachingAllocator(dev);
        DeviceBuffer b1 = a.allocate(1000);
        long addr = b1.address();
        assertEquals(1024, b1.capacity());
        assertEquals(1000, b1.bytes());
        b1.close();
        b1.close();  // idempotent
        assertThrows(IllegalStateException.class, b1::address);
        DeviceBuffer b2 = a.allocate(700);
        assertEquals(addr, b2.address(), "same class reuses the cached block");
        DeviceBuffer b3 = a.allocate(700);
        assertNotEquals(addr, b3.address());
        DeviceMemoryStats s = a.stats();
        assertEquals(2048, s.bytesInUse());
        assertEquals(2, s.buffersInUse());
        assertEquals(2, s.driverAllocations());
        assertEquals(1, s.reuses());
        b2.close();
        b3.close();
        assertEquals(0, a.stats().bytesInUse());
        assertEquals(2048, a.stats().bytesCached());
        assertEquals(2048, a.stats().highWaterBytes());
        a.trim();
        assertEquals(0, dev.live.size());
        assertEquals(0, a.stats().bytesCached());
    }

    @Test
    void tenThousandStepsReturnToBaselineWithoutNewDriverCalls() {
        long seed = 77L;
        FakeDevice dev = new FakeDevice();
        CachingAllocator a = new CachingAllocator(dev);
        DeviceBuffer resident = a.allocate(4096L * 4096 * 2);  // a W that stays
        long baseline = a.stats().bytesInUse();
        SplittableRandom rnd = new SplittableRandom(seed);
        long[] shapes = {8192L * 4096 * 2, 8192L * 16 * 4, 16L * 4096 * 4, 4096L * 16 * 4, 3L * 1000};
        long driverAfterFirst = -1;
        for (int step = 0; step < 10_000; step++) {
            List<DeviceBuffer> live = new ArrayList<>();
            for (long s : shapes) {
                live.add(a.allocate(s));
            }
            // release in a step-dependent order
            for (int i = live.size() - 1; i > 0; i--) {
                int j = rnd.nextInt(i + 1);
                DeviceBuffer t = live.get(i);
                live.set(i, live.get(j));
                live.set(j, t);
            }
            live.forEach(DeviceBuffer::close);
            assertEquals(baseline, a.stats().bytesInUse(), "seed " + seed + " step " + step);
            if (step == 0) {
                driverAfterFirst = a.stats().driverAllocations();
            }
        }
        assertEquals(driverAfterFirst, a.stats().driverAllocations(), "fixed shapes never call the driver after step 1");
        assertEquals(1, a.stats().buffersInUse());
        resident.close();
        assertEquals(0, a.closeAndCountLeaks());
        assertTrue(dev.live.isEmpty(), "everything freed on close");
    }

    @Test
    void outOfMemoryTrimsTheCacheAndRetries() {
        FakeDevice dev = new FakeDevice();
        dev.limit = 3L << 20;
        CachingAllocator a = new CachingAllocator(dev);
        a.allocate(2L << 20).close();  // cached, 2 MiB held by the fake
        DeviceBuffer big = a.allocate(3L << 20);  // needs the cache back
        assertEquals(3L << 20, big.capacity());
        assertEquals(0, a.stats().bytesCached());
        assertThrows(IllegalStateException.class, () -> a.allocate(1L << 20), "genuinely out of memory");
        big.close();
    }

    /** A retry that fails too keeps the first refusal (the request with the cache still full) as suppressed. */
    @Test
    void aFailedRetryKeepsTheFirstRefusal() {
        FakeDevice dev = new FakeDevice();
        dev.limit = 3L << 20;
        CachingAllocator a = new CachingAllocator(dev);
        DeviceBuffer held = a.allocate(2L << 20);
        a.allocate(1L << 20).close();  // cached: the fake holds all 3 MiB
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> a.allocate(2L << 20));
        assertEquals(1, e.getSuppressed().length, "the first refusal is kept");
        assertTrue(e.getSuppressed()[0].getMessage().contains("fake out of memory"), e.getSuppressed()[0].getMessage());
        assertEquals(0, a.stats().bytesCached(), "the cache was given back before the retry");
        held.close();
    }

    /**
     * A buffer still open at close is counted as a leak and freed then, with the cache, while the
     * context still holds the device (its context skipped the free of a buffer closed later, and the
     * memory stayed allocated while another context kept the primary context); its owner's later close
     * is a no-op, not a second free, and a later use throws.
     */
    @Test
    void leaksAreCountedAndFreedAtClose() {
        FakeDevice dev = new FakeDevice();
        CachingAllocator a = new CachingAllocator(dev);
        DeviceBuffer leaked = a.allocate(100);
        a.allocate(5000).close();
        assertEquals(1, a.closeAndCountLeaks());
        assertTrue(dev.live.isEmpty(), "every block freed at close, the open one too");
        assertEquals(0, a.stats().bytesInUse());
        leaked.close();  // FakeDevice.free fails on a double free
        assertThrows(IllegalStateException.class, leaked::address);
        assertThrows(IllegalStateException.class, () -> a.allocate(1));
        assertEquals(0, a.closeAndCountLeaks(), "a second close frees nothing more");
    }

    /**
     * Closing after a device fault (every cuMemFree fails): each cached block's free is still tried,
     * the first failure is thrown with the others suppressed, and the allocator is closed anyway.
     */
    @Test
    void aFailingFreeAtCloseStillTriesEveryBlockAndCloses() {
        FakeDevice dev = new FakeDevice();
        CachingAllocator a = new CachingAllocator(dev);
        DeviceBuffer b1 = a.allocate(100);
        DeviceBuffer b2 = a.allocate(5000);
        DeviceBuffer b3 = a.allocate(70_000);
        b1.close();
        b2.close();
        b3.close();
        dev.failFree = true;
        IllegalStateException e = assertThrows(IllegalStateException.class, a::closeAndCountLeaks);
        assertEquals(3, dev.frees, "every cached block's free was tried");
        assertEquals(2, e.getSuppressed().length, e.toString());
        assertEquals(0, a.stats().bytesCached());
        assertThrows(IllegalStateException.class, () -> a.allocate(1), "closed despite the failures");
    }

    @Test
    void poisonFillsEveryHandedOutBuffer() {
        FakeDevice dev = new FakeDevice();
        CachingAllocator a = new CachingAllocator(dev);
        a.setPoison(true);
        a.allocate(10).close();
        a.allocate(10).close();  // reused block is poisoned again
        assertEquals(2, dev.fills);
    }

    /** A poisoning fill that fails leaves the block in the cache, not counted in use and not lost. */
    @Test
    void aFailedPoisonFillLosesNoBlock() {
        FakeDevice dev = new FakeDevice();
        CachingAllocator alloc = new CachingAllocator(dev);
        alloc.setPoison(true);
        dev.failFill = true;
        assertThrows(IllegalStateException.class, () -> alloc.allocate(1000));
        assertEquals(0, alloc.stats().bytesInUse());
        assertEquals(0, alloc.stats().buffersInUse());
        dev.failFill = false;
        DeviceBuffer b = alloc.allocate(1000);   // the cached block, reused
        assertEquals(1, alloc.stats().reuses());
        b.close();
        assertEquals(0, alloc.closeAndCountLeaks());
        assertTrue(dev.live.isEmpty(), "every block freed to the driver at close");
    }
}
