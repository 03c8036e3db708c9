package dev.rslora.backend.cuda;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.BackendUnavailableException;

/**
 * Creates the {@code cuda} backend ({@link CudaBackend}). Registered in META-INF/services and found
 * by {@code Backends} through {@link java.util.ServiceLoader}. Loading this class loads no native code; {@link #probe()} checks, in
 * this order, and reports the first failure precisely:
 * <ol>
 *   <li>JCuda publishes natives for this platform and they are on the class path
 *       ({@link JCudaNatives}: "no CUDA natives for macOS-aarch64");</li>
 *   <li>the NVIDIA driver library loads ({@code java.lang.foreign}, no CUDA call; a denied native
 *       access is named with the flag to add);</li>
 *   <li>the kernels were built into this jar (else: "kernels not built: nvcc absent at build time");</li>
 *   <li>JCuda's native library loads;</li>
 *   <li>cuInit succeeds and the device exists ({@code -Drslora.cuda.device}, default 0);</li>
 *   <li>its compute capability is 8.0 or newer.</li>
 * </ol>
 * An available backend's detail also names the cuBLAS binding of the unfused baseline
 * ({@link CublasBinding}: JCublas where libcublas.so.12 loads, else java.lang.foreign, else none)
 * and the cuBLASLt library of the split step ({@link CublasLt}; without it layer steps are fused).
 */
public final class CudaBackendFactory implements BackendFactory {
    /** System property: the CUDA device ordinal to use (default 0). */
    public static final String DEVICE_PROPERTY = "rslora.cuda.device";

    /**
     * The factory {@link java.util.ServiceLoader} instantiates; probing happens in {@link #probe()}, not here.
     */
    public CudaBackendFactory() {
    }

    @Override
    public String name() {
        return "cuda";
    }

    /**
     * The device ordinal of {@value #DEVICE_PROPERTY} (default 0).
     *
     * @throws IllegalArgumentException naming the property and its value when it is not an integer &gt;= 0
     */
    static int deviceOrdinal() {
        String v = System.getProperty(DEVICE_PROPERTY);
        if (v == null || v.isBlank()) {
            return 0;
        }
        try {
            int ordinal = Integer.parseInt(v.strip());
            if (ordinal >= 0) {
                return ordinal;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new IllegalArgumentException("-D" + DEVICE_PROPERTY + "=" + v + ": expected a CUDA device ordinal (an integer >= 0)");
    }

    @Override
    public Availability probe() {
        int ordinal;
        try {
            ordinal = deviceOrdinal();  // a bad value is reported on any machine, before the hardware is looked at
        } catch (IllegalArgumentException e) {
            return Availability.no(e.getMessage());
        }
        String noNatives = JCudaNatives.missingReason(System.getProperty("os.name", ""), System.getProperty("os.arch", ""),
                CudaBackendFactory.class.getClassLoader());
        if (noNatives != null) {
            return Availability.no(noNatives);
        }
        KernelImage.Status kernels = KernelImage.load();
        String noDriver = DriverLibrary.missingReason();
        if (noDriver != null) {
            return Availability.no(noDriver + (kernels.built() ? "" : "; " + kernels.reason()));
        }
        if (!kernels.built()) {
            return Availability.no(kernels.reason());
        }
        Availability known = DEVICE_PROBES.get(ordinal);
        if (known == null) {
            known = DeviceProbe.probe(ordinal, kernels.detail());
            if (known.available()) {
                // which cuBLAS binding the baseline would use (JCublas or java.lang.foreign), for rslora info
                String lt = CublasLt.findLibrary();
                known = Availability.yes(known.detail() + "; " + CublasBinding.current().detail() + "; "
                        + (lt != null ? "cuBLASLt " + lt + " (the split step)" : "no cuBLASLt (none of "
                        + String.join(", ", CublasLt.LIBRARIES) + " loads): fused steps only"));
            }
            DEVICE_PROBES.put(ordinal, known);
        }
        return known;
    }

    /** Device probes per ordinal: cuInit and the device queries run once per JVM. */
    private static final java.util.Map<Integer, Availability> DEVICE_PROBES = new java.util.concurrent.ConcurrentHashMap<>();

    @Override
    public Backend create() {
        Availability a = probe();
        if (!a.available()) {
            throw new BackendUnavailableException("cuda backend is unavailable: " + a.detail());
        }
        // the backend's own properties, checked before a CUDA context exists (an exception after it would leak it)
        long workspaceCap = CudaBackend.workspaceCapFromProperty();
        KernelSelector.requested(System.getProperty(KernelSelector.PROPERTY, "auto"));
        KernelImage.Status kernels = KernelImage.load();
        CudaContext ctx = new CudaContext(deviceOrdinal(), kernels.image());
        try {
            return new CudaBackend(ctx, workspaceCap);
        } catch (RuntimeException | Error e) {
            // the context holds the primary context's retain, a stream, the module and pinned staging
            try {
                ctx.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }
}
