package dev.rslora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link OnSignal} in a child JVM that exits with cleanups open: the open ones run newest first (a
 * staged output's before the cleanup registered around it), a closed one does not, a failing one
 * does not stop the rest, and none is taken once shutdown has begun.
 */
class OnSignalTest {
    @TempDir
    Path dir;

    @Test
    void openCleanupsRunNewestFirstWhenTheJvmShutsDown() throws Exception {
        String cp = Path.of("target/classes").toAbsolutePath() + File.pathSeparator + Path.of("target/test-classes").toAbsolutePath();
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx64m", "-cp", cp,
                OnSignalChild.class.getName(), dir.toString()).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child exits");
        assertEquals(3, p.exitValue(), "stdout:\n" + out + "\nstderr:\n" + err);
        // inner, then the staged output's (silent), then outer: the staging folder is gone when outer runs
        assertEquals(List.of("exiting", "inner", "outer sees the staging folder: false", "late refused"), out.lines().toList(),
                "stderr:\n" + err);
        assertTrue(err.contains("rslora: cleanup inner on shutdown failed: java.lang.IllegalStateException: boom"), err);
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(), s.toList(), "no staging folder, no output");
        }
    }
}
