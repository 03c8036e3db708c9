package dev.rslora.io;

import dev.rslora.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Writes a safetensors file, streaming each tensor from its segment to disk; the heap holds only
 * the header. A tensor may also be computed while it is written ({@link Item#computed}): its
 * bytes pass through one 8 MiB off-heap buffer, so a file of any size can be produced with
 * bounded memory. Tensors are laid out as the reference writer lays them out (dtype in
 * {@link SafetensorsDtype} order, largest alignment first, then name by UTF-8 bytes), the compact
 * JSON header ({@code __metadata__} first) is padded with spaces to a multiple of 8 bytes.
 *
 * <p>The file is written to {@code .<name>.tmp-<random>} in the target's directory (the name cut to
 * 64 characters), forced to
 * disk and renamed over the target atomically only when complete; on any failure the temporary
 * file is deleted, so a reader never sees a partial file and an existing target survives intact.
 * Because of the rename, a file may be rewritten from tensors mapped from that same file.
 *
 * <pre>{@code
 * new SafetensorsWriter().metadata("format", "pt").add("a.weight", tensorA).write(path);
 * }</pre>
 */
public final class SafetensorsWriter {
    /** Bytes per write call; heap-backed sources are staged through an off-heap buffer this large. */
    private static final int CHUNK = 8 << 20;

    /**
     * Test only: the system property naming how many milliseconds {@link #write} waits once the
     * temporary file is created and its header written, before any tensor data (unset or 0, the
     * default: no wait). It holds a write mid-way so that a test can signal the writing process while
     * the partial temporary file exists; nothing else should set it. An interrupt ends the wait and
     * stays set, so the next write to the channel fails exactly as an interrupted write does.
     */
    static final String TEST_PAUSE_PROPERTY = "rslora.test.writePauseMillis";

    /** {@link #TEST_PAUSE_PROPERTY}, read once when the class loads. */
    private static final long TEST_PAUSE_MILLIS = TestPause.millis(TEST_PAUSE_PROPERTY);

    /**
     * Computes the bytes of a tensor while it is written, so that a tensor that exists nowhere in
     * memory (a merged weight, a converted copy) streams to disk through one small buffer.
     */
    @FunctionalInterface
    public interface ByteProducer {
        /**
         * Writes bytes [offset, offset + dst.byteSize()) of the tensor's little-endian data into
         * {@code dst}. The writer calls it with consecutive ranges from 0 to the tensor's byte
         * size, each a whole number of elements (offset and length are multiples of 8 bytes
         * except for the last range), from the writing thread. Any exception aborts the write.
         *
         * @param offset the byte offset of {@code dst}'s first byte within the tensor's data
         * @param dst    the range to fill, completely (its size is the range's length)
         * @throws IOException to abort the write (the target is then left unchanged)
         */
        void fill(long offset, MemorySegment dst) throws IOException;
    }

    /**
     * One tensor to write: its header name, dtype, shape and exactly numel × element size bytes,
     * either held in {@code data} or computed by {@code producer} during the write (exactly one
     * of the two is non-null).
     *
     * @param name     the header name (not {@code __metadata__})
     * @param dtype    the header dtype
     * @param shape    the dimensions, each ≥ 0
     * @param data     the bytes (exactly numel × element size), or null when producer is set
     * @param producer computes the bytes during the write, or null when data is set
     */
    public record Item(String name, SafetensorsDtype dtype, long[] shape, MemorySegment data, ByteProducer producer) {
        /**
         * A tensor whose bytes are in {@code data}.
         *
         * @param name  the header name
         * @param dtype the header dtype
         * @param shape the dimensions, each ≥ 0
         * @param data  exactly numel × element size bytes, little-endian (not null)
         */
        public Item(String name, SafetensorsDtype dtype, long[] shape, MemorySegment data) {
            this(name, dtype, shape, Objects.requireNonNull(data, "data"), null);
        }

        /** Checks the item (IllegalArgumentException naming the bad value). */
        public Item {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(dtype, "dtype");
            if ((data == null) == (producer == null)) {
                throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + ": give exactly one of data and producer");
            }
            shape = shape.clone();
            if (name.equals(HeaderParser.METADATA_KEY)) {
                throw new IllegalArgumentException("a tensor cannot be named " + HeaderParser.METADATA_KEY);
            }
            requireEncodable(name, "tensor name");
            long numel = 1;
            try {
                for (int i = 0; i < shape.length; i++) {
                    if (shape[i] < 0) {
                        throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + ": negative dimension "
                                + shape[i] + " at axis " + i + " in shape " + Arrays.toString(shape));
                    }
                    numel = Math.multiplyExact(numel, shape[i]);
                }
                long need = Math.multiplyExact(numel, (long) dtype.byteSize());
                if (data != null && need != data.byteSize()) {
                    throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + " " + dtype + " "
                            + Arrays.toString(shape) + " needs " + need + " bytes but its source segment holds " + data.byteSize());
                }
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + " " + dtype + " "
                        + Arrays.toString(shape) + ": byte size overflows a signed 64-bit integer", e);
            }
        }

        /**
         * The shape.
         *
         * @return a copy of the dimensions
         */
        @Override
        public long[] shape() {
            return shape.clone();
        }

        /**
         * A tensor's bytes under {@code name}, in its own dtype (F32, BF16 or F16).
         *
         * @param name   the header name
         * @param tensor the tensor (its memory is read during the write, not copied now)
         * @return the item
         */
        public static Item of(String name, Tensor tensor) {
            return new Item(name, SafetensorsDtype.of(tensor.dtype()), tensor.shape(), tensor.readOnlySegment());
        }

        /**
         * Raw bytes of any known dtype (e.g. "I64").
         *
         * @param name      the header name
         * @param dtypeName a safetensors dtype name, case-sensitive
         * @param shape     the dimensions, each ≥ 0
         * @param data      exactly numel × element size bytes
         * @return the item
         * @throws IllegalArgumentException for an unknown dtype name or a size mismatch
         */
        public static Item raw(String name, String dtypeName, long[] shape, MemorySegment data) {
            SafetensorsDtype d = SafetensorsDtype.byName(dtypeName);
            if (d == null) {
                throw new IllegalArgumentException("tensor " + HeaderParser.quote(name) + ": unknown safetensors dtype "
                        + HeaderParser.quote(String.valueOf(dtypeName)));
            }
            return new Item(name, d, shape, data);
        }

        /**
         * A tensor of {@code dtype} and {@code shape} whose bytes {@code producer} computes while the file is written.
         *
         * @param name     the header name
         * @param dtype    the header dtype
         * @param shape    the dimensions, each ≥ 0
         * @param producer fills the bytes in consecutive ranges (not null)
         * @return the item
         */
        public static Item computed(String name, SafetensorsDtype dtype, long[] shape, ByteProducer producer) {
            return new Item(name, dtype, shape, null, Objects.requireNonNull(producer, "producer"));
        }

        /**
         * Tensor {@code name} of {@code source}, byte for byte, whatever its dtype.
         *
         * @param source an open safetensors file
         * @param name   a tensor of it; the copy keeps the name
         * @return the item
         * @throws IllegalArgumentException when the source has no such tensor
         */
        public static Item copyOf(SafetensorsFile source, String name) {
            SafetensorsEntry e = source.entry(name);
            return new Item(name, e.dtype(), e.shape(), source.bytes(name));
        }

        /** numel × element size (validated not to overflow). */
        long byteSize() {
            if (data != null) {
                return data.byteSize();
            }
            long n = dtype.byteSize();
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private final Map<String, Item> items = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** An empty writer: no tensors, no metadata. */
    public SafetensorsWriter() {
    }


    /**
     * Adds a tensor.
     *
     * @param item the tensor to write
     * @return this writer
     * @throws IllegalArgumentException when the name is already taken
     */
    public SafetensorsWriter add(Item item) {
        if (items.putIfAbsent(item.name(), item) != null) {
            throw new IllegalArgumentException("tensor " + HeaderParser.quote(item.name()) + " added twice");
        }
        return this;
    }

    /**
     * Adds {@code tensor} under {@code name} in its own dtype.
     *
     * @param name   the header name
     * @param tensor an F32, BF16 or F16 tensor, read during {@link #write}
     * @return this writer
     */
    public SafetensorsWriter add(String name, Tensor tensor) {
        return add(Item.of(name, tensor));
    }

    /**
     * Adds raw bytes of any known dtype.
     *
     * @param name      the header name
     * @param dtypeName a safetensors dtype name (e.g. "I64")
     * @param shape     the dimensions
     * @param data      exactly numel × element size bytes
     * @return this writer
     */
    public SafetensorsWriter addRaw(String name, String dtypeName, long[] shape, MemorySegment data) {
        return add(Item.raw(name, dtypeName, shape, data));
    }

    /**
     * Copies tensor {@code name} of {@code source} byte for byte.
     *
     * @param source an open safetensors file (may be the target itself: the write renames)
     * @param name   a tensor of it
     * @return this writer
     */
    public SafetensorsWriter copy(SafetensorsFile source, String name) {
        return add(Item.copyOf(source, name));
    }

    /**
     * Sets one {@code __metadata__} entry (insertion order is kept in the header).
     *
     * @param key   the key (not null)
     * @param value the value (not null), replacing an earlier value of the key
     * @return this writer
     */
    public SafetensorsWriter metadata(String key, String value) {
        requireEncodable(Objects.requireNonNull(key, "key"), "metadata key");
        requireEncodable(Objects.requireNonNull(value, "value"), "metadata value");
        metadata.put(key, value);
        return this;
    }

    /**
     * Sets every entry of {@code entries}, or none of them when one is refused.
     *
     * @param entries keys and values (none null), in their iteration order
     * @return this writer
     * @throws IllegalArgumentException naming the entry that cannot be encoded (then no entry is set)
     */
    public SafetensorsWriter metadata(Map<String, String> entries) {
        entries.forEach((key, value) -> {
            requireEncodable(Objects.requireNonNull(key, "key"), "metadata key");
            requireEncodable(Objects.requireNonNull(value, "value"), "metadata value");
        });
        entries.forEach(this::metadata);
        return this;
    }

    /** The items in file order: dtype order largest first, then name by unsigned UTF-8 bytes. */
    List<Item> fileOrder() {
        List<Item> ordered = new ArrayList<>(items.values());
        ordered.sort((a, b) -> {
            int byDtype = Integer.compare(b.dtype().ordinal(), a.dtype().ordinal());
            return byDtype != 0 ? byDtype : HeaderEncoder.compareUtf8(a.name(), b.name());
        });
        return Collections.unmodifiableList(ordered);
    }

    /** The padded header bytes this writer would write now (the N bytes after the length prefix). */
    byte[] header() {
        return HeaderEncoder.encode(fileOrder(), metadata);
    }

    /**
     * Writes the file atomically (temporary file, fsync, rename). On failure nothing is left
     * behind and an existing {@code target} is unchanged.
     *
     * @param target the file to create or replace
     * @throws IOException if writing, syncing or renaming fails (naming the target), or a producer aborts; before
     *                     anything is written, when {@code target} is a folder, a device, pipe or socket, or its parent
     *                     folder does not exist or is a file
     * @throws IllegalArgumentException if the header would exceed the readers' size limit, or the tensors' total size
     *                                  overflows a signed 64-bit offset (naming the first tensor past it)
     * @throws IllegalStateException if a tensor's memory was freed (naming it; nothing is written)
     */

    public void write(Path target) throws IOException {
        List<Item> ordered = fileOrder();
        byte[] header = HeaderEncoder.encode(ordered, metadata);
        if (header.length > SafetensorsFile.MAX_HEADER_LENGTH) {
            throw new IllegalArgumentException("header of " + header.length + " bytes exceeds the "
                    + SafetensorsFile.MAX_HEADER_LENGTH + "-byte limit readers enforce");
        }
        long expectedSize = 8L + header.length;
        for (Item it : ordered) {
            if (it.data() != null && !it.data().scope().isAlive()) {
                throw new IllegalStateException("tensor " + HeaderParser.quote(it.name()) + ": its memory was freed (the arena"
                        + " that held it is closed); nothing was written");
            }
            try {
                expectedSize = Math.addExact(expectedSize, it.byteSize());
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("tensor " + HeaderParser.quote(it.name()) + " ends past byte 2^63 - 1 of the "
                        + "file: the file's size overflows a signed 64-bit integer", e);
            }
        }
        Path abs = target.toAbsolutePath();
        Path dir = abs.getParent();
        if (dir == null || Files.isDirectory(abs)) {
            throw new FileSystemException(target.toString(), null, "the output is a folder, not a file");
        }
        StagedOutput.requireReplaceable(target);
        StagedOutput.requireParentFolder(dir);
        Path tmp = dir.resolve(StagedOutput.temporaryName(abs));
        boolean created = false;
        try {
            FileChannel opened;
            try {
                opened = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (FileSystemException e) {
                // name the folder the user chose (and the target), not the hidden temporary file
                throw new FileSystemException(target.toString(), null, "cannot write in " + dir + ": " + StagedOutput.reason(e));
            }
            try (FileChannel ch = opened) {
                created = true;
                writeAll(ch, header, ordered, expectedSize, tmp);
            } catch (ChannelFailure e) {
                // the channel's own errors ("No space left on device") name no file: name the target
                throw new IOException(target + ": " + e.getMessage() + " (while writing it)", e.getCause());
            }
            moveIntoPlace(tmp, abs);
        } catch (Throwable t) {
            if (created) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException suppressed) {
                    t.addSuppressed(suppressed);
                }
            }
            throw t;
        }
        syncDirectory(dir);
    }

    /** The file's bytes through {@code ch}: length prefix, header, every tensor; then fsync. */
    private static void writeAll(FileChannel ch, byte[] header, List<Item> ordered, long expectedSize, Path tmp)
            throws IOException {
        ByteBuffer prefix = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
        writeFully(ch, prefix);
        writeFully(ch, ByteBuffer.wrap(header));
        if (TEST_PAUSE_MILLIS > 0) {
            TestPause.sleep(TEST_PAUSE_MILLIS);  // an interrupt stays set: the next channel write fails
        }
        try (Arena staging = Arena.ofConfined()) {
            MemorySegment buffer = null;
            for (Item it : ordered) {
                if (it.producer() != null) {
                    if (buffer == null) {
                        buffer = staging.allocate(CHUNK);
                    }
                    writeProduced(ch, it, buffer);
                } else if (it.data().isNative()) {
                    writeNative(ch, it.data());
                } else {
                    if (buffer == null) {
                        buffer = staging.allocate(CHUNK);
                    }
                    writeStaged(ch, it.data(), buffer);
                }
            }
        }
        if (ch.position() != expectedSize) {
            throw new IOException("wrote " + ch.position() + " bytes to " + tmp + " but expected " + expectedSize);
        }
        try {
            ch.force(true);
        } catch (IOException e) {
            throw ChannelFailure.of(e);
        }
    }

    /** A plain IOException of the channel itself (not a producer's, nor an interrupt), which names no file. */
    private static final class ChannelFailure extends IOException {
        private ChannelFailure(IOException cause) {
            super(cause.getMessage(), cause);
        }

        static IOException of(IOException e) {
            return e.getClass() == IOException.class ? new ChannelFailure(e) : e;
        }
    }

    private static void moveIntoPlace(Path tmp, Path target) throws IOException {
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Makes the rename durable where the platform allows fsync on a directory (Linux does). */
    private static void syncDirectory(Path dir) {
        try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
            d.force(true);
        } catch (IOException e) {
            // Not supported everywhere (e.g. Windows); the file's own data was already forced.
        }
    }

    private static void writeNative(FileChannel ch, MemorySegment data) throws IOException {
        for (long off = 0; off < data.byteSize(); off += CHUNK) {
            long len = Math.min(CHUNK, data.byteSize() - off);
            writeFully(ch, data.asSlice(off, len).asByteBuffer());
        }
    }

    private static void writeStaged(FileChannel ch, MemorySegment data, MemorySegment buffer) throws IOException {
        for (long off = 0; off < data.byteSize(); off += CHUNK) {
            long len = Math.min(CHUNK, data.byteSize() - off);
            MemorySegment.copy(data, off, buffer, 0, len);
            writeFully(ch, buffer.asSlice(0, len).asByteBuffer());
        }
    }

    private static void writeProduced(FileChannel ch, Item it, MemorySegment buffer) throws IOException {
        long size = it.byteSize();
        for (long off = 0; off < size; off += CHUNK) {
            long len = Math.min(CHUNK, size - off);
            MemorySegment chunk = buffer.asSlice(0, len);
            it.producer().fill(off, chunk);
            writeFully(ch, chunk.asByteBuffer());
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        try {
            while (b.hasRemaining()) {
                ch.write(b);
            }
        } catch (IOException e) {
            throw ChannelFailure.of(e);
        }
    }

    /** Rejects strings with an unpaired surrogate: they have no UTF-8 encoding. */
    private static void requireEncodable(String s, String what) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new IllegalArgumentException(what + " " + HeaderParser.quote(s) + " holds an unpaired surrogate at index " + i);
            }
        }
    }
}
