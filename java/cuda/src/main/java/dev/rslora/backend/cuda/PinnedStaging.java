package dev.rslora.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.MemorySegment;

/**
 * A page-locked host buffer through which every host↔device copy of a context goes, in chunks of
 * its size: host tensor → pinned (memcpy) → device (async DMA on the context's stream), and back.
 * The stream is synchronised after each chunk before the buffer is reused, so a copy is complete
 * when a method returns. Owned by its {@link CudaContext}.
 */
final class PinnedStaging implements AutoCloseable {
    private final Pointer host = new Pointer();
    private final MemorySegment segment;
    private final long bytes;
    private boolean closed;

    PinnedStaging(long bytes) {
        JCudaDriver.cuMemHostAlloc(host, bytes, 0);
        this.bytes = bytes;
        this.segment = MemorySegment.ofBuffer(host.getByteBuffer(0, bytes));
    }

    /** Copies {@code count} bytes of {@code src} from {@code srcOffset} to {@code dst} at {@code dstOffset}. */
    void upload(MemorySegment src, long srcOffset, DeviceBuffer dst, long dstOffset, long count, CUstream stream) {
        checkRange("upload", dst, dstOffset, count);
        for (long done = 0; done < count; ) {
            long len = Math.min(bytes, count - done);
            MemorySegment.copy(src, srcOffset + done, segment, 0, len);
            JCudaDriver.cuMemcpyHtoDAsync(dst.ptr(dstOffset + done), host, len, stream);
            JCudaDriver.cuStreamSynchronize(stream);
            done += len;
        }
    }

    /** Copies {@code count} bytes of {@code src} from {@code srcOffset} into {@code dst} at {@code dstOffset}. */
    void download(DeviceBuffer src, long srcOffset, MemorySegment dst, long dstOffset, long count, CUstream stream) {
        checkRange("download", src, srcOffset, count);
        for (long done = 0; done < count; ) {
            long len = Math.min(bytes, count - done);
            JCudaDriver.cuMemcpyDtoHAsync(host, src.ptr(srcOffset + done), len, stream);
            JCudaDriver.cuStreamSynchronize(stream);
            MemorySegment.copy(segment, 0, dst, dstOffset + done, len);
            done += len;
        }
    }

    private static void checkRange(String op, DeviceBuffer b, long offset, long count) {
        if (offset < 0 || count < 0 || offset + count > b.bytes()) {
            throw new IndexOutOfBoundsException(op + " of " + count + " bytes at offset " + offset
                    + " does not fit a device buffer of " + b.bytes() + " bytes");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            JCudaDriver.cuMemFreeHost(host);
        }
    }
}
