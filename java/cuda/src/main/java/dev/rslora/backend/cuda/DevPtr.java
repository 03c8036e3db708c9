package dev.rslora.backend.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * A {@link CUdeviceptr} whose raw device address can be read: kernel params structs hold device
 * addresses as 8-byte integers. Filled by {@code cuMemAlloc}; loading this class loads no native code.
 */
final class DevPtr extends CUdeviceptr {
    /** The device address (0 before allocation). */
    long address() {
        return getNativePointer();
    }
}
