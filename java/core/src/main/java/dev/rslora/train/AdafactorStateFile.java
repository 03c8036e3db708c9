package dev.rslora.train;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorState;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static dev.rslora.train.StateFiles.JSON;
import static dev.rslora.train.StateFiles.add;
import static dev.rslora.train.StateFiles.bad;
import static dev.rslora.train.StateFiles.checkMetadata;
import static dev.rslora.train.StateFiles.checkNoOthers;
import static dev.rslora.train.StateFiles.floats;
import static dev.rslora.train.StateFiles.parseBoolean;
import static dev.rslora.train.StateFiles.parseDouble;
import static dev.rslora.train.StateFiles.parseJson;
import static dev.rslora.train.StateFiles.parseLong;
import static dev.rslora.train.StateFiles.parseOptionalDouble;
import static dev.rslora.train.StateFiles.putMetadata;

/**
 * The Adafactor state file: a safetensors file (any safetensors reader opens it) with, for each
 * parameter {@code NAME} of shape S, the F32 tensors under Hugging Face's state names:
 * {@code NAME.exp_avg_sq_row} (S[:-1]) and {@code NAME.exp_avg_sq_col} (S[:-2] + S[-1:]) for a
 * factored parameter (rank ≥ 2), else {@code NAME.exp_avg_sq} (S); {@code NAME.exp_avg} (S) with
 * beta1; {@code NAME.master} (S) with master weights. The {@code __metadata__} strings are:
 *
 * <pre>
 *   format          "rslora.adafactor"
 *   version         "2" (written); "1" is still read
 *   step            t, decimal
 *   lr, beta1       Java Double.toString, or "None"
 *   eps1, eps2, clip_threshold, decay_rate, weight_decay   Java Double.toString (reads back exactly)
 *   scale_parameter, relative_step, warmup_init            "true" | "false"
 *   parameters      JSON array of the parameter names, in optimizer order
 *   shapes          JSON object: parameter name → its shape
 *   crc32           JSON object: tensor name → CRC-32 (8 hex digits) of its little-endian bytes
 *   metadata_crc32  CRC-32 (8 lowercase hex digits) of all the other metadata entries (below)
 * </pre>
 *
 * The metadata checksum is the CRC-32 of a canonical serialization of every other
 * {@code __metadata__} entry (unknown keys included), independent of the header's entry order and
 * JSON escaping; {@link dev.rslora.io.MetadataChecksum} defines it, with a Python version.
 *
 * Versions: version 2 added {@code metadata_crc32}, so that a corrupted digit in the step, a
 * hyper-parameter, a shape or a tensor's CRC string is refused instead of loading silently (or
 * being blamed on the tensor). Files written before it (version 1, without the key) keep loading,
 * with their tensors checked but not their metadata (saving again writes version 2); a version 2
 * file without the key is refused, and the key is checked whenever present (a version digit flipped
 * from 2 to 1 is caught).
 *
 * Every tensor is checked against the shape {@code shapes} gives its parameter (the row and column
 * factors against the shapes derived from it), so a shape rewritten in the safetensors tensor table,
 * which the metadata checksum does not cover, is refused even when the element count is the same.
 *
 * A reader refuses a file of another format or version, a metadata checksum mismatch (naming the
 * stored and the computed checksum), a missing, extra, non-F32 or mis-shaped tensor, bad
 * hyper-parameters and a tensor checksum mismatch, naming the file and the tensor or key.
 */
public final class AdafactorStateFile {
    /** The metadata {@code format} of an Adafactor state file. */
    public static final String FORMAT = "rslora.adafactor";
    /**
     * The metadata {@code version} this code writes (with {@code metadata_crc32}); it also reads
     * version "1", the files written before the metadata checksum.
     */
    public static final String VERSION = "2";
    private static final String ROW = ".exp_avg_sq_row";
    private static final String COL = ".exp_avg_sq_col";
    private static final String SQ = ".exp_avg_sq";
    private static final String M = ".exp_avg";
    private static final String MASTER = ".master";

    private AdafactorStateFile() {
    }

    /** The shape of the row state, S[:-1]. */
    static long[] rowShape(long[] s) {
        return Arrays.copyOf(s, s.length - 1);
    }

    /** The shape of the column state, S[:-2] + S[-1:]. */
    static long[] colShape(long[] s) {
        long[] c = Arrays.copyOf(s, s.length - 1);
        c[c.length - 1] = s[s.length - 1];
        return c;
    }

    private static String optional(Double d) {
        return d == null ? "None" : Double.toString(d);
    }

