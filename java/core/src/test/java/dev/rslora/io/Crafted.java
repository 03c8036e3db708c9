package dev.rslora.io;

import java.io.ByteArrayOutputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Hand-built safetensors images for the validation and fuzz tests. */
final class Crafted {
    private Crafted() {
    }

    /** 8-byte LE length of {@code header}, then {@code header}, then {@code dataBytes} bytes 0, 1, 2, .... */
    static byte[] file(byte[] header, int dataBytes) {
        return file(header.length, header, dataBytes);
    }

    /** As {@link #file(byte[], int)} but with the length prefix {@code n} written verbatim. */
    static byte[] file(long n, byte[] header, int dataBytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(n).array());
        out.writeBytes(header);
        for (int i = 0; i < dataBytes; i++) {
            out.write(i);
        }
        return out.toByteArray();
    }

    /** A file whose header is {@code json} (UTF-8, unpadded) followed by {@code dataBytes} bytes. */
    static byte[] file(String json, int dataBytes) {
        return file(json.getBytes(StandardCharsets.UTF_8), dataBytes);
    }

    static SafetensorsFile parse(byte[] image) throws SafetensorsException {
        return SafetensorsFile.parse(MemorySegment.ofArray(image), "crafted.safetensors");
    }

    /** Absolute file offset of the first occurrence of {@code token} in an ASCII header. */
    static long at(String json, String token) {
        int i = json.indexOf(token);
        if (i < 0) {
            throw new IllegalArgumentException(token + " not in " + json);
        }
        return 8 + i;
    }

    /** Absolute file offset of the {@code nth} (0-based) occurrence of {@code token}. */
    static long at(String json, String token, int nth) {
        int i = -1;
        for (int k = 0; k <= nth; k++) {
            i = json.indexOf(token, i + 1);
            if (i < 0) {
                throw new IllegalArgumentException(token + " occurs fewer than " + (nth + 1) + " times in " + json);
            }
        }
        return 8 + i;
    }
}
