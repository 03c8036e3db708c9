package dev.rslora.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The bytes a thread allocates, for the tests that check compiled code allocates next to nothing
 * (a vector boxed on the heap, or left to the Vector API's Java fallback, shows as KB per call).
 */
public final class Allocations {
    /**
     * How long such a test may keep calling until the JIT has compiled what it calls: 60 s, or
     * {@code rslora.test.allocationBudgetSeconds} (an emulated JVM compiles slowly:
     * native-build/neon-check.sh).
     */
    public static final long BUDGET_NANOS = Long.getLong("rslora.test.allocationBudgetSeconds", 60) * 1_000_000_000L;

    private Allocations() {
    }

    /**
     * Records a residue that a test allows in this run but that should not be there: printed, and
     * appended to the file that {@code rslora.test.allocationReport} names, if one does (.ci/run
     * prints those files at its end, where the CI log's tail shows them).
     */
    public static void report(String text) {
        System.out.println("ALLOCATION RESIDUE " + text);
        String file = System.getProperty("rslora.test.allocationReport");
        if (file == null || file.isBlank()) {
            return;
        }
        try {
            Path path = Path.of(file);
            Files.createDirectories(path.toAbsolutePath().getParent());
            Files.writeString(path, text + System.lineSeparator() + System.lineSeparator(), StandardOpenOption.CREATE,
                    StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot append the allocation report to " + file, e);
        }
    }

    /** The thread MX bean that counts this thread's allocated bytes; skips the test on a JVM that does not count them. */
    public static com.sun.management.ThreadMXBean counter() {
        // the tests run in the module dev.rslora.core, which does not read the management modules
        Module self = Allocations.class.getModule();
        ModuleLayer.boot().findModule("java.management").ifPresent(self::addReads);
        ModuleLayer.boot().findModule("jdk.management").ifPresent(self::addReads);
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assumeTrue(threads.isThreadAllocatedMemorySupported() && threads.isThreadAllocatedMemoryEnabled(),
                "this JVM does not count a thread's allocations");
        return threads;
    }
}
