package dev.rslora.cli;

import dev.rslora.io.OnSignal;
import dev.rslora.io.SafetensorsWriter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * Checks on an --output path made before any work: it must not be one of the command's input files,
 * nor a link to a stream; and the write of an output file that a SIGTERM or Ctrl-C does not leave half
 * done (through {@link OnSignal}, the shutdown cleanup the commands and {@link dev.rslora.io.StagedOutput} share).
 */
final class OutputPaths {
    private static final Path PROC = Path.of("/proc");

    private OutputPaths() {
    }

    /**
     * Refuses {@code output} when it is the same file as one of {@code inputs}: the atomic write would
     * replace that input with the result. An output that is a symbolic link is let through (the rename
     * replaces the link, not the file it points to).
     *
     * @param output the --output path
     * @param inputs the files the command reads (absent ones are skipped)
     * @throws IllegalArgumentException naming both paths when the output is an input
     * @throws IOException              if the files cannot be compared
     */
    static void requireNotAnInput(Path output, Path... inputs) throws IOException {
        if (!Files.exists(output) || Files.isSymbolicLink(output)) {
            return;
        }
        for (Path in : inputs) {
            if (Files.exists(in) && Files.isSameFile(output, in)) {
                throw new IllegalArgumentException("--output " + output + " is the input file " + in
                        + "; writing it would replace the input, choose another path");
            }
        }
    }

    /**
     * Refuses an existing {@code output} file that nobody may write (no write bit in its POSIX mode, as
     * {@code chmod a-w} leaves it): the atomic write renames a new file over it, which the folder's
     * permissions allow whatever the file's own, so a file its owner had protected was replaced
     * silently. A file only others may not write is replaced, as {@code mv} would.
     *
     * @param output the --output path
     * @throws IllegalArgumentException naming the output and its mode
     * @throws IOException              if its mode cannot be read
     */
    static void requireNotReadOnly(Path output) throws IOException {
        if (!Files.isRegularFile(output, LinkOption.NOFOLLOW_LINKS)
                || !output.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            return;
        }
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(output, LinkOption.NOFOLLOW_LINKS);
        if (!mode.contains(PosixFilePermission.OWNER_WRITE) && !mode.contains(PosixFilePermission.GROUP_WRITE)
                && !mode.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new IllegalArgumentException("--output " + output + " is a read-only file (mode "
                    + PosixFilePermissions.toString(mode) + "): writing would replace it; remove it or make it writable first");
        }
    }

    /**
     * Refuses an {@code output} that is a symbolic link to a device, pipe, socket or terminal, or whose
     * links lead through /proc (a process's open files: /dev/stdout is a link to /proc/self/fd/1).
     * The atomic write renames a new file over the link, so it would replace the link (as root, the
     * system's /dev/stdout) and the stream the user meant would get nothing. A link to a regular file
     * or a folder is left to the writer (see {@link #requireNotAnInput}).
     *
     * @param output the --output path
     * @throws IllegalArgumentException naming the output and where its link leads
     * @throws IOException              if a link cannot be read
     */
    static void requireNotALinkToAStream(Path output) throws IOException {
        if (!Files.isSymbolicLink(output)) {
            return;
        }
        Path first = Files.readSymbolicLink(output);
        Path p = output.toAbsolutePath();
        boolean throughProc = false;
        for (int hops = 0; hops < 40 && Files.isSymbolicLink(p); hops++) {
            p = p.resolveSibling(Files.readSymbolicLink(p)).normalize();
            throughProc |= p.startsWith(PROC);
        }
        boolean stream = Files.exists(output) && !Files.isRegularFile(output) && !Files.isDirectory(output);
        if (throughProc || stream) {
            throw new IllegalArgumentException("--output " + output + " is a link to " + first + ", " + (throughProc
                    ? "a process's open file" : "a device, pipe or socket") + ": the output is written to a new file renamed "
                    + "over the link, which would replace the link and write nothing there; choose a file path");
        }
    }

    /**
     * Writes {@code w} to {@code output} (atomically: a temporary file renamed when complete). A SIGTERM
     * or Ctrl-C during the write runs the JVM's shutdown hooks, not the writer's cleanup, which left the
     * partial temporary file behind; here an {@link OnSignal} cleanup interrupts the writing thread,
     * whose channel then closes and whose cleanup removes the temporary file, and waits up to 10 s for that.
     *
     * @param w      the writer, with every tensor added
     * @param output the --output file
     * @throws IOException if the write fails (nothing of it remains)
     */
    static void write(SafetensorsWriter w, Path output) throws IOException {
        Thread writer = Thread.currentThread();
        CountDownLatch done = new CountDownLatch(1);
        try (OnSignal _ = OnSignal.register("rslora-write-cancel", () -> {
            writer.interrupt();
            try {
                done.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        })) {
            try {
                w.write(output);
            } finally {
                done.countDown();   // before the hook is removed: a running hook returns at once
            }
        }
    }
}
