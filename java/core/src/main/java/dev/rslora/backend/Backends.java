package dev.rslora.backend;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The backend provider. Backends are found with {@link ServiceLoader} ({@link BackendFactory}
 * providers: rslora-core registers {@code reference} and {@code cpu}, rslora-cuda registers
 * {@code cuda}), so this class names no implementation. {@code auto} picks the first available of
 * cuda → cpu → reference (then any other provider, by name) and logs the choice (with the reasons
 * the faster ones were skipped) once. The system property
 * {@code -Drslora.backend=reference|cpu|cuda|auto} overrides the default; asking for an
 * unavailable backend fails with the reason. Without rslora-cuda on the class path, {@code cuda}
 * is listed as unavailable and says so.
 */
public final class Backends {
    /** The system property that chooses the default backend. */
    public static final String PROPERTY = "rslora.backend";

    /** The preference order of the known backends; other providers follow, by name. */
    private static final List<String> PREFERENCE = List.of("cuda", "cpu", "reference");

    private static final System.Logger LOG = System.getLogger("dev.rslora.backend");
    private static final Map<String, Backend> CREATED = new ConcurrentHashMap<>();
    private static final java.util.concurrent.atomic.AtomicBoolean AUTO_LOGGED = new java.util.concurrent.atomic.AtomicBoolean();

    private Backends() {
    }

    /**
     * All factories in preference order (fastest first); a missing {@code cuda} is a placeholder that says why.
     *
     * @return the factories found through {@link java.util.ServiceLoader} (unmodifiable)
     */
    public static List<BackendFactory> factories() {
        return Discovered.FACTORIES;
    }

    /**
     * Probes every backend: name → availability, in preference order.
     *
     * @return each backend's name and availability (a probe that throws counts as unavailable)
     */
    public static Map<String, BackendFactory.Availability> probeAll() {
        Map<String, BackendFactory.Availability> out = new LinkedHashMap<>();
        for (BackendFactory f : factories()) {
            out.put(f.name(), safeProbe(f));
        }
        return out;
    }

    /**
     * The backend named by {@code -Drslora.backend}, or {@code auto}.
     *
     * @return that backend
     * @throws BackendUnavailableException if the named backend cannot run here
     * @throws IllegalArgumentException if the property names no known backend (the message starts with
     *                                  {@code -Drslora.backend=<value>})

     */
    public static Backend fromSystemProperty() {
        String value = System.getProperty(PROPERTY, "auto");
        try {
            return get(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + value + ": " + e.getMessage(), e);
        }
    }

    /**
     * The backend called {@code name} ("reference", "cpu", "cuda" or "auto"); one instance per
     * name per JVM, shared by every caller. Closing it (the cpu and cuda backends are
     * {@link AutoCloseable}) stops it for every layer built on it, in the whole JVM; the next call
     * then creates a new instance. Throws {@link BackendUnavailableException} with the reason when
     * it cannot run.
     *
     * @param name "reference", "cpu", "cuda" or "auto" (any case; null means auto)
     * @return the shared instance of that backend; auto gives the fastest available one
     * @throws BackendUnavailableException if the backend cannot run here (auto: if none can)
     * @throws IllegalArgumentException if the name is none of these

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
                return shared(f);
            }
        }
        throw new IllegalArgumentException("unknown backend '" + name + "': expected "
                + String.join(", ", factories().stream().map(BackendFactory::name).toList().reversed()) + " or auto");
    }

    /** The shared instance of {@code f}'s backend: created on first use, and again when the last one was closed. */
    private static Backend shared(BackendFactory f) {
        return CREATED.compute(f.name(), (k, old) -> old == null || old.isClosed() ? f.create() : old);
    }

    private static Backend auto() {
        List<String> skipped = new ArrayList<>();
        for (BackendFactory f : factories()) {
            BackendFactory.Availability a = safeProbe(f);
            if (a.available()) {
                Backend b = shared(f);
                if (AUTO_LOGGED.compareAndSet(false, true)) {
                    LOG.log(autoLogLevel(f.name(), skipped), autoLogMessage(f.name(), skipped));
                }
                return b;
            }
            skipped.add(f.name() + ": " + a.detail());
        }
        throw new BackendUnavailableException("no backend available: " + String.join("; ", skipped));
    }

    /**
     * The level of {@code auto}'s one log record: WARNING when it fell back to the scalar
     * {@code reference} although the {@code cpu} backend exists (usually a missing
     * {@code --add-modules jdk.incubator.vector}, which costs two orders of magnitude; the cpu
     * probe's reason gives the flag and the measured cost), INFO otherwise.
     */
    static System.Logger.Level autoLogLevel(String chosen, List<String> skipped) {
        boolean cpuSkipped = skipped.stream().anyMatch(s -> s.startsWith("cpu: "));
        return chosen.equals("reference") && cpuSkipped ? System.Logger.Level.WARNING : System.Logger.Level.INFO;
    }

    static String autoLogMessage(String chosen, List<String> skipped) {
        String why = skipped.isEmpty() ? "" : " (skipped " + String.join("; ", skipped) + ")";
        if (autoLogLevel(chosen, skipped) == System.Logger.Level.WARNING) {
            return "rslora backend: reference, the scalar oracle, because the Vector API backend is unavailable" + why;
        }
        return "rslora backend: " + chosen + why;
    }

    private static BackendFactory.Availability safeProbe(BackendFactory f) {
        try {
            return f.probe();
        } catch (Throwable t) {
            return BackendFactory.Availability.no("probe failed: " + t);
        }
    }

    /**
     * The providers found on the class path (or module path) of this class's loader, sorted by
     * preference; the first provider of a name wins. Found once per JVM.
     */
    private static final class Discovered {
        static final List<BackendFactory> FACTORIES = discover();

        private static List<BackendFactory> discover() {
            Map<String, BackendFactory> byName = new LinkedHashMap<>();
            List<String> broken = new ArrayList<>();
            for (ServiceLoader.Provider<BackendFactory> p
                    : ServiceLoader.load(BackendFactory.class, Backends.class.getClassLoader()).stream().toList()) {
                try {
                    BackendFactory f = p.get();
                    byName.putIfAbsent(f.name(), f);
                } catch (ServiceConfigurationError | LinkageError e) {
                    broken.add(p.type().getName() + ": " + e);
                }
            }
            if (!byName.containsKey("cuda")) {
                byName.put("cuda", new MissingCuda(broken));
            }
            List<BackendFactory> sorted = new ArrayList<>(byName.values());
            sorted.sort(Comparator.comparingInt((BackendFactory f) -> rank(f.name())).thenComparing(BackendFactory::name));
            return List.copyOf(sorted);
        }

        private static int rank(String name) {
            int i = PREFERENCE.indexOf(name);
            return i < 0 ? PREFERENCE.size() : i;
        }
    }

    /** Stands in for {@code cuda} when no provider of it loaded: says why, with the driver's state. */
    private record MissingCuda(List<String> broken) implements BackendFactory {
        @Override
        public String name() {
            return "cuda";
        }

        @Override
        public Availability probe() {
            String why = broken.isEmpty()
                    ? "the CUDA backend (dev.rslora:rslora-cuda) is not on the class path"
                    : "cannot load a backend provider (" + String.join("; ", broken) + ")";
            return Availability.no(why + "; " + CudaDriverProbe.describe());
        }

        @Override
        public Backend create() {
            throw new BackendUnavailableException("cuda backend is unavailable: " + probe().detail());
        }
    }
}
