package dev.rslora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Builds the header JSON the way the reference writer does: compact (no spaces),
 * {@code __metadata__} first when present, then one
 * {@code {"dtype":..,"shape":[..],"data_offsets":[begin,end]}} per tensor in file order with
 * consecutive offsets from 0, padded with spaces to a multiple of 8 bytes.
 */
final class HeaderEncoder {
    /** Writes a character outside the BMP as its 4 UTF-8 bytes, as serde_json does, not as a \\uXXXX surrogate pair. */
    private static final JsonFactory JSON = JsonFactory.builder()
            .enable(JsonWriteFeature.COMBINE_UNICODE_SURROGATES_IN_UTF8)
            .build();

    private HeaderEncoder() {
    }

    static byte[] encode(List<SafetensorsWriter.Item> ordered, Map<String, String> metadata) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            if (!metadata.isEmpty()) {
                g.writeObjectFieldStart(HeaderParser.METADATA_KEY);
                for (Map.Entry<String, String> e : metadata.entrySet()) {
                    g.writeStringField(e.getKey(), e.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (SafetensorsWriter.Item it : ordered) {
                long end;
                try {
                    end = Math.addExact(offset, it.byteSize());
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException("tensor " + HeaderParser.quote(it.name()) + " ends past data offset 2^63 - 1: "
                            + "the tensors' total byte size overflows a signed 64-bit integer", e);
                }
                g.writeObjectFieldStart(it.name());
                g.writeStringField("dtype", it.dtype().headerName());
                g.writeArrayFieldStart("shape");
                for (long d : it.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                g.writeNumber(end);
                g.writeEndArray();
                g.writeEndObject();
                offset = end;
            }
            g.writeEndObject();
        } catch (IOException e) {
            throw new UncheckedIOException("encoding a header in memory", e);
        }
        byte[] json = out.toByteArray();
        int padded = (json.length + 7) & ~7;
        byte[] header = Arrays.copyOf(json, padded);
        Arrays.fill(header, json.length, padded, (byte) ' ');
        return header;
    }

    /** Orders strings by their UTF-8 bytes, unsigned (Rust's String order), not by UTF-16 units. */
    static int compareUtf8(String a, String b) {
        return Arrays.compareUnsigned(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
    }
}
