package dev.rslora.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writer → reader round trips: bytes, shapes, dtypes, metadata, layout and zero-copy views. */
class SafetensorsRoundTripTest {
    private static final long SEED = 20240917L;
    private static final ValueLayout.OfLong LE_LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static Tensor random(Arena arena, Random rnd, DType dtype, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rnd.nextGaussian());
        }
        return t;
    }

    @Test
    void everyDtypeKindRoundTripsByteForByte(@TempDir Path dir) throws Exception {
        Random rnd = new Random(SEED);
        Path path = dir.resolve("model.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("layer.0.lora_A.weight", random(arena, rnd, DType.F32, 3, 5));
            tensors.put("layer.0.lora_B.weight", random(arena, rnd, DType.BF16, 4, 3));
            tensors.put("layer.1.half", random(arena, rnd, DType.F16, 7));
            tensors.put("empty", random(arena, rnd, DType.F32, 0, 4));
            tensors.put("scalar", random(arena, rnd, DType.F32));
            MemorySegment ids = arena.allocate(3 * 8);
            long[] idValues = {-1L, Long.MAX_VALUE, 42L};
            for (int i = 0; i < 3; i++) {
                ids.setAtIndex(LE_LONG, i, idValues[i]);
            }
            MemorySegment mask = arena.allocate(5);
            for (int i = 0; i < 5; i++) {
                mask.set(ValueLayout.JAVA_BYTE, i, (byte) (rnd.nextInt(256)));
            }

            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").metadata("note", "r=8, \"α\" ✓");
            tensors.forEach(w::add);
            w.addRaw("position_ids", "I64", new long[]{3}, ids);
            w.addRaw("mask", "U8", new long[]{5}, mask);
            w.write(path);

            SafetensorsFile f = SafetensorsFile.open(path, arena);
            assertEquals(Files.size(path), f.fileSize());
            assertEquals(0, f.headerLength() % 8, "header padded to a multiple of 8");
            assertEquals(List.of("format", "note"), List.copyOf(f.metadata().keySet()));
            assertEquals("r=8, \"α\" ✓", f.metadata().get("note"));
            assertEquals(7, f.entries().size());

            for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                Tensor src = e.getValue();
                Tensor back = f.tensor(e.getKey());
                assertEquals(src.dtype(), back.dtype(), e.getKey());
                assertArrayEquals(src.shape(), back.shape(), e.getKey());
                assertEquals(-1, src.segment().mismatch(back.segment()), e.getKey() + ": bytes differ");
                assertZeroCopy(f, back.segment());
            }
            assertEquals(SafetensorsDtype.I64, f.entry("position_ids").dtype());
            assertEquals("I64", f.entry("position_ids").dtypeName());
            assertEquals(-1, ids.mismatch(f.bytes("position_ids")));
            assertEquals(Long.MAX_VALUE, f.bytes("position_ids").getAtIndex(LE_LONG, 1));
            assertEquals(-1, mask.mismatch(f.bytes("mask")));
            assertZeroCopy(f, f.bytes("mask"));

            IllegalArgumentException raw = assertThrows(IllegalArgumentException.class, () -> f.tensor("position_ids"));
            assertTrue(raw.getMessage().contains("\"position_ids\"") && raw.getMessage().contains("I64"), raw.getMessage());
            IllegalArgumentException absent = assertThrows(IllegalArgumentException.class, () -> f.tensor("nope"));
            assertTrue(absent.getMessage().contains("\"nope\"") && absent.getMessage().contains(path.toString()), absent.getMessage());
            assertTrue(f.bytes("mask").isReadOnly(), "views of a read-only mapping are read-only");
        }
    }

    private static void assertZeroCopy(SafetensorsFile f, MemorySegment view) {
        assertTrue(view.isMapped(), "a view of the file mapping, not a copy");
        long lo = f.mapping().address() + f.dataStart();
        long hi = f.mapping().address() + f.fileSize();
        assertTrue(view.address() >= lo && view.address() + view.byteSize() <= hi, "view lies inside the data buffer");
    }

    @Test
    void headerIsCompactOrderedAndPadded(@TempDir Path dir) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter()
                    .addRaw("b", "U8", new long[]{1}, arena.allocate(1))
                    .addRaw("a", "F32", new long[]{1}, arena.allocate(4))
                    .addRaw("c", "I64", new long[]{1}, arena.allocate(8))
                    .addRaw("a2", "BF16", new long[]{1}, arena.allocate(2))
                    .addRaw("z", "F64", new long[]{1}, arena.allocate(8))
                    .addRaw("y", "F32", new long[]{}, arena.allocate(4))
                    .metadata("format", "pt");
            String header = new String(w.header(), StandardCharsets.UTF_8);
            // Reference order: dtype alignment largest first (I64 > F64 > F32 > BF16 > U8), then name.
            String expected = "{\"__metadata__\":{\"format\":\"pt\"},"
                    + "\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                    + "\"z\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},"
                    + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
                    + "\"y\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[20,24]},"
                    + "\"a2\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[24,26]},"
                    + "\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[26,27]}}";
            assertEquals(expected, header.stripTrailing());
            assertEquals(0, header.length() % 8);
            assertTrue(header.length() - expected.length() < 8);

            Path p = dir.resolve("ordered.safetensors");
            w.write(p);
            SafetensorsFile f = SafetensorsFile.open(p, arena);
            assertEquals(List.of("c", "z", "a", "y", "a2", "b"), f.names());
        }
    }

    /**
     * The byte-sized dtypes of newer writers (MX block scales F8_E8M0, AMD's FNUZ float8s, complex C64)
     * were unknown, so a merge refused a base that only held them in tensors it copies. They read, keep
     * their bytes, and sort where the reference's enum puts them (C64 between F64 and F32).
     */
    @Test
    void newerByteSizedDtypesAreReadAndWritten(@TempDir Path dir) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment scales = arena.allocate(4);
            scales.setAtIndex(java.lang.foreign.ValueLayout.JAVA_BYTE, 2, (byte) 127);
            SafetensorsWriter w = new SafetensorsWriter()
                    .addRaw("scales", "F8_E8M0", new long[]{4}, scales)
                    .addRaw("fnuz", "F8_E4M3FNUZ", new long[]{2}, arena.allocate(2))
                    .addRaw("fnuz2", "F8_E5M2FNUZ", new long[]{1}, arena.allocate(1))
                    .addRaw("f", "F32", new long[]{1}, arena.allocate(4))
                    .addRaw("c", "C64", new long[]{2}, arena.allocate(16))
                    .addRaw("d", "F64", new long[]{1}, arena.allocate(8));
            Path p = dir.resolve("newer.safetensors");
            w.write(p);
            SafetensorsFile f = SafetensorsFile.open(p, arena);
            assertEquals(List.of("d", "c", "f", "fnuz2", "fnuz", "scales"), f.names());
            assertEquals(SafetensorsDtype.C64, f.entry("c").dtype());
            assertEquals(16, f.entry("c").byteLength());
            assertEquals(SafetensorsDtype.F8_E8M0, f.entry("scales").dtype());
            assertEquals((byte) 127, f.bytes("scales").getAtIndex(java.lang.foreign.ValueLayout.JAVA_BYTE, 2));
        }
    }

    @Test
    void namesSortByUtf8BytesLikeTheReferenceWriter() {
        // U+FFFF sorts before U+1F600 in UTF-8 bytes (EF.. < F0..) but after it in UTF-16 units (FFFF > D83D).
        String bmp = "\uFFFF";
        String emoji = "\uD83D\uDE00";
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter()
                    .addRaw(emoji, "U8", new long[]{0}, arena.allocate(0))
                    .addRaw(bmp, "U8", new long[]{0}, arena.allocate(0));
            assertEquals(List.of(bmp, emoji), w.fileOrder().stream().map(SafetensorsWriter.Item::name).toList());
        }
    }

    @Test
    void matchesTheReferenceWritersBytesForASmallFile(@TempDir Path dir) throws Exception {
        // One F32 [1, 2, 3] tensor "attn.0" holding 0..5: the 64-byte header needs no padding.
        Path p = dir.resolve("attn.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, DType.F32, new float[]{0, 1, 2, 3, 4, 5}, 1, 2, 3);
            new SafetensorsWriter().add("attn.0", t).write(p);
        }
        byte[] bytes = Files.readAllBytes(p);
        String header = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}";
        assertEquals(64, header.length());
        assertEquals(8 + 64 + 24, bytes.length);
        assertEquals(64, bytes[0]);
        assertArrayEquals(new byte[7], Arrays.copyOfRange(bytes, 1, 8));
        assertEquals(header, new String(bytes, 8, 64, StandardCharsets.US_ASCII));
        assertArrayEquals(new byte[]{0, 0, 0, 0, 0, 0, (byte) 0x80, 0x3f}, Arrays.copyOfRange(bytes, 72, 80));

        // No tensors, metadata only: 35 bytes of JSON padded with 5 spaces to 40.
        Path m = dir.resolve("meta.safetensors");
        new SafetensorsWriter().metadata("framework", "pt").write(m);
        byte[] meta = Files.readAllBytes(m);
        assertEquals(48, meta.length);
        assertEquals(40, meta[0]);
        assertEquals("{\"__metadata__\":{\"framework\":\"pt\"}}     ", new String(meta, 8, 40, StandardCharsets.US_ASCII));
    }

    @Test
    void heapSegmentsAreStagedAndWritten(@TempDir Path dir) throws Exception {
        float[] values = new float[3 * 1000 + 7];
        Random rnd = new Random(SEED + 1);
        for (int i = 0; i < values.length; i++) {
            values[i] = rnd.nextFloat();
        }
        Path p = dir.resolve("heap.safetensors");
        new SafetensorsWriter().addRaw("h", "F32", new long[]{values.length}, MemorySegment.ofArray(values)).write(p);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(p, arena);
            assertArrayEquals(values, f.tensor("h").toFloatArray());
        }
    }

    @Test
    void aFileCanBeRewrittenFromItsOwnMapping(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("self.safetensors");
        Random rnd = new Random(SEED + 2);
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = random(arena, rnd, DType.F32, 16, 8);
            new SafetensorsWriter().add("a", a).metadata("v", "1").write(p);
            SafetensorsFile first = SafetensorsFile.open(p, arena);
            // The rename leaves the old inode (and this mapping) intact while the new file replaces it.
            new SafetensorsWriter().copy(first, "a").addRaw("b", "U8", new long[]{2}, arena.allocate(2))
                    .metadata(first.metadata()).metadata("v", "2").write(p);
            SafetensorsFile second = SafetensorsFile.open(p, arena);
            assertEquals(Map.of("v", "2"), second.metadata());
            assertEquals(-1, a.segment().mismatch(second.bytes("a")));
            assertEquals(-1, first.bytes("a").mismatch(second.bytes("a")));
            try (var files = Files.list(dir)) {
                assertEquals(List.of(p), files.toList(), "no temporary file left behind");
            }
        }
    }
    /**
     * The reference writer (serde_json) writes a character outside the BMP as its 4 UTF-8 bytes; the
     * header used to carry it as the escape pair {@code \\ud83d\\ude00}: the same JSON value, but not the
     * reference writer's bytes. Expected bytes from Python safetensors 0.8.0's {@code save_file}.
     */
    @Test
    void charactersOutsideTheBmpAreWrittenAsUtf8LikeTheReferenceWriter() {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter().metadata("k", "\uD83D\uDE00\u00e9")
                    .addRaw("\uD83D\uDE00.w", "U8", new long[]{1}, arena.allocate(1))
                    .addRaw("a\u0001\u007f\u2028/", "U8", new long[]{1}, arena.allocate(1));
            String expected = "{\"__metadata__\":{\"k\":\"\uD83D\uDE00\u00e9\"},"
                    + "\"a\\u0001\u007f\u2028/\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                    + "\"\uD83D\uDE00.w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}} ";
            byte[] want = expected.getBytes(StandardCharsets.UTF_8);
            assertEquals(152, want.length);
            assertArrayEquals(want, w.header(), new String(w.header(), StandardCharsets.UTF_8));
        }
    }
}
