package dev.rslora.backend.cuda;

import java.util.HashMap;
import java.util.Map;

/**
 * The TMA descriptors of one device tensor, encoded once per box and kept: a frozen weight W needs
 * two (the v3 forward reads it with a {64, 256} box, the v3 dX with {64, 64}), for the life of the
 * weight. A merge rewrites W in place, so its descriptors stay valid; a descriptor is encoded again
 * only when the tensor's base address differs from the one it was encoded for (a new buffer).
 * <pre>
 *   tensor: row-major [outer, inner] of elementBytes-byte elements at base, row stride rowBytes
 *   key:    (dtype, inner, outer, rowBytes, boxInner, boxOuter, swizzle) → (base, CUtensorMap)
 * </pre>
 */
final class TensorMapCache {
    /** Encodes one descriptor (DriverFfm::encode on a device; a counter in tests). */
    interface Encoder {
        DriverFfm.TensorMap encode(int dtype, int elementBytes, long base, long inner, long outer, long rowStrideBytes, int boxInner,
                                   int boxOuter, int swizzle);
    }

    private record Key(int dtype, long inner, long outer, long rowBytes, int boxInner, int boxOuter, int swizzle) {
    }

    private final Map<Key, DriverFfm.TensorMap> maps = new HashMap<>();
    private int encoded;

    /** The descriptor for this box of the tensor at {@code base}, encoded now only if not cached for that base. */
    DriverFfm.TensorMap get(Encoder encoder, int dtype, int elementBytes, long base, long inner, long outer, long rowStrideBytes,
                            int boxInner, int boxOuter, int swizzle) {
        Key k = new Key(dtype, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle);
        DriverFfm.TensorMap m = maps.get(k);
        if (m == null || m.base() != base) {
            m = encoder.encode(dtype, elementBytes, base, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle);
            maps.put(k, m);
            encoded++;
        }
        return m;
    }

    /** How many descriptors were encoded (tests: once per box per weight, not per step). */
    int encoded() {
        return encoded;
    }

    void clear() {
        maps.clear();
    }
}
