package dev.rslora.backend;

import org.junit.jupiter.api.Test;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * JVM flags, checked in child JVMs on the class path (as most consumers run): without
 * {@code --add-modules jdk.incubator.vector}, {@code auto} falls back to the reference with one
 * WARNING naming the flag and the measured cost; without {@code --enable-native-access} the driver
 * is not probed (no restricted-method warning), and a denied access is named, never "no NVIDIA driver".
 */
class BackendsFallbackTest {

    /** Runs AutoFallbackMain in a child JVM with {@code flags}; stdout and stderr. */
    private static String[] run(List<String> flags) throws Exception {
        List<String> cp = new ArrayList<>(List.of(Path.of("target/classes").toAbsolutePath().toString(),
                Path.of("target/test-classes").toAbsolutePath().toString()));
        for (String prop : List.of("jdk.module.path", "java.class.path")) {
            for (String e : System.getProperty(prop, "").split(File.pathSeparator)) {
                if (e.contains("jackson")) {
                    cp.add(e);
                }
            }
        }
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(flags);
        cmd.addAll(List.of("-cp", String.join(File.pathSeparator, cp), AutoFallbackMain.class.getName()));
        Process p = new ProcessBuilder(cmd).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM finished");
        assertEquals(0, p.exitValue(), "child JVM " + cmd + "\nstdout:\n" + out + "\nstderr:\n" + err);
        return new String[] {out, err};
    }

    private static int count(String text, String part) {
        int n = 0;
        for (int i = text.indexOf(part); i >= 0; i = text.indexOf(part, i + 1)) {
            n++;
        }
        return n;
    }

    @Test
    void withoutTheVectorModuleAutoWarnsOnceWithTheFlagAndTheMeasuredCost() throws Exception {
        String[] r = run(List.of());
        String out = r[0];
        String err = r[1];
        assertEquals(2, count(out, "chosen: reference"), out);
        assertEquals(1, count(err, "rslora backend:"), "one log record:\n" + err);
        assertTrue(err.contains("WARNING: rslora backend: reference, the scalar oracle"), err);
        assertTrue(err.contains("--add-modules jdk.incubator.vector"), err);
        assertTrue(err.matches("(?s).*step at N = 512, d = 1024, r = 16 took [0-9.]+ ms on the reference vs [0-9.]+ ms on cpu.*"), err);
        assertTrue(out.contains("NVIDIA driver not probed: native access is not enabled for the class path"), out);
        assertFalse(err.contains("restricted method"), "no probe of a library without native access:\n" + err);
    }

    @Test
    void withTheFlagsAutoPicksCpuAndLogsAtInfo() throws Exception {
        String[] r = run(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
        assertEquals(2, count(r[0], "chosen: cpu"), r[0]);
        assertTrue(r[1].contains("INFO: rslora backend: cpu"), r[1]);
        assertFalse(r[1].contains("WARNING: rslora"), r[1]);
        assertTrue(r[0].contains("NVIDIA driver found") || r[0].contains("no NVIDIA driver: "), r[0]);
    }

    @Test
    void aDeniedNativeAccessIsNamedNotReportedAsAMissingDriver() throws Exception {
        // granted to the class path, but a deny mode is not enough on its own: deny without the grant
        String[] r = run(List.of("--illegal-native-access=deny", "--add-modules", "jdk.incubator.vector"));
        assertTrue(r[0].contains("native access is not enabled for the class path (unnamed module) (--enable-native-access=ALL-UNNAMED)"), r[0]);
        assertFalse(r[0].contains("no NVIDIA driver"), r[0]);
    }

    @Test
    void theLogLevelIsWarningOnlyForAFallbackToTheReferencePastCpu() {
        assertEquals(System.Logger.Level.WARNING, Backends.autoLogLevel("reference", List.of("cuda: x", "cpu: y")));
        assertEquals(System.Logger.Level.INFO, Backends.autoLogLevel("reference", List.of("cuda: x")));
        assertEquals(System.Logger.Level.INFO, Backends.autoLogLevel("cpu", List.of("cuda: x")));
    }
}
