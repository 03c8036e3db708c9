package dev.rslora.io;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.rslora.testing.MetadataFiles.KEY;
import static dev.rslora.testing.MetadataFiles.canonicalCrc;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link MetadataChecksum}, the one implementation of {@code metadata_crc32} that the optimizer state files and the
 * dropout-steps file share: the documented canonical serialization (checked against Python's zlib and an
 * independent transcription), what a writer stores, and the reader's checks and messages. The files that use it are
 * tested in {@code StateFileMetadataChecksumTest} and {@code DropoutStepsChecksumTest}.
 */
class MetadataChecksumTest {
    private static final Path FILE = Path.of("some", "file.safetensors");

    @Test
    void theChecksumIsTheDocumentedOneWhichPythonComputesToo() {
        // values from the Python transcription in the javadoc (zlib.crc32); the keys U+FF5E and
        // U+1F600 sort the other way round in Java's UTF-16 String order (that would give 6cb600bb)
        Map<String, String> m = new LinkedHashMap<>();
        m.put("step", "42");
        m.put("format", "rslora.adamw");
        m.put("\uFF5E", "fullwidth");
        m.put("\uD83D\uDE00", "smile");
        m.put("é", "ü\u0000\"x");
        m.put(KEY, "ignored");
        assertEquals(KEY, MetadataChecksum.KEY);
        assertEquals("0e42565b", MetadataChecksum.of(m));
        assertEquals("0e42565b", canonicalCrc(m));
        assertEquals("00000000", MetadataChecksum.of(Map.of()));
    }

    @Test
    void signedKeepsTheOrderAndAppendsTheChecksumOfTheOtherEntries() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("format", "rslora.dropout");
        m.put(KEY, "stale");
        m.put("seed", "7");
        Map<String, String> s = MetadataChecksum.signed(m);
        assertEquals(List.of("format", "seed", KEY), List.copyOf(s.keySet()));
        assertEquals(canonicalCrc(Map.of("format", "rslora.dropout", "seed", "7")), s.get(KEY));
        assertEquals("stale", m.get(KEY), "the argument is not changed");
    }

    @Test
    void verifyAndRequireNameTheFileAndBothChecksums() throws IOException {
        Map<String, String> m = new LinkedHashMap<>(Map.of("step", "42"));
        assertFalse(MetadataChecksum.verify(FILE, m, "the step"), "absent: nothing to check");
        IOException e = assertThrows(IOException.class, () -> MetadataChecksum.require(FILE, m, "required in X version 2"));
        assertEquals(FILE + ": metadata key '" + KEY + "' is missing (required in X version 2)", e.getMessage());

        Map<String, String> signed = MetadataChecksum.signed(m);
        assertTrue(MetadataChecksum.verify(FILE, signed, "the step"));
        MetadataChecksum.require(FILE, signed, "required in X version 2");

        String stored = signed.get(KEY);
        signed.put("step", "52");
        String computed = canonicalCrc(signed);
        e = assertThrows(IOException.class, () -> MetadataChecksum.verify(FILE, signed, "the step"));
        assertEquals(FILE + ": metadata checksum mismatch: stored " + KEY + " " + stored + ", computed " + computed
                + " (a metadata value such as the step is corrupted)", e.getMessage());
    }
}
