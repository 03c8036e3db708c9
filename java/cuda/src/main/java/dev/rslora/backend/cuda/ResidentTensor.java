package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.util.EnumMap;
import java.util.Map;

/**
 * A host tensor kept on the device: the primary copy in the host dtype, uploaded at creation, plus
 * converted copies made on demand (e.g. an f32 W for a call whose X is f32 while W is bf16).
 * {@link #invalidateConversions()} drops the converted copies after the primary changes (merge).
 * The host tensor's {@link Tensor#version()} at the last upload is kept: {@link #refresh} uploads
 * again (into the same primary) after the caller wrote the host tensor.
 */
final class ResidentTensor implements AutoCloseable {
    private final Tensor host;
    private final DeviceBuffer primary;
    private final Map<DType, DeviceBuffer> converted = new EnumMap<>(DType.class);
    private final TensorMapCache maps = new TensorMapCache();

    /** The host's version stamp the primary copy holds. */
    private long uploaded;

    ResidentTensor(Transfers io, Tensor host) {
        this.host = host;
        this.uploaded = host.version();  // before reading: a write during the upload shows as stale
        this.primary = io.upload(host, host.dtype());
    }

    /**
     * Uploads the host tensor again when it was written since the primary copy was made (a caller's
     * set, copyFrom, fill or segment() write), into the same primary (its TMA descriptors stay valid),
     * and drops the converted copies; a no-op otherwise.
     */
    void refresh(CudaContext ctx) {
        long stamp = host.version();
        if (stamp != uploaded) {
            ctx.upload(host.readOnlySegment(), primary);
            invalidateConversions();
            uploaded = stamp;
        }
    }

    /** Records that the primary and the host hold the same values (merge wrote both). */
    void markCurrent() {
        uploaded = host.version();
    }

    Tensor host() {
        return host;
    }

    DType dtype() {
        return host.dtype();
    }

    DeviceBuffer primary() {
        return primary;
    }

    /** The device copy in dtype {@code t} (the primary, or a cached conversion of it). */
    DeviceBuffer as(Transfers io, DType t) {
        if (t == host.dtype()) {
            return primary;
        }
        return converted.computeIfAbsent(t, k -> io.convert(primary, host.dtype(), k, host.numel()));
    }

    /**
     * The TMA descriptor of the primary copy, a row-major [rows, cols] tensor, read with a
     * {boxInner, boxOuter} box and 128-byte swizzle: encoded once per box for the life of this tensor
     * (a merge rewrites the primary in place, so its descriptors stay valid; see {@link TensorMapCache}).
     */
    DriverFfm.TensorMap tensorMap(TensorMapCache.Encoder encoder, int boxInner, int boxOuter) {
        long rows = host.dim(0);
        long cols = host.dim(1);
        int eb = host.dtype().byteSize();
        return maps.get(encoder, DriverFfm.tmaType(host.dtype()), eb, primary.address(), cols, rows, cols * eb, boxInner, boxOuter,
                DriverFfm.TMA_SWIZZLE_128B);
    }

    /** The cache of this tensor's descriptors (also for its converted copies: the key holds the dtype, the entry the base). */
    TensorMapCache tensorMaps() {
        return maps;
    }

    /** Descriptors encoded for this tensor so far. */
    int tensorMapsEncoded() {
        return maps.encoded();
    }

    void invalidateConversions() {
        converted.values().forEach(DeviceBuffer::close);
        converted.clear();
    }

    @Override
    public void close() {
        invalidateConversions();
        primary.close();
    }
}
