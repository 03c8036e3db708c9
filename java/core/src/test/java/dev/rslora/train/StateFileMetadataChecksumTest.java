package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;
import dev.rslora.peft.Golden;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.rslora.testing.MetadataFiles.KEY;
import static dev.rslora.testing.MetadataFiles.canonicalCrc;
import static dev.rslora.testing.MetadataFiles.corrupt;
import static dev.rslora.testing.MetadataFiles.metadata;
import static dev.rslora.testing.MetadataFiles.rewrite;
import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code metadata_crc32} of the optimizer state files ({@link AdamWStateFile},
 * {@link AdafactorStateFile}, version 2): written over the documented canonical serialization,
 * checked on read so that one corrupted character in the step, a hyper-parameter, a tensor's CRC
 * string, the version or the checksum itself is refused naming the file and both checksums, and
 * required in version 2 files while version 1 files (golden/state-v1, written by the code before
 * the checksum existed) still load. The checksum's definition itself is tested in
 * {@code dev.rslora.io.MetadataChecksumTest}.
 */
class StateFileMetadataChecksumTest {
    /** The two state files, each with a state of step 42 and lr 0.003 and the places to corrupt. */
    enum Kind {
        ADAMW(AdamWStateFile.VERSION, "\"beta2\":\"0.99", '8', "w.exp_avg_sq") {
            @Override
            void write(Path file) throws IOException {
                AdamWStateFile.write(new AdamWState(42, AdamWConfig.torchDefaults().withLr(3e-3).withWeightDecay(0.05), List.of(
                        new AdamWState.Entry("w", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6},
                                new float[] {0.5f, 0.25f, 1, 2, 4, 8}, null),
                        new AdamWState.Entry("b", new long[] {4}, new float[] {-1, 0, 1, 2}, new float[] {1, 1, 1, 1},
                                new float[] {9, 8, 7, 6}))), file);
            }

            @Override
            long readStep(Path file) throws IOException {
                return AdamWStateFile.read(file).step();
            }
        },
        ADAFACTOR(AdafactorStateFile.VERSION, "\"decay_rate\":\"-0.", '7', "b.exp_avg_sq") {
            @Override
            void write(Path file) throws IOException {
                AdafactorStateFile.write(new AdafactorState(42, AdafactorConfig.trainer(3e-3).withBeta1(0.9), List.of(
                        new AdafactorState.Entry("w", new long[] {2, 3}, new float[] {1, 2}, new float[] {3, 4, 5}, null,
                                new float[] {1, 2, 3, 4, 5, 6}, null),
                        new AdafactorState.Entry("b", new long[] {4}, null, null, new float[] {0.5f, 1, 2, 4},
                                new float[] {-1, 0, 1, 2}, new float[] {9, 8, 7, 6}))), file);
            }

            @Override
            long readStep(Path file) throws IOException {
                return AdafactorStateFile.read(file).step();
            }
        };

        final String version;
        /** A marker whose next character is a digit of a second hyper-parameter (besides lr). */
        final String otherHyper;
        /** Its replacement (beta2 0.999 to 0.998, decay_rate -0.8 to -0.7). */
        final char otherHyperTo;
        /** A tensor whose CRC string in the metadata {@code crc32} gets a flipped hex digit. */
        final String tensor;

        Kind(String version, String otherHyper, char otherHyperTo, String tensor) {
            this.version = version;
            this.otherHyper = otherHyper;
            this.otherHyperTo = otherHyperTo;
            this.tensor = tensor;
        }

        abstract void write(Path file) throws IOException;

