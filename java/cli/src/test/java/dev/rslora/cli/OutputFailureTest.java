package dev.rslora.cli;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * How an output that cannot be written, or a path the JVM cannot name, is reported: one line naming
 * the path and the reason in words (not a JDK class name), and nothing left behind. Found by an audit
 * of the CLI's bad inputs (2026-12-06).
 */
class OutputFailureTest {
    @TempDir
    Path dir;

    /** A layer input [n, d] with r = 2, F32; {@code nanAt} ≥ 0 puts a NaN in x there. */
    private Path input(int n, int d, int nanAt) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rng = new SplittableRandom(7);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, d);
            if (nanAt >= 0) {
                x.set(nanAt, Float.NaN);
            }
            Path p = dir.resolve("in-" + n + "-" + nanAt + ".safetensors");
            new SafetensorsWriter()
                    .add("x", x)
                    .add("weight", TestData.uniform(arena, DType.F32, rng, 1, d, d))
                    .add("lora_A", TestData.uniform(arena, DType.F32, rng, 1, 2, d))
                    .add("lora_B", TestData.uniform(arena, DType.F32, rng, 1, d, 2))
                    .add("grad_y", TestData.uniform(arena, DType.F32, rng, 1, n, d))
                    .write(p);
            return p;
        }
    }

    /**
     * A write that the file system refuses part-way (here the file-size limit, as a full disk does)
     * said only "No space left on device" (or "File too large"), naming no file: now the output's
     * path, and the temporary file is gone. The child JVM runs under `ulimit -f 8` (8 KiB).
     */
    @Test
    @EnabledOnOs(OS.LINUX)
    @Timeout(120)
    void aWriteRefusedPartWayNamesTheOutputAndLeavesNothing() throws Exception {
        Path in = input(64, 64, -1);  // y alone is 16 KiB
        Path outDir = Files.createDirectory(dir.resolve("out"));
        Path out = outDir.resolve("y.safetensors");
        List<String> child = new ArrayList<>(ChildJvm.rslora(List.of("-XX:-UsePerfData"), "layer", "--input", in.toString(),
                "--output", out.toString(), "--alpha", "4", "--backend", "reference").command());
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "ulimit -f 8 && exec \"$@\"", "bash"));
        cmd.addAll(child);
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("LC_ALL", "C");  // the C library's English text for EFBIG
        Process p = pb.start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "finished");
        assertEquals(1, p.exitValue(), text);
        assertTrue(text.contains("rslora: error: " + out + ": File too large (while writing it)"), text);
        try (Stream<Path> left = Files.list(outDir)) {
            assertEquals(List.of(), left.toList(), "no temporary file left");
        }
    }

    @Test
    void anOutputUnderAFileOrInAPseudoFileSystemIsNamedWithTheReasonInWords() throws Exception {
        Path in = input(2, 4, -1);
        CliRun r = CliRun.of("layer", "--input", in.toString(), "--output", in.resolve("x").toString(), "--alpha", "4");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("rslora: error: " + in + ": the output's parent is a file, not a folder"), r.err());
        if (Files.isDirectory(Path.of("/proc/self"))) {
            // the reason depends on the kernel (no such file here; a sandbox may deny it): words, not a JDK class name
            r = CliRun.of("layer", "--input", in.toString(), "--output", "/proc/x", "--alpha", "4");
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("rslora: error: /proc/x: cannot write in /proc: "), r.err());
            assertTrue(!r.err().contains("Exception"), r.err());
        }
    }

    /**
     * An existing output that nobody may write (chmod a-w) was replaced by the rename, silently, even
     * for another user's protected file (found by a CLI review): refused naming its mode, the file kept.
     * A writable one is still replaced.
     */
    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})
    void aReadOnlyOutputFileIsRefusedAndKept() throws Exception {
        Path in = input(2, 4, -1);
        Path out = dir.resolve("protected.safetensors");
        Files.writeString(out, "keep");
        Files.setPosixFilePermissions(out, java.nio.file.attribute.PosixFilePermissions.fromString("r--r--r--"));
        CliRun r = CliRun.of("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "4");
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("rslora: error: --output " + out + " is a read-only file (mode r--r--r--)"), r.err());
        assertEquals("keep", Files.readString(out));
        Files.setPosixFilePermissions(out, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        CliRun ok = CliRun.of("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "4");
        assertEquals(0, ok.code(), ok.err());
        assertTrue(Files.size(out) > 4, "replaced");
    }

    /**
     * The JVM decodes arguments in the locale's encoding: bytes that are not valid there become U+FFFD,
     * so a path holding them named another file, and an output was written under that other name.
     * Refused as a usage error, as is a path the JDK refuses (a NUL character), with its reason.
     */
    @Test
    void aPathTheJvmCannotNameIsAUsageError() throws Exception {
        Path in = input(2, 4, -1);
        String bad = dir + File.separator + "o\uFFFD.safetensors";  // a string: resolve() refuses U+FFFD outside UTF-8 locales
        CliRun r = CliRun.of("layer", "--input", in.toString(), "--output", bad, "--alpha", "4");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("Invalid value for option '--output': the path " + bad + " holds bytes that are not valid "),
                r.err());
        r = CliRun.of("layer", "--input", in + "\0", "--output", dir.resolve("o.safetensors").toString(), "--alpha", "4");
        assertEquals(2, r.code(), r.err());
        assertTrue(r.err().contains("Invalid value for option '--input': the path " + in + "\\0 is not valid here (Nul character"),
                r.err());
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(in), files.toList(), "nothing written");
        }
    }

    /** NaN or ±Inf in the outputs is written as computed, with one warning line per tensor that holds any. */
    @Test
    void nonFiniteOutputsAreWrittenWithAWarningLine() throws Exception {
        Path in = input(3, 4, 5);  // a NaN in row 1 of x: y's row 1, and dA and dB through D(X) and U; dX does not read X
        Path out = dir.resolve("nan.safetensors");
        CliRun r = CliRun.of("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "4", "--backend",
                "reference");
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.exists(out));
        assertTrue(r.err().contains("rslora layer: warning: y holds 4 non-finite values (the first at flat index 4, NaN):"
                + " an input holds NaN or ±Inf, or a value overflowed F32"), r.err());
        assertTrue(!r.err().contains("warning: grad_x"), "dX does not read X: " + r.err());
        r = CliRun.of("layer", "--input", input(3, 4, -1).toString(), "--output", dir.resolve("fine.safetensors").toString(),
                "--alpha", "4");
        assertEquals(0, r.code(), r.err());
        assertTrue(!r.err().contains("warning"), r.err());
    }
}
