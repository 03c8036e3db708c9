package dev.rslora.model;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.peft.Golden;
import dev.rslora.peft.PeftConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
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
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The {@code metadata_crc32} of the dropout-steps file ({@link DropoutStepsFile}, version 2): written over the
 * documented canonical serialization ({@link dev.rslora.io.MetadataChecksum}), checked on load so that one corrupted
 * character in the seed, a layer id, a step, a module path, the format, the version or the checksum itself is
 * refused naming the file and both checksums (and changes no layer), and required in version 2 files, while the
 * version 1 file in golden/dropout-v1 (written by the code before the checksum existed) still loads.
 */
class DropoutStepsChecksumTest {
    private static final List<String> MODULES = List.of("net.0.fc", "net.1.fc", "net.2.fc");
    private static final PeftConfig CONFIG = PeftConfig.builder().targetModules("fc").r(2).loraAlpha(4).useRslora(true)
            .loraDropout(0.3).build();
    private static final long SEED = 1234;

    @TempDir
    Path dir;

    private final Backend ref = new ReferenceBackend();

    /** One character after {@code marker} replaced by {@code to} (0: another hex digit). */
    private record Corruption(String what, String marker, char to) {
    }

    /** The model of the golden file: three 5×5 modules, dropout seed 1234. */
    private LoraModel model() {
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (String m : MODULES) {
            w.put(m + ".weight", new float[5][5]);
        }
        return LoraModel.wrapArrays(w, CONFIG, ref, SEED);
    }

    private static Map<String, Long> steps(long a, long b, long c) {
        Map<String, Long> m = new LinkedHashMap<>();
        m.put(MODULES.get(0), a);
        m.put(MODULES.get(1), b);
        m.put(MODULES.get(2), c);
        return m;
    }

    /** A file saved by the current writer with the steps 17, 9, 30. */
    private Path saved(String name) throws IOException {
        Path f = dir.resolve(name);
        try (LoraModel model = model()) {
            model.restoreDropoutSteps(steps(17, 9, 30));
            model.saveDropoutSteps(f);
        }
        return f;
    }

    private Map<String, Long> loaded(Path file) throws IOException {
        try (LoraModel model = model()) {
            model.loadDropoutSteps(file);
            return model.dropoutSteps();
        }
    }

    @Test
    void aWrittenFileCarriesTheChecksumOfItsOtherMetadataAndLoadsInAnyEntryOrder() throws IOException {
        Path f = saved("steps.safetensors");
        Map<String, String> meta = metadata(f);
        assertEquals("2", meta.get("version"));
        assertEquals(DropoutStepsFile.VERSION, meta.get("version"));
        assertEquals(List.of("format", "version", "seed", "layer_ids", "steps", KEY), List.copyOf(meta.keySet()));
        assertEquals(canonicalCrc(meta), meta.get(KEY));
        assertTrue(meta.get(KEY).matches("[0-9a-f]{8}"), meta.get(KEY));
        assertEquals(steps(17, 9, 30), loaded(f));

        List<String> keys = new ArrayList<>(meta.keySet());
        Map<String, String> reversed = new LinkedHashMap<>();
        for (int i = keys.size() - 1; i >= 0; i--) {
            reversed.put(keys.get(i), meta.get(keys.get(i)));
        }
        assertEquals(steps(17, 9, 30), loaded(rewrite(f, dir.resolve("reversed.safetensors"), reversed)));
    }

