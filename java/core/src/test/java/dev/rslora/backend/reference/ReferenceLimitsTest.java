package dev.rslora.backend.reference;

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

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The oracle holds U and V as double[n][r]: an r past a Java array's limit is refused naming it,
 * instead of "OutOfMemoryError: Requested array size exceeds VM limit" from inside the call.
 */
class ReferenceLimitsTest {
    @TempDir
    Path dir;

    private static void refused(Executable call, String fragment) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})  // needs a file system with sparse files (ext4, xfs, tmpfs, APFS)
    void aRankPastAnArraysLimitIsRefusedBeforeAnyWork() throws IOException {
        // A, B, dA, dB of rank 2^31 − 1 over d = 1, F32: four 8 GiB tensors in one sparse file, never read
        int r = Integer.MAX_VALUE;
        long bytes = 4L * r;
        Path f = dir.resolve("adapter.bin");
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.setLength(4 * bytes);
        }
        ReferenceBackend ref = new ReferenceBackend();
        try (Arena arena = Arena.ofShared(); FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            MemorySegment all = ch.map(FileChannel.MapMode.READ_WRITE, 0, 4 * bytes, arena);
            Tensor a = Tensor.wrap(all.asSlice(0, bytes), DType.F32, r, 1);
            Tensor b = Tensor.wrap(all.asSlice(bytes, bytes), DType.F32, 1, r);
            Tensor gradA = Tensor.wrap(all.asSlice(2 * bytes, bytes), DType.F32, r, 1);
            Tensor gradB = Tensor.wrap(all.asSlice(3 * bytes, bytes), DType.F32, 1, r);
            Tensor x = Tensor.allocate(arena, DType.F32, 1, 1);
            Tensor y = Tensor.allocate(arena, DType.F32, 1, 1);
            FrozenWeight fw = ref.prepare(Tensor.allocate(arena, DType.F32, 1, 1), null);
            LoraParams p = new LoraParams(1, 1, 1, r, 1.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
            String expected = "r=2147483647 is above 2147483639, the most values of a Java array";
            refused(() -> ref.forward(p, fw, x, a, b, null, y), expected);
            refused(() -> ref.backward(p, fw, x, a, b, null, y, null, gradA, gradB), expected);
        }
    }
}
