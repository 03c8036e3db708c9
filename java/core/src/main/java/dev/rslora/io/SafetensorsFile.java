package dev.rslora.io;

import dev.rslora.io.SafetensorsException.Rule;
import dev.rslora.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A validated, memory-mapped safetensors file. Tensors are zero-copy views of the mapping.
 *
 * <p>The {@link Arena} passed to {@link #open} owns the mapping: closing it unmaps the file and
 * invalidates every tensor and byte slice handed out; use a shared arena when several threads read
 * the tensors. The file must not be truncated while mapped (the writer replaces files by rename,
 * which leaves existing mappings intact).
 * Every rule of the format is checked on open (see {@link SafetensorsException.Rule}); nothing is
 * allocated from a declared size before that size has been checked against the file size.
 */
public final class SafetensorsFile {
    /** Largest header length N a reader accepts (the reference implementation's limit). */
    public static final long MAX_HEADER_LENGTH = 100_000_000L;

    private static final ValueLayout.OfLong LE_U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String source;
    private final MemorySegment mapping;
    private final long headerLength;
    private final List<SafetensorsEntry> entries;
    private final Map<String, SafetensorsEntry> byName;
    private final Map<String, String> metadata;

    private SafetensorsFile(String source, MemorySegment mapping, long headerLength, HeaderParser.Parsed header) {
        this.source = source;
        this.mapping = mapping;
        this.headerLength = headerLength;
        this.entries = header.entries();
        this.metadata = header.metadata();
        Map<String, SafetensorsEntry> m = new HashMap<>();
        for (SafetensorsEntry e : entries) {
            m.put(e.name(), e);
        }
        this.byName = m;
    }

    /**
     * Maps {@code path} read-only into {@code arena} and validates it.
     *
     * @param path  the .safetensors file
     * @param arena owns the mapping: tensors of the returned file are valid until it closes
     * @return the validated file; its tensors are zero-copy views of the mapping
     * @throws SafetensorsException when the file breaks a format rule
     * @throws IOException          when the file cannot be opened or mapped (a folder, a device or a pipe: a FileSystemException naming it)
     */
    public static SafetensorsFile open(Path path, Arena arena) throws IOException {
        if (Files.isDirectory(path)) {
            throw new FileSystemException(path.toString(), null, "is a folder, not a .safetensors file");
        }
        if (Files.exists(path) && !Files.isRegularFile(path)) {
            // a named pipe would block the open until some process writes to it; a device cannot be mapped
            throw new FileSystemException(path.toString(), null, "is not a regular file (a device, pipe or socket); "
                    + "a .safetensors file is memory-mapped");
        }
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw tooShort(path.toString(), size);
            }
            return parse(ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena), path.toString());
        }
    }

    /**
     * Validates a safetensors image already in memory (for example a downloaded buffer); tensors
     * are views of {@code image}. {@code source} names the image in error messages.
     *
     * @param image  the whole file's bytes (header length, header, data buffer)
     * @param source a name for the image in error messages (a path, a URL)
     * @return the validated file
     * @throws SafetensorsException when the image breaks a format rule (the rule and byte offset are in it)
     */
    public static SafetensorsFile parse(MemorySegment image, String source) throws SafetensorsException {
        long size = image.byteSize();
        if (size < 8) {
            throw tooShort(source, size);
        }
        long n = image.get(LE_U64, 0);
        if (n < 0 || n > MAX_HEADER_LENGTH) {
            throw new SafetensorsException(Rule.HEADER_TOO_LARGE, source, 0, "header length N = "
                    + Long.toUnsignedString(n) + " exceeds the limit of " + MAX_HEADER_LENGTH + " bytes");
        }
        if (8 + n > size) {
            throw new SafetensorsException(Rule.HEADER_PAST_END, source, 0, "header length N = " + n
                    + " needs 8 + N = " + (8 + n) + " bytes but the file holds " + size);
        }
        byte[] header = image.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
        int bad = firstInvalidUtf8(header);
        if (bad >= 0) {
            throw new SafetensorsException(Rule.HEADER_NOT_UTF8, source, 8 + bad,
                    "header is not valid UTF-8: byte 0x" + HeaderParser.hex(header[bad]) + " at header index " + bad);
        }
        if (n == 0 || header[0] != '{') {
            throw new SafetensorsException(Rule.HEADER_NOT_OBJECT, source, 8, n == 0
                    ? "the header is empty; it must be a JSON object starting with '{'"
                    : "the header starts with byte 0x" + HeaderParser.hex(header[0]) + ", not '{'");
        }
        HeaderParser.Parsed parsed = HeaderParser.parse(new String(header, StandardCharsets.UTF_8), source);
        DataLayout.check(parsed.entries(), 8 + n, size, source);
        return new SafetensorsFile(source, image.asReadOnly(), n, parsed);
    }

    private static SafetensorsException tooShort(String source, long size) {
        return new SafetensorsException(Rule.FILE_TOO_SHORT, source, 0,
                "the file holds " + size + " bytes, fewer than the 8-byte header length");
    }

    /** Index of the first byte that does not belong to a well-formed UTF-8 sequence, or −1. */
    private static int firstInvalidUtf8(byte[] bytes) {
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(8192);
        while (true) {
            CoderResult r = dec.decode(in, out, true);
            if (r.isError()) {
                return in.position();
            }
            if (r.isOverflow()) {
                out.clear();
                continue;
            }
            out.clear();
            if (dec.flush(out).isError()) {
                return in.position();
            }
            return -1;
        }
    }

    /**
     * The path or label this file was read from.
     *
     * @return the path as text, or the source given to {@link #parse}
     */
    public String source() {
        return source;
    }

    /**
     * The whole file as a read-only segment (a memory mapping when opened from a path).
     *
     * @return the file's bytes, from offset 0
     */
    public MemorySegment mapping() {
        return mapping;
    }

    /**
     * File size in bytes.
     *
     * @return 8 + N + the data buffer's length
     */
    public long fileSize() {
        return mapping.byteSize();
    }

    /**
     * N, the JSON header's length in bytes (including its padding).
     *
     * @return N, as stored in the file's first 8 bytes
     */
    public long headerLength() {
        return headerLength;
    }

    /**
     * File offset of the data buffer.
     *
     * @return 8 + N
     */
    public long dataStart() {
        return 8 + headerLength;
    }

    /**
     * All tensors, in header (file) order.
     *
     * @return the entries (unmodifiable)
     */
    public List<SafetensorsEntry> entries() {
        return entries;
    }

    /**
     * Tensor names, in header order.
     *
     * @return the names (unmodifiable)
     */
    public List<String> names() {
        List<String> names = new ArrayList<>(entries.size());
        for (SafetensorsEntry e : entries) {
            names.add(e.name());
        }
        return Collections.unmodifiableList(names);
    }

    /**
     * The {@code __metadata__} map with keys in file order.
     *
     * @return the metadata (unmodifiable); empty when the header has none
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Whether the file holds a tensor called {@code name}.
     *
     * @param name a tensor name (exact)
     * @return true when the header lists it
     */
    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /**
     * The entry of tensor {@code name}.
     *
     * @param name a tensor name (exact)
     * @return its header entry
     * @throws IllegalArgumentException naming the file when the tensor is absent
     */
    public SafetensorsEntry entry(String name) {
        SafetensorsEntry e = byName.get(name);
        if (e == null) {
            throw new IllegalArgumentException("no tensor " + HeaderParser.quote(name) + " in " + source
                    + " (" + entries.size() + " tensors)");
        }
        return e;
    }

    /**
     * The raw little-endian bytes of tensor {@code name}: a read-only slice of the mapping, any dtype.
     *
     * @param name a tensor name (exact)
     * @return its byte range of the data buffer
     * @throws IllegalArgumentException when the tensor is absent
     */
    public MemorySegment bytes(String name) {
        SafetensorsEntry e = entry(name);
        return mapping.asSlice(dataStart() + e.begin(), e.byteLength());
    }

    /**
     * Tensor {@code name} as a zero-copy view of the mapping. Only F32, BF16 and F16 tensors have
     * an arithmetic view; others (I64, U8, ...) throw IllegalArgumentException: use {@link #bytes}.
     *
     * @param name a tensor name (exact)
     * @return a read-only tensor over the mapping (valid while the arena is open)
     * @throws IllegalArgumentException when the tensor is absent or its dtype has no arithmetic view
     */

    public Tensor tensor(String name) {
        SafetensorsEntry e = entry(name);
        if (!e.dtype().isComputable()) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + " in " + source + " has dtype "
                    + e.dtypeName() + ", which has no arithmetic view (F32, BF16, F16 only); read it with bytes()");
        }
        return Tensor.wrap(bytes(name), e.dtype().compute(), e.shape());
    }

    @Override
    public String toString() {
        return "SafetensorsFile[" + source + ", " + entries.size() + " tensors, " + fileSize() + " bytes]";
    }
}
