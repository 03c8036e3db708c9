package dev.rslora.backend.cuda;

/**
 * A snapshot of a CUDA context's caching allocator.
 *
 * @param bytesInUse        bytes held by open device buffers (counted by size class)
 * @param highWaterBytes    the largest {@code bytesInUse} seen since creation or the last reset
 * @param bytesCached       bytes of closed buffers kept for reuse
 * @param buffersInUse      open device buffers
 * @param driverAllocations cuMemAlloc calls so far
 * @param reuses            allocations served from the cache
 */
public record DeviceMemoryStats(long bytesInUse, long highWaterBytes, long bytesCached, long buffersInUse,
                                long driverAllocations, long reuses) {
}
