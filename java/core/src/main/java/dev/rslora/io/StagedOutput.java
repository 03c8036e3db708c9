package dev.rslora.io;

import java.io.IOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * An output written under a temporary folder next to its target ({@code .NAME.tmp-<random>}, NAME
 * cut to 64 characters) and
 * moved into place only by {@link #commit()}; {@link #close()} without a commit deletes everything
 * written, so a failed or interrupted write never leaves a partial target.
 *
 * <ul>
 *   <li>{@link #folder}: the whole temporary folder becomes the target folder (one rename); the
 *       target must not exist, or (when {@code replaceFiles}) may be an existing folder whose
 *       files of the same names are then replaced one by one, each atomically.</li>
 *   <li>{@link #file}: the one file written into the temporary folder replaces the target file
 *       atomically (an existing file survives any failure intact).</li>
 * </ul>
 */
public final class StagedOutput implements AutoCloseable {
    private final Path target;
    private final Path staging;
    private final boolean singleFile;
    private final boolean replaceFiles;
    private boolean committed;

    private StagedOutput(Path target, boolean singleFile, boolean replaceFiles) throws IOException {
        this.target = target.toAbsolutePath().normalize();
        this.singleFile = singleFile;
        this.replaceFiles = replaceFiles;
        Path parent = this.target.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new java.nio.file.NoSuchFileException(String.valueOf(parent), null, "the output's parent folder does not exist");
        }
        try {
            this.staging = Files.createDirectory(parent.resolve(temporaryName(this.target)));
        } catch (FileSystemException e) {
            // name the target the user chose and its folder, not the hidden staging folder
            throw new FileSystemException(target.toString(), null, "cannot write in " + parent + ": "
                    + (e.getReason() != null ? e.getReason() : e.getClass().getSimpleName()));
        }
    }

    /**
     * {@code .NAME.tmp-<random>} for a target named NAME, NAME cut to its first 64 characters: the
     * suffix must not make a name the file system takes for the target (up to 255 bytes) too long.
     */
    static String temporaryName(Path target) {
        String name = target.getFileName().toString();
        int keep = Math.min(name.length(), 64);
        if (keep > 0 && Character.isHighSurrogate(name.charAt(keep - 1))) {
            keep--;
        }
        return "." + name.substring(0, keep) + ".tmp-" + Long.toHexString(ThreadLocalRandom.current().nextLong());
    }

    /**
     * A folder target; refuses an existing target unless {@code replaceFiles}.
     *
     * @param target       the folder to create (its parent must exist), or with {@code replaceFiles} an existing folder
     * @param replaceFiles whether an existing folder is allowed, its files of the same names replaced on commit
     * @return the staged output; write into {@link #dir()}, then {@link #commit()}
     * @throws IOException if the target exists (and may not) or is a dangling symbolic link, the parent folder is missing, or the
     *                     staging folder cannot be made
     */
    public static StagedOutput folder(Path target, boolean replaceFiles) throws IOException {
        if (Files.isSymbolicLink(target) && !Files.exists(target)) {
            // the commit's rename of the staging folder onto a link fails, and only after everything was written
            throw new FileAlreadyExistsException(target.toString(), null, "the output is a symbolic link to a missing path; "
                    + "remove it or choose another path");
        }
        if (Files.exists(target) && !(replaceFiles && Files.isDirectory(target))) {
            throw new FileAlreadyExistsException(target.toString(), null, "the output already exists; remove it or choose another path");
        }
        return new StagedOutput(target, false, replaceFiles);
    }

    /**
     * A single-file target (an existing regular file is replaced on commit; a folder is refused).
     *
     * @param target the file to create or replace (its parent must exist)
     * @return the staged output; write {@link #stagedFile()}, then {@link #commit()}
     * @throws IOException if the target is a folder, the parent folder is missing, or the staging folder cannot be made
     */
    public static StagedOutput file(Path target) throws IOException {
        if (Files.isDirectory(target)) {
            throw new FileAlreadyExistsException(target.toString(), null, "the output is a folder, not a file");
        }
        requireReplaceable(target);
        return new StagedOutput(target, true, true);
    }

    /**
     * Refuses a file target that exists as something a rename must not replace: a device, pipe or
     * socket (e.g. /dev/null), which the atomic write would turn into a regular file. A symbolic
     * link is let through (the rename replaces the link, not what it points to).
     *
     * @param target the output file
     * @throws FileSystemException naming the target when it is such a file
     */
    static void requireReplaceable(Path target) throws FileSystemException {
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS) && !Files.isSymbolicLink(target)
                && !Files.isRegularFile(target, LinkOption.NOFOLLOW_LINKS)) {
            throw new FileSystemException(target.toString(), null, "the output exists and is not a regular file (a device, "
                    + "pipe or socket); writing it atomically would replace it, choose a file path");
        }
    }

    /**
     * Where to write: the temporary folder (for {@link #file}, write the file as {@link #stagedFile()}).
     *
     * @return the staging folder, next to the target
     */
    public Path dir() {
        return staging;
    }

    /**
     * For a single-file output: the staged file's path.
     *
     * @return the file to write, inside {@link #dir()}
     */
    public Path stagedFile() {
        return staging.resolve(target.getFileName());
    }

    /**
     * The target, absolute and normalised.
     *
     * @return where {@link #commit()} puts the output
     */
    public Path target() {
        return target;
    }

    /**
     * Moves the staged output into place (each file atomically where the file system allows).
     *
     * @throws IOException if a move fails; files not yet moved stay staged and {@link #close()} deletes them
     */
    public void commit() throws IOException {
        if (singleFile) {
            move(stagedFile(), target, true);
        } else if (!Files.exists(target)) {
            move(staging, target, false);
        } else if (replaceFiles) {
            try (Stream<Path> files = Files.list(staging)) {
                for (Path f : files.toList()) {
                    move(f, target.resolve(f.getFileName()), true);
                }
            }
        } else {
            throw new FileAlreadyExistsException(target.toString(), null, "the output appeared while it was being written");
        }
        committed = true;
        deleteTree(staging);
    }

    private static void move(Path from, Path to, boolean replace) throws IOException {
        try {
            if (replace) {
                Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } else {
                Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
            }
        } catch (AtomicMoveNotSupportedException e) {
            if (replace) {
                Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
            } else {
                Files.move(from, to);
            }
        }
    }

    /**
     * Deletes the staging folder unless committed (then it is already gone).
     *
     * @throws IOException if the staging folder cannot be deleted
     */
    @Override
    public void close() throws IOException {
        if (!committed) {
            deleteTree(staging);
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
