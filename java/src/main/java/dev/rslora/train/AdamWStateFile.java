package dev.rslora.train;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The AdamW state file: a small self-checking little-endian binary.
 *
 * <pre>
 *   offset  size  field
 *   0       8     magic "RSLADAMW" (ASCII)
 *   8       4     u32 format version = 1
 *   12      4     u32 parameter count P
 *   16      8     u64 step t
 *   24      40    f64 lr, beta1, beta2, eps, weight_decay
 *   64      …     P entries, each:
 *                   u16 name length L, L bytes UTF-8 name,
 *                   u8 rank R (0..8), R × u64 dims,
 *                   u8 flags (bit 0: master weights present; other bits 0),
 *                   numel × f32 m, numel × f32 v, [numel × f32 master]
 *   end-4   4     u32 CRC-32 (java.util.zip.CRC32, as zip/PNG) of every preceding byte
 * </pre>
 *
 * A reader rejects a wrong magic or version, a flag or rank out of range, sizes that run past the
 * end of the file, trailing bytes, and a CRC mismatch; every error names the file offset.
 * Writes go to a temporary file that is then moved over the target.
 */
public final class AdamWStateFile {
    /** The first 8 bytes of every state file. */
    public static final byte[] MAGIC = "RSLADAMW".getBytes(StandardCharsets.US_ASCII);
    public static final int VERSION = 1;
    private static final int MAX_RANK = 8;

    private AdamWStateFile() {
    }

