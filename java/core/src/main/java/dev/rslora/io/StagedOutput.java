package dev.rslora.io;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
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
 *
 * <p>A SIGTERM or Ctrl-C runs only the JVM's shutdown hooks, not {@link #close()}: from the staging
 * folder's creation until {@link #close()}, an {@link OnSignal} cleanup deletes the staging folder
 * and the partial files in it then (nothing else: not the target, not an existing folder's files).
 * It and {@link #commit()} exclude each other: a commit that has begun moving files is waited for
 * (up to 10 s) and then the cleanup finds nothing left to delete; once the cleanup has run, a commit
 * fails and moves nothing. A cleanup registered earlier (a command's, for the folders it made around
 * the target) runs after this one, so it sees the staging folder gone.
 */
public final class StagedOutput implements AutoCloseable {
    /**
     * Test only: the system property naming how many milliseconds {@link #commit()} waits before it
     * moves anything, every output file written to the staging folder (unset or 0, the default: no
     * wait). It holds a staged output mid-way so that a test can signal the process while the
     * staging folder holds the partial output; nothing else should set it. An interrupt ends the
     * wait and stays set.
     */
    static final String TEST_STAGED_PAUSE_PROPERTY = "rslora.test.stagedPauseMillis";

    /**
     * Test only: the system property naming how many milliseconds {@link #commit()} of files into an
     * existing folder waits after moving the first file, with the others still staged (unset or 0,
     * the default: no wait). The wait ends early once the signal cleanup waits for the commit (or has
     * returned): a test sees that a signal during a commit leaves the whole output, not one file.
     * Nothing else should set it. An interrupt ends the wait and stays set.
     */
    static final String TEST_COMMIT_PAUSE_PROPERTY = "rslora.test.commitPauseMillis";

    /** {@link #TEST_STAGED_PAUSE_PROPERTY}, read once when the class loads. */
    private static final long TEST_STAGED_PAUSE_MILLIS = TestPause.millis(TEST_STAGED_PAUSE_PROPERTY);

    /** {@link #TEST_COMMIT_PAUSE_PROPERTY}, read once when the class loads. */
    private static final long TEST_COMMIT_PAUSE_MILLIS = TestPause.millis(TEST_COMMIT_PAUSE_PROPERTY);

    /** How long the signal cleanup waits for a commit (or a close) in progress. */
    private static final long COMMIT_WAIT_MILLIS = 10_000;

    private final Path target;
    private final Path staging;
    private final boolean singleFile;
    private final boolean replaceFiles;
    /** Held by commit, close, the staging folder's creation and the signal cleanup: each runs whole or not at all. */
    private final ReentrantLock lock = new ReentrantLock();
    /** Set when the signal cleanup returns (ends {@link #TEST_COMMIT_PAUSE_PROPERTY}'s wait). */
    private volatile boolean cleanupReturned;
    private OnSignal onSignal;
    private boolean created;     // the staging folder was made by this output; guarded by lock
    private boolean committed;   // guarded by lock
    private boolean abandoned;   // the signal cleanup ran: nothing is made or moved any more; guarded by lock

    private StagedOutput(Path target, boolean singleFile, boolean replaceFiles) throws IOException {
        this.target = target.toAbsolutePath().normalize();
        this.singleFile = singleFile;
        this.replaceFiles = replaceFiles;
        Path parent = this.target.getParent();
        requireParentFolder(parent);
        this.staging = parent.resolve(temporaryName(this.target));
    }

    /**
     * Registers the signal cleanup, then makes the staging folder (under the lock: a signal in
     * between either finds the folder made or keeps it from being made).
     *
     * @param userTarget the target as the caller gave it, for messages
     * @return this
     */
    private StagedOutput open(Path userTarget) throws IOException {
        try {
            onSignal = OnSignal.register("rslora-staged-output-cleanup", this::removeOnSignal);
        } catch (IllegalStateException shuttingDown) {
            throw new InterruptedIOException("the process is stopping: " + userTarget + " is not written");
        }
        lock.lock();
        try {
            if (abandoned) {
                throw new InterruptedIOException("the process is stopping: " + userTarget + " is not written");
            }
            try {
                Files.createDirectory(staging);
            } catch (FileSystemException e) {
                // name the target the user chose and its folder, not the hidden staging folder
                throw new FileSystemException(userTarget.toString(), null, "cannot write in " + staging.getParent() + ": "
                        + reason(e));
            }
            created = true;
            return this;
        } catch (IOException | RuntimeException | Error e) {
            onSignal.close();
            throw e;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Refuses an output whose parent is missing or is not a folder.
     *
     * @param parent the output's parent (null: the output is a root)
     * @throws FileSystemException naming the parent: a file, not a folder (NoSuchFileException when it does not exist)
     */
    static void requireParentFolder(Path parent) throws FileSystemException {
        if (parent != null && Files.isDirectory(parent)) {
            return;
        }
        if (parent != null && Files.exists(parent)) {
            throw new FileSystemException(parent.toString(), null, "the output's parent is a file, not a folder");
        }
        throw new java.nio.file.NoSuchFileException(String.valueOf(parent), null, "the output's parent folder does not exist");
    }

    /**
     * {@code e} as the user should read it: a plain IOException whose message names a path inside the
     * hidden staging folder (a write that failed part-way, as {@link SafetensorsWriter} words it) names
     * the same path under the output instead; any other exception is returned as it is.
     *
     * @param e an exception thrown while writing into {@link #dir()} or {@link #stagedFile()}
     * @return e, or a plain IOException with the user's path and e as its cause
     */
    public IOException userFacing(IOException e) {
        String m = e.getMessage();
        if (e.getClass() != IOException.class || m == null || !m.contains(staging.toString())) {
            return e;
        }
        String shown = singleFile ? m.replace(stagedFile().toString(), target.toString()) : m;
        return new IOException(shown.replace(staging.toString(), target.toString()), e);
    }

    /**
     * Why creating a file or folder failed, in words: the JDK's reason when it gives one, else what
     * its exception class means (NoSuchFileException with no reason: the folder is missing, or is a
     * pseudo-file system such as /proc that takes no new files).
     */
    static String reason(FileSystemException e) {
        if (e.getReason() != null) {
            return e.getReason();
        }
        if (e instanceof java.nio.file.AccessDeniedException) {
            return "permission denied";
        }
        if (e instanceof java.nio.file.NoSuchFileException) {
            return "no such folder, or it takes no new files";
        }
        if (e instanceof FileAlreadyExistsException) {
            return "a file of that name already exists";
        }
        if (e instanceof java.nio.file.NotDirectoryException) {
            return "not a folder";
        }
        return e.getClass().getSimpleName();
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
        return new StagedOutput(target, false, replaceFiles).open(target);
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
        return new StagedOutput(target, true, true).open(target);
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
     * @throws InterruptedIOException if the signal cleanup has already removed the staged output (nothing is moved)
     * @throws IOException            if a move fails; files not yet moved stay staged and {@link #close()} deletes them
     */
    public void commit() throws IOException {
        if (TEST_STAGED_PAUSE_MILLIS > 0) {
            TestPause.sleep(TEST_STAGED_PAUSE_MILLIS);
        }
        lock.lock();
        try {
            if (abandoned) {
                throw new InterruptedIOException("the process is stopping: the staged output for " + target + " was removed");
            }
            if (singleFile) {
                move(stagedFile(), target, true);
            } else if (!Files.exists(target)) {
                move(staging, target, false);
            } else if (replaceFiles) {
                try (Stream<Path> files = Files.list(staging)) {
                    boolean first = true;
                    for (Path f : files.toList()) {
                        move(f, target.resolve(f.getFileName()), true);
                        if (first && TEST_COMMIT_PAUSE_MILLIS > 0) {
                            pauseInCommitForTest();
                        }
                        first = false;
                    }
                }
            } else {
                throw new FileAlreadyExistsException(target.toString(), null, "the output appeared while it was being written");
            }
            committed = true;
            deleteTree(staging);
        } finally {
            lock.unlock();
        }
    }

    /** The wait of {@link #TEST_COMMIT_PAUSE_PROPERTY}, with the lock held: until the signal cleanup waits for it or has returned. */
    private void pauseInCommitForTest() {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(TEST_COMMIT_PAUSE_MILLIS);
        while (!lock.hasQueuedThreads() && !cleanupReturned && System.nanoTime() - end < 0) {
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /**
     * The signal cleanup, on the shutdown hook's thread: waits for a commit or close in progress,
     * then deletes the staging folder unless the output was committed, and stops any later commit.
     * The step's thread may still be writing into the folder: a file it makes after the listing
     * makes the folder's deletion fail, and the deletion is tried again.
     */
    void removeOnSignal() {
        try {
            removeUnlessCommitted();
        } finally {
            cleanupReturned = true;
        }
    }

    private void removeUnlessCommitted() {
        boolean locked;
        try {
            locked = lock.tryLock(COMMIT_WAIT_MILLIS, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return;
        }
        if (!locked) {
            return;   // a commit still moving files after 10 s: what it has not moved stays, as after a crash
        }
        try {
            abandoned = true;
            if (!created || committed) {
                return;   // nothing made yet, or everything moved and the staging folder deleted
            }
            for (int attempt = 0; attempt < 100 && Files.exists(staging, LinkOption.NOFOLLOW_LINKS); attempt++) {
                try {
                    deleteTree(staging);
                } catch (IOException | UncheckedIOException e) {
                    try {
                        Thread.sleep(5);
                    } catch (InterruptedException stop) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * The signal cleanup's registration (for tests).
     *
     * @return what {@link #close()} closes
     */
    OnSignal onSignal() {
        return onSignal;
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
     * Deletes the staging folder unless committed (then it is already gone), and removes the signal cleanup.
     *
     * @throws IOException if the staging folder cannot be deleted
     */
    @Override
    public void close() throws IOException {
        lock.lock();
        try {
            if (created && !committed) {
                deleteTree(staging);
            }
        } finally {
            lock.unlock();
            onSignal.close();
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
