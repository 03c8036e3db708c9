package dev.rslora.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;

/**
 * The checked pieces of the optimizer state files ({@link AdamWStateFile}, {@link AdafactorStateFile}):
 * F32 tensors with a CRC-32 per tensor in the metadata, a CRC-32 over the metadata itself, and
 * metadata values parsed with errors that name the file and the key or tensor.
 *
 * <h2>The metadata checksum</h2>
 * From version 2 of both formats, {@code __metadata__} holds {@value #METADATA_CRC}: the CRC-32
 * (java.util.zip.CRC32 = zlib's {@code crc32}, 8 lowercase hex digits) of a canonical serialization
 * of every other {@code __metadata__} entry, so that a corrupted step count, hyper-parameter,
 * parameter list, shape or per-tensor CRC string is refused instead of loading silently. The
 * serialization is independent of the order and the JSON escaping of the header:
 * <ol>
 *   <li>take every entry except {@value #METADATA_CRC} itself (unknown keys included);</li>
 *   <li>sort the entries by key, comparing the keys' UTF-8 bytes as unsigned bytes (that is, by code
 *       point: Python's {@code sorted} order, not Java's UTF-16 {@code String.compareTo});</li>
 *   <li>for each entry in that order append: the key's UTF-8 byte length as a 4-byte little-endian
 *       unsigned integer, the key's UTF-8 bytes, the value's UTF-8 byte length (same encoding), the
 *       value's UTF-8 bytes (the strings as they decode from the header JSON, no escaping).</li>
 * </ol>
 * In Python:
 * <pre>
 *   blob = b"".join(struct.pack("&lt;I", len(k)) + k + struct.pack("&lt;I", len(v)) + v
 *                   for k, v in sorted((k.encode(), v.encode()) for k, v in meta.items() if k != "metadata_crc32"))
 *   meta["metadata_crc32"] = "%08x" % zlib.crc32(blob)
 * </pre>
 * A reader checks the key whenever it is present, whatever the version (so a version digit flipped
 * from 2 to 1 is caught too); it requires it in a version 2 file; a version 1 file (written before
 * the key existed) has none and loads as before, with only its tensors checked.
 */
final class StateFiles {
    static final ObjectMapper JSON = new ObjectMapper();
    /** The metadata key holding the CRC-32 of the other metadata entries (version 2 on). */
    static final String METADATA_CRC = "metadata_crc32";
    /** The version written before {@value #METADATA_CRC} existed; still read, without a metadata check. */
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
     * Sets {@code meta} (in its order) and then {@value #METADATA_CRC}, its checksum, on {@code w}.
     */
    static void putMetadata(SafetensorsWriter w, Map<String, String> meta) {
        w.metadata(meta).metadata(METADATA_CRC, metadataCrc(meta));
    }

    /** The CRC-32 (8 lowercase hex digits) of the canonical serialization of {@code meta} (see the class comment). */
    static String metadataCrc(Map<String, String> meta) {
        List<byte[][]> entries = new ArrayList<>();
        meta.forEach((k, v) -> {
            if (!k.equals(METADATA_CRC)) {
                entries.add(new byte[][] {k.getBytes(StandardCharsets.UTF_8), v.getBytes(StandardCharsets.UTF_8)});
            }
        });
        entries.sort((a, b) -> Arrays.compareUnsigned(a[0], b[0]));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[][] e : entries) {
            lengthPrefixed(out, e[0]);
            lengthPrefixed(out, e[1]);
        }
        CRC32 crc = new CRC32();
        crc.update(out.toByteArray());
        return String.format("%08x", crc.getValue());
    }

    private static void lengthPrefixed(ByteArrayOutputStream out, byte[] bytes) {
        int n = bytes.length;
        out.write(n);
        out.write(n >>> 8);
        out.write(n >>> 16);
        out.write(n >>> 24);
        out.write(bytes, 0, n);
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
     * Checks the metadata before any value is used: refuses a {@value #METADATA_CRC} that does not
     * match the other entries (checked whenever present), a file whose {@code format} is not
     * {@code format} ("not an {@code optimizer} state file"), a {@code version} other than
     * {@code version} or {@value #LEGACY_VERSION}, and a {@code version} file without the checksum.
     */
    static void checkMetadata(Path file, Map<String, String> meta, String optimizer, String format, String version)
            throws IOException {
        String stored = meta.get(METADATA_CRC);
        if (stored != null) {
            String computed = metadataCrc(meta);
            if (!computed.equals(stored)) {
                throw bad(file, "metadata checksum mismatch: stored " + METADATA_CRC + " " + stored + ", computed " + computed
                        + " (a metadata value such as the step, a hyper-parameter or a tensor CRC is corrupted)");
            }
        }
        if (!format.equals(meta.get("format"))) {
            throw bad(file, "not an " + optimizer + " state file (metadata format=" + meta.get("format") + ", expected "
                    + format + ")");
        }
        String v = meta.get("version");
        if (!version.equals(v) && !LEGACY_VERSION.equals(v)) {
            throw bad(file, "unsupported " + optimizer + " state version " + v + " (this reader knows " + LEGACY_VERSION
                    + " and " + version + ")");
        }
        if (stored == null && version.equals(v)) {
            throw bad(file, "metadata key '" + METADATA_CRC + "' is missing (required in " + optimizer + " state version "
                    + version + "; only version " + LEGACY_VERSION + " files may lack it)");
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
