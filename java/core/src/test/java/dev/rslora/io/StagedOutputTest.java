package dev.rslora.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@link StagedOutput}: nothing reaches the target before commit, and nothing is left behind without one. */
class StagedOutputTest {
    @TempDir
    Path dir;

    private List<String> names(Path folder) throws IOException {
        try (Stream<Path> s = Files.list(folder)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aNewFolderAppearsWholeOnCommit() throws IOException {
        Path target = dir.resolve("out");
        try (StagedOutput s = StagedOutput.folder(target, false)) {
            Files.writeString(s.dir().resolve("a.txt"), "a");
            Files.writeString(s.dir().resolve("b.txt"), "b");
            assertFalse(Files.exists(target), "nothing at the target before commit");
            s.commit();
        }
        assertEquals(List.of("a.txt", "b.txt"), names(target));
        assertEquals(List.of("out"), names(dir), "no staging folder left");
    }

    @Test
    void anExistingFolderKeepsItsOtherFilesAndGetsTheNewOnesOnCommit() throws IOException {
        Path target = Files.createDirectories(dir.resolve("out"));
        Files.writeString(target.resolve("a.txt"), "old a");
        Files.writeString(target.resolve("keep.txt"), "keep");
        try (StagedOutput s = StagedOutput.folder(target, true)) {
            Files.writeString(s.dir().resolve("a.txt"), "new a");
            assertEquals("old a", Files.readString(target.resolve("a.txt")), "replaced only on commit");
            s.commit();
        }
        assertEquals("new a", Files.readString(target.resolve("a.txt")));
        assertEquals("keep", Files.readString(target.resolve("keep.txt")));
        assertEquals(List.of("out"), names(dir));
    }

    @Test
    void closingWithoutCommitLeavesTheTargetAsItWasAndNoStagingFolder() throws IOException {
        Path target = Files.createDirectories(dir.resolve("out"));
        Files.writeString(target.resolve("a.txt"), "old a");
        try (StagedOutput s = StagedOutput.folder(target, true)) {
            Files.writeString(s.dir().resolve("a.txt"), "half");
        }
        assertEquals("old a", Files.readString(target.resolve("a.txt")));
        assertEquals(List.of("out"), names(dir));
        Path file = Files.writeString(dir.resolve("f.bin"), "old");
        try (StagedOutput s = StagedOutput.file(file)) {
            Files.writeString(s.stagedFile(), "half");
        }
        assertEquals("old", Files.readString(file));
        assertEquals(List.of("f.bin", "out"), names(dir));
    }

    @Test
    void refusesWhatItCannotReplace() throws IOException {
        Path folder = Files.createDirectories(dir.resolve("out"));
        assertThrows(FileAlreadyExistsException.class, () -> StagedOutput.folder(folder, false));
        assertThrows(FileAlreadyExistsException.class, () -> StagedOutput.file(folder));
        Path file = Files.writeString(dir.resolve("f"), "x");
        assertThrows(FileAlreadyExistsException.class, () -> StagedOutput.folder(file, true));
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> StagedOutput.file(dir.resolve("no/such/f")));
        assertTrue(e.getMessage().contains("no" + java.io.File.separator + "such"), e.getMessage());
        assertEquals(List.of("f", "out"), names(dir), "no staging folder made for a refused target");
    }

    @Test
    void refusesAFolderTargetThatIsADanglingLinkBeforeAnythingIsWritten() throws IOException {
        // the final rename of a folder onto a link fails (ENOTDIR): after a whole merge was written, naming the staging folder
        Path link = Files.createSymbolicLink(dir.resolve("out"), dir.resolve("nowhere"));
        for (boolean replaceFiles : new boolean[] {false, true}) {
            FileAlreadyExistsException e = assertThrows(FileAlreadyExistsException.class, () -> StagedOutput.folder(link, replaceFiles));
            assertTrue(e.getMessage().contains("symbolic link"), e.getMessage());
        }
        assertEquals(List.of("out"), names(dir), "no staging folder made for a refused target");
    }

    @Test
    void refusesAFileTargetThatIsAFifo() throws Exception {
        Path fifo = dev.rslora.testing.Fifo.create(dir.resolve("pipe"));
        IOException e = assertThrows(IOException.class, () -> StagedOutput.file(fifo));
        assertTrue(e.getMessage().contains("not a regular file"), e.getMessage());
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "the FIFO is still a FIFO");
        assertEquals(List.of("pipe"), names(dir), "no staging folder made for a refused target");
    }
    /** A folder name the file system takes (here 250 bytes) must not fail because the staging name adds a suffix. */
    @Test
    void aLongTargetNameThatTheFileSystemTakesIsStagedAndCommitted() throws IOException {
        Path target = dir.resolve("run-" + "x".repeat(246));
        Files.createDirectory(target);   // the file system takes the name itself
        Files.delete(target);
        try (StagedOutput out = StagedOutput.folder(target, false)) {
            Files.writeString(out.dir().resolve("a.txt"), "a");
            out.commit();
        }
        assertEquals(List.of(target.getFileName().toString()), names(dir));
        assertEquals(List.of("a.txt"), names(target));
        String nonBmp = "a" + "\uD83D\uDE00".repeat(40);   // char 63 is a high surrogate: the cut must not split the pair
        String tmp = StagedOutput.temporaryName(dir.resolve(nonBmp));
        assertTrue(tmp.startsWith(".a" + "\uD83D\uDE00".repeat(31) + ".tmp-"), tmp);
    }

