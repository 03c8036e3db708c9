package dev.rslora.cli;

import dev.rslora.core.Init;
import dev.rslora.core.Scaling;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.CheckpointMerge;
import dev.rslora.peft.Golden;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InterruptedIOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** An interrupted merge leaves nothing: neither the output nor its temporary folder. */
class MergeInterruptTest {
    @TempDir
    Path dir;

    private List<String> listing() throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aCancelledMergeRemovesItsPartialOutput() throws Exception {
        Path out = dir.resolve("merged");
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint base = BaseCheckpoint.open(Golden.path("base-bf16-sharded"), arena);
            AdapterSet set = AdapterSet.load(Golden.path("adapter-rslora"), arena);
            CheckpointMerge merge = new CheckpointMerge(base, set, false);
            AtomicReference<List<String>> during = new AtomicReference<>();
            long[] written = {0};
            InterruptedIOException e = assertThrows(InterruptedIOException.class, () -> merge.writeTo(out, n -> {
                written[0] += n;
                if (during.get() == null) {
                    try {
                        during.set(listing());
                        merge.cancel(0);        // from the writing thread: flag only, the next chunk stops
                    } catch (Exception ex) {
                        throw new IllegalStateException(ex);
                    }
                }
            }));
            assertEquals("merge cancelled", e.getMessage());
            assertTrue(during.get().size() == 1 && during.get().get(0).startsWith(".merged.tmp-"), "staged while running: " + during.get());
            assertTrue(written[0] > 0 && written[0] < merge.totalBytes(), "stopped part way: " + written[0]);
        }
        assertEquals(List.of(), listing());
    }

    /** A SIGTERM (the JVM's shutdown hooks run, as on Ctrl-C) during `rslora merge` in a child JVM. */
    @Test
    void aTerminatedMergeProcessLeavesNothingBehind() throws Exception {
        Path work = Files.createDirectory(dir.resolve("work"));
        Path base = work.resolve("base.safetensors");
        Path adapter = work.resolve("adapter");
        try (Arena arena = Arena.ofShared()) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (int i = 0; i < 8; i++) {
                w.add("layers." + i + ".proj.weight", Tensor.allocate(arena, DType.BF16, 2048, 2048));   // 8 MiB each
            }
            w.write(base);
            PeftConfig config = PeftConfig.create(List.of("proj"), 64, 64, Scaling.RSLORA, Init.DEFAULT);
            AdapterSet.init(BaseCheckpoint.open(base, arena), config, 1, arena).save(adapter, DType.F32);
        }
        Path out = work.resolve("merged.safetensors");
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-Xmx256m",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "merge", "--base", base.toString(), "--adapter", adapter.toString(), "--output", out.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(work.resolve("log.txt").toFile()).start();
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            boolean staged = false;
            while (!staged && p.isAlive() && System.nanoTime() < deadline) {
                try (Stream<Path> s = Files.list(work)) {
                    staged = s.anyMatch(f -> f.getFileName().toString().startsWith(".merged.safetensors.tmp-"));
                }
                Thread.sleep(20);
            }
            assertTrue(staged && p.isAlive(), "the child was seen writing (log: " + Files.readString(work.resolve("log.txt")) + ")");
            p.destroy();                                           // SIGTERM
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the child exits");
        } finally {
            p.destroyForcibly();
        }
        try (Stream<Path> s = Files.list(work)) {
            assertEquals(List.of("adapter", "base.safetensors", "log.txt"), s.map(f -> f.getFileName().toString()).sorted().toList(),
                    "no output and no temporary folder (log: " + Files.readString(work.resolve("log.txt")) + ")");
        }
    }
}
