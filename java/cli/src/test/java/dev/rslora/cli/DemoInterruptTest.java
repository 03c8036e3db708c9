package dev.rslora.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A SIGTERM (the JVM's shutdown hooks run, as on Ctrl-C) during {@code rslora demo} in a child JVM:
 * it left the empty --out folder the run had made, and the parents made with it.
 */
class DemoInterruptTest {
    @TempDir
    Path dir;

    /**
     * Starts a demo that runs for minutes (10^6 steps at d = 64 on the scalar reference backend), waits
     * until it has made {@code out}, calls {@code beforeSignal}, sends SIGTERM and waits for the exit.
     *
     * @return the child's exit status
     */
    private int terminateDemo(Path out, Path log, ThrowingRunnable beforeSignal) throws Exception {
        Process p = ChildJvm.rslora(List.of(), "demo", "--backend", "reference", "--dim", "64", "--batch", "64",
                "--steps", "1000000", "--ranks", "4", "--seeds", "1", "--out", out.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!Files.isDirectory(out) && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            // the hook is registered before --out is made, so from here a signal finds it
            assertTrue(Files.isDirectory(out) && p.isAlive(), "the child made --out and runs (log: " + Files.readString(log) + ")");
            beforeSignal.run();
            assertTrue(p.isAlive(), "the child still runs (log: " + Files.readString(log) + ")");
            p.destroy();                                           // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child exits");
            return p.exitValue();
        } finally {
            p.destroyForcibly();
        }
    }

    private List<String> listing(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(f -> f.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aTerminatedRunRemovesTheEmptyFoldersItMade() throws Exception {
        Path top = dir.resolve("new");
        Path out = top.resolve("sub").resolve("out");
        Path log = dir.resolve("log.txt");
        int status = terminateDemo(out, log, () -> { });
        assertNotEquals(0, status, "stopped part way (log: " + Files.readString(log) + ")");
        assertFalse(Files.exists(top), "--out and the parents the run made are removed (log: " + Files.readString(log) + ")");
        assertEquals(List.of("log.txt"), listing(dir), "the folder that existed is kept, with nothing new in it");
    }

    @Test
    void aTerminatedRunKeepsAMadeFolderThatIsNoLongerEmpty() throws Exception {
        Path top = dir.resolve("new");
        Path out = top.resolve("out");
        Path log = dir.resolve("log.txt");
        int status = terminateDemo(out, log, () -> Files.writeString(out.resolve("keep.txt"), "keep"));
        assertNotEquals(0, status, "stopped part way (log: " + Files.readString(log) + ")");
        assertEquals("keep", Files.readString(out.resolve("keep.txt")), "a file in --out is kept, and --out with it");
        assertEquals(List.of("out"), listing(top), "the parent above a kept folder is kept");
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }
}