    @Test
    void theSignalCleanupIsRegisteredOnlyWhileTheOutputIsOpen() throws IOException {
        OnSignal committed;
        try (StagedOutput s = StagedOutput.folder(dir.resolve("a"), false)) {
            committed = s.onSignal();
            assertTrue(committed.registered(), "registered while staged");
            s.commit();
            assertTrue(committed.registered(), "until closed");
        }
        assertFalse(committed.registered(), "removed after a commit");
        StagedOutput[] open = new StagedOutput[1];
        IOException e = assertThrows(IOException.class, () -> {
            try (StagedOutput s = StagedOutput.file(dir.resolve("f.bin"))) {
                open[0] = s;
                Files.writeString(s.stagedFile(), "half");
                throw new IOException("disk full");
            }
        });
        assertEquals("disk full", e.getMessage());
        assertFalse(open[0].onSignal().registered(), "removed after an exception");
        assertEquals(List.of("a"), names(dir), "the commit's output, no staging folder, no f.bin");
    }

    @Test
    void theSignalCleanupDeletesTheStagedFilesOnlyAndStopsTheCommit() throws IOException {
        Path target = Files.createDirectories(dir.resolve("out"));
        Files.writeString(target.resolve("a.txt"), "old a");
        Files.writeString(target.resolve("keep.txt"), "keep");
        try (StagedOutput s = StagedOutput.folder(target, true)) {
            Files.writeString(s.dir().resolve("a.txt"), "new a");
            Files.createDirectory(s.dir().resolve("sub"));
            Files.writeString(s.dir().resolve("sub").resolve("b.txt"), "b");
            s.removeOnSignal();   // what the shutdown hook runs on a SIGTERM or Ctrl-C
            assertEquals(List.of("out"), names(dir), "the staging folder and its files are gone");
            assertThrows(java.io.InterruptedIOException.class, s::commit, "nothing is moved after the cleanup");
        }
        assertEquals(List.of("a.txt", "keep.txt"), names(target));
        assertEquals("old a", Files.readString(target.resolve("a.txt")));
        assertEquals("keep", Files.readString(target.resolve("keep.txt")));
    }

    @Test
    void theSignalCleanupAfterACommitDeletesNothing() throws IOException {
        Path target = dir.resolve("out");
        Path file = dir.resolve("f.bin");
        try (StagedOutput folder = StagedOutput.folder(target, false); StagedOutput single = StagedOutput.file(file)) {
            Files.writeString(folder.dir().resolve("a.txt"), "a");
            Files.writeString(single.stagedFile(), "f");
            folder.commit();
            single.commit();
            folder.removeOnSignal();
            single.removeOnSignal();
        }
        assertEquals(List.of("f.bin", "out"), names(dir));
        assertEquals(List.of("a.txt"), names(target));
        assertEquals("f", Files.readString(file));
    }

    /**
     * A write that failed part-way inside the hidden staging folder is reported under the output the
     * user chose (a full disk named ".NAME.tmp-…/adapter_model.safetensors"); other exceptions pass as
     * they are. A parent that is a file is named as one (it said "does not exist").
     */
    @Test
    void failuresNameTheUsersPathNotTheStagingFolder() throws Exception {
        Path out = dir.resolve("adapter");
        try (StagedOutput staged = StagedOutput.folder(out, true)) {
            IOException full = new IOException(staged.dir().resolve("w.safetensors") + ": No space left on device (while writing it)");
            IOException shown = staged.userFacing(full);
            assertEquals(out.resolve("w.safetensors") + ": No space left on device (while writing it)", shown.getMessage());
            assertTrue(shown.getCause() == full);
            IOException other = new NoSuchFileException(staged.dir().resolve("x").toString());
            assertTrue(staged.userFacing(other) == other, "a file-system exception keeps its type");
        }
        Path file = dir.resolve("model.safetensors");
        try (StagedOutput staged = StagedOutput.file(file)) {
            IOException full = new IOException(staged.stagedFile() + ": File too large (while writing it)");
            assertEquals(file + ": File too large (while writing it)", staged.userFacing(full).getMessage());
        }
        Path aFile = Files.writeString(dir.resolve("plain"), "x");
        java.nio.file.FileSystemException e = assertThrows(java.nio.file.FileSystemException.class,
                () -> StagedOutput.folder(aFile.resolve("sub"), true));
        assertEquals(aFile + ": the output's parent is a file, not a folder", e.getMessage());
    }
}
