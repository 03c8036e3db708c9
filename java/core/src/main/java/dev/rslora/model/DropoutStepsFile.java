package dev.rslora.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import dev.rslora.io.MetadataChecksum;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The dropout-steps file of {@link LoraModel#saveDropoutSteps}: a safetensors file with no tensors (any
 * safetensors reader opens it) whose {@code __metadata__} strings are
 *
 * <pre>
 *   format          "rslora.dropout"
 *   version         "2" (written); "1" is still read
 *   seed            the dropout seed of every layer, decimal
 *   layer_ids       JSON object: module path → its layer id (the mask counter's layer word), in model order
 *   steps           JSON object: module path → the dropout step its next training forward uses (≥ 0), same keys
 *   metadata_crc32  CRC-32 (8 lowercase hex digits) of all the other metadata entries
 * </pre>
 *
 * The metadata checksum is the CRC-32 of a canonical serialization of every other
 * {@code __metadata__} entry (unknown keys included), independent of the header's entry order and
 * JSON escaping; {@link MetadataChecksum} defines it, with a Python version. It is the whole file's
 * check: the file holds no tensor data.
 *
 * <p>Versions: version 2 added {@code metadata_crc32}, so that a corrupted digit in the seed, a layer id
 * or a step is refused instead of resuming silently from other dropout masks than the saved run's (a
 * corrupted seed or layer id would otherwise be blamed on the model: "dropout seed is 7, this model's 8").
 * Files written before it (version 1, without the key) keep loading, unchecked beyond the rules below
 * (saving again writes version 2); a version 2 file without the key is refused, and the key is checked
 * whenever present, before anything else is read from the metadata (a version digit flipped from 2 to 1 is
 * caught).
 *
 * <p>A reader refuses a file holding tensors, a metadata checksum mismatch (naming the stored and the
 * computed checksum), another format or version, a missing or malformed key, a negative step or id, and
 * {@code layer_ids} and {@code steps} with different modules, naming the file and the key or module.
 */
final class DropoutStepsFile {
    static final String FORMAT = "rslora.dropout";
    /** The version this code writes (with {@code metadata_crc32}); it also reads {@link #LEGACY_VERSION}. */
    static final String VERSION = "2";
    /** The version written before {@code metadata_crc32} existed; still read, without a metadata check. */
    static final String LEGACY_VERSION = "1";
    /** Integers only (1.5 is refused, not truncated), a module named twice is refused. */
    private static final ObjectMapper JSON = JsonMapper.builder().disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    /** What the file holds: the seed, and per module (in model order) its layer id and next dropout step. */
    record Saved(long seed, Map<String, Integer> layerIds, Map<String, Long> steps) {
    }

    private DropoutStepsFile() {
    }

    /** Writes {@code saved} to {@code file} atomically (a partial file is never left behind). */
    static void write(Saved saved, Path file) throws IOException {
        Map<String, String> meta = new LinkedHashMap<>();
        meta.put("format", FORMAT);
        meta.put("version", VERSION);
        meta.put("seed", Long.toString(saved.seed()));
        meta.put("layer_ids", JSON.writeValueAsString(saved.layerIds()));
        meta.put("steps", JSON.writeValueAsString(saved.steps()));
        new SafetensorsWriter().metadata(MetadataChecksum.signed(meta)).write(file);
    }

    /**
     * Reads and checks a file written by {@link #write} (version 2, its metadata checksum checked) or by the code
     * before it (version 1); IOException naming the file and what is wrong.
     */
    static Saved read(Path file) throws IOException {
        Map<String, String> meta;
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            meta = f.metadata();
            if (!f.names().isEmpty()) {
                throw bad(file, "holds tensors " + f.names() + "; a dropout-steps file holds metadata only");
            }
        }
        boolean checked = MetadataChecksum.verify(file, meta, "the seed, a layer id or a step");
        if (!FORMAT.equals(meta.get("format"))) {
            throw bad(file, "not a dropout-steps file (metadata format=" + meta.get("format") + ", expected " + FORMAT + ")");
        }
        String version = meta.get("version");
        if (!VERSION.equals(version) && !LEGACY_VERSION.equals(version)) {
            throw bad(file, "unsupported dropout-steps version " + version + " (this reader knows " + LEGACY_VERSION + " and "
                    + VERSION + ")");
        }
        if (!checked && VERSION.equals(version)) {
            MetadataChecksum.require(file, meta, "required in dropout-steps version " + VERSION + "; only version "
                    + LEGACY_VERSION + " files may lack it");
        }
        String seedText = required(file, meta, "seed");
        long seed;
        try {
            seed = Long.parseLong(seedText);
        } catch (NumberFormatException e) {
            throw bad(file, "metadata seed=" + seedText + " is not an integer");
        }
        Map<String, Integer> ids = json(file, meta, "layer_ids", new TypeReference<LinkedHashMap<String, Integer>>() { });
        Map<String, Long> steps = json(file, meta, "steps", new TypeReference<LinkedHashMap<String, Long>>() { });
        for (Map.Entry<String, Integer> e : ids.entrySet()) {
            if (e.getValue() == null || e.getValue() < 0) {
                throw bad(file, "layer_ids: module " + e.getKey() + " has layer id " + e.getValue() + " (expected an integer ≥ 0)");
            }
        }
        for (Map.Entry<String, Long> e : steps.entrySet()) {
            if (e.getValue() == null || e.getValue() < 0) {
                throw bad(file, "steps: module " + e.getKey() + " has step " + e.getValue() + " (expected an integer ≥ 0)");
            }
        }
        if (!ids.keySet().equals(steps.keySet())) {
            throw bad(file, "layer_ids names modules " + ids.keySet() + " but steps names " + steps.keySet());
        }
        return new Saved(seed, ids, steps);
    }

    private static String required(Path file, Map<String, String> meta, String key) throws IOException {
        String v = meta.get(key);
        if (v == null) {
            throw bad(file, "metadata key '" + key + "' is missing");
        }
        return v;
    }

    private static <T> T json(Path file, Map<String, String> meta, String key, TypeReference<T> type) throws IOException {
        String v = required(file, meta, key);
        try {
            T t = JSON.readValue(v, type);
            if (t == null) {
                throw bad(file, "metadata " + key + " is null");
            }
            return t;
        } catch (JsonProcessingException e) {
            throw bad(file, "metadata " + key + " is not a JSON object of module path → integer: " + e.getOriginalMessage());
        }
    }

    private static IOException bad(Path file, String what) {
        return new IOException(file + ": " + what);
    }
}
