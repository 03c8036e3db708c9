package dev.rslora.io;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.CRC32;

/**
 * A CRC-32 over a safetensors file's {@code __metadata__}, stored in that metadata under
 * {@value #KEY}: the one implementation behind the optimizer state files
 * ({@code dev.rslora.train.AdamWStateFile}, {@code AdafactorStateFile}, version 2 on) and the
 * dropout-steps file ({@code dev.rslora.model.LoraModel#saveDropoutSteps}, version 2 on), so that a
 * corrupted metadata value (a step, a seed, a hyper-parameter, a tensor's CRC string) is refused
 * instead of loading silently.
 *
 * <h2>The canonical serialization</h2>
 * The checksum is {@code java.util.zip.CRC32} (zlib's {@code crc32}), written as 8 lowercase hex
 * digits, of a serialization that does not depend on the order or the JSON escaping of the header:
 * <ol>
 *   <li>take every {@code __metadata__} entry except {@value #KEY} itself (unknown keys included);</li>
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
 * The checksum covers the metadata only, not the tensor table (dtypes, shapes, offsets) nor the
 * data; a format that needs those checked records them in its metadata (as the state files' tensor
 * CRCs do).
 *
 * <h2>The version policy of the formats that use it</h2>
 * A reader {@linkplain #verify verifies} the key whenever it is present, before it uses any value
 * and whatever the version says (so a version digit flipped from 2 to 1 is caught too), then checks
 * the format and version, then {@linkplain #require requires} the key in a version that writes it;
 * files of the version written before the key existed have none and load as before, with their
 * metadata unchecked. Errors are {@link IOException}s whose message starts with the file.
 */
public final class MetadataChecksum {
    /** The metadata key holding the checksum of the other metadata entries. */
    public static final String KEY = "metadata_crc32";

    private MetadataChecksum() {
    }

    /**
     * The checksum of {@code meta}: its canonical serialization (see the class comment) ignoring
     * any {@value #KEY} entry.
     *
     * @param meta metadata entries (none null), in any order
     * @return the CRC-32 as 8 lowercase hex digits
     */
    public static String of(Map<String, String> meta) {
        List<byte[][]> entries = new ArrayList<>();
        meta.forEach((k, v) -> {
            if (!k.equals(KEY)) {
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

    /**
     * What a writer stores: the entries of {@code meta} in their order (any {@value #KEY} among
     * them dropped), then {@value #KEY} with their checksum.
     *
     * @param meta metadata entries (none null)
     * @return a new map; pass it to {@link SafetensorsWriter#metadata(Map)}
     */
    public static Map<String, String> signed(Map<String, String> meta) {
        Map<String, String> out = new LinkedHashMap<>(meta);
        out.remove(KEY);
        out.put(KEY, of(out));
        return out;
    }

    /**
     * Checks {@value #KEY} when {@code meta} holds it.
     *
     * @param file     the file the metadata came from, for the message
     * @param meta     the file's metadata
     * @param examples the values a mismatch most likely means are corrupted, for the message
     *                 (e.g. "the step, a hyper-parameter or a tensor CRC")
     * @return true when the key is present (and matches), false when it is absent
     * @throws IOException "{@code <file>: metadata checksum mismatch: stored metadata_crc32 X, computed Y}
     *                     (a metadata value such as {@code examples} is corrupted)" when it does not match
     */
    public static boolean verify(Path file, Map<String, String> meta, String examples) throws IOException {
        String stored = meta.get(KEY);
        if (stored == null) {
            return false;
        }
        String computed = of(meta);
        if (!computed.equals(stored)) {
            throw new IOException(file + ": metadata checksum mismatch: stored " + KEY + " " + stored + ", computed "
                    + computed + " (a metadata value such as " + examples + " is corrupted)");
        }
        return true;
    }

    /**
     * Refuses metadata without {@value #KEY}, for a version that always writes it.
     *
     * @param file  the file the metadata came from, for the message
     * @param meta  the file's metadata
     * @param which the format and version that requires the key, and which may lack it, for the message
     *              (e.g. "required in AdamW state version 2; only version 1 files may lack it")
     * @throws IOException "{@code <file>: metadata key 'metadata_crc32' is missing (which)}" when it is absent
     */
    public static void require(Path file, Map<String, String> meta, String which) throws IOException {
        if (!meta.containsKey(KEY)) {
            throw new IOException(file + ": metadata key '" + KEY + "' is missing (" + which + ")");
        }
    }

    private static void lengthPrefixed(ByteArrayOutputStream out, byte[] bytes) {
        int n = bytes.length;
        out.write(n);
        out.write(n >>> 8);
        out.write(n >>> 16);
        out.write(n >>> 24);
        out.write(bytes, 0, n);
    }
}
