package dev.rslora.cli;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

import java.io.FileOutputStream;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An --output that is a link to a stream is refused and the link kept. {@code --output /dev/stdout}
 * exited 0 after the atomic rename had replaced the link /dev/stdout (as root, the system's) with a
 * regular file: nothing reached standard output.
 */
@EnabledOnOs(OS.LINUX)  // /proc/self/fd
class OutputLinkTest {
    @TempDir
    Path dir;

    @Test
    void aLinkToAProcessStreamOrADeviceIsRefusedAndKept() throws Exception {
        Path redirected = dir.resolve("stdout.txt");
        try (Arena arena = Arena.ofShared(); FileOutputStream stream = new FileOutputStream(redirected.toFile())) {
            SplittableRandom rnd = new SplittableRandom(7);
            SafetensorsWriter dpo = new SafetensorsWriter();
            for (String name : DpoLossCommand.INPUTS) {
                dpo.add(name, TestData.uniform(arena, DType.F32, rnd, 1, 3));
            }
            Path dpoIn = dir.resolve("dpo.safetensors");
            dpo.write(dpoIn);
            Path optIn = dir.resolve("opt.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 3))
                    .add("grad.0", TestData.uniform(arena, DType.F32, rnd, 1, 3)).write(optIn);
            Path layerIn = dir.resolve("layer.safetensors");
            new SafetensorsWriter().add("x", TestData.uniform(arena, DType.F32, rnd, 1, 2, 4))
                    .add("weight", TestData.uniform(arena, DType.F32, rnd, 1, 3, 4))
                    .add("lora_A", TestData.uniform(arena, DType.F32, rnd, 1, 2, 4))
                    .add("lora_B", TestData.uniform(arena, DType.F32, rnd, 1, 3, 2))
                    .add("grad_y", TestData.uniform(arena, DType.F32, rnd, 1, 2, 3)).write(layerIn);
            Path base = dir.resolve("base.safetensors");
            new SafetensorsWriter().add("m.q_proj.weight", TestData.uniform(arena, DType.F32, rnd, 1, 3, 4)).write(base);
            Path adapter = dir.resolve("adapter");
            CliRun init = CliRun.of("init", "--base", base.toString(), "--target-modules", "q_proj", "--rank", "2", "--alpha", "4",
                    "--output", adapter.toString());
            assertEquals(0, init.code(), init.err());

            // `--output /dev/stdout > stdout.txt`: /dev/stdout is a link to /proc/self/fd/1, here a regular file
            Path fd;
            try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
                Path real = redirected.toRealPath();
                fd = fds.filter(f -> {
                    try {
                        return Files.readSymbolicLink(f).equals(real);
                    } catch (Exception gone) {
                        return false;
                    }
                }).findFirst().orElseThrow();
            }
            int n = 0;
            for (Path target : List.of(fd, Path.of("/dev/null"))) {
                for (List<String> command : List.of(
                        List.of("dpo-loss", "--input", dpoIn.toString(), "--beta", "0.1"),
                        List.of("optimizer-step", "--input", optIn.toString(), "--optimizer", "adamw", "--lr", "0.01"),
                        List.of("layer", "--input", layerIn.toString(), "--alpha", "4", "--backend", "reference"),
                        List.of("merge", "--base", base.toString(), "--adapter", adapter.toString()))) {
                    Path link = Files.createSymbolicLink(dir.resolve("out" + n++), target);
                    String[] args = Stream.concat(command.stream(), Stream.of("--output", link.toString())).toArray(String[]::new);
                    CliRun r = CliRun.of(args);
                    String what = command.getFirst() + " --output -> " + target;
                    assertEquals(1, r.code(), what + ": " + r.err());
                    String line = r.err().strip();
                    assertTrue(line.startsWith("rslora: error: --output " + link + " is a link to " + target) && !line.contains("\n"),
                            what + ": " + line);
                    assertTrue(Files.isSymbolicLink(link) && Files.readSymbolicLink(link).equals(target), what + ": the link is kept");
                }
            }
            assertEquals(0, Files.size(redirected));
        }
    }
}