    /**
     * Writes {@code state} to {@code file} atomically (replacing it).
     *
     * @param state the optimizer state, e.g. from {@code snapshot()}
     * @param file  the safetensors file to write; a partial file is never left behind
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if state or file is null
     */
    public static void write(AdafactorState state, Path file) throws IOException {
        if (state == null || file == null) {
            throw new IllegalArgumentException("AdafactorStateFile.write: " + (state == null ? "state" : "file") + " is null");
        }
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter();
            List<String> names = new ArrayList<>();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, String> crcs = new LinkedHashMap<>();
            for (AdafactorState.Entry e : state.entries()) {
                names.add(e.name());
                long[] s = e.shape();
                shapes.put(e.name(), s);
                if (e.isFactored()) {
                    add(w, crcs, arena, e.name() + ROW, rowShape(s), e.expAvgSqRow());
                    add(w, crcs, arena, e.name() + COL, colShape(s), e.expAvgSqCol());
                } else {
                    add(w, crcs, arena, e.name() + SQ, s, e.expAvgSq());
                }
                if (e.expAvg() != null) {
                    add(w, crcs, arena, e.name() + M, s, e.expAvg());
                }
                if (e.master() != null) {
                    add(w, crcs, arena, e.name() + MASTER, s, e.master());
                }
            }
            AdafactorConfig c = state.config();
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", FORMAT);
            meta.put("version", VERSION);
            meta.put("step", Long.toString(state.step()));
            meta.put("lr", optional(c.lr()));
            meta.put("eps1", Double.toString(c.eps1()));
            meta.put("eps2", Double.toString(c.eps2()));
            meta.put("clip_threshold", Double.toString(c.clipThreshold()));
            meta.put("decay_rate", Double.toString(c.decayRate()));
            meta.put("beta1", optional(c.beta1()));
            meta.put("weight_decay", Double.toString(c.weightDecay()));
            meta.put("scale_parameter", Boolean.toString(c.scaleParameter()));
            meta.put("relative_step", Boolean.toString(c.relativeStep()));
            meta.put("warmup_init", Boolean.toString(c.warmupInit()));
            meta.put("parameters", JSON.writeValueAsString(names));
            meta.put("shapes", JSON.writeValueAsString(shapes));
            meta.put("crc32", JSON.writeValueAsString(crcs));
            putMetadata(w, meta);
            w.write(file);
        }
    }

    /**
     * Reads and validates a state file.
     *
     * @param file a file written by {@link #write}
     * @return the state it holds, with the metadata's CRC-32 (version 2) and every tensor's CRC-32 checked
     * @throws IOException if the file cannot be read, or is not a valid state file of this format and
     *                     version 1 or 2 (the message names the file and what is wrong)
     * @throws IllegalArgumentException if file is null
     */

    public static AdafactorState read(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("AdafactorStateFile.read: file is null");
        }
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            Map<String, String> meta = f.metadata();
            checkMetadata(file, meta, "Adafactor", FORMAT, VERSION);
            long step = parseLong(file, meta, "step");
            AdafactorConfig config;
            try {
                config = new AdafactorConfig(parseOptionalDouble(file, meta, "lr"), parseDouble(file, meta, "eps1"),
                        parseDouble(file, meta, "eps2"), parseDouble(file, meta, "clip_threshold"),
                        parseDouble(file, meta, "decay_rate"), parseOptionalDouble(file, meta, "beta1"),
                        parseDouble(file, meta, "weight_decay"), parseBoolean(file, meta, "scale_parameter"),
                        parseBoolean(file, meta, "relative_step"), parseBoolean(file, meta, "warmup_init"));
            } catch (IllegalArgumentException e) {
                throw bad(file, "bad hyper-parameters: " + e.getMessage());
            }
            List<String> names = parseJson(file, meta, "parameters", new TypeReference<List<String>>() { });
            Map<String, long[]> shapes = parseJson(file, meta, "shapes", new TypeReference<Map<String, long[]>>() { });
            Map<String, String> crcs = parseJson(file, meta, "crc32", new TypeReference<Map<String, String>>() { });
            Set<String> seen = new HashSet<>();
            Set<String> expected = new HashSet<>();
            List<AdafactorState.Entry> entries = new ArrayList<>();
            for (String name : names) {
                if (!seen.add(name)) {
                    throw bad(file, "parameter '" + name + "' is listed twice");
                }
                long[] s = shapes.get(name);
                if (s == null) {
                    throw bad(file, "metadata shapes has no entry for parameter '" + name + "'");
                }
                for (long d : s) {
                    if (d < 1) {
                        throw bad(file, "parameter '" + name + "' has shape " + Arrays.toString(s) + " (dimensions must be >= 1)");
                    }
                }
                float[] row = null;
                float[] col = null;
                float[] sq = null;
                if (AdafactorState.Entry.factored(s)) {
                    row = floats(f, file, crcs, name + ROW, rowShape(s));
                    col = floats(f, file, crcs, name + COL, colShape(s));
                    expected.add(name + ROW);
                    expected.add(name + COL);
                } else {
                    sq = floats(f, file, crcs, name + SQ, s);
                    expected.add(name + SQ);
                }
                float[] m = null;
                if (config.usesFirstMoment()) {
                    m = floats(f, file, crcs, name + M, s);
                    expected.add(name + M);
                }
                float[] master = null;
                if (f.contains(name + MASTER)) {
                    master = floats(f, file, crcs, name + MASTER, s);
                    expected.add(name + MASTER);
                }
                entries.add(new AdafactorState.Entry(name, s, row, col, sq, m, master));
            }
            checkNoOthers(f, file, expected);
            try {
                return new AdafactorState(step, config, entries);
            } catch (IllegalArgumentException e) {
                throw bad(file, e.getMessage());
            }
        }
    }
}
