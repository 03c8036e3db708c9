package dev.rslora.backend.cuda;

import java.util.Locale;
import java.util.function.Supplier;

/**
 * Which {@link CublasApi} binding the cuBLAS baseline uses, chosen at run time:
 * <ol>
 *   <li>JCublas 12.6.0 ({@link CublasJcublas}) when its native library loads, i.e. where
 *       libcublas.so.12 is on the loader's path;</li>
 *   <li>else the {@code java.lang.foreign} binding ({@link CublasFfm}) when libcublas.so.13 (or .12)
 *       loads, e.g. on a CUDA-13-only host;</li>
 *   <li>else none, with both reasons (probing never throws and never crashes the JVM).</li>
 * </ol>
 * {@code -Drslora.cublas.binding=jcublas|ffm} forces one (default {@code auto}). Each probe runs at
 * most once per JVM (a failed JCublas2 class initialisation cannot be retried anyway). The choice
 * is logged once when a handle is opened and is part of the {@code cuda} backend's availability
 * detail ({@code rslora info}).
 */
final class CublasBinding {
    /** System property: {@code auto} (default), {@code jcublas} or {@code ffm}. */
    static final String PROPERTY = "rslora.cublas.binding";

    private static final System.Logger LOG = System.getLogger("dev.rslora.backend.cuda");

    private CublasBinding() {
    }

    enum Kind { JCUBLAS, FFM }

    /** One probe's outcome: whether the binding loads here, with the library or the reason it does not. */
    record Probe(boolean loads, String library, String failure) {
        static Probe ok(String library) {
            return new Probe(true, library, "");
        }

        static Probe no(String failure) {
            return new Probe(false, "", failure);
        }
    }

    /** The selection: {@code kind} null when no binding is usable, {@code detail} says which and why. */
    record Choice(Kind kind, String library, String detail) {
        boolean available() {
            return kind != null;
        }
    }

    /**
     * The pure selection rule. {@code requested} is auto, jcublas or ffm (case-insensitive); a probe
     * is only run when its binding can be chosen (so a forced FFM never loads JCublas).
     */
    static Choice choose(String requested, Supplier<Probe> jcublas, Supplier<Probe> ffm) {
        String r = requested == null ? "auto" : requested.trim().toLowerCase(Locale.ROOT);
        switch (r) {
            case "auto" -> {
                Probe j = jcublas.get();
                if (j.loads()) {
                    return new Choice(Kind.JCUBLAS, j.library(), "cuBLAS via JCublas 12.6.0 (" + j.library() + ")");
                }
                Probe f = ffm.get();
                if (f.loads()) {
                    return new Choice(Kind.FFM, f.library(), "cuBLAS via java.lang.foreign (" + f.library()
                            + "; JCublas 12.6.0 not usable: " + j.failure() + ")");
                }
                return new Choice(null, "", "no cuBLAS: JCublas 12.6.0: " + j.failure() + "; java.lang.foreign: " + f.failure());
            }
            case "jcublas" -> {
                Probe j = jcublas.get();
                return j.loads()
                        ? new Choice(Kind.JCUBLAS, j.library(), "cuBLAS via JCublas 12.6.0 (" + j.library() + ", -D" + PROPERTY + "=jcublas)")
                        : new Choice(null, "", "no cuBLAS: -D" + PROPERTY + "=jcublas but JCublas 12.6.0: " + j.failure());
            }
            case "ffm" -> {
                Probe f = ffm.get();
                return f.loads()
                        ? new Choice(Kind.FFM, f.library(), "cuBLAS via java.lang.foreign (" + f.library() + ", -D" + PROPERTY + "=ffm)")
                        : new Choice(null, "", "no cuBLAS: -D" + PROPERTY + "=ffm but java.lang.foreign: " + f.failure());
            }
            default -> throw new IllegalArgumentException("-D" + PROPERTY + "=" + requested + ": expected auto, jcublas or ffm");
        }
    }