    /** Writes {@code state} to {@code file} (replacing it). */
    public static void write(AdamWState state, Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            try (Out out = new Out(new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 16))) {
                out.bytes(MAGIC);
                out.u32(VERSION);
                out.u32(state.entries().size());
                out.u64(state.step());
                AdamWConfig c = state.config();
                out.f64(c.lr());
                out.f64(c.beta1());
                out.f64(c.beta2());
                out.f64(c.eps());
                out.f64(c.weightDecay());
                for (AdamWState.Entry e : state.entries()) {
                    byte[] name = e.name().getBytes(StandardCharsets.UTF_8);
                    if (name.length > 0xFFFF) {
                        throw new IOException("parameter name of " + name.length + " bytes is longer than 65535");
                    }
                    long[] shape = e.shape();
                    if (shape.length > MAX_RANK) {
                        throw new IOException("parameter " + e.name() + " has rank " + shape.length + " > " + MAX_RANK);
                    }
                    out.u16(name.length);
                    out.bytes(name);
                    out.u8(shape.length);
                    for (long d : shape) {
                        out.u64(d);
                    }
                    out.u8(e.master() != null ? 1 : 0);
                    out.floats(e.m());
                    out.floats(e.v());
                    if (e.master() != null) {
                        out.floats(e.master());
                    }
                }
                out.finish();
            }
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** Reads and validates a state file. */
    public static AdamWState read(Path file) throws IOException {
        long size = Files.size(file);
        try (In in = new In(new BufferedInputStream(Files.newInputStream(file), 1 << 16), size, file)) {
            byte[] magic = in.bytes(MAGIC.length);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw in.error(0, "not an AdamW state file (magic " + new String(magic, StandardCharsets.ISO_8859_1) + ")");
            }
            long version = in.u32();
            if (version != VERSION) {
                throw in.error(8, "unsupported format version " + version + " (this reader knows " + VERSION + ")");
            }
            long count = in.u32();
            long step = in.u64();
            if (step < 0) {
                throw in.error(16, "negative step " + step);
            }
            AdamWConfig config;
            try {
                config = new AdamWConfig(in.f64(), in.f64(), in.f64(), in.f64(), in.f64());
            } catch (IllegalArgumentException e) {
                throw in.error(24, "bad hyper-parameters: " + e.getMessage());
            }
            List<AdamWState.Entry> entries = new ArrayList<>();
            for (long p = 0; p < count; p++) {
                long at = in.offset();
                String name = in.utf8(in.u16());
                int rank = in.u8();
                if (rank > MAX_RANK) {
                    throw in.error(at, "parameter '" + name + "' has rank " + rank + " > " + MAX_RANK);
                }
                long[] shape = new long[rank];
                long numel = 1;
                for (int i = 0; i < rank; i++) {
                    shape[i] = in.u64();
                    if (shape[i] < 0 || (numel = multiplyOrMax(numel, shape[i])) > size) {
                        throw in.error(in.offset() - 8, "parameter '" + name + "' dimension " + shape[i]
                                + " is impossible in a file of " + size + " bytes");
                    }
                }
                long flagsAt = in.offset();
                int flags = in.u8();
                if ((flags & ~1) != 0) {
                    throw in.error(flagsAt, "parameter '" + name + "' has unknown flags 0x" + Integer.toHexString(flags));
                }
                boolean master = (flags & 1) != 0;
                long need = numel * 4 * (master ? 3 : 2);
                if (numel > Integer.MAX_VALUE - 8 || need > in.remaining() - 4) {
                    throw in.error(in.offset(), "parameter '" + name + "' needs " + need + " data bytes but "
                            + Math.max(0, in.remaining() - 4) + " remain before the checksum");
                }
                float[] m = in.floats((int) numel);
                float[] v = in.floats((int) numel);
                float[] w = master ? in.floats((int) numel) : null;
                entries.add(new AdamWState.Entry(name, shape, m, v, w));
            }
            in.checkCrcAndEnd();
            return new AdamWState(step, config, entries);
        }
    }

    private static long multiplyOrMax(long a, long b) {
        long hi = Math.multiplyHigh(a, b);
        long lo = a * b;
        return (hi != 0 || lo < 0) ? Long.MAX_VALUE : lo;
    }

    /** Little-endian writer that keeps a CRC-32 of everything written. */
    private static final class Out implements AutoCloseable {
        private final OutputStream os;
        private final CRC32 crc = new CRC32();
        private final ByteBuffer buf = ByteBuffer.allocate(1 << 14).order(ByteOrder.LITTLE_ENDIAN);

        Out(OutputStream os) {
            this.os = os;
        }

        private void room(int n) throws IOException {
            if (buf.remaining() < n) {
                flushBuf();
            }
        }

        private void flushBuf() throws IOException {
            crc.update(buf.array(), 0, buf.position());
            os.write(buf.array(), 0, buf.position());
            buf.clear();
        }

        void bytes(byte[] b) throws IOException {
            flushBuf();
            crc.update(b);
            os.write(b);
        }

        void u8(int v) throws IOException {
            room(1);
            buf.put((byte) v);
        }

        void u16(int v) throws IOException {
            room(2);
            buf.putShort((short) v);
        }

        void u32(long v) throws IOException {
            room(4);
            buf.putInt((int) v);
        }

        void u64(long v) throws IOException {
            room(8);
            buf.putLong(v);
        }

        void f64(double v) throws IOException {
            room(8);
            buf.putDouble(v);
        }

        void floats(float[] a) throws IOException {
            for (float f : a) {
                room(4);
                buf.putFloat(f);
            }
        }

        /** Appends the CRC of everything so far. */
        void finish() throws IOException {
            flushBuf();
            int c = (int) crc.getValue();
            buf.putInt(c);
            os.write(buf.array(), 0, 4);
            buf.clear();
        }

        @Override
        public void close() throws IOException {
            os.close();
        }
    }

    /** Little-endian reader that tracks the file offset and a CRC-32 of everything read. */
    private static final class In implements AutoCloseable {
        private final InputStream is;
        private final long size;
        private final Path file;
        private final CRC32 crc = new CRC32();
        private final ByteBuffer buf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        private long offset;

        In(InputStream is, long size, Path file) {
            this.is = is;
            this.size = size;
            this.file = file;
        }

        long offset() {
            return offset;
        }

        long remaining() {
            return size - offset;
        }

        IOException error(long at, String what) {
            return new IOException(file + ": at offset " + at + ": " + what);
        }

        byte[] bytes(int n) throws IOException {
            if (n > remaining()) {
                throw error(offset, "file ends after " + size + " bytes, " + n + " more needed");
            }
            byte[] b = is.readNBytes(n);
            if (b.length != n) {
                throw new EOFException(file + ": at offset " + (offset + b.length) + ": unexpected end of file");
            }
            crc.update(b);
            offset += n;
            return b;
        }

        private ByteBuffer fixed(int n) throws IOException {
            buf.clear();
            buf.put(bytes(n));
            buf.flip();
            return buf;
        }

        int u8() throws IOException {
            return fixed(1).get() & 0xFF;
        }

        int u16() throws IOException {
            return fixed(2).getShort() & 0xFFFF;
        }

        long u32() throws IOException {
            return fixed(4).getInt() & 0xFFFF_FFFFL;
        }

        long u64() throws IOException {
            return fixed(8).getLong();
        }

        double f64() throws IOException {
            return fixed(8).getDouble();
        }

        String utf8(int n) throws IOException {
            long at = offset;
            byte[] b = bytes(n);
            try {
                return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(b)).toString();
            } catch (CharacterCodingException e) {
                throw error(at, "parameter name is not valid UTF-8");
            }
        }

        float[] floats(int n) throws IOException {
            float[] out = new float[n];
            int chunk = 1 << 14;
            for (int i = 0; i < n; i += chunk) {
                int k = Math.min(chunk, n - i);
                ByteBuffer b = ByteBuffer.wrap(bytes(k * 4)).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().get(out, i, k);
            }
            return out;
        }

        void checkCrcAndEnd() throws IOException {
            long expected = crc.getValue();
            long at = offset;
            long stored = u32();
            if (stored != expected) {
                throw error(at, String.format("CRC-32 mismatch: stored %08x, computed %08x", stored, expected));
            }
            if (offset != size) {
                throw error(offset, (size - offset) + " trailing bytes after the checksum");
            }
        }

        @Override
        public void close() throws IOException {
            is.close();
        }
    }
}
