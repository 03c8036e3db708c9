package dev.rslora.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.io.MetadataChecksum;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;

/**
 * The checked pieces of the optimizer state files ({@link AdamWStateFile}, {@link AdafactorStateFile}):
 * F32 tensors with a CRC-32 per tensor in the metadata, a CRC-32 over the metadata itself, and
 * metadata values parsed with errors that name the file and the key or tensor.
 *
 * <h2>The metadata checksum</h2>
 * From version 2 of both formats, {@code __metadata__} holds {@value MetadataChecksum#KEY}: the
 * CRC-32 of a canonical serialization of every other {@code __metadata__} entry (defined, with a
 * Python version, in {@link MetadataChecksum}), so that a corrupted step count, hyper-parameter,
 * parameter list, shape or per-tensor CRC string is refused instead of loading silently.
 * A reader checks the key whenever it is present, whatever the version (so a version digit flipped
 * from 2 to 1 is caught too); it requires it in a version 2 file; a version 1 file (written before
 * the key existed) has none and loads as before, with only its tensors checked.
 */
final class StateFiles {
    /**
     * Parameter names are JSON keys of the metadata here: Jackson's default limit on a key (50 000 characters)
     * made a state that {@code save} wrote fail to load; the safetensors header's own size limit bounds them.
     */
    static final ObjectMapper JSON = new ObjectMapper(com.fasterxml.jackson.core.JsonFactory.builder()
            .streamReadConstraints(com.fasterxml.jackson.core.StreamReadConstraints.builder().maxNameLength(Integer.MAX_VALUE).build())
            .build());
    /** The version written before {@value MetadataChecksum#KEY} existed; still read, without a metadata check. */
    static final String LEGACY_VERSION = "1";

    private StateFiles() {
    }

