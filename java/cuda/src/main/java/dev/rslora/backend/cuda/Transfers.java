package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Host tensor ↔ device buffer copies with dtype conversion: conversions between F32 and BF16/F16
 * run on the device (the conversion kernels, round to nearest even); BF16↔F16 goes through F32 on
 * the device, or the host's exact conversions for host tensors. Every returned buffer is owned by
 * the caller.
 */
final class Transfers {
    /**
     * What the copies need of a context: its caching allocator and its staged copies, complete on
     * return ({@link CudaContext}; heap bytes in the unit tests).
     */
    interface Device {
        DeviceBuffer allocate(long bytes);

        /** Host → device, complete on return. */
        void upload(MemorySegment src, DeviceBuffer dst);

        /** Device → host, complete on return. */
        void download(DeviceBuffer src, MemorySegment dst);
    }

    private final Device ctx;
    private final LoraKernels kernels;

    Transfers(Device ctx, LoraKernels kernels) {
        this.ctx = ctx;
        this.kernels = kernels;
    }

    static long bytes(long numel, DType t) {
        return Math.multiplyExact(numel, (long) t.byteSize());
    }

    /**
     * A new buffer holding {@code host}'s values in dtype {@code target}. Reads {@code host} through its
     * read-only segment: its version stamp does not move (see {@link Tensor#version()}).
     */
    DeviceBuffer upload(Tensor host, DType target) {
        long n = host.numel();
        if (n == 0) {
            throw new IllegalArgumentException("empty tensor " + host);
        }
        if (host.dtype() == target) {
            DeviceBuffer b = ctx.allocate(bytes(n, target));
            try {
                ctx.upload(host.readOnlySegment(), b);
            } catch (RuntimeException e) {
                b.close();
                throw e;
            }
            return b;
        }
        if (host.dtype() == DType.F32 || target == DType.F32) {
            try (DeviceBuffer raw = upload(host, host.dtype())) {
                return convert(raw, host.dtype(), target, n);
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            return upload(host.to(arena, target), target);
        }
    }

    /**
     * A new buffer with {@code count} elements of {@code src} (dtype {@code from}) converted to {@code to};
     * BF16↔F16 goes through F32 (exact widening, then one rounding).
     */
    DeviceBuffer convert(DeviceBuffer src, DType from, DType to, long count) {
        if (from == to) {
            throw new IllegalArgumentException("conversion from " + from + " to itself");
        }
        if (from != DType.F32 && to != DType.F32) {
            try (DeviceBuffer wide = convert(src, from, DType.F32, count)) {
                return convert(wide, DType.F32, to, count);
            }
        }
        DeviceBuffer dst = ctx.allocate(bytes(count, to));
        try {
            kernels.convert(from, to, src, dst, count);
        } catch (RuntimeException e) {
            dst.close();
            throw e;
        }
        return dst;
    }

    /** Copies {@code src} (dtype {@code srcType}, host.numel() elements) into {@code host}, converting; complete on return. */
    void download(DeviceBuffer src, DType srcType, Tensor host) {
        long n = host.numel();
        if (src.bytes() < bytes(n, srcType)) {
            throw new IllegalArgumentException("device buffer of " + src.bytes() + " bytes is too small for " + host);
        }
        if (srcType == host.dtype()) {
            ctx.download(src, host.segment());
            return;
        }
        if (srcType == DType.F32 || host.dtype() == DType.F32) {
            try (DeviceBuffer tmp = convert(src, srcType, host.dtype(), n)) {
                ctx.download(tmp, host.segment());
            }
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            Tensor tmp = Tensor.allocate(arena, srcType, host.shape());
            ctx.download(src, tmp.segment());
            host.copyFrom(tmp);
        }
    }
}
