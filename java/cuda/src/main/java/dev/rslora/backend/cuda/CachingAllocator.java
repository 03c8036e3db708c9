package dev.rslora.backend.cuda;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A caching device allocator with size classes ({@link SizeClasses}): a closed
 * {@link DeviceBuffer} goes back to a free list of its class and is handed out again to the next
 * request of that class, so a training loop of fixed shapes stops calling the driver after its
 * first step. Statistics: bytes in use (by class size), its high-water mark, bytes cached, driver
 * allocations. One stream per context makes reuse safe (see {@link DeviceBuffer}).
 * Not thread-safe on its own: its context serialises calls.
 */
final class CachingAllocator implements AutoCloseable {
    private final RawDeviceMemory raw;
    private final Map<Long, ArrayDeque<RawDeviceMemory.RawBlock>> free = new HashMap<>();
    /** The buffers handed out and not closed yet: {@link #closeAndCountLeaks()} frees their blocks too. */
    private final Set<DeviceBuffer> inUse = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean poison;
    private long bytesInUse;
    private long highWater;
    private long bytesCached;
    private long buffersInUse;
    private long driverAllocations;
    private long reuses;
    private boolean closed;

    CachingAllocator(RawDeviceMemory raw) {
        this.raw = raw;
    }

    /** When on, every handed-out buffer is first filled with 0xFF bytes (NaN in f32, bf16 and f16): for tests. */
    void setPoison(boolean on) {
        this.poison = on;
    }

    /** A buffer of at least {@code bytes} bytes (>= 1). */
    DeviceBuffer allocate(long bytes) {
        if (closed) {
            throw new IllegalStateException("allocator is closed");
        }
        long cls = SizeClasses.classOf(bytes);
        ArrayDeque<RawDeviceMemory.RawBlock> list = free.get(cls);
        RawDeviceMemory.RawBlock block;
        if (list != null && !list.isEmpty()) {
            block = list.pop();
            bytesCached -= cls;
            reuses++;
        } else {
            try {
                block = raw.allocate(cls);
            } catch (RuntimeException outOfMemory) {
                if (bytesCached == 0) {
                    throw outOfMemory;
                }
                try {
                    trim();  // give the cache back to the driver and try once more
                    block = raw.allocate(cls);
                } catch (RuntimeException again) {
                    again.addSuppressed(outOfMemory);  // the first refusal says what was asked with the cache full
                    throw again;
                }
            }
            driverAllocations++;
        }
        if (poison) {
            try {
                raw.fill(block, cls, (byte) 0xFF);
            } catch (RuntimeException | Error e) {
                // not handed out: back to the cache, so the block is neither lost nor counted in use
                free.computeIfAbsent(cls, k -> new ArrayDeque<>()).push(block);
                bytesCached += cls;
                throw e;
            }
        }
        bytesInUse += cls;
        buffersInUse++;
        highWater = Math.max(highWater, bytesInUse);
        DeviceBuffer b = new DeviceBuffer(this, block, bytes);
        inUse.add(b);
        return b;
    }

    /** Called by {@link DeviceBuffer#close()}. */
    void release(DeviceBuffer buffer) {
        if (!inUse.remove(buffer)) {
            return;  // freed already by closeAndCountLeaks (a buffer reclaimed there is marked closed and does not come here)
        }
        RawDeviceMemory.RawBlock block = buffer.block();
        bytesInUse -= block.bytes();
        buffersInUse--;
        free.computeIfAbsent(block.bytes(), k -> new ArrayDeque<>()).push(block);
        bytesCached += block.bytes();
    }

    /**
     * Frees every cached (unused) block to the driver. Each free is attempted even when an earlier one
     * fails (a sticky device error); the cache is empty afterwards either way (a block whose free failed
     * is not retried), and the first failure is thrown with the others suppressed.
     */
    void trim() {
        Release release = new Release();
        for (ArrayDeque<RawDeviceMemory.RawBlock> list : free.values()) {
            while (!list.isEmpty()) {
                RawDeviceMemory.RawBlock block = list.pop();
                release.run(() -> raw.free(block));
            }
        }
        free.clear();
        bytesCached = 0;
        release.rethrow();
    }

    DeviceMemoryStats stats() {
        return new DeviceMemoryStats(bytesInUse, highWater, bytesCached, buffersInUse, driverAllocations, reuses);
    }

    /** Resets the high-water mark to the current use. */
    void resetHighWater() {
        highWater = bytesInUse;
    }

    /**
     * Frees every block to the driver: the cache and the buffers still open (a leak in their owners,
     * whose count is returned so the owner of the context can report it). An open buffer is marked
     * closed: its owner's later close is a no-op and a later use throws. The context calls this while
     * it still holds its retain on the device's primary context: after that release the memory would
     * be freed by no one while another context keeps the primary context alive, and a free then could
     * hit an address the driver has handed out again. Every free is attempted; the first failure is
     * thrown with the others suppressed, and the allocator is closed either way.
     */
    long closeAndCountLeaks() {
        if (closed) {
            return 0;
        }
        closed = true;
        long leaks = buffersInUse;
        Release release = new Release();
        for (DeviceBuffer b : List.copyOf(inUse)) {
            b.reclaimed();
            release.run(() -> raw.free(b.block()));
        }
        inUse.clear();
        bytesInUse = 0;
        buffersInUse = 0;
        release.run(this::trim);
        release.rethrow();
        return leaks;
    }

    @Override
    public void close() {
        closeAndCountLeaks();
    }
}
