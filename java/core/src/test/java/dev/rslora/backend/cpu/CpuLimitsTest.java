package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Shapes whose heap scratch would not fit a Java array (or whose int offsets would wrap) are
 * refused before any work with an IllegalArgumentException naming the buffer, its shape, the limit
 * and the largest batch that fits, instead of "ArithmeticException: integer overflow" from deep
 * inside the backward. The checks are called with plain numbers where the tensors would not fit in
 * a test; the backward and prepare also end to end over sparse files that are never read.
 */
class CpuLimitsTest {
    @TempDir
    Path dir;

    private static LoraParams params(int n, int dIn, int dOut, int r, float dropout) {
        return new LoraParams(n, dIn, dOut, r, 1.0, dropout, 7, 0, 0, true, true, GradMode.ASSIGN);
    }

    private static IllegalArgumentException refused(Executable call, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String f : fragments) {
            assertTrue(e.getMessage().contains(f), () -> "message '" + e.getMessage() + "' lacks '" + f + "'");
        }
        return e;
    }

    /** The row count the message suggests, which must fit while one more row does not. */
    private static int suggested(IllegalArgumentException e) {
        String m = e.getMessage();
        String key = "split the batch into calls of at most ";
        int at = m.indexOf(key);
        assertTrue(at >= 0, () -> "no split suggested: " + m);
        return Integer.parseInt(m.substring(at + key.length(), m.indexOf(' ', at + key.length())));
    }

    @Test
    void aBackwardWhoseVDoesNotFitAnArrayIsRefusedWithTheBatchThatFits() {
        // n·r = 2^31: V [padRows(n), r] alone is past the limit; the forward needs no such buffer
        LoraParams p = params(1 << 28, 1, 1, 8, 0f);
        assertNull(CpuLimits.forwardProblem(p, 2), "the forward cuts rows into chunks and keeps U off-heap");
        IllegalArgumentException e = refused(() -> CpuLimits.backward(p, 2, true),
                "cpu backward (n=268435456, d_in=1, d_out=1, r=8)", "V = dY·B [", "2147483639");
        int m = suggested(e);
        assertNull(CpuLimits.backwardProblem(p.withN(m), 2, true), "n=" + m + " fits");
        assertNotNull(CpuLimits.backwardProblem(p.withN(m + 1), 2, true), "n=" + (m + 1) + " does not");
    }

    @Test
    void aBackwardWhoseTransposedVAndUDoNotFitIsRefused() {
        // r = 1: V [n, 1] fits, Vᵀ and Uᵀ [padRows(1), n] = [MR, 2^29] do not
        LoraParams p = params(1 << 29, 1, 1, 1, 0f);
        IllegalArgumentException e = refused(() -> CpuLimits.backward(p, 1, false),
                "Vᵀ and Uᵀ [" + MicroKernel.MR + ", 536870912] = " + (long) MicroKernel.MR * (1 << 29) + " elements");
        int m = suggested(e);
        assertTrue(m <= CpuLimits.MAX_ARRAY / MicroKernel.MR, e.getMessage());
        assertNull(CpuLimits.backwardProblem(p.withN(m), 1, false));
        assertNotNull(CpuLimits.backwardProblem(p.withN(m + 1), 1, false));
    }

    @Test
    void dropoutKeepBitsCountAgainstTheBackwardsLimit() {
        // 2^24 rows of 2^20 columns: 2^14 words of keep bits a row, 2^38 in all
        LoraParams none = params(1 << 24, 1 << 20, 1, 1, 0f);
        LoraParams dropout = params(1 << 24, 1 << 20, 1, 1, 0.1f);
        assertNull(CpuLimits.backwardProblem(none, 2, false));
        refused(() -> CpuLimits.backward(dropout, 2, false), "dropout keep bits (64 columns a word) [" + Split.padRows(1 << 24)
                + ", " + MaskBits.words(Panels.panels(1 << 20) * MicroKernel.NR) + "]", "split the batch into calls of at most");
    }

    @Test
    void aRankTooLargeForTheGradientGemmsIsRefusedEvenForFewRows() {
        // r = 2^24: the accumulators [r, one group of columns] pass 2^31 for any n above RowGrads.MAX_ROWS
        LoraParams p = params(RowGrads.MAX_ROWS + 1, 4096, 4096, 1 << 24, 0f);
        IllegalArgumentException e = refused(() -> CpuLimits.backward(p, 2, true),
                "dA and dB accumulators [" + Split.padRows(1 << 24) + ", ");
        int m = suggested(e);
        assertTrue(m <= RowGrads.MAX_ROWS, e.getMessage());
        assertNull(CpuLimits.backwardProblem(p.withN(m), 2, true));
    }

    @Test
    void fewRowsOfAVeryWideInputAreRefusedWhereNoSplitHelps() {
        // N ≤ RowGrads.MAX_ROWS keeps D(X) [n, d_in] whole: 2 rows of 2^30 + 1 columns do not fit, one row does
        LoraParams p = params(2, (1 << 30) + 1, 1, 1, 0f);
        IllegalArgumentException e = refused(() -> CpuLimits.backward(p, 1, false), "D(X) rows in fp32 [2, 1073741825]");
        assertTrue(suggested(e) == 1, e.getMessage());
        // with dX the chunk of dX rows [MR, d_in padded] is past the limit even for one row
        refused(() -> CpuLimits.backward(p, 1, true), "dX rows in fp32 [" + MicroKernel.MR + ", ",
                "fewer rows do not help: d_in, d_out or r is too large");
    }

    @Test
    void aForwardOfRowsTooWideForItsChunkBuffersIsRefused() {
        // d_in = 2^26: a chunk of 64 rows of X as fp32 is 2^32 elements; fewer rows fit
        LoraParams p = params(4096, 1 << 26, 16, 8, 0f);
        IllegalArgumentException e = refused(() -> CpuLimits.forward(p, 2), "cpu forward (n=4096, d_in=67108864",
                "X rows in fp32 [", "2147483639");
        int m = suggested(e);
        assertNull(CpuLimits.forwardProblem(p.withN(m), 2), "n=" + m + " fits");
        LoraParams wide = params(1, CpuLimits.MAX_DIM, 16, 8, 0f);
        refused(() -> CpuLimits.forward(wide, 2), "X rows in fp32 [" + MicroKernel.MR + ", ", "fewer rows do not help");
    }

    @Test
    void aMergeOrPrepareBeyondTheLimitsIsRefused() {
        // MR ≥ 4 rows of 2^29 + 1 values
        refused(() -> CpuLimits.merge(16, (1 << 29) + 1, 8), "cpu merge (d_in=536870913, d_out=16, r=8): W rows in fp32 ["
                + MicroKernel.MR + ", 536870913]");
        refused(() -> CpuLimits.merge(16, 16, (1 << 29) + 1), "B rows in fp32 [" + MicroKernel.MR + ", 536870913]");
        refused(() -> CpuLimits.prepare(CpuLimits.MAX_DIM + 1, 1), "weight [2147482625, 1]: d_out=2147482625 is above 2147482624");
        refused(() -> CpuLimits.prepare(1, Integer.MAX_VALUE), "d_in=2147483647 is above 2147482624");
        CpuLimits.prepare(CpuLimits.MAX_DIM, CpuLimits.MAX_DIM);
        CpuLimits.merge(4096, 4096, 256);
    }

    @Test
    void everydayShapesPass() {
        for (int n : new int[] {1, 7, 8, 9, 64, 2048, 1 << 20}) {
            for (float dropout : new float[] {0f, 0.1f}) {
                LoraParams p = params(n, 4096, 11008, 64, dropout);
                assertNull(CpuLimits.forwardProblem(p, 4), "n=" + n);
                assertNull(CpuLimits.backwardProblem(p, 4, true), "n=" + n);
            }
        }
    }

    /** A sparse file of {@code bytes} mapped in {@code arena}: nothing is read or written before the checks. */
    private MemorySegment sparse(Arena arena, String name, long bytes) throws IOException {
        Path f = dir.resolve(name);
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(bytes);
        }
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            return ch.map(FileChannel.MapMode.READ_WRITE, 0, bytes, arena);
        }
    }

    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})  // needs a file system with sparse files (ext4, xfs, tmpfs, APFS)
    void theCpuBackendRefusesTheBackwardOfAHugeBatchBeforeAnyWork() throws IOException {
        // X [2^28, 1], dY [2^28, 1] and U [2^28, 8] F32: 10 GiB declared in one sparse file; n·r = 2^31
        int n = 1 << 28;
        int r = 8;
        long rowBytes = 4L * n;
        try (Arena arena = Arena.ofShared(); CpuBackend be = new CpuBackend(2)) {
            MemorySegment big = sparse(arena, "batch.bin", rowBytes * (2 + r));
            Tensor x = Tensor.wrap(big.asSlice(0, rowBytes), DType.F32, n, 1);
            Tensor dy = Tensor.wrap(big.asSlice(rowBytes, rowBytes), DType.F32, n, 1);
            Tensor u = Tensor.wrap(big.asSlice(2 * rowBytes, r * rowBytes), DType.F32, n, r);
            Tensor w = Tensor.allocate(arena, DType.F32, 1, 1);
            Tensor a = Tensor.allocate(arena, DType.F32, r, 1);
            Tensor b = Tensor.allocate(arena, DType.F32, 1, r);
            Tensor gradA = Tensor.allocate(arena, DType.F32, r, 1);
            Tensor gradB = Tensor.allocate(arena, DType.F32, 1, r);
            try (FrozenWeight fw = be.prepare(w, null)) {
                LoraParams p = params(n, 1, 1, r, 0f);
                IllegalArgumentException e = refused(() -> be.backward(p, fw, x, a, b, u, dy, null, gradA, gradB),
                        "cpu backward (n=268435456, d_in=1, d_out=1, r=8): V = dY·B [", "2147483639",
                        "split the batch into calls of at most");
                assertTrue(suggested(e) < n, e.getMessage());
                // the refused call changed nothing: the backend still runs a small step
                LoraParams small = params(3, 1, 1, r, 0f);
                try (Arena step = Arena.ofConfined()) {
                    Tensor xs = Tensor.allocate(step, DType.F32, 3, 1);
                    Tensor us = Tensor.allocate(step, DType.F32, 3, r);
                    Tensor ys = Tensor.allocate(step, DType.F32, 3, 1);
                    be.forward(small, fw, xs, a, b, us, ys);
                    be.backward(small, fw, xs, a, b, us, ys.to(step, DType.F32), null, gradA, gradB);
                }
            }
        }
    }

    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})  // needs a file system with sparse files
    void theCpuBackendRefusesAWeightPastTheLargestDimensionBeforePackingIt() throws IOException {
        // W [2^31 − 8, 1] F32: 8 GiB declared, never read; rounding d_out up to whole panels passes 2^31
        int dOut = Integer.MAX_VALUE - 7;
        try (Arena arena = Arena.ofShared(); CpuBackend be = new CpuBackend(1)) {
            Tensor w = Tensor.wrap(sparse(arena, "w.bin", 4L * dOut), DType.F32, dOut, 1);
            refused(() -> be.prepare(w, null), "weight [2147483640, 1]: d_out=2147483640 is above 2147482624");
        }
    }
}
