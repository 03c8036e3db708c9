package dev.rslora.backend.cuda;

/**
 * Where {@link LoraKernels} sends its launches: the {@link CudaContext} (the module's functions on
 * the context's stream), or a recorder in the unit tests that checks kernel names, grids, block
 * sizes and packed params structs without a device.
 */
interface KernelLauncher {
    /** Looks the kernel up in the loaded module (with lazy loading this loads its code). */
    void resolve(String kernel);

    /** Queues {@code kernel} on a grid of 1-D blocks of {@code threads} threads with its one by-value params struct. */
    void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params);

    /**
     * Queues a kernel of the table's {@code image} ("main" or "sm90a") through cuLaunchKernelEx:
     * {@code smemBytes} of dynamic shared memory (the function's limit raised first when above 48 KiB),
     * a cluster, and after the params struct each tensor map as one more by-value parameter.
     */
    default void launchEx(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smemBytes, DriverFfm.Cluster cluster,
                          byte[] params, java.util.List<DriverFfm.TensorMap> maps) {
        throw new UnsupportedOperationException("this launcher has no cuLaunchKernelEx (" + kernel + ")");
    }

    /** Looks up (and so loads) a kernel of {@code image} before a graph capture. */
    default void resolve(String kernel, String image) {
        if (!image.equals("main")) {
            throw new UnsupportedOperationException("this launcher has no image " + image + " (" + kernel + ")");
        }
        resolve(kernel);
    }

    /**
     * {@link #resolve(String, String)}, and the function's dynamic shared memory limit raised to
     * {@code smemBytes} now (not at its first launch, which may be inside a graph capture).
     */
    default void prepare(String kernel, String image, int smemBytes) {
        resolve(kernel, image);
    }

    /** The device's SM count (the persistent v3 grids: one CTA per SM at most). */
    default int multiprocessors() {
        throw new UnsupportedOperationException("this launcher knows no SM count");
    }

    /** The encoder of TMA descriptors (the driver's cuTensorMapEncodeTiled). */
    default TensorMapCache.Encoder tensorMaps() {
        throw new UnsupportedOperationException("this launcher encodes no tensor maps");
    }
}
