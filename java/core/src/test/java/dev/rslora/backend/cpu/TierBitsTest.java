package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The interpreter and C2 compute the same bits: every vector loop of the cpu backend (and of
 * SeqLogprob) is fixed arithmetic, whichever tier runs it. A JVM compiles a method when it gets
 * hot, at a moment that varies from run to run, so an operation whose result depends on the tier
 * ({@code reduceLanes(ADD)}: lane order in the Java fallback, a tree in C2) would make two runs of
 * the same program differ in their last bits. The child JVM runs {@link TierBitsWorkload} once
 * with {@code -Xint}; this JVM runs it after enough repetitions for C2 to compile its loops.
 */
class TierBitsTest {
    @Test
    void theInterpreterAndC2GiveTheSameBits() throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(CompileTiersTest.childJava());
        cmd.addAll(List.of("-Xint", "-cp", CompileTiersTest.classPath(), TierBitsWorkload.class.getName(), "1"));
        Path log = Files.createTempFile("tier-bits", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                fail("the -Xint child JVM did not finish in 5 minutes: " + cmd);
            }
            String out = Files.readString(log, StandardCharsets.UTF_8);
            assertEquals(0, p.exitValue(), () -> "child JVM failed: " + cmd + "\n" + out);
            List<String> lines = out.lines().filter(l -> !l.startsWith("WARNING")).toList();
            String interpreted = lines.isEmpty() ? "" : lines.get(lines.size() - 1).strip();
            String compiled = String.join(" ", TierBitsWorkload.digests(3000));
            assertEquals(compiled, interpreted, "CRC-32 per case (rows, rows, row backward, panels, merged, SeqLogprob):"
                    + " C2 in this JVM, then the interpreter\n" + out);
        } finally {
            Files.deleteIfExists(log);
        }
    }
}
