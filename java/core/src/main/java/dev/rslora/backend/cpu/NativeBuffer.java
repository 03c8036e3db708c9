package dev.rslora.backend.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A reusable block of native memory that grows on demand: growing closes the old shared arena
 * and opens a new one, so nothing waits for the garbage collector. Used for the packing buffers
 * that the worker threads read. Not thread-safe: a shared one is grown only between pool jobs, a
 * worker's own ({@link Scratch}) by that worker alone.
 */
final class NativeBuffer implements AutoCloseable {
    private Arena arena;
    private MemorySegment segment = MemorySegment.NULL;

    /** A segment of at least {@code bytes} bytes (64-byte aligned); contents are unspecified. */
    MemorySegment ensure(long bytes) {
        if (segment.byteSize() < bytes) {
            close();
            arena = Arena.ofShared();
            segment = arena.allocate(Math.max(bytes, 64), 64);
        }
        return segment;
    }

    @Override
    public void close() {
        if (arena != null) {
            arena.close();
            arena = null;
            segment = MemorySegment.NULL;
        }
    }
}
