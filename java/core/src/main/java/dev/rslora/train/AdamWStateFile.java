package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import com.fasterxml.jackson.core.type.TypeReference;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
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
import static dev.rslora.train.StateFiles.parseDouble;
import static dev.rslora.train.StateFiles.parseJson;
import static dev.rslora.train.StateFiles.parseLong;
import static dev.rslora.train.StateFiles.putMetadata;

/**
 * The AdamW state file: a safetensors file (see {@link dev.rslora.io}) that any safetensors
 * reader can open. For each parameter {@code NAME} it holds F32 tensors of the parameter's shape
 * {@code NAME.exp_avg} (m), {@code NAME.exp_avg_sq} (v) and, with master weights, {@code NAME.master}
 * (PyTorch's state names). The {@code __metadata__} strings are:
 *
 * <pre>
 *   format          "rslora.adamw"
 *   version         "2" (written); "1" is still read
 *   step            t, decimal
 *   lr, beta1, beta2, eps, weight_decay     Java Double.toString (reads back exactly)
 *   parameters      JSON array of the parameter names, in optimizer order
 *   shapes          JSON object: parameter name → its shape (see below for files without it)
 *   crc32           JSON object: tensor name → CRC-32 (8 hex digits) of its little-endian bytes
 *   metadata_crc32  CRC-32 (8 lowercase hex digits) of all the other metadata entries (below)
 * </pre>
 *
 * The metadata checksum is the CRC-32 of a canonical serialization of every other
 * {@code __metadata__} entry (unknown keys included), independent of the header's entry order and
 * JSON escaping; {@link dev.rslora.io.MetadataChecksum} defines it, with a Python version.
 *
 * Versions: version 2 added {@code metadata_crc32}, so that a corrupted digit in the step, a
 * hyper-parameter or a tensor's CRC string is refused instead of loading silently (or being blamed
 * on the tensor). Files written before it (version 1, without the key) keep loading, with their
 * tensors checked but not their metadata (saving again writes version 2); a version 2 file without
 * the key is refused, and the key is checked whenever present (a version digit flipped from 2 to 1
 * is caught).
 *
 * Shapes: the metadata checksum does not cover the safetensors tensor table, so a shape rewritten there
 * with the same element count ([2,3] to [3,2]) passes the safetensors checks and the tensor CRCs. Every
 * tensor of a parameter is therefore checked against its shape in {@code shapes}, which the checksum
 * covers. Files without {@code shapes} (version 1, and the version 2 files of its first writer, at
 * c1a97c3) still load: there a parameter's shape is its {@code exp_avg} tensor's, the other tensors are
 * checked against it, and only {@code AdamW.load}'s comparison with the parameters catches a rewrite
 * of all of them. The key's absence cannot be a corruption of a version 2 file that had it: removing or
 * renaming it breaks the metadata checksum.
 *
 * A reader refuses a file of another format or version, a metadata checksum mismatch (naming the
 * stored and the computed checksum), a missing, extra, non-F32 or mis-shaped tensor, and a tensor
 * checksum mismatch, naming the file and the tensor or key.
 */
public final class AdamWStateFile {
    /** The {@code format} metadata value of an AdamW state file. */
    public static final String FORMAT = "rslora.adamw";
    /**
     * The {@code version} metadata value this code writes (with {@code metadata_crc32}); it also
     * reads version "1", the files written before the metadata checksum.
     */
    public static final String VERSION = "2";
    private static final String M = ".exp_avg";
    private static final String V = ".exp_avg_sq";
    private static final String MASTER = ".master";

    private AdamWStateFile() {
    }

    /**
     * Writes {@code state} to {@code file} atomically (replacing it).
     *
     * @param state the optimizer state, e.g. from {@code snapshot()}
     * @param file  the safetensors file to write; a partial file is never left behind
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if state or file is null
     */
    public static void write(AdamWState state, Path file) throws IOException {
        if (state == null || file == null) {
            throw new IllegalArgumentException("AdamWStateFile.write: " + (state == null ? "state" : "file") + " is null");
        }
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter w = new SafetensorsWriter();
            List<String> names = new ArrayList<>();
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, String> crcs = new LinkedHashMap<>();
            for (AdamWState.Entry e : state.entries()) {
                names.add(e.name());
                shapes.put(e.name(), e.shape());
                add(w, crcs, arena, e.name() + M, e.shape(), e.m());
                add(w, crcs, arena, e.name() + V, e.shape(), e.v());
                if (e.master() != null) {
                    add(w, crcs, arena, e.name() + MASTER, e.shape(), e.master());
                }
            }
            AdamWConfig c = state.config();
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", FORMAT);
            meta.put("version", VERSION);
            meta.put("step", Long.toString(state.step()));
            meta.put("lr", Double.toString(c.lr()));
            meta.put("beta1", Double.toString(c.beta1()));
            meta.put("beta2", Double.toString(c.beta2()));
            meta.put("eps", Double.toString(c.eps()));
            meta.put("weight_decay", Double.toString(c.weightDecay()));
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

    public static AdamWState read(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("AdamWStateFile.read: file is null");
        }
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(file, arena);
            Map<String, String> meta = f.metadata();
            checkMetadata(file, meta, "AdamW", FORMAT, VERSION);
            long step = parseLong(file, meta, "step");
            AdamWConfig config;
            try {
                config = new AdamWConfig(parseDouble(file, meta, "lr"), parseDouble(file, meta, "beta1"),
                        parseDouble(file, meta, "beta2"), parseDouble(file, meta, "eps"), parseDouble(file, meta, "weight_decay"));
            } catch (IllegalArgumentException e) {
                throw bad(file, "bad hyper-parameters: " + e.getMessage());
            }
            List<String> names = parseJson(file, meta, "parameters", new TypeReference<List<String>>() { });
            // absent in version 1 files and in the first version 2 writer's (see the class comment)
            Map<String, long[]> shapes = meta.containsKey("shapes")
                    ? parseJson(file, meta, "shapes", new TypeReference<Map<String, long[]>>() { }) : null;
            Map<String, String> crcs = parseJson(file, meta, "crc32", new TypeReference<Map<String, String>>() { });
            Set<String> expected = new HashSet<>();
            List<AdamWState.Entry> entries = new ArrayList<>();
            for (String name : names) {
                if (!expected.add(name + M)) {
                    throw bad(file, "parameter '" + name + "' is listed twice");
                }
                long[] shape = shapes == null ? null : shapes.get(name);
                if (shapes != null && shape == null) {
                    throw bad(file, "metadata shapes has no entry for parameter '" + name + "'");
                }
                float[] m = floats(f, file, crcs, name + M, shape);
                if (shape == null) {
                    shape = f.entry(name + M).shape();
                }
                float[] v = floats(f, file, crcs, name + V, shape);
                expected.add(name + V);
                float[] master = null;
                if (f.contains(name + MASTER)) {
                    master = floats(f, file, crcs, name + MASTER, shape);
                    expected.add(name + MASTER);
                }
                entries.add(new AdamWState.Entry(name, shape, m, v, master));
            }
            checkNoOthers(f, file, expected);
            try {
                return new AdamWState(step, config, entries);
            } catch (IllegalArgumentException e) {
                throw bad(file, e.getMessage());
            }
        }
    }

}
