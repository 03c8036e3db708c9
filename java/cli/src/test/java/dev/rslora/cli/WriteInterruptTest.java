package dev.rslora.cli;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A SIGTERM (the JVM's shutdown hooks run, as on Ctrl-C) while {@code rslora optimizer-step} writes
 * its output leaves nothing: it left the partial hidden temporary file (".out.safetensors.tmp-…").
 * layer and dpo-loss write through the same {@link OutputPaths#write}.
 */
class WriteInterruptTest {
    /** SafetensorsWriter's test-only property: the writer waits this long once the temporary file holds its header. */
    private static final String PAUSE_PROPERTY = "rslora.test.writePauseMillis";

    @TempDir
    Path dir;

    @Test
    void aTerminatedWriteLeavesNoTemporaryFile() throws Exception {
        Path in = dir.resolve("in.safetensors");
        try (Arena arena = Arena.ofShared()) {
            SafetensorsWriter w = new SafetensorsWriter().add("param", Tensor.allocate(arena, DType.F32, 64, 32));
            for (int t = 0; t < 4; t++) {
                w.add("grad." + t, Tensor.allocate(arena, DType.F32, 64, 32));
            }
            w.write(in);
        }
        Path work = Files.createDirectory(dir.resolve("work"));
        Path log = dir.resolve("log.txt");
        // the child's writer waits 10 minutes with its temporary file partly written: the signal always lands mid-write,
        // and only the shutdown hook's interrupt ends the wait early (were it not to, the JVM would halt with the file there)
        Process p = ChildJvm.rslora(List.of("-D" + PAUSE_PROPERTY + "=600000"), "optimizer-step", "--input", in.toString(),
                        "--output", work.resolve("out.safetensors").toString(), "--optimizer", "adamw", "--lr", "0.01")
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            boolean staged = false;
            while (!staged && p.isAlive() && System.nanoTime() < deadline) {
                try (Stream<Path> s = Files.list(work)) {
                    staged = s.anyMatch(f -> f.getFileName().toString().startsWith(".out.safetensors.tmp-"));
                }
                Thread.sleep(10);
            }
            assertTrue(staged && p.isAlive(), "the child was seen writing (log: " + Files.readString(log) + ")");
            p.destroy();                                           // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child exits");
        } finally {
            p.destroyForcibly();
        }
        assertNotEquals(0, p.exitValue(), "stopped part way (log: " + Files.readString(log) + ")");
        try (Stream<Path> s = Files.list(work)) {
            assertEquals(List.of(), s.map(f -> f.getFileName().toString()).sorted().toList(),
                    "no output and no temporary file (log: " + Files.readString(log) + ")");
        }
    }
}
