package dev.rslora.backend.cuda;

import jcuda.driver.JCudaDriver;

/** Device-to-device copies and fills on a context's stream (stream-ordered, asynchronous). */
final class JCudaDriverCopies {
    private JCudaDriverCopies() {
    }

    static void deviceToDevice(CudaContext ctx, DeviceBuffer src, DeviceBuffer dst, long bytes) {
        if (bytes > src.bytes() || bytes > dst.bytes()) {
            throw new IndexOutOfBoundsException("copy of " + bytes + " bytes between buffers of " + src.bytes() + " and "
                    + dst.bytes() + " bytes");
        }
        JCudaDriver.cuMemcpyDtoDAsync(dst.ptr(0), src.ptr(0), bytes, ctx.stream());
    }

    static void zero(CudaContext ctx, DeviceBuffer b) {
        JCudaDriver.cuMemsetD8Async(b.ptr(0), (byte) 0, b.bytes(), ctx.stream());
    }
}
