package dev.rslora.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
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
 *   format     "rslora.dropout"
 *   version    "1"
 *   seed       the dropout seed of every layer, decimal
 *   layer_ids  JSON object: module path → its layer id (the mask counter's layer word), in model order
 *   steps      JSON object: module path → the dropout step its next training forward uses (≥ 0), same keys
 * </pre>
 *
 * A reader refuses another format or version, a missing or malformed key, a negative step or id, and
 * {@code layer_ids} and {@code steps} with different modules, naming the file and the key or module.
 */
final class DropoutStepsFile {
    static final String FORMAT = "rslora.dropout";
    static final String VERSION = "1";
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
        new SafetensorsWriter().metadata("format", FORMAT).metadata("version", VERSION)
                .metadata("seed", Long.toString(saved.seed()))
                .metadata("layer_ids", JSON.writeValueAsString(saved.layerIds()))
                .metadata("steps", JSON.writeValueAsString(saved.steps()))
                .write(file);
    }

    /** Reads and checks a file written by {@link #write}; IOException naming the file and what is wrong. */
    static Saved read(Path file) throws IOException {
        Map<String, String> meta;
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            meta = f.metadata();
            if (!f.names().isEmpty()) {
                throw bad(file, "holds tensors " + f.names() + "; a dropout-steps file holds metadata only");
            }
        }
        if (!FORMAT.equals(meta.get("format"))) {
            throw bad(file, "not a dropout-steps file (metadata format=" + meta.get("format") + ", expected " + FORMAT + ")");
        }
        if (!VERSION.equals(meta.get("version"))) {
            throw bad(file, "unsupported dropout-steps version " + meta.get("version") + " (this reader knows " + VERSION + ")");
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
