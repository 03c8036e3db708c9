package dev.rslora.cli;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.abort;

/**
 * A SIGTERM (the JVM's shutdown hooks run, as on Ctrl-C) while {@code rslora optimizer-step} writes
 * its output leaves nothing: it left the partial hidden temporary file (".out.safetensors.tmp-…").
 * layer and dpo-loss write through the same {@link OutputPaths#write}.
 */
class WriteInterruptTest {
    @TempDir
    Path dir;

    @Test
    void aTerminatedWriteLeavesNoTemporaryFile() throws Exception {
        Path in = dir.resolve("in.safetensors");
        try (Arena arena = Arena.ofShared()) {
            SafetensorsWriter w = new SafetensorsWriter().add("param", Tensor.allocate(arena, DType.F32, 4096, 2048));   // 32 MiB
            for (int t = 0; t < 4; t++) {
                w.add("grad." + t, Tensor.allocate(arena, DType.F32, 4096, 2048));
            }
            w.write(in);
        }
        // the signal may land after a short write has finished: then try again, up to 5 times
        for (int attempt = 0; attempt < 5; attempt++) {
            Path work = Files.createDirectory(dir.resolve("work" + attempt));
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-Xmx256m",
                    "-cp", System.getProperty("java.class.path"), Main.class.getName(), "optimizer-step", "--input", in.toString(),
                    "--output", work.resolve("out.safetensors").toString(), "--optimizer", "adamw", "--lr", "0.01"));
            Path log = dir.resolve("log" + attempt + ".txt");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            try {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                boolean staged = false;
                while (!staged && p.isAlive() && System.nanoTime() < deadline) {
                    try (Stream<Path> s = Files.list(work)) {
                        staged = s.anyMatch(f -> f.getFileName().toString().startsWith(".out.safetensors.tmp-"));
                    }
                    Thread.sleep(5);
                }
                if (staged) {
                    p.destroy();                                       // SIGTERM
                }
                assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child exits");
                assertTrue(staged || p.exitValue() == 0, "the child was seen writing or finished (log: " + Files.readString(log) + ")");
            } finally {
                p.destroyForcibly();
            }
            List<String> left;
            try (Stream<Path> s = Files.list(work)) {
                left = s.map(f -> f.getFileName().toString()).sorted().toList();
            }
            assertTrue(left.stream().noneMatch(f -> f.contains(".tmp-")), "no temporary file (log: " + Files.readString(log) + ")");
            if (left.isEmpty()) {
                assertTrue(p.exitValue() != 0, "stopped part way");
                return;
            }
            // the signal landed after the rename: the output is whole; try again for one that lands mid-write
            assertEquals(List.of("out.safetensors"), left);
        }
        abort("every write finished before the signal landed");
    }
}
