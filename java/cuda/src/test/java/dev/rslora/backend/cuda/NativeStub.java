package dev.rslora.backend.cuda;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A stub native library built from C source with {@code cc} for the device-free binding tests
 * (cuBLASLt, libcuda): the stub appends one line per call to an in-memory log that the test reads
 * back through {@code rs_stub_log()}, and {@code rs_stub_reset(name)} clears the log and its own
 * state ({@code rs_stub_reset_extra}, which each stub defines) and makes the named call fail. Loaded in the test's own JVM by path (the bindings accept a library path), so nothing real
 * is needed and nothing real is touched.
 */
final class NativeStub implements AutoCloseable {
    /** C helpers every stub starts with: the log, the failing call, and the two exported controls. */
    static final String PRELUDE = """
            #include <stdarg.h>
            #include <stdint.h>
            #include <stdio.h>
            #include <string.h>
            static char rs_log_buf[1 << 16];
            static size_t rs_log_len;
            static char rs_fail_name[64];
            static void rs_log(const char* fmt, ...) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(rs_log_buf + rs_log_len, sizeof rs_log_buf - rs_log_len, fmt, ap);
                va_end(ap);
                if (n > 0 && rs_log_len + (size_t)n + 1 < sizeof rs_log_buf) { rs_log_len += (size_t)n; rs_log_buf[rs_log_len++] = '\\n'; }
                rs_log_buf[rs_log_len] = 0;
            }
            static int rs_fails(const char* name) { return strcmp(rs_fail_name, name) == 0; }
            void rs_stub_reset_extra(void); /* each stub defines it: resets its own state */
            const char* rs_stub_log(void) { return rs_log_buf; }
            void rs_stub_reset(const char* fail) {
                rs_log_len = 0; rs_log_buf[0] = 0;
                rs_stub_reset_extra();
                strncpy(rs_fail_name, fail ? fail : "", sizeof rs_fail_name - 1);
            }
            """;

    private final Arena arena = Arena.ofShared();
    private final Path path;
    private final MethodHandle log;
    private final MethodHandle reset;

    private NativeStub(Path path) {
        this.path = path;
        SymbolLookup lookup = SymbolLookup.libraryLookup(path, arena);
        Linker l = Linker.nativeLinker();
        this.log = l.downcallHandle(lookup.find("rs_stub_log").orElseThrow(), FunctionDescriptor.of(ValueLayout.ADDRESS));
        this.reset = l.downcallHandle(lookup.find("rs_stub_reset").orElseThrow(), FunctionDescriptor.ofVoid(ValueLayout.ADDRESS));
    }

    /**
     * Compiles {@code PRELUDE + source} into {@code dir/fileName} (a shared library whose soname is
     * fileName) and loads it; returns null with the reason in {@code why[0]} when there is no cc.
     */
    static NativeStub build(Path dir, String fileName, String source, String[] why) throws IOException, InterruptedException {
        Files.createDirectories(dir);
        Path src = dir.resolve(fileName + ".c");
        Files.writeString(src, PRELUDE + source);
        Path lib = dir.resolve(fileName);
        ProcessBuilder pb = new ProcessBuilder(List.of("cc", "-shared", "-fPIC", "-O1", "-Wall", "-Wl,-soname," + fileName, "-o",
                lib.toString(), src.toString())).redirectErrorStream(true);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            why[0] = "no C compiler (cc) to build the stub " + fileName;
            return null;
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("building the stub " + fileName + " failed:\n" + out);
        }
        return new NativeStub(lib);
    }

    Path path() {
        return path;
    }

    /** Clears the log; {@code failing} names the call that returns an error from now on ("" for none). */
    void reset(String failing) {
        try (Arena a = Arena.ofConfined()) {
            reset.invokeExact(a.allocateFrom(failing));
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** The calls logged since the last reset, one per line. */
    List<String> calls() {
        try {
            MemorySegment s = (MemorySegment) log.invokeExact();
            String text = s.reinterpret(1 << 16).getString(0);
            return text.lines().toList();
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
