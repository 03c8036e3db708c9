package dev.rslora.testing;

import org.junit.jupiter.api.Assumptions;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Named pipes for tests of what a reader or writer does with a path that is not a regular file.
 * Made with {@code mkfifo}; a test is skipped (with the reason) where that command is missing.
 */
public final class Fifo {
    private Fifo() {
    }

    /** Creates a FIFO at {@code path}, or skips the test when the platform cannot make one. */
    public static Path create(Path path) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder("mkfifo", path.toString()).redirectErrorStream(true).start();
        } catch (IOException e) {
            Assumptions.abort("mkfifo is not available here: " + e.getMessage());
            throw e;
        }
        Assumptions.assumeTrue(p.waitFor() == 0 && Files.exists(path), "mkfifo failed for " + path);
        return path;
    }

    /**
     * Opens and closes {@code fifo} read-write, which never blocks on Linux: it releases a thread
     * stuck opening the pipe for reading (a reader that should never have opened it).
     */
    public static void release(Path fifo) {
        try (FileChannel ch = FileChannel.open(fifo, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ch.size();
        } catch (IOException | UnsupportedOperationException ignored) {
            // the pipe is gone or was replaced: nothing is waiting on it
        }
    }
}
