package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
        List<String> cmd = ChildJvm.java();
        cmd.addAll(List.of("-Xint", "-cp", ChildJvm.classPath(), TierBitsWorkload.class.getName(), "1"));
        ChildJvm.Result child = ChildJvm.run(cmd, 5);
        String out = child.out();
        assertEquals(0, child.exit(), () -> "child JVM failed: " + cmd + "\n" + out);
        List<String> lines = out.lines().filter(l -> !l.startsWith("WARNING")).toList();
        String interpreted = lines.isEmpty() ? "" : lines.get(lines.size() - 1).strip();
        String compiled = String.join(" ", TierBitsWorkload.digests(3000));
        assertEquals(compiled, interpreted, "CRC-32 per case (rows, rows, row backward, panels, merged, SeqLogprob):"
                + " C2 in this JVM, then the interpreter\n" + out);
    }
}
