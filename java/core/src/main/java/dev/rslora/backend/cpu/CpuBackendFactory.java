package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.BackendUnavailableException;

/**
 * The {@code cpu} backend's provider (META-INF/services). It needs the jdk.incubator.vector module
 * in the boot layer; the probe checks that without touching a Vector API class, and
 * {@link CpuBackend} is only loaded by {@link #create()}.
 */
public final class CpuBackendFactory implements BackendFactory {

    /**
     * What the missing flag costs, measured with JMH ({@code ReferenceLayerBenchmark} and
     * {@code CpuLayerBenchmark.loraForwardBackward}, fp32 forward + backward, dropout 0; raw JSON in
     * bench/raw/extra/vector-flag-cost-*.json) on the 2-core AMD EPYC development machine, JDK 25,
     * 2026-12-04, under a load average of 12 to 14 from other jobs: reference 21673 ms (3 single
     * shots, 16530 to 25133 ms), cpu 91 ms (5 iterations, 63 to 139 ms).
     */
    static final String MISSING_MODULE_COST = "without it a layer step at N = 512, d = 1024, r = 16 took 21673 ms on the reference "
            + "vs 91 ms on cpu, about 240x slower, on a 2-core AMD EPYC under load";

    public CpuBackendFactory() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Availability probe() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return Availability.no("the Vector API module is not enabled: run java with --add-modules jdk.incubator.vector ("
                    + MISSING_MODULE_COST + ")");
        }
        return Availability.yes("Vector API, " + Runtime.getRuntime().availableProcessors() + " threads");
    }

    @Override
    public Backend create() {
        Availability a = probe();
        if (!a.available()) {
            throw new BackendUnavailableException("cpu backend is unavailable: " + a.detail());
        }
        return new CpuBackend();
    }
}
