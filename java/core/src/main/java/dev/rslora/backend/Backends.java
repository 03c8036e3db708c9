package dev.rslora.backend;

import dev.rslora.backend.reference.ReferenceBackend;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The backend provider. {@code auto} picks the first available of cuda → cpu → reference and logs
 * the choice (with the reasons the faster ones were skipped) once. The system property
 * {@code -Drslora.backend=reference|cpu|cuda|auto} overrides the default; asking for an
 * unavailable backend fails with the reason.
 */
public final class Backends {
    /** The system property that chooses the default backend. */
    public static final String PROPERTY = "rslora.backend";

    private static final System.Logger LOG = System.getLogger("dev.rslora.backend");
    private static final Map<String, Backend> CREATED = new ConcurrentHashMap<>();
    private static volatile boolean autoLogged;

    private Backends() {
    }

    /** All factories in preference order (fastest first). */
    public static List<BackendFactory> factories() {
        return List.of(new CudaSlot(), new CpuFactory(), new ReferenceFactory());
    }

    /** Probes every backend: name → availability, in preference order. */
    public static Map<String, BackendFactory.Availability> probeAll() {
        Map<String, BackendFactory.Availability> out = new LinkedHashMap<>();
        for (BackendFactory f : factories()) {
            out.put(f.name(), safeProbe(f));
        }
        return out;
    }

    /** The backend named by {@code -Drslora.backend}, or {@code auto}. */
    public static Backend fromSystemProperty() {
        return get(System.getProperty(PROPERTY, "auto"));
    }

    /**
     * The backend called {@code name} ("reference", "cpu", "cuda" or "auto"); one instance per
     * name per JVM. Throws {@link BackendUnavailableException} with the reason when it cannot run.
     */
    public static Backend get(String name) {
        String key = name == null ? "auto" : name.trim().toLowerCase(Locale.ROOT);
        if (key.equals("auto")) {
            return auto();
        }
        for (BackendFactory f : factories()) {
            if (f.name().equals(key)) {
                BackendFactory.Availability a = safeProbe(f);
                if (!a.available()) {
                    throw new BackendUnavailableException("backend '" + key + "' is unavailable: " + a.detail());
                }
                return CREATED.computeIfAbsent(key, k -> f.create());
            }
        }
        throw new IllegalArgumentException("unknown backend '" + name + "': expected reference, cpu, cuda or auto");
    }

    private static Backend auto() {
        List<String> skipped = new ArrayList<>();
        for (BackendFactory f : factories()) {
            BackendFactory.Availability a = safeProbe(f);
            if (a.available()) {
                Backend b = CREATED.computeIfAbsent(f.name(), k -> f.create());
                if (!autoLogged) {
                    autoLogged = true;
                    LOG.log(System.Logger.Level.INFO, "rslora backend: " + f.name()
                            + (skipped.isEmpty() ? "" : " (skipped " + String.join("; ", skipped) + ")"));
                }
                return b;
            }
            skipped.add(f.name() + ": " + a.detail());
        }
        throw new BackendUnavailableException("no backend available: " + String.join("; ", skipped));
    }

    private static BackendFactory.Availability safeProbe(BackendFactory f) {
        try {
            return f.probe();
        } catch (Throwable t) {
            return BackendFactory.Availability.no("probe failed: " + t);
        }
    }

    /** The scalar oracle: always available. */
    static final class ReferenceFactory implements BackendFactory {
        @Override
        public String name() {
            return "reference";
        }

        @Override
        public Availability probe() {
            return Availability.yes("scalar loops, double accumulation (the oracle)");
        }

        @Override
        public Backend create() {
            return new ReferenceBackend();
        }
    }

    /** The Vector API backend; needs the jdk.incubator.vector module in the boot layer. */
    static final class CpuFactory implements BackendFactory {
        private static final String CLASS = "dev.rslora.backend.cpu.CpuBackend";

        @Override
        public String name() {
            return "cpu";
        }

        @Override
        public Availability probe() {
            if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
                return Availability.no("the Vector API module is not enabled: run java with --add-modules jdk.incubator.vector");
            }
            try {
                Class.forName(CLASS, false, Backends.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                return Availability.no("class " + CLASS + " is missing from this build");
            }
            return Availability.yes("Vector API, " + Runtime.getRuntime().availableProcessors() + " threads");
        }

        @Override
        public Backend create() {
            try {
                return (Backend) Class.forName(CLASS).getConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                throw new BackendUnavailableException("cannot create the cpu backend: " + e);
            }
        }
    }

    /**
     * The CUDA slot. It reports why CUDA cannot run here: no driver library, or (until the CUDA
     * backend lands) no kernels in this build. It never loads JCuda's natives during the probe.
     */
    static final class CudaSlot implements BackendFactory {
        private static final String CLASS = "dev.rslora.backend.cuda.CudaBackendFactory";

        @Override
        public String name() {
            return "cuda";
        }

        @Override
        public Availability probe() {
            try {
                Class<?> c = Class.forName(CLASS, true, Backends.class.getClassLoader());
                BackendFactory real = (BackendFactory) c.getConstructor().newInstance();
                return real.probe();
            } catch (ClassNotFoundException e) {
                String driver = CudaDriverProbe.describe();
                return Availability.no(driver + "; the CUDA kernels are not part of this build");
            } catch (ReflectiveOperationException | LinkageError e) {
                return Availability.no("cannot load the CUDA backend: " + e);
            }
        }

        @Override
        public Backend create() {
            try {
                Class<?> c = Class.forName(CLASS);
                return ((BackendFactory) c.getConstructor().newInstance()).create();
            } catch (ReflectiveOperationException e) {
                throw new BackendUnavailableException("cannot create the cuda backend: " + e);
            }
        }
    }
}
