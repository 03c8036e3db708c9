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

    public CpuBackendFactory() {
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public Availability probe() {
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return Availability.no("the Vector API module is not enabled: run java with --add-modules jdk.incubator.vector");
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
