package dev.rslora.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A SIGTERM (the JVM's shutdown hooks run, as on Ctrl-C) during {@code rslora demo} in a child JVM:
 * it left the empty --out folder the run had made, and the parents made with it; and, while the
 * results were staged, the hidden staging folder ({@code .out.tmp-…}) with them.
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
        return terminate(List.of(), List.of("--dim", "64", "--batch", "64", "--steps", "1000000", "--ranks", "4", "--seeds", "1"),
                out, log, () -> Files.isDirectory(out), beforeSignal);
    }

    /**
     * Starts {@code rslora demo --backend reference ARGS --out OUT} with the JVM options, waits until
     * {@code ready} holds (60 s at most), calls {@code beforeSignal}, sends SIGTERM and waits for the exit.
     *
     * @return the child's exit status
     */
    private int terminate(List<String> jvmOptions, List<String> args, Path out, Path log, ThrowingCheck ready,
            ThrowingRunnable beforeSignal) throws Exception {
        List<String> all = new ArrayList<>(List.of("demo", "--backend", "reference"));
        all.addAll(args);
        all.addAll(List.of("--out", out.toString()));
        Process p = ChildJvm.rslora(jvmOptions, all.toArray(String[]::new))
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (!ready.holds() && p.isAlive() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(ready.holds() && p.isAlive(), "the child got there and runs (log: " + Files.readString(log) + ")");
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

    /** StagedOutput's test-only property: commit waits this long with every result file staged, before moving any. */
    private static final String STAGED_PAUSE_PROPERTY = "rslora.test.stagedPauseMillis";

    /** StagedOutput's test-only property: commit waits this long (or until the signal cleanup waits for it) after moving one file. */
    private static final String COMMIT_PAUSE_PROPERTY = "rslora.test.commitPauseMillis";

    /** A rank sweep of a few seconds: 10 steps at d = 16, one rank, one seed. */
    private static final List<String> TINY = List.of("--quick", "--dim", "16", "--batch", "16", "--steps", "10", "--ranks", "4",
            "--seeds", "1");

    private static final List<String> RESULTS = List.of("grad_norm_vs_rank.png", "loss_curves.png", "rank_sweep.csv",
            "rank_sweep.json");

    /** The staging folders ({@code .NAME.tmp-<random>}) in {@code folder}. */
    private List<Path> stagingFolders(Path folder) throws Exception {
        try (Stream<Path> s = Files.list(folder)) {
            return s.filter(f -> f.getFileName().toString().matches("\\..*\\.tmp-.*")).toList();
        }
    }

    /** Whether {@code folder} holds a staging folder with every result file written (the commit waits). */
    private boolean staged(Path folder) throws Exception {
        for (Path f : stagingFolders(folder)) {
            if (listing(f).equals(RESULTS)) {
                return true;
            }
        }
        return false;
    }

    @Test
    void aRunTerminatedWhileItsResultsAreStagedLeavesNoStagingFolderAndRemovesTheFoldersItMade() throws Exception {
        Path top = dir.resolve("new");
        Path out = top.resolve("out");
        Path log = dir.resolve("log.txt");
        // the child's commit waits 10 minutes with the results staged in new/.out.tmp-…: the signal always lands then
        int status = terminate(List.of("-D" + STAGED_PAUSE_PROPERTY + "=600000"), TINY, out, log, () -> Files.isDirectory(top)
                && staged(top), () -> { });
        assertNotEquals(0, status, "stopped part way (log: " + Files.readString(log) + ")");
        // the staging folder's cleanup ran first, so the demo's then found new/ empty too
        assertFalse(Files.exists(top), "no staging folder, and --out and the parent the run made are removed (log: "
                + Files.readString(log) + ")");
        assertEquals(List.of("log.txt"), listing(dir), "the folder that existed is kept, with nothing new in it");
    }

    @Test
    void aRunTerminatedWhileItsResultsAreStagedKeepsTheFilesAlreadyInOut() throws Exception {
        Path out = Files.createDirectory(dir.resolve("out"));
        Files.writeString(out.resolve("rank_sweep.csv"), "an earlier run");
        Files.writeString(out.resolve("notes.txt"), "mine");
        Path log = dir.resolve("log.txt");
        int status = terminate(List.of("-D" + STAGED_PAUSE_PROPERTY + "=600000"), TINY, out, log, () -> staged(dir), () -> { });
        assertNotEquals(0, status, "stopped part way (log: " + Files.readString(log) + ")");
        assertEquals(List.of(), stagingFolders(dir), "no staging folder (log: " + Files.readString(log) + ")");
        assertEquals(List.of("notes.txt", "rank_sweep.csv"), listing(out), "--out as it was");
        assertEquals("an earlier run", Files.readString(out.resolve("rank_sweep.csv")), "the earlier result is not replaced");
        assertEquals("mine", Files.readString(out.resolve("notes.txt")));
    }

    @Test
    void aRunTerminatedWhileItsResultsAreMovedIntoOutKeepsThemAll() throws Exception {
        Path top = dir.resolve("new");
        Path out = top.resolve("out");
        Path log = dir.resolve("log.txt");
        // the child's commit moves one result into --out and waits (10 minutes at most) until the signal cleanup waits
        // for the commit to end (or has returned, having deleted the results not yet moved: then the assertions fail)
        int status = terminate(List.of("-D" + COMMIT_PAUSE_PROPERTY + "=600000"), TINY, out, log, () -> Files.isDirectory(out)
                && !listing(out).isEmpty(), () -> { });
        assertNotEquals(0, status, "the signal ended the process (log: " + Files.readString(log) + ")");
        assertEquals(List.of(), stagingFolders(top), "no staging folder (log: " + Files.readString(log) + ")");
        assertEquals(RESULTS, listing(out), "every result is in --out, none lost to the cleanup (log: " + Files.readString(log) + ")");
        assertEquals(List.of("out"), listing(top));
    }

    @FunctionalInterface
    private interface ThrowingRunnable {
        void run() throws Exception;
    }

    @FunctionalInterface
    private interface ThrowingCheck {
        boolean holds() throws Exception;
    }
}
