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
}
