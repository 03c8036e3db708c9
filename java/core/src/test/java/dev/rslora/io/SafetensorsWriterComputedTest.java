package dev.rslora.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tensors computed while the file is written: same bytes as a held tensor, chunked, aborting cleanly. */
class SafetensorsWriterComputedTest {

    @Test
    void aComputedTensorIsWrittenExactlyAsTheSameHeldTensor(@TempDir Path dir) throws Exception {
        // 3 M F32 elements = 12 MiB: more than one 8 MiB chunk, so the ranges are checked too
        long n = 3L << 20;
        List<long[]> ranges = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            Tensor held = Tensor.allocate(arena, DType.F32, n);
            for (long i = 0; i < n; i++) {
                held.set(i, i * 0.5f - 7);
            }
            Path a = dir.resolve("held.safetensors");
            Path b = dir.resolve("computed.safetensors");
            new SafetensorsWriter().metadata("format", "pt").add("x", held).add("y", Tensor.of(arena, DType.BF16, new float[]{1, 2}, 2)).write(a);
            new SafetensorsWriter().metadata("format", "pt")
                    .add(SafetensorsWriter.Item.computed("x", SafetensorsDtype.F32, new long[]{n}, (offset, dst) -> {
                        ranges.add(new long[]{offset, dst.byteSize()});
                        MemorySegment.copy(held.segment(), offset, dst, 0, dst.byteSize());
                    }))
                    .add("y", Tensor.of(arena, DType.BF16, new float[]{1, 2}, 2))
                    .write(b);
            assertEquals(-1, Files.mismatch(a, b), "identical files");
        }
        long expected = 0;
        for (long[] r : ranges) {
            assertEquals(expected, r[0], "consecutive ranges");
            assertEquals(0, r[1] % 8, "whole elements");
            expected += r[1];
        }
        assertEquals(n * 4, expected);
        assertTrue(ranges.size() >= 2, "chunked: " + ranges.size() + " ranges");
    }

    @Test
    void aFailingProducerLeavesNoFile(@TempDir Path dir) throws Exception {
        Path target = dir.resolve("out.safetensors");
        IOException e = assertThrows(IOException.class, () -> new SafetensorsWriter()
                .add(SafetensorsWriter.Item.computed("w", SafetensorsDtype.BF16, new long[]{4, 4}, (offset, dst) -> {
                    throw new IOException("producer failed at " + offset);
                }))
                .write(target));
        assertEquals("producer failed at 0", e.getMessage());
        try (var s = Files.list(dir)) {
            assertEquals(List.of(), s.toList());
        }
    }

    @Test
    void exactlyOneOfDataAndProducer() {
        assertThrows(IllegalArgumentException.class,
                () -> new SafetensorsWriter.Item("w", SafetensorsDtype.F32, new long[]{1}, null, null));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment four = arena.allocate(4);
            assertThrows(IllegalArgumentException.class,
                    () -> new SafetensorsWriter.Item("w", SafetensorsDtype.F32, new long[]{1}, four, (o, d) -> { }));
        }
    }
}
