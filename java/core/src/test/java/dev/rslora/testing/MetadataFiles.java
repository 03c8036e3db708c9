package dev.rslora.testing;

import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * For the tests of files whose {@code __metadata__} carries {@code metadata_crc32}
 * ({@link dev.rslora.io.MetadataChecksum}): the checksum as documented, computed here independently
 * of the library, and files read, corrupted one character at a time, or rewritten with other
 * metadata.
 */
public final class MetadataFiles {
    /** The metadata key of the checksum, spelled out (not taken from the library). */
    public static final String KEY = "metadata_crc32";

    private MetadataFiles() {
    }

    /**
     * The canonical serialization's CRC-32 as documented (every entry but {@link #KEY}, sorted by
     * unsigned UTF-8 key bytes, u32 little-endian lengths before the UTF-8 key and value), written
     * here independently.
     */
    public static String canonicalCrc(Map<String, String> meta) {
        List<Map.Entry<byte[], byte[]>> entries = new ArrayList<>();
        for (Map.Entry<String, String> e : meta.entrySet()) {
            if (!e.getKey().equals(KEY)) {
                entries.add(Map.entry(e.getKey().getBytes(StandardCharsets.UTF_8), e.getValue().getBytes(StandardCharsets.UTF_8)));
            }
        }
        entries.sort((a, b) -> Arrays.compareUnsigned(a.getKey(), b.getKey()));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Map.Entry<byte[], byte[]> e : entries) {
            for (byte[] part : new byte[][] {e.getKey(), e.getValue()}) {
                out.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(part.length).array());
                out.writeBytes(part);
            }
        }
        CRC32 crc = new CRC32();
        crc.update(out.toByteArray());
        return String.format("%08x", crc.getValue());
    }

    /** The file's {@code __metadata__}, in header order, as a modifiable map. */
    public static Map<String, String> metadata(Path file) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            return new LinkedHashMap<>(SafetensorsFile.open(file, arena).metadata());
        }
    }

    /**
     * {@code src} with the one character after the only occurrence of {@code marker} (a letter or a
     * digit) replaced by {@code to} (or, for 0, by another hex digit), written to {@code dst}.
     *
     * @return dst
     */
    public static Path corrupt(Path src, Path dst, String marker, char to) throws IOException {
        byte[] b = Files.readAllBytes(src);
        byte[] m = marker.getBytes(StandardCharsets.UTF_8);
        int at = -1;
        for (int i = 0; i + m.length < b.length; i++) {
            if (Arrays.equals(b, i, i + m.length, m, 0, m.length)) {
                assertEquals(-1, at, "marker " + marker + " occurs twice");
                at = i + m.length;
            }
        }
        assertTrue(at >= 0, "marker " + marker + " not found");
        byte c = b[at];
        assertTrue(Character.isLetterOrDigit(c), "not a letter or digit after " + marker + ": " + (char) c);
        char replacement = to != 0 ? to : c == '0' ? '1' : '0';
        assertNotEquals(replacement, (char) c, "the character after " + marker + " is already " + replacement);
        b[at] = (byte) replacement;
        Files.write(dst, b);
        return dst;
    }

    /**
     * {@code src}'s tensors (copied as they are) under {@code meta} instead of its metadata, written
     * to {@code dst}.
     *
     * @return dst
     */
    public static Path rewrite(Path src, Path dst, Map<String, String> meta) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(src, arena);
            SafetensorsWriter w = new SafetensorsWriter().metadata(meta);
            f.names().forEach(n -> w.copy(f, n));
            w.write(dst);
        }
        return dst;
    }
}
