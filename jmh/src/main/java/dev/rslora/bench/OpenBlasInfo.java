package dev.rslora.bench;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas_nolapack;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * OpenBLAS's own introspection functions (which kernel set it picked, its build config, the
 * thread count), called through {@code java.lang.foreign} because bytedeco's presets expose
 * only the cblas API. The library is the one bytedeco loaded into this process.
 */
public final class OpenBlasInfo {
    private OpenBlasInfo() {
    }

    private static Optional<MethodHandle> fn(String name, FunctionDescriptor fd) {
        Loader.load(openblas_nolapack.class);
        Linker linker = Linker.nativeLinker();
        return SymbolLookup.loaderLookup().find(name).or(() -> linker.defaultLookup().find(name))
                .map(addr -> linker.downcallHandle(addr, fd));
    }

    private static String string(String name) {
        try {
            Optional<MethodHandle> h = fn(name, FunctionDescriptor.of(ValueLayout.ADDRESS));
            if (h.isEmpty()) {
                return "unknown (" + name + " not found)";
            }
            MemorySegment p = (MemorySegment) h.get().invokeExact();
            return p.reinterpret(256).getString(0).strip();
        } catch (Throwable t) {
            return "unknown (" + t + ")";
        }
    }

    /**
     * Asks OpenBLAS for a kernel set by setting (or, for "auto", removing) the process environment
     * variable {@code OPENBLAS_CORETYPE} through libc. OpenBLAS reads it once, when its library is
     * loaded, so this must run before anything touches OpenBLAS in this JVM; {@link #coreName()}
     * afterwards says whether the request took. Returns false when libc's setenv/unsetenv are not found.
     */
    public static boolean requestCore(String core) {
        Linker linker = Linker.nativeLinker();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocateFrom("OPENBLAS_CORETYPE");
            if (core == null || core.isBlank() || core.equalsIgnoreCase("auto")) {
                Optional<MemorySegment> unset = linker.defaultLookup().find("unsetenv");
                if (unset.isEmpty()) {
                    return false;
                }
                int rc = (int) linker.downcallHandle(unset.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS))
                        .invokeExact(name);
                return rc == 0;
            }
            Optional<MemorySegment> set = linker.defaultLookup().find("setenv");
            if (set.isEmpty()) {
                return false;
            }
            int rc = (int) linker.downcallHandle(set.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT)).invokeExact(name, arena.allocateFrom(core), 1);
            return rc == 0;
        } catch (Throwable t) {
            return false;
        }
    }

    /** The kernel set OpenBLAS uses on this CPU (e.g. "Cooperlake", "SkylakeX", "Prescott"). */
    public static String coreName() {
        return string("openblas_get_corename");
    }

    /** OpenBLAS's build configuration string (version, DYNAMIC_ARCH, threading). */
    public static String config() {
        return string("openblas_get_config");
    }

    /** Sets OpenBLAS's thread count; returns false when the function is not exported. */
    public static boolean setThreads(int threads) {
        try {
            Optional<MethodHandle> h = fn("openblas_set_num_threads", FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT));
            if (h.isEmpty()) {
                return false;
            }
            h.get().invokeExact(threads);
            return true;
        } catch (Throwable t) {
            return false;
        }
    }

    /** OpenBLAS's thread count, or -1 when unknown. */
    public static int threads() {
        try {
            Optional<MethodHandle> h = fn("openblas_get_num_threads", FunctionDescriptor.of(ValueLayout.JAVA_INT));
            return h.isEmpty() ? -1 : (int) h.get().invokeExact();
        } catch (Throwable t) {
            return -1;
        }
    }

    /**
     * Prints the three facts as key=value lines; run with
     * {@code java -cp benchmarks.jar dev.rslora.bench.OpenBlasInfo [CORETYPE]} (a core type, e.g.
     * Cooperlake, is requested first with {@link #requestCore}; default: what OPENBLAS_CORETYPE says).
     */
    public static void main(String[] args) {
        if (args.length > 0) {
            requestCore(args[0]);
        }
        setThreads(Runtime.getRuntime().availableProcessors());
        System.out.println("openblas.core=" + coreName());
        System.out.println("openblas.config=" + config());
        System.out.println("openblas.threads=" + threads());
    }
}
