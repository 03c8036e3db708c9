package dev.rslora.cli;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The one-line OutOfMemoryError message gives the hint that fits where the memory ran out: the
 * errors are real ones thrown by this JDK (none of them allocates the memory it asks for), so a
 * change in the JDK's wording shows up here.
 */
class OutOfMemoryMessageTest {

    /** Keeps an array the heap case might allocate reachable, so that the allocation is not elided. */
    static long[] sink;

    @Test
    void anOffHeapTensorTooLargeForTheMachineSaysThatXmxDoesNotHelp() {
        OutOfMemoryError e;
        try (Arena arena = Arena.ofConfined()) {
            e = assertThrows(OutOfMemoryError.class, () -> Tensor.allocate(arena, DType.F32, 1L << 60));
        }
        String line = Main.oneLine(e);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("out of memory: off-heap allocation of (\\d+) bytes failed .*")
                .matcher(line);
        assertTrue(m.matches(), line);
        // the JDK asks malloc for the 2^62 bytes plus the slack that 64-byte alignment needs
        long asked = Long.parseLong(m.group(1));
        assertTrue(asked >= 1L << 62 && asked <= (1L << 62) + 64, line);
        assertTrue(line.contains("not -Xmx"), line);
        assertFalse(line.contains("raise -Xmx"), line);
    }

    @Test
    void aFullJavaHeapSaysRaiseXmx() {
        long n = Integer.MAX_VALUE - 8;
        // the array must not fit, or it would be allocated: skip on a JVM whose heap could hold 16 GiB
        assumeTrue(Runtime.getRuntime().maxMemory() < n * Long.BYTES, "the heap could hold a long[" + n + "]");
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> sink = new long[(int) n]);
        assertEquals("out of memory: Java heap space (raise -Xmx via RSLORA_JAVA_OPTS)", Main.oneLine(e));
    }

    @Test
    void anArrayLongerThanTheJvmAllowsSaysThatXmxDoesNotHelp() {
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> sink = new long[Integer.MAX_VALUE]);
        String line = Main.oneLine(e);
        assertTrue(line.startsWith("out of memory: Requested array size exceeds VM limit"), line);
        assertTrue(line.contains("-Xmx does not help"), line);
    }

    @Test
    void theDirectMemoryLimitSaysRaiseMaxDirectMemorySize() {
        // an automatic arena counts against -XX:MaxDirectMemorySize before it asks malloc
        OutOfMemoryError e = assertThrows(OutOfMemoryError.class, () -> Arena.ofAuto().allocate(1L << 62));
        String line = Main.oneLine(e);
        assertTrue(line.startsWith("out of memory: Cannot reserve 4611686018427387904 bytes of direct buffer memory"), line);
        assertTrue(line.endsWith("(raise -XX:MaxDirectMemorySize via RSLORA_JAVA_OPTS)"), line);
        assertFalse(line.contains("-Xmx"), line);
    }

    @Test
    void anErrorWithoutADetailGivesNoHintThatMightBeWrong() {
        assertEquals("out of memory: the JVM gave no detail", Main.oneLine(new OutOfMemoryError()));
        assertEquals("out of memory: Metaspace", Main.oneLine(new OutOfMemoryError("Metaspace")));
    }
}