    private static Probe jcublasProbe;
    private static Probe ffmProbe;

    /** Loads JCublas2 (its static initialiser loads the native library, which needs libcublas.so.12). */
    static synchronized Probe probeJcublas() {
        if (jcublasProbe == null) {
            try {
                Class.forName("jcuda.jcublas.JCublas2", true, CublasBinding.class.getClassLoader());
                jcublasProbe = Probe.ok(CublasJcublas.LIBRARY);
            } catch (Throwable t) {  // UnsatisfiedLinkError, NoClassDefFoundError, ...: report, never propagate
                jcublasProbe = Probe.no(loaderReason(t));
            }
        }
        return jcublasProbe;
    }

    /** Looks for libcublas.so.13/.12 through java.lang.foreign (dlopen only, no cuBLAS call). */
    static synchronized Probe probeFfm() {
        if (ffmProbe == null) {
            try {
                String lib = CublasFfm.findLibrary();
                ffmProbe = lib != null ? Probe.ok(lib)
                        : Probe.no("none of " + String.join(", ", CublasFfm.LIBRARIES) + " loads");
            } catch (Throwable t) {
                ffmProbe = Probe.no(firstLine(t));
            }
        }
        return ffmProbe;
    }

    /** The binding selected on this host by {@code -Drslora.cublas.binding} (default auto). */
    static Choice current() {
        return choose(System.getProperty(PROPERTY, "auto"), CublasBinding::probeJcublas, CublasBinding::probeFfm);
    }

    /** Opens the selected binding on {@code ctx}'s stream; throws with both probe reasons when there is none. */
    static CublasApi open(CudaContext ctx) {
        return open(ctx, current());
    }

    /** Opens binding {@code c} (from {@link #choose}) on {@code ctx}'s stream; throws with its reason when unavailable. */
    static CublasApi open(CudaContext ctx, Choice c) {
        if (!c.available()) {
            throw new IllegalStateException(c.detail());
        }
        ctx.makeCurrent();
        CublasApi api = c.kind() == Kind.JCUBLAS ? new CublasJcublas(ctx.stream()) : new CublasFfm(ctx.streamAddress());
        logOnce(c);
        return api;
    }

    /** Every binding that loads on this host (both on a host with libcublas.so.12), for tests that cover each. */
    static java.util.List<Choice> loadable() {
        java.util.List<Choice> out = new java.util.ArrayList<>();
        for (String k : new String[] {"jcublas", "ffm"}) {
            Choice c = choose(k, CublasBinding::probeJcublas, CublasBinding::probeFfm);
            if (c.available()) {
                out.add(c);
            }
        }
        return out;
    }

    private static boolean logged;

    private static synchronized void logOnce(Choice c) {
        if (!logged) {
            logged = true;
            LOG.log(System.Logger.Level.INFO, "rslora cuBLAS baseline: " + c.detail());
        }
    }

    /**
     * JCuda's load failure is a long multi-line message whose useful part is the loader's line about
     * libcublas (e.g. "libcublas.so.12: cannot open shared object file"); that line, else the first.
     */
    static String loaderReason(Throwable t) {
        String m = t.getMessage() == null ? "" : t.getMessage();
        return m.lines().filter(l -> l.contains("libcublas")).findFirst()
                .map(l -> shorten(t.getClass().getSimpleName() + ": " + l.substring(l.indexOf("libcublas")).strip()))
                .orElseGet(() -> firstLine(t));
    }

    private static String shorten(String s) {
        return s.length() > 240 ? s.substring(0, 237) + "..." : s;
    }

    /** The throwable's class and the first line of its message, at most 240 characters. */
    static String firstLine(Throwable t) {
        String m = t.getMessage() == null ? "" : t.getMessage().strip().lines().findFirst().orElse("");
        return shorten(t.getClass().getSimpleName() + (m.isEmpty() ? "" : ": " + m));
    }
}
