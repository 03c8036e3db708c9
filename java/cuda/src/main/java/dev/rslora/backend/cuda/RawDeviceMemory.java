package dev.rslora.backend.cuda;

/**
 * The allocator's source of device memory: {@code cuMemAlloc}/{@code cuMemFree} in
 * {@link CudaContext}, a fake in the allocator's unit tests.
 */
interface RawDeviceMemory {
    /** A block of exactly {@code bytes} bytes; throws when the device is out of memory. */
    RawBlock allocate(long bytes);

    /** Returns a block obtained from {@link #allocate}. */
    void free(RawBlock block);

    /** Fills {@code bytes} bytes at {@code block}'s start with {@code value} (used for poisoning in tests). */
    void fill(RawBlock block, long bytes, byte value);

    /**
     * One raw allocation: its device address and the JCuda pointer to it ({@link DevPtr} from
     * cuMemAlloc; in fakes null, or a pointer carrying a made-up address).
     */
    record RawBlock(long address, long bytes, jcuda.driver.CUdeviceptr handle) {
    }
}
