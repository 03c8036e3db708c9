package dev.rslora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

/** The writer never leaves a partial file, and refuses inconsistent input before writing. */
class SafetensorsWriterFailureTest {

    private static List<Path> listing(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    @Test
    void aShortSourceSegmentIsRefusedAndNothingIsWritten(@TempDir Path dir) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment shortSeg = arena.allocate(20);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new SafetensorsWriter().addRaw("w", "F32", new long[]{2, 3}, shortSeg));
            assertTrue(e.getMessage().contains("\"w\"") && e.getMessage().contains("needs 24 bytes")
                    && e.getMessage().contains("holds 20"), e.getMessage());
        }
        assertEquals(List.of(), listing(dir));
    }

    /** A tensor whose arena was closed after it was added failed mid-write with the JDK's "Already closed", naming no tensor. */
    @Test
    void aTensorWhoseMemoryWasFreedIsNamedAndNothingIsWritten(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("out.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        try (Arena live = Arena.ofConfined()) {
            w.add("a.kept", Tensor.of(live, DType.F32, new float[] {1, 2}, 2));
            Arena freed = Arena.ofConfined();
            w.add("z.freed", Tensor.of(freed, DType.F32, new float[] {3}, 1));
            freed.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.write(target));
            assertEquals("tensor \"z.freed\": its memory was freed (the arena that held it is closed); nothing was written",
                    e.getMessage());
        }
        try (var files = Files.list(dir)) {
            assertEquals(0, files.count(), "no file left");
        }
    }

    @Test
    void aFailureMidWriteLeavesNeitherTargetNorTemporaryFile(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("out.safetensors");
        SafetensorsWriter w = new SafetensorsWriter();
        try (Arena live = Arena.ofConfined()) {
            w.add("a.first", Tensor.of(live, DType.F32, new float[]{1, 2, 3, 4}, 4));
            Arena doomed = Arena.ofConfined();
            w.add("b.second", Tensor.of(doomed, DType.F32, new float[]{5, 6}, 2));
            doomed.close(); // its memory is gone: copying "b.second" fails after "a.first" was written
            assertThrows(IllegalStateException.class, () -> w.write(target));
        }
        assertEquals(List.of(), listing(dir), "no target and no .tmp file");
    }

    @Test
    void aFailedWriteKeepsTheExistingTarget(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("out.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().add("old", Tensor.of(arena, DType.F32, new float[]{7}, 1)).write(target);
        }
        byte[] before = Files.readAllBytes(target);
        SafetensorsWriter w = new SafetensorsWriter();
        Arena doomed = Arena.ofConfined();
        w.add("new", Tensor.of(doomed, DType.BF16, new float[]{1, 2}, 2));
        doomed.close();
        assertThrows(IllegalStateException.class, () -> w.write(target));
        assertArrayEquals(before, Files.readAllBytes(target));
        assertEquals(List.of(target), listing(dir));
    }

    @Test
    void anOutputThatIsAFifoIsRefusedAndStaysAFifo(@TempDir Path dir) throws Exception {
        // a device or pipe (e.g. --output /dev/null) must not be replaced by a regular file through the rename
        Path fifo = dev.rslora.testing.Fifo.create(dir.resolve("pipe"));
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().add("a", Tensor.of(arena, DType.F32, new float[]{1}, 1));
            IOException e = assertThrows(IOException.class, () -> w.write(fifo));
            assertTrue(e.getMessage().contains(fifo.toString()) && e.getMessage().contains("not a regular file"), e.getMessage());
        }
        assertTrue(Files.exists(fifo) && !Files.isRegularFile(fifo), "the FIFO is still a FIFO");
        assertEquals(List.of(fifo), listing(dir), "no temporary file left");
    }

    @Test
    void aMissingDirectoryFailsCleanly(@TempDir Path dir) {
        Path target = dir.resolve("missing").resolve("out.safetensors");
        assertThrows(IOException.class, () -> new SafetensorsWriter().metadata("k", "v").write(target));
        assertTrue(Files.notExists(dir.resolve("missing")));
    }

    @Test
    void writingOverADirectoryFailsAndCleansUp(@TempDir Path dir) throws Exception {
        Path target = Files.createDirectory(dir.resolve("taken"));
        Files.writeString(target.resolve("keep.txt"), "x");
        assertThrows(IOException.class, () -> new SafetensorsWriter().metadata("k", "v").write(target));
        assertEquals(List.of(target), listing(dir), "only the directory remains");
        assertTrue(Files.exists(target.resolve("keep.txt")));
    }

    @Test
    void badTargetsAreNamedInTheErrorNotTheTemporaryFile(@TempDir Path dir) throws Exception {
        Path missing = dir.resolve("missing");
        IOException parent = assertThrows(IOException.class,
                () -> new SafetensorsWriter().metadata("k", "v").write(missing.resolve("out.safetensors")));
        assertTrue(parent.getMessage().contains(missing.toString()) && !parent.getMessage().contains(".tmp-")
                && parent.getMessage().contains("parent folder does not exist"), parent.getMessage());
        Path folder = Files.createDirectory(dir.resolve("folder"));
        IOException isDir = assertThrows(IOException.class, () -> new SafetensorsWriter().metadata("k", "v").write(folder));
        assertTrue(isDir.getMessage().contains(folder.toString()) && !isDir.getMessage().contains(".tmp-")
                && isDir.getMessage().contains("is a folder"), isDir.getMessage());
        // the root has no parent: an IOException naming it, not a NullPointerException
        Path root = dir.getRoot();
        IOException atRoot = assertThrows(IOException.class, () -> new SafetensorsWriter().metadata("k", "v").write(root));
        assertTrue(atRoot.getMessage().contains(root.toString()) && atRoot.getMessage().contains("is a folder"), atRoot.getMessage());
        assertEquals(List.of(folder), listing(dir));
    }

    @Test
    void inconsistentInputIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().addRaw("x", "U8", new long[]{1}, arena.allocate(1));
            IllegalArgumentException dup = assertThrows(IllegalArgumentException.class,
                    () -> w.addRaw("x", "U8", new long[]{1}, arena.allocate(1)));
            assertTrue(dup.getMessage().contains("\"x\""), dup.getMessage());
            assertThrows(IllegalArgumentException.class, () -> w.addRaw("__metadata__", "U8", new long[]{1}, arena.allocate(1)));
            IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                    () -> w.addRaw("y", "F128", new long[]{1}, arena.allocate(16)));
            assertTrue(unknown.getMessage().contains("F128"), unknown.getMessage());
            IllegalArgumentException neg = assertThrows(IllegalArgumentException.class,
                    () -> w.addRaw("y", "U8", new long[]{-1}, arena.allocate(1)));
            assertTrue(neg.getMessage().contains("-1"), neg.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> w.addRaw("y", "F32", new long[]{1L << 62, 4}, arena.allocate(1)));
            assertThrows(IllegalArgumentException.class, () -> w.addRaw("\uD800", "U8", new long[]{1}, arena.allocate(1)));
            assertThrows(IllegalArgumentException.class, () -> w.metadata("k", "\uDC00"));
        }
    }

    @Test
    @EnabledOnOs(OS.LINUX)
    void aFolderThatRefusesNewFilesIsNamedNotTheTemporaryFile() throws Exception {
        // sysfs refuses to create files, even for root (whom permission bits would not stop)
        Path sys = Path.of("/sys");
        assumeTrue(Files.isDirectory(sys) && !Files.exists(sys.resolve("rslora.safetensors")));
        Path target = sys.resolve("rslora.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().add("x", Tensor.of(arena, DType.F32, new float[]{1}, 1));
            IOException e = assertThrows(IOException.class, () -> w.write(target));
            assertTrue(e.getMessage().startsWith(target + ": cannot write in " + sys), e.getMessage());
            assertFalse(e.getMessage().contains(".tmp-"), e.getMessage());
        }
    }
    /**
     * Tensors whose sizes are each valid but whose sum overflows a signed 64-bit offset used to fail
     * with a bare ArithmeticException from the header encoder; write promises IllegalArgumentException.
     */
    @Test
    void dataOffsetsThatOverflowTogetherAreRefusedNamingTheTensor(@TempDir Path dir) throws Exception {
        SafetensorsWriter.ByteProducer never = (offset, dst) -> {
            throw new AssertionError("nothing may be written");
        };
        SafetensorsWriter w = new SafetensorsWriter()
                .add(SafetensorsWriter.Item.computed("a", SafetensorsDtype.F32, new long[]{1L << 60}, never))
                .add(SafetensorsWriter.Item.computed("b", SafetensorsDtype.F32, new long[]{1L << 60}, never));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.write(dir.resolve("out.safetensors")));
        assertTrue(e.getMessage().contains("\"b\"") && e.getMessage().contains("overflow"), e.getMessage());
        assertEquals(List.of(), listing(dir));
    }

    /**
     * The temporary file's name adds a dot and a 21-character suffix to the target's: a target name
     * that the file system takes (up to 255 bytes) must not fail only because the temporary name would
     * be too long.
     */
    @Test
    void aLongTargetNameThatTheFileSystemTakesIsWritten(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("m".repeat(240) + ".safetensors");
        Files.writeString(target, "probe");   // the file system takes the name itself
        Files.delete(target);
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().add("x", Tensor.of(arena, DType.F32, new float[]{1, 2}, 2)).write(target);
            assertArrayEquals(new float[]{1, 2}, SafetensorsFile.open(target, arena).tensor("x").toFloatArray());
        }
        assertEquals(List.of(target), listing(dir));
    }
    /** metadata(Map) with one bad entry is refused whole: it used to have set the entries before it. */
    @Test
    void aRefusedMetadataMapSetsNoneOfItsEntries(@TempDir Path dir) throws Exception {
        java.util.Map<String, String> entries = new java.util.LinkedHashMap<>();
        entries.put("format", "pt");
        entries.put("bad", "\uD800");
        SafetensorsWriter w = new SafetensorsWriter();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.metadata(entries));
        assertTrue(e.getMessage().contains("\\ud800"), e.getMessage());
        Path target = dir.resolve("out.safetensors");
        w.write(target);
        try (Arena arena = Arena.ofConfined()) {
            assertTrue(SafetensorsFile.open(target, arena).metadata().isEmpty(), "no entry of the refused map");
        }
    }
}
