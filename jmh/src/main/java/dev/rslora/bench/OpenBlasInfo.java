package dev.rslora.bench;

import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas_nolapack;

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

    /** Prints the three facts; run with java -cp benchmarks.jar dev.rslora.bench.OpenBlasInfo. */
    public static void main(String[] args) {
        setThreads(Runtime.getRuntime().availableProcessors());
        System.out.println("openblas.core=" + coreName());
        System.out.println("openblas.config=" + config());
        System.out.println("openblas.threads=" + threads());
    }
}
