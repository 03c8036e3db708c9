package dev.rslora.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * One device allocation owned by exactly one holder until {@link #close()}, which returns it to
 * its {@link CachingAllocator} (not to the driver). Closing twice is a no-op; using a closed
 * buffer throws. A buffer still open when its context closes is freed by the context and counts as
 * closed from then on. Work queued on the context's stream before the close is safe: every later user
 * of the recycled block is ordered after it on the same stream.
 */
final class DeviceBuffer implements AutoCloseable {
    private final CachingAllocator owner;
    private final RawDeviceMemory.RawBlock block;
    private final long requested;
    private boolean closed;

    DeviceBuffer(CachingAllocator owner, RawDeviceMemory.RawBlock block, long requested) {
        this.owner = owner;
        this.block = block;
        this.requested = requested;
    }

    /** The device address, for kernel params. */
    long address() {
        check();
        return block.address();
    }

    /** The bytes asked for (the block may be larger: its size class). */
    long bytes() {
        return requested;
    }

    /** The size class actually held. */
    long capacity() {
        return block.bytes();
    }

    /** The JCuda pointer for memcpy/memset, offset by {@code byteOffset}. */
    CUdeviceptr ptr(long byteOffset) {
        check();
        if (byteOffset < 0 || byteOffset > requested) {
            throw new IndexOutOfBoundsException("offset " + byteOffset + " outside a buffer of " + requested + " bytes");
        }
        return byteOffset == 0 ? block.handle() : block.handle().withByteOffset(byteOffset);
    }

    RawDeviceMemory.RawBlock block() {
        return block;
    }

    boolean isClosed() {
        return closed;
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("device buffer of " + requested + " bytes used after close (its own, or its context's)");
        }
    }

    /**
     * Marks this buffer closed without returning it: its allocator freed the block to the driver when
     * its context closed ({@link CachingAllocator#closeAndCountLeaks()}); a later close is a no-op.
     */
    void reclaimed() {
        closed = true;
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            owner.release(this);
        }
    }
}
