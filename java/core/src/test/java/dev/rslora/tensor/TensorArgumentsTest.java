package dev.rslora.tensor;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad arguments to {@link Tensor}'s accessors and copies: refused naming them, never a wrong element. */
class TensorArgumentsTest {
    /** dim past the rank threw the JDK's bare "Index 2 out of bounds for length 2". */
    @Test
    void dimPastTheRankNamesTheAxisAndTheShape() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.allocate(arena, DType.F32, 3, 4);
            assertEquals(4, t.dim(1));
            ArrayIndexOutOfBoundsException e = assertThrows(ArrayIndexOutOfBoundsException.class, () -> t.dim(2));
            assertEquals("axis 2 of the 2-D tensor [3, 4]: axes are 0..1", e.getMessage());
            assertThrows(ArrayIndexOutOfBoundsException.class, () -> t.dim(-1));
        }
    }

    @Test
    void rowColAccessorsRefuseATensorThatIsNot2D() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor flat = Tensor.allocate(arena, DType.F32, 6);
            Tensor cube = Tensor.of(arena, DType.F32, new float[] {0, 1, 2, 3, 4, 5, 6, 7}, 2, 2, 2);
            Tensor scalar = Tensor.allocate(arena, DType.F32);
            for (Tensor t : new Tensor[] {flat, cube, scalar}) {
                IllegalStateException get = assertThrows(IllegalStateException.class, () -> t.get(0, 1), t.toString());
                assertTrue(get.getMessage().contains("get(row, col) needs a 2-D tensor, got " + t.shapeString()), get.getMessage());
                IllegalStateException set = assertThrows(IllegalStateException.class, () -> t.set(0, 1, 9f), t.toString());
                assertTrue(set.getMessage().contains("set(row, col) needs a 2-D tensor, got " + t.shapeString()), set.getMessage());
            }
            assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, cube.toFloatArray(), "nothing was written");
            Tensor m = Tensor.of(arena, DType.BF16, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            m.set(1, 2, 7f);
            assertEquals(7f, m.get(1, 2));
            assertEquals(2f, m.get(0, 1));
        }
    }

    @Test
    void aConversionIntoMemoryTheSourceSharesIsRefused() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mem = arena.allocate(16);
            Tensor src = Tensor.wrap(mem.asSlice(0, 8), DType.BF16, 4);
            src.copyFrom(new float[] {1, 2, 3, 4});
            Tensor dst = Tensor.wrap(mem, DType.F32, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> dst.copyFrom(src));
            assertTrue(e.getMessage().contains("shares memory"), e.getMessage());
            assertArrayEquals(new float[] {1, 2, 3, 4}, src.toFloatArray(), "the source is untouched");
            // the same dtype may overlap: copied as if through a temporary
            Tensor a = Tensor.wrap(mem.asSlice(0, 12), DType.F32, 3);
            Tensor b = Tensor.wrap(mem.asSlice(4, 12), DType.F32, 3);
            a.copyFrom(new float[] {1, 2, 3});
            b.copyFrom(a);
            assertArrayEquals(new float[] {1, 2, 3}, b.toFloatArray());
            // and a conversion between separate tensors is unaffected
            Tensor f = Tensor.allocate(arena, DType.F32, 4);
            Tensor h = Tensor.of(arena, DType.F16, new float[] {1, 2, 3, 4}, 4);
            f.copyFrom(h);
            assertArrayEquals(new float[] {1, 2, 3, 4}, f.toFloatArray());
        }
    }

    @Test
    void ofRefusesAValueCountThatDoesNotMatchBeforeAllocatingTheShape() {
        try (Arena arena = Arena.ofConfined()) {
            // 2^50 F32 elements: 4 PiB, which allocating first failed on with an OutOfMemoryError
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.of(arena, DType.F32, new float[4], 1L << 50));
            assertTrue(e.getMessage().contains("4 values for shape [1125899906842624]"), e.getMessage());
            IllegalArgumentException few = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.of(arena, DType.F32, new float[4], 2, 3));
            assertTrue(few.getMessage().contains("4 values for shape [2, 3]"), few.getMessage());
        }
    }

    /** A shape whose element or byte count overflows a long threw ArithmeticException "long overflow", naming nothing. */
    @Test
    void aShapePastALongIsRefusedNamingItAndAZeroDimensionIsEmpty() {
        try (Arena arena = Arena.ofConfined()) {
            long big = 1L << 40;
            IllegalArgumentException of = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.of(arena, DType.F32, new float[1], big, big));
            assertTrue(of.getMessage().contains("[1099511627776, 1099511627776]"), of.getMessage());
            IllegalArgumentException wrap = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.wrap(arena.allocate(16), DType.F32, big, big));
            assertTrue(wrap.getMessage().contains("[1099511627776, 1099511627776]"), wrap.getMessage());
            IllegalArgumentException bytes = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.allocate(arena, DType.BF16, 1L << 61, 2));
            assertTrue(bytes.getMessage().contains("[2305843009213693952, 2] BF16"), bytes.getMessage());
            IllegalArgumentException elementBytes = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.allocate(arena, DType.F32, 1L << 62));
            assertTrue(elementBytes.getMessage().contains("overflows"), elementBytes.getMessage());
            Tensor empty = Tensor.allocate(arena, DType.F32, big, big, 0);
            assertEquals(0, empty.numel());
            assertEquals(0, Tensor.wrap(MemorySegment.NULL, DType.F16, 0, Long.MAX_VALUE, Long.MAX_VALUE).numel());
        }
    }

    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})  // needs a file system with sparse files (ext4, xfs, tmpfs, APFS)
    void heapArrayViewsOfATensorPastAnArraysLimitNameTheLimit(@TempDir Path dir) throws IOException {
        // BF16 [2^31] and [1, 2^31 − 8]: 4 GiB declared in a sparse file, never read
        long n = 1L << 31;
        Path f = dir.resolve("huge.bin");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(2 * n);
        }
        try (Arena arena = Arena.ofConfined(); FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, 2 * n, arena);
            Tensor flat = Tensor.wrap(all, DType.BF16, n);
            IllegalStateException e = assertThrows(IllegalStateException.class, flat::toFloatArray);
            assertTrue(e.getMessage().contains("tensor [2147483648] has 2147483648 elements, more than a float[] holds (2147483639)"),
                    e.getMessage());
            Tensor wide = Tensor.wrap(all.asSlice(0, 2 * (n - 8)), DType.BF16, 1, n - 8);
            IllegalStateException m = assertThrows(IllegalStateException.class, wide::toMatrix);
            assertTrue(m.getMessage().contains("at most 2147483639 rows and columns (a Java array's limit), got [1, 2147483640]"),
                    m.getMessage());
        }
    }

    /**
     * Every accessor of a tensor whose arena was closed threw the JDK's bare "Already closed", naming nothing;
     * it names the call, the tensor and why its memory is gone (the JDK's exception kept as the cause).
     */
    @ParameterizedTest
    @EnumSource(DType.class)
    void aTensorOfAClosedArenaIsNamedByEveryAccessor(DType dtype) {
        Tensor t;
        Tensor src;
        try (Arena arena = Arena.ofShared()) {
            t = Tensor.allocate(arena, dtype, 2, 3);
            src = Tensor.allocate(arena, dtype, 2, 3);
        }
        String closed = "tensor [2, 3] " + dtype + " is closed: the arena that owns its memory was closed";
        expectClosed("get", closed, () -> t.get(1));
        expectClosed("get", closed, () -> t.get(1, 2));
        expectClosed("set", closed, () -> t.set(1, 1f));
        expectClosed("set", closed, () -> t.set(1, 2, 1f));
        expectClosed("fill", closed, () -> t.fill(1f));
        expectClosed(dtype == DType.F32 ? "copyFrom" : "set", closed, () -> t.copyFrom(new float[6]));
        expectClosed(dtype == DType.F32 ? "copyFrom" : "set", closed, () -> t.copyFrom(new float[2][3]));
        expectClosed(dtype == DType.F32 ? "toMatrix" : "get", closed, t::toMatrix);
        expectClosed(dtype == DType.F32 ? "toFloatArray" : "get", closed, t::toFloatArray);
        expectClosed("copyFrom", closed, () -> t.copyFrom(src));
        try (Arena arena = Arena.ofConfined()) {
            Tensor live = Tensor.allocate(arena, dtype, 2, 3);
            Tensor liveF32 = Tensor.allocate(arena, DType.F32, 2, 3);
            expectClosed("copyFrom (the source)", closed, () -> live.copyFrom(src));
            // the closed tensor's memory may be the live one's now: named as closed, not as sharing memory
            expectClosed("copyFrom", closed, () -> src.copyFrom(liveF32));
            expectClosed("copyFrom (the source)", closed, () -> src.to(arena, DType.F32));
            assertEquals(0f, live.get(0), "a live tensor reads as before");
        }
    }

    private static void expectClosed(String op, String closed, Executable call) {
        IllegalStateException e = assertThrows(IllegalStateException.class, call);
        assertTrue(e.getMessage().startsWith(op + ": " + closed), e.getMessage());
        assertTrue(e.getCause() == null || e.getCause() instanceof IllegalStateException, "the JDK's exception is the cause: "
                + e.getCause());
    }
}
