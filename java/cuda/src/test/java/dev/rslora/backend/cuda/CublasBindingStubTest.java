package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Both cuBLAS bindings and the run-time choice, end to end but without CUDA: a stub libcublas
 * (C, built here with cc, versioned like the real one so that JCublas 12.6.0's natives link against
 * it) logs every call. Child JVMs with LD_LIBRARY_PATH at a stub libcublas.so.12 or .so.13 check
 * that the probe picks JCublas where .so.12 loads and java.lang.foreign where only .so.13 does, and
 * that both bindings hand cuBLAS the same handle, stream, operations, shapes, leading dimensions,
 * data types, scalars, device addresses and compute type, and report a failing status. Runs only on
 * hosts without a real libcublas (a real one would be found instead of the stub) and with cc.
 */
class CublasBindingStubTest {
    private static final String STUB = """
            #include <stdio.h>
            #include <stdlib.h>
            #include <string.h>
            static FILE* out(void) {
                static FILE* f;
                if (!f) { const char* p = getenv("RS_CUBLAS_STUB_LOG"); f = p ? fopen(p, "a") : stderr; }
                return f;
            }
            static int status(const char* call) {
                const char* fail = getenv("RS_CUBLAS_STUB_FAIL");
                return fail && strcmp(fail, call) == 0 ? 13 : 0; /* CUBLAS_STATUS_EXECUTION_FAILED */
            }
            int cublasCreate_v2(void** h) { *h = (void*)0x5eed; fprintf(out(), "create\\n"); fflush(out()); return status("create"); }
            int cublasSetStream_v2(void* h, void* s) { fprintf(out(), "setStream %p %p\\n", h, s); fflush(out()); return status("setStream"); }
            /* JCublas2's cublasGemmEx asks for these to decide how to read alpha and beta */
            int cublasGetPointerMode_v2(void* h, int* mode) { (void)h; *mode = 0; return 0; } /* CUBLAS_POINTER_MODE_HOST */
            int cublasGetMathMode(void* h, int* mode) { (void)h; *mode = 0; return 0; }
            int cublasDestroy_v2(void* h) { fprintf(out(), "destroy %p\\n", h); fflush(out()); return 0; }
            int cublasGemmEx(void* h, int ta, int tb, int m, int n, int k, const void* alpha, const void* A, int at, int lda,
                             const void* B, int bt, int ldb, const void* beta, void* C, int ct, int ldc, int compute, int algo) {
                fprintf(out(), "gemmEx %p ta=%d tb=%d m=%d n=%d k=%d alpha=%g A=%p %d lda=%d B=%p %d ldb=%d beta=%g C=%p %d ldc=%d %d %d\\n",
                        h, ta, tb, m, n, k, *(const float*)alpha, A, at, lda, B, bt, ldb, *(const float*)beta, C, ct, ldc, compute, algo);
                fflush(out());
                return status("gemmEx");
            }
            """;

    private static Path dir;
    private static String skipped;

    @BeforeAll
    static void buildStubs() throws Exception {
        if (loads("libcublas.so.12") || loads("libcublas.so.13") || Files.exists(Path.of("/usr/local/cuda/lib64/libcublas.so.13"))
                || Files.exists(Path.of("/usr/local/cuda/lib64/libcublas.so.12"))) {
            skipped = "a real libcublas is installed here (the GPU tests exercise the bindings on it)";
            return;
        }
        dir = Path.of("target", "cublas-stub").toAbsolutePath();
        Files.createDirectories(dir);
        Path src = dir.resolve("cublas_stub.c");
        Files.writeString(src, STUB);
        for (String v : new String[] {"12", "13"}) {
            Path d = Files.createDirectories(dir.resolve("so" + v));
            Path map = dir.resolve("v" + v + ".map");
            Files.writeString(map, "libcublas.so." + v + " { global: cublas*; local: *; };\n");
            Run r = run(Map.of(), "cc", "-shared", "-fPIC", "-O1", "-Wl,-soname,libcublas.so." + v, "-Wl,--version-script=" + map,
                    "-o", d.resolve("libcublas.so." + v).toString(), src.toString());
            if (r.rc == -1) {
                skipped = "no C compiler (cc) to build the stub libcublas";
                return;
            }
            assertEquals(0, r.rc, "building the stub: " + r.out);
        }
    }

    record Run(int rc, String out) {
    }