    /** Adds F32 tensor {@code name} of {@code shape} holding {@code values} and records its CRC. */
    static void add(SafetensorsWriter w, Map<String, String> crcs, Arena arena, String name, long[] shape, float[] values) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        MemorySegment.copy(values, 0, t.segment(), DType.LE_FLOAT, 0, values.length);
        w.add(name, t);
        crcs.put(name, crc(t.readOnlySegment()));
    }

    /**
     * Sets {@code meta} (in its order) and then {@value MetadataChecksum#KEY}, its checksum, on {@code w}.
     */
    static void putMetadata(SafetensorsWriter w, Map<String, String> meta) {
        w.metadata(MetadataChecksum.signed(meta));
    }

    /** CRC-32 of the bytes as 8 hex digits. */
    static String crc(MemorySegment bytes) {
        CRC32 crc = new CRC32();
        crc.update(bytes.asByteBuffer());
        return String.format("%08x", crc.getValue());
    }

    /** Tensor {@code name} as floats, checked: present, F32, of {@code shape} (when given), matching its CRC. */
    static float[] floats(SafetensorsFile f, Path file, Map<String, String> crcs, String name, long[] shape)
            throws IOException {
        if (!f.contains(name)) {
            throw bad(file, "missing tensor '" + name + "'");
        }
        SafetensorsEntry e = f.entry(name);
        if (!e.dtypeName().equals("F32")) {
            throw bad(file, "tensor '" + name + "' has dtype " + e.dtypeName() + ", expected F32");
        }
        if (shape != null && !Arrays.equals(shape, e.shape())) {
            throw bad(file, "tensor '" + name + "' has shape " + e.shapeString() + ", expected " + Arrays.toString(shape));
        }
        if (e.numel() > Tensor.MAX_ARRAY) {
            throw bad(file, "tensor '" + name + "' of shape " + e.shapeString() + " is too large for a heap snapshot");
        }
        MemorySegment bytes = f.bytes(name);
        String want = crcs.get(name);
        String got = crc(bytes);
        if (!got.equals(want)) {
            throw bad(file, "tensor '" + name + "' checksum mismatch: metadata crc32 " + want + ", data " + got);
        }
        float[] out = new float[(int) e.numel()];
        MemorySegment.copy(bytes, DType.LE_FLOAT, 0, out, 0, out.length);
        return out;
    }

    /**
     * Checks the metadata before any value is used: refuses a {@value MetadataChecksum#KEY} that does
     * not match the other entries (checked whenever present), a file whose {@code format} is not
     * {@code format} ("not an {@code optimizer} state file"), a {@code version} other than
     * {@code version} or {@value #LEGACY_VERSION}, and a {@code version} file without the checksum.
     */
    static void checkMetadata(Path file, Map<String, String> meta, String optimizer, String format, String version)
            throws IOException {
        boolean checked = MetadataChecksum.verify(file, meta, "the step, a hyper-parameter or a tensor CRC");
        if (!format.equals(meta.get("format"))) {
            throw bad(file, "not an " + optimizer + " state file (metadata format=" + meta.get("format") + ", expected "
                    + format + ")");
        }
        String v = meta.get("version");
        if (!version.equals(v) && !LEGACY_VERSION.equals(v)) {
            throw bad(file, "unsupported " + optimizer + " state version " + v + " (this reader knows " + LEGACY_VERSION
                    + " and " + version + ")");
        }
        if (!checked && version.equals(v)) {
            MetadataChecksum.require(file, meta, "required in " + optimizer + " state version " + version
                    + "; only version " + LEGACY_VERSION + " files may lack it");
        }
    }

    /** Refuses a file holding a tensor that is not in {@code expected} (the state of the listed parameters). */
    static void checkNoOthers(SafetensorsFile f, Path file, Set<String> expected) throws IOException {
        for (String t : f.names()) {
            if (!expected.contains(t)) {
                throw bad(file, "unexpected tensor '" + t + "' (not the state of a listed parameter)");
            }
        }
    }

    static String required(Path file, Map<String, String> meta, String key) throws IOException {
        String v = meta.get(key);
        if (v == null) {
            throw bad(file, "metadata key '" + key + "' is missing");
        }
        return v;
    }

    static long parseLong(Path file, Map<String, String> meta, String key) throws IOException {
        String v = required(file, meta, key);
        try {
            long x = Long.parseLong(v);
            if (x < 0) {
                throw bad(file, "metadata " + key + "=" + v + " is negative");
            }
            return x;
        } catch (NumberFormatException e) {
            throw bad(file, "metadata " + key + "=" + v + " is not an integer");
        }
    }

    static double parseDouble(Path file, Map<String, String> meta, String key) throws IOException {
        String v = required(file, meta, key);
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw bad(file, "metadata " + key + "=" + v + " is not a number");
        }
    }

    static <T> T parseJson(Path file, Map<String, String> meta, String key, TypeReference<T> type) throws IOException {
        String v = required(file, meta, key);
        try {
            T t = JSON.readValue(v, type);
            if (t == null) {
                throw bad(file, "metadata " + key + " is null");
            }
            return t;
        } catch (JsonProcessingException e) {
            throw bad(file, "metadata " + key + " is not the expected JSON: " + e.getOriginalMessage());
        }
    }

    /** A Java-boolean metadata value: "true" or "false". */
    static boolean parseBoolean(Path file, Map<String, String> meta, String key) throws IOException {
        String v = required(file, meta, key);
        return switch (v) {
            case "true" -> true;
            case "false" -> false;
            default -> throw bad(file, "metadata " + key + "=" + v + " is not true or false");
        };
    }

    /** A double metadata value, or null when it is "None" (Python's missing value). */
    static Double parseOptionalDouble(Path file, Map<String, String> meta, String key) throws IOException {
        return "None".equals(meta.get(key)) ? null : parseDouble(file, meta, key);
    }

    static IOException bad(Path file, String what) {
        return new IOException(file + ": " + what);
    }
}