    @Test
    void oneCorruptedMetadataCharacterIsRefusedNamingTheFileAndBothChecksums() throws IOException {
        Path good = saved("steps.safetensors");
        // without the check: a step or the version loads silently, a seed or layer id is blamed on the model
        // (IllegalArgumentException), a module path or the format is refused for another reason
        List<Corruption> cases = List.of(
                new Corruption("the seed", "\"seed\":\"", '5'),
                new Corruption("a layer id", "\"layer_ids\":\"{\\\"net.0.fc\\\":", '1'),
                new Corruption("a step", "\"steps\":\"{\\\"net.0.fc\\\":", '2'),
                new Corruption("a module path", "\"steps\":\"{\\\"net.", '7'),
                new Corruption("the format", "\"format\":\"rslora.", 'e'),
                new Corruption("the version (2 to 1)", "\"version\":\"", '1'),
                new Corruption("the checksum itself", "\"" + KEY + "\":\"", (char) 0));
        List<Executable> checks = new ArrayList<>();
        for (Corruption c : cases) {
            Path bad = corrupt(good, dir.resolve(c.what().replaceAll("[^A-Za-z0-9]+", "_") + ".safetensors"), c.marker(), c.to());
            Map<String, String> meta = metadata(bad);
            String stored = meta.get(KEY);
            String computed = canonicalCrc(meta);
            checks.add(() -> {
                assertNotEquals(stored, computed, c.what());
                try (LoraModel model = model()) {
                    IOException e = assertThrows(IOException.class, () -> model.loadDropoutSteps(bad), c.what());
                    String msg = e.getMessage();
                    assertTrue(msg.startsWith(bad + ": metadata checksum mismatch"), c.what() + ": " + msg);
                    assertTrue(msg.contains("stored " + KEY + " " + stored + ", computed " + computed), c.what() + ": " + msg);
                    assertEquals(steps(0, 0, 0), model.dropoutSteps(), c.what() + ": no layer changed");
                }
            });
        }
        assertAll(checks);
    }

    @Test
    void aVersion2FileWithoutTheChecksumIsRefused() throws IOException {
        Path good = saved("steps.safetensors");
        Map<String, String> meta = metadata(good);
        meta.remove(KEY);
        Path missing = rewrite(good, dir.resolve("missing.safetensors"), meta);
        IOException e = assertThrows(IOException.class, () -> loaded(missing));
        assertTrue(e.getMessage().startsWith(missing + ": metadata key '" + KEY + "' is missing (required in dropout-steps"
                + " version 2; only version 1 files may lack it)"), e.getMessage());
        // a corrupted key name is the same as no key
        Path renamed = corrupt(good, dir.resolve("renamed.safetensors"), "\"metadata_crc3", '1');
        e = assertThrows(IOException.class, () -> loaded(renamed));
        assertTrue(e.getMessage().startsWith(renamed + ": metadata key '" + KEY + "' is missing"), e.getMessage());
    }

    @Test
    void aLaterVersionWithAValidChecksumIsRefusedAsUnsupported() throws IOException {
        Path good = saved("steps.safetensors");
        Map<String, String> meta = metadata(good);
        meta.put("version", "3");
        meta.put(KEY, canonicalCrc(meta));
        Path later = rewrite(good, dir.resolve("v3.safetensors"), meta);
        IOException e = assertThrows(IOException.class, () -> loaded(later));
        assertTrue(e.getMessage().startsWith(later + ": unsupported dropout-steps version 3 (this reader knows 1 and 2)"),
                e.getMessage());
    }

    @Test
    void aVersion1FileFromBeforeTheChecksumStillLoadsAndSavesAsVersion2() throws IOException {
        Path v1 = Golden.path("dropout-v1/dropout-steps-v1.safetensors");
        Map<String, String> meta = metadata(v1);
        assertEquals("1", meta.get("version"));
        assertFalse(meta.containsKey(KEY));
        DropoutStepsFile.Saved s = DropoutStepsFile.read(v1);
        assertEquals(SEED, s.seed());
        assertEquals(Map.of("net.0.fc", 0, "net.1.fc", 1, "net.2.fc", 2), s.layerIds());
        assertEquals(MODULES, List.copyOf(s.layerIds().keySet()));
        assertEquals(steps(17, 9, 30), s.steps());
        assertEquals(MODULES, List.copyOf(s.steps().keySet()));

        Path again = dir.resolve("resaved.safetensors");
        try (LoraModel model = model()) {
            model.loadDropoutSteps(v1);
            assertEquals(steps(17, 9, 30), model.dropoutSteps());
            model.saveDropoutSteps(again);
        }
        Map<String, String> m2 = metadata(again);
        assertEquals("2", m2.get("version"));
        assertEquals(canonicalCrc(m2), m2.get(KEY));
        meta.forEach((k, v) -> assertEquals(k.equals("version") ? "2" : v, m2.get(k), k));
        assertEquals(steps(17, 9, 30), loaded(again));
    }
}