    static Run run(Map<String, String> env, String... command) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().putAll(env);
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return new Run(-1, e.toString());
        }
        String out = new String(p.getInputStream().readAllBytes());
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail(String.join(" ", command) + " did not finish:\n" + out);
        }
        return new Run(p.exitValue(), out);
    }

    /** Runs CublasStubMain in a child JVM whose loader sees only {@code libDir} (plus the system's). */
    static Run child(String libDir, Path log, List<String> jvmFlags, String... args) throws Exception {
        Files.deleteIfExists(log);
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path")));
        cmd.addAll(jvmFlags);
        cmd.add(CublasStubMain.class.getName());
        cmd.addAll(List.of(args));
        Run r = run(Map.of("LD_LIBRARY_PATH", libDir, "RS_CUBLAS_STUB_LOG", log.toString(), "RS_CUBLAS_STUB_FAIL",
                args.length > 2 ? args[2] : ""), cmd.toArray(String[]::new));
        assertEquals(0, r.rc, String.join(" ", cmd) + "\n" + r.out);
        return r;
    }

    private static String line(Run r, String prefix) {
        return r.out.lines().filter(l -> l.startsWith(prefix)).findFirst().orElseGet(() -> fail("no '" + prefix + "' in:\n" + r.out));
    }

    @Test
    void jcublasIsChosenWhereLibcublas12LoadsAndTheForeignBindingWhereOnly13Does() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        Path log = dir.resolve("probe.log");
        Run with12 = child(dir.resolve("so12").toString(), log, List.of(), "probe");
        assertEquals("choice JCUBLAS libcublas.so.12", line(with12, "choice"), with12.out);
        Run with13 = child(dir.resolve("so13").toString(), log, List.of(), "probe");
        assertEquals("choice FFM libcublas.so.13", line(with13, "choice"), with13.out);
        assertTrue(line(with13, "detail").contains("libcublas.so.12: cannot open shared object file"), with13.out);
        Run none = child(dir.toString(), log, List.of(), "probe");
        assertEquals("choice none", line(none, "choice"), none.out);
        Run forced = child(dir.resolve("so12").toString(), log, List.of("-Drslora.cublas.binding=ffm"), "probe");
        assertEquals("choice FFM libcublas.so.12", line(forced, "choice"), "forced java.lang.foreign over .so.12: " + forced.out);
    }

    @Test
    void bothBindingsMakeTheSameCublasCalls() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        Path jLog = dir.resolve("jcublas.log");
        Path fLog = dir.resolve("ffm.log");
        Run j = child(dir.resolve("so12").toString(), jLog, List.of(), "gemm", "jcublas");
        Run f = child(dir.resolve("so13").toString(), fLog, List.of(), "gemm", "ffm");
        assertEquals("binding JCublas 12.6.0 (libcublas.so.12)", line(j, "binding"));
        assertEquals("binding java.lang.foreign (libcublas.so.13)", line(f, "binding"));
        assertEquals("ok", line(j, "ok"));
        assertEquals("ok", line(f, "ok"));
        List<String> calls = Files.readAllLines(jLog);
        assertEquals(calls, Files.readAllLines(fLog), "the two bindings' calls differ");
        CublasGemm g = CublasStubMain.GEMM;
        String expected = "gemmEx 0x5eed ta=" + g.transa() + " tb=" + g.transb() + " m=" + g.m() + " n=" + g.n() + " k=" + g.k()
                + " alpha=0.5 A=0x" + Long.toHexString(CublasStubMain.A) + " 14 lda=" + g.lda()
                + " B=0x" + Long.toHexString(CublasStubMain.B) + " 14 ldb=" + g.ldb()
                + " beta=1 C=0x" + Long.toHexString(CublasStubMain.C) + " 0 ldc=" + g.ldc() + " 68 -1";
        assertEquals(List.of("create", "setStream 0x5eed 0x" + Long.toHexString(CublasStubMain.STREAM), expected, "destroy 0x5eed"),
                calls);
    }

    @Test
    void aFailingStatusIsReportedByBothBindings() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        Path log = dir.resolve("fail.log");
        Run j = child(dir.resolve("so12").toString(), log, List.of(), "gemm", "jcublas", "gemmEx");
        assertTrue(line(j, "error").contains("CUBLAS_STATUS_EXECUTION_FAILED"), j.out);
        Run f = child(dir.resolve("so13").toString(), log, List.of(), "gemm", "ffm", "gemmEx");
        assertTrue(line(f, "error").contains("cublasGemmEx") && line(f, "error").contains("13"), f.out);
    }

    private static boolean loads(String lib) {
        try (Arena a = Arena.ofConfined()) {
            SymbolLookup.libraryLookup(lib, a);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }
}
