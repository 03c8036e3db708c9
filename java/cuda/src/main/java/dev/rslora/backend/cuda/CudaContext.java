package dev.rslora.backend.cuda;

import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * One device's CUDA state for this library: the primary context, one non-blocking stream, the
 * kernel module (loaded once from the jar's fatbin with {@code cuModuleLoadData}), the caching
 * allocator and the pinned staging buffer. JCuda exceptions are enabled: every driver error is a
 * {@code jcuda.CudaException}. All work goes to {@link #stream()}, so buffers recycled by the
 * allocator are always used in stream order. Callers serialise access (the backend's methods are
 * synchronized) and call {@link #makeCurrent()} on the thread that uses it.
 */
final class CudaContext implements KernelLauncher, Transfers.Device, AutoCloseable {
    /** Staging chunk: 16 MiB of pinned host memory. */
    static final long STAGING_BYTES = 16L << 20;

    private final int ordinal;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    private final RawStream stream = new RawStream();
    private final CUmodule module = new CUmodule();
    private final Map<String, CUfunction> functions = new HashMap<>();
    /** The sm_90a image (v3 kernels), loaded on first use on a compute capability 9.0 device; null until then. */
    private CUmodule moduleSm90a;
    /** Functions launched through cuLaunchKernelEx, by "image:name". */
    private final Map<String, RawFunction> rawFunctions = new HashMap<>();
    private final Map<String, Integer> smemLimits = new HashMap<>();
    private DriverFfm driver;
    private final CachingAllocator allocator;
    private final PinnedStaging staging;
    private final String name;
    private final int ccMajor;
    private final int ccMinor;
    private final int multiprocessors;
    private boolean closed;

    /** Opens device {@code ordinal}; the caller has checked (probe) that the driver and a device exist. */
    CudaContext(int ordinal, byte[] fatbin) {
        JCudaDriver.setExceptionsEnabled(true);
        JCudaDriver.cuInit(0);
        this.ordinal = ordinal;
        JCudaDriver.cuDeviceGet(device, ordinal);
        this.ccMajor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.ccMinor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        byte[] nameBytes = new byte[256];
        JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device);
        int len = 0;
        while (len < nameBytes.length && nameBytes[len] != 0) {
            len++;
        }
        this.name = new String(nameBytes, 0, len, StandardCharsets.UTF_8);
        JCudaDriver.cuDevicePrimaryCtxRetain(context, device);
        boolean streamMade = false;
        boolean moduleLoaded = false;
        try {
            JCudaDriver.cuCtxSetCurrent(context);
            JCudaDriver.cuStreamCreate(stream, CUstream_flags.CU_STREAM_NON_BLOCKING);
            streamMade = true;
            JCudaDriver.cuModuleLoadData(module, fatbin);
            moduleLoaded = true;
            this.allocator = new CachingAllocator(new DriverMemory());
            this.staging = new PinnedStaging(STAGING_BYTES);
        } catch (RuntimeException e) {
            // e.g. a driver too old for the fatbin: give back what was taken, keep the driver's message
            if (moduleLoaded) {
                JCudaDriver.cuModuleUnload(module);
            }
            if (streamMade) {
                JCudaDriver.cuStreamDestroy(stream);
            }
            JCudaDriver.cuDevicePrimaryCtxRelease(device);
            throw e;
        }
    }

    private int attribute(int attr) {
        int[] v = new int[1];
        JCudaDriver.cuDeviceGetAttribute(v, attr, device);
        return v[0];
    }

    /** Binds the context to the calling thread. */
    void makeCurrent() {
        check();
        JCudaDriver.cuCtxSetCurrent(context);
    }

    CUstream stream() {
        return stream;
    }

    /** The stream's raw handle (a cudaStream_t), for libraries bound through java.lang.foreign (cuBLAS). */
    long streamAddress() {
        return stream.address();
    }

    /** A CUstream whose raw handle can be read. */
    private static final class RawStream extends CUstream {
        long address() {
            return getNativePointer();
        }
    }

    CachingAllocator allocator() {
        return allocator;
    }

    String deviceName() {
        return name;
    }

    int ordinal() {
        return ordinal;
    }

    int computeCapabilityMajor() {
        return ccMajor;
    }

    int computeCapabilityMinor() {
        return ccMinor;
    }

    @Override
    public int multiprocessors() {
        return multiprocessors;
    }

    /** A kernel of the module by its exported name (looked up once). */
    CUfunction function(String kernel) {
        check();
        return functions.computeIfAbsent(kernel, k -> {
            CUfunction f = new CUfunction();
            JCudaDriver.cuModuleGetFunction(f, module, k);
            return f;
        });
    }

    @Override
    public void resolve(String kernel) {
        function(kernel);
    }

    /** A CUfunction whose raw handle can be read (for cuLaunchKernelEx through java.lang.foreign). */
    private static final class RawFunction extends CUfunction {
        long address() {
            return getNativePointer();
        }
    }

    /** The driver functions JCuda lacks, bound on first use. */
    DriverFfm driver() {
        check();
        if (driver == null) {
            driver = new DriverFfm(DriverLibrary.libraryName());
        }
        return driver;
    }

    @Override
    public TensorMapCache.Encoder tensorMaps() {
        return driver();
    }

    /** The raw handle of {@code kernel} in {@code image} ("main" or "sm90a"), looked up once. */
    private long rawFunction(String kernel, String image) {
        check();
        if (image.equals("main")) {
            return rawFunctions.computeIfAbsent("main:" + kernel, k -> {
                RawFunction f = new RawFunction();
                JCudaDriver.cuModuleGetFunction(f, module, kernel);
                return f;
            }).address();
        }
        if (!image.equals("sm90a")) {
            throw new IllegalArgumentException("unknown kernel image '" + image + "' (main or sm90a)");
        }
        if (moduleSm90a == null) {
            if (ccMajor != 9 || ccMinor != 0) {
                throw new IllegalStateException(kernel + " is sm_90a code; this device is compute capability " + ccMajor + "." + ccMinor);
            }
            byte[] image90a = KernelImage.sm90a();
            if (image90a == null) {
                throw new IllegalStateException("this jar has no sm_90a kernel image (" + KernelImage.FATBIN_SM90A.substring(1) + ")");
            }
            CUmodule m = new CUmodule();
            JCudaDriver.cuModuleLoadData(m, image90a);
            moduleSm90a = m;
        }
        return rawFunctions.computeIfAbsent("sm90a:" + kernel, k -> {
            RawFunction f = new RawFunction();
            JCudaDriver.cuModuleGetFunction(f, moduleSm90a, kernel);
            return f;
        }).address();
    }

    @Override
    public void resolve(String kernel, String image) {
        rawFunction(kernel, image);
    }

    @Override
    public void launchEx(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smemBytes, DriverFfm.Cluster cluster,
                         byte[] params, java.util.List<DriverFfm.TensorMap> maps) {
        long f = raiseSmem(kernel, image, smemBytes);
        driver().launch(f, grid, threads, smemBytes, cluster, stream.address(), params, maps);
    }

    @Override
    public void prepare(String kernel, String image, int smemBytes) {
        raiseSmem(kernel, image, smemBytes);
    }

    /** The function, its dynamic shared memory limit raised to smemBytes first when above 48 KiB (once per function). */
    private long raiseSmem(String kernel, String image, int smemBytes) {
        long f = rawFunction(kernel, image);
        String key = image + ":" + kernel;
        if (smemBytes > DriverFfm.DEFAULT_DYNAMIC_SMEM && smemLimits.getOrDefault(key, 0) < smemBytes) {
            driver().setAttribute(f, DriverFfm.FUNC_MAX_DYNAMIC_SHARED_SIZE_BYTES, smemBytes);
            smemLimits.put(key, smemBytes);
        }
        return f;
    }

    /** Launches {@code kernel} on the stream with its one by-value params struct, {@code threads} threads per (1-D) block. */
    @Override
    public void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
        CUfunction f = function(kernel);
        JCudaDriver.cuLaunchKernel(f,
                grid.x(), grid.y(), grid.z(),         // grid
                threads, 1, 1,                        // block: 1-D
                0, stream,                            // no dynamic shared memory
                Pointer.to(Pointer.to(params)),       // kernelParams: one pointer, to the struct's bytes
                null);
    }

    @Override
    public DeviceBuffer allocate(long bytes) {
        check();
        return allocator.allocate(bytes);
    }

    /** Host → device, complete on return. */
    @Override
    public void upload(MemorySegment src, DeviceBuffer dst) {
        staging.upload(src, 0, dst, 0, src.byteSize(), stream);
    }

    /** Device → host, complete on return (waits for all queued work first: stream order). */
    @Override
    public void download(DeviceBuffer src, MemorySegment dst) {
        staging.download(src, 0, dst, 0, dst.byteSize(), stream);
    }

    void synchronize() {
        JCudaDriver.cuStreamSynchronize(stream);
    }

    /** Free and total device memory in bytes. */
    long[] memoryInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        JCudaDriver.cuMemGetInfo(free, total);
        return new long[] {free[0], total[0]};
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("CUDA context of device " + ordinal + " is closed");
        }
    }

    /**
     * Frees everything, including the device buffers still open (a leak in the caller: their count is
     * returned; their owners' later close is a no-op). The device memory is freed here, not left to
     * the primary context's destruction: {@code cuDevicePrimaryCtxRelease} destroys it only when no
     * other retain (another backend on the same device) is left, so buffers closed after their backend
     * would otherwise stay allocated for as long as the process keeps the device open.
     * Every release is attempted once, even when an earlier one fails (after a kernel fault the
     * stream's synchronisation, and most driver calls after it, return that fault): the allocator's
     * memory, the pinned staging buffer, the modules, the stream and last the primary-context retain.
     * The first failure is then thrown with the others suppressed in it; the context is closed
     * either way, and a second call returns 0.
     */
    long closeAndCountLeaks() {
        if (closed) {
            return 0;
        }
        Release release = new Release();
        long[] leaks = new long[1];
        release.run(() -> JCudaDriver.cuCtxSetCurrent(context));
        release.run(() -> JCudaDriver.cuStreamSynchronize(stream));
        release.run(() -> leaks[0] = allocator.closeAndCountLeaks());
        release.run(staging::close);
        release.run(() -> JCudaDriver.cuModuleUnload(module));
        if (moduleSm90a != null) {
            release.run(() -> JCudaDriver.cuModuleUnload(moduleSm90a));
        }
        if (driver != null) {
            release.run(driver::close);
        }
        release.run(() -> JCudaDriver.cuStreamDestroy(stream));
        closed = true;
        release.run(() -> JCudaDriver.cuDevicePrimaryCtxRelease(device));
        release.rethrow();
        return leaks[0];
    }

    @Override
    public void close() {
        closeAndCountLeaks();
    }

    /**
     * cuMemAlloc / cuMemFree. The allocator frees every block, cached or still in use, in
     * {@link #closeAndCountLeaks()} while this context still holds its primary-context retain, so no
     * free comes after the close; one that did would be dropped (the memory may belong to someone else
     * by then: another context on the device can keep the primary context, and its allocations, alive).
     */
    private final class DriverMemory implements RawDeviceMemory {
        @Override
        public RawBlock allocate(long bytes) {
            DevPtr p = new DevPtr();
            JCudaDriver.cuMemAlloc(p, bytes);
            return new RawBlock(p.address(), bytes, p);
        }

        @Override
        public void free(RawBlock block) {
            if (!closed) {
                JCudaDriver.cuMemFree(block.handle());
            }
        }

        @Override
        public void fill(RawBlock block, long bytes, byte value) {
            JCudaDriver.cuMemsetD8Async(block.handle(), value, bytes, stream);
        }
    }
}
