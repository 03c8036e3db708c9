package dev.rslora.backend.cuda;

/**
 * Size classes of the caching device allocator. A request is rounded up to its class and a freed
 * block is reused by any later request of the same class:
 * <ul>
 *   <li>up to 512 bytes: one class of 512 bytes (also keeps every block 512-byte aligned in size);</li>
 *   <li>up to 1 MiB: the next power of two;</li>
 *   <li>above: the next multiple of 1/8 of the power of two below it (8 classes per doubling, so at
 *       most 12.5 % of a large block is padding).</li>
 * </ul>
 */
final class SizeClasses {
    static final long MIN = 512;
    static final long POW2_LIMIT = 1L << 20;

    private SizeClasses() {
    }

    /** The class (rounded-up byte size) of a request of {@code bytes} (>= 1). */
    static long classOf(long bytes) {
        if (bytes < 1) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes");
        }
        if (bytes <= MIN) {
            return MIN;
        }
        if (bytes <= POW2_LIMIT) {
            return Long.highestOneBit(bytes - 1) << 1;
        }
        long step = Long.highestOneBit(bytes - 1) >> 3;  // 1/8 of the power of two below
        long steps = (bytes - 1) / step + 1;  // ceil(bytes / step) without bytes + step - 1, which passes 2^63 - 1
        if (steps > Long.MAX_VALUE / step) {
            throw new IllegalArgumentException("allocation of " + bytes + " bytes: its size class passes 2^63 - 1 bytes");
        }
        return steps * step;
    }
}