        abstract long readStep(Path file) throws IOException;
    }

    /** One character after {@code marker} replaced by {@code to} (0: another hex digit). */
    record Corruption(String what, String marker, char to) {
    }

    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(Kind.class)
    void aWrittenFileCarriesTheChecksumOfItsOtherMetadataAndReadsBack(Kind kind) throws IOException {
        Path f = dir.resolve(kind + ".safetensors");
        kind.write(f);
        Map<String, String> meta = metadata(f);
        assertEquals("2", meta.get("version"));
        assertEquals(kind.version, meta.get("version"));
        assertEquals(canonicalCrc(meta), meta.get(KEY));
        assertTrue(meta.get(KEY).matches("[0-9a-f]{8}"), meta.get(KEY));
        assertEquals(42, kind.readStep(f));
        // the order of the header's entries does not matter: the same entries reversed still load
        List<String> keys = new ArrayList<>(meta.keySet());
        Map<String, String> reversed = new LinkedHashMap<>();
        for (int i = keys.size() - 1; i >= 0; i--) {
            reversed.put(keys.get(i), meta.get(keys.get(i)));
        }
        Path r = dir.resolve(kind + "-reversed.safetensors");
        rewrite(f, r, reversed);
        assertEquals(42, kind.readStep(r));
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void oneCorruptedMetadataCharacterIsRefusedNamingTheFileAndBothChecksums(Kind kind) throws IOException {
        Path good = dir.resolve(kind + ".safetensors");
        kind.write(good);
        // each of these alone would load (step 52, lr 0.004, ...) or blame a tensor without the check
        List<Corruption> cases = List.of(
                new Corruption("step", "\"step\":\"", '5'),
                new Corruption("lr", "\"lr\":\"0.00", '4'),
                new Corruption("another hyper-parameter", kind.otherHyper, kind.otherHyperTo),
                new Corruption("a tensor's CRC string", kind.tensor + "\\\":\\\"", (char) 0),
                new Corruption("the version (2 to 1)", "\"version\":\"", '1'),
                new Corruption("the checksum itself", "\"" + KEY + "\":\"", (char) 0));
        List<Executable> checks = new ArrayList<>();
        for (Corruption c : cases) {
            Path bad = corrupt(good, dir.resolve(kind + "-" + c.what().replaceAll("[^A-Za-z0-9]+", "_") + ".safetensors"),
                    c.marker(), c.to());
            Map<String, String> meta = metadata(bad);
            String stored = meta.get(KEY);
            String computed = canonicalCrc(meta);
            checks.add(() -> {
                assertNotEquals(stored, computed, c.what());
                IOException e = assertThrows(IOException.class, () -> kind.readStep(bad), c.what());
                String msg = e.getMessage();
                assertTrue(msg.startsWith(bad + ": metadata checksum mismatch"), c.what() + ": " + msg);
                assertTrue(msg.contains("stored " + KEY + " " + stored + ", computed " + computed), c.what() + ": " + msg);
            });
        }
        assertAll(kind.toString(), checks);
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void aVersion2FileWithoutTheChecksumIsRefused(Kind kind) throws IOException {
        Path good = dir.resolve(kind + ".safetensors");
        kind.write(good);
        Map<String, String> meta = metadata(good);
        meta.remove(KEY);
        Path missing = rewrite(good, dir.resolve(kind + "-missing.safetensors"), meta);
        IOException e = assertThrows(IOException.class, () -> kind.readStep(missing));
        assertTrue(e.getMessage().startsWith(missing + ": metadata key '" + KEY + "' is missing"), e.getMessage());
        // a corrupted key name is the same as no key
        Path renamed = corrupt(good, dir.resolve(kind + "-renamed.safetensors"), "\"metadata_crc3", '1');
        e = assertThrows(IOException.class, () -> kind.readStep(renamed));
        assertTrue(e.getMessage().startsWith(renamed + ": metadata key '" + KEY + "' is missing"), e.getMessage());
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void aLaterVersionWithAValidChecksumIsRefusedAsUnsupported(Kind kind) throws IOException {
        Path good = dir.resolve(kind + ".safetensors");
        kind.write(good);
        Map<String, String> meta = metadata(good);
        meta.put("version", "3");
        meta.put(KEY, canonicalCrc(meta));
        Path later = rewrite(good, dir.resolve(kind + "-v3.safetensors"), meta);
        IOException e = assertThrows(IOException.class, () -> kind.readStep(later));
        assertTrue(e.getMessage().contains("state version 3 (this reader knows 1 and 2)"), e.getMessage());
    }

    @Test
    void anAdamWVersion1FileFromBeforeTheChecksumStillLoadsAndSavesAsVersion2() throws IOException {
        Path v1 = Golden.path("state-v1/adamw-v1.safetensors");
        Map<String, String> meta = metadata(v1);
        assertEquals("1", meta.get("version"));
        assertFalse(meta.containsKey(KEY));
        AdamWState s = AdamWStateFile.read(v1);
        assertEquals(7, s.step());
        assertEquals(AdamWConfig.torchDefaults().withLr(3e-3).withWeightDecay(0.05), s.config());
        assertEquals(2, s.entries().size());
        AdamWState.Entry a = s.entries().get(0);
        assertEquals("a.lora_A.weight", a.name());
        assertArrayEquals(new long[] {2, 3}, a.shape());
        assertArrayEquals(new float[] {1, -2, 0.5f, 0.25f, -0.125f, 3}, a.m());
        assertArrayEquals(new float[] {0.5f, 1, 1.5f, 2, 2.5f, 3}, a.v());
        assertArrayEquals(new float[] {10, 20, 30, 40, 50, 60}, a.master());
        AdamWState.Entry b = s.entries().get(1);
        assertEquals("a.lora_B.weight", b.name());
        assertArrayEquals(new long[] {4}, b.shape());
        assertArrayEquals(new float[] {-1, 1, -1, 1}, b.m());
        assertArrayEquals(new float[] {4, 3, 2, 1}, b.v());
        assertNull(b.master());

        Path again = dir.resolve("adamw-resaved.safetensors");
        AdamWStateFile.write(s, again);
        Map<String, String> m2 = metadata(again);
        assertEquals("2", m2.get("version"));
        assertEquals(canonicalCrc(m2), m2.get(KEY));
        assertEquals(7, AdamWStateFile.read(again).step());
    }

    @Test
    void anAdafactorVersion1FileFromBeforeTheChecksumStillLoads() throws IOException {
        Path v1 = Golden.path("state-v1/adafactor-v1.safetensors");
        Map<String, String> meta = metadata(v1);
        assertEquals("1", meta.get("version"));
        assertFalse(meta.containsKey(KEY));
        AdafactorState s = AdafactorStateFile.read(v1);
        assertEquals(5, s.step());
        assertEquals(AdafactorConfig.trainer(1e-3).withBeta1(0.9).withWeightDecay(0.01), s.config());
        assertEquals(2, s.entries().size());
        AdafactorState.Entry a = s.entries().get(0);
        assertEquals("a.lora_A.weight", a.name());
        assertArrayEquals(new long[] {2, 3}, a.shape());
        assertArrayEquals(new float[] {0.5f, 0.25f}, a.expAvgSqRow());
        assertArrayEquals(new float[] {1, 2, 3}, a.expAvgSqCol());
        assertNull(a.expAvgSq());
        assertArrayEquals(new float[] {1, -1, 2, -2, 3, -3}, a.expAvg());
        assertArrayEquals(new float[] {6, 5, 4, 3, 2, 1}, a.master());
        AdafactorState.Entry b = s.entries().get(1);
        assertEquals("a.lora_B.weight", b.name());
        assertArrayEquals(new long[] {4}, b.shape());
        assertArrayEquals(new float[] {0.125f, 0.25f, 0.5f, 1}, b.expAvgSq());
        assertArrayEquals(new float[] {-0.5f, 0.5f, -0.5f, 0.5f}, b.expAvg());
        assertNull(b.master());

        Path again = dir.resolve("adafactor-resaved.safetensors");
        AdafactorStateFile.write(s, again);
        Map<String, String> m2 = metadata(again);
        assertEquals("2", m2.get("version"));
        assertEquals(canonicalCrc(m2), m2.get(KEY));
        assertEquals(5, AdafactorStateFile.read(again).step());
    }

    @Test
    void aVersion1FileStillHasItsTensorsChecked() throws IOException {
        Path v1 = Golden.path("state-v1/adamw-v1.safetensors");
        byte[] b = Files.readAllBytes(v1);
        b[b.length - 2] ^= 1; // inside the data of the last tensor
        Path bad = dir.resolve("adamw-v1-flipped.safetensors");
        Files.write(bad, b);
        IOException e = assertThrows(IOException.class, () -> AdamWStateFile.read(bad));
        assertTrue(e.getMessage().contains("checksum mismatch") && e.getMessage().contains("tensor '"), e.getMessage());
    }
}
