package dev.rslora.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import dev.rslora.io.SafetensorsException.Rule;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses and checks the JSON header of a safetensors file (the N bytes after the length prefix),
 * entry by entry: JSON syntax, key uniqueness, field types, dtype names, and that each tensor's
 * byte range matches numel × element size. Layout across tensors (holes, overlaps, file size) is
 * {@link DataLayout}'s job. The caller has already checked N ≤ 100,000,000, UTF-8 and the leading
 * '{', and hands over the decoded text. Jackson reports positions in chars of that text; they are
 * turned into file byte offsets only when an error is raised.
 */
final class HeaderParser {
    static final String METADATA_KEY = "__metadata__";

    /**
     * Shared factory: no field-name canonicalisation (its symbol table can be flooded by crafted
     * names), and string/name limits raised to the header limit so any legal header parses.
     */
    static final JsonFactory JSON = JsonFactory.builder()
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxStringLength((int) SafetensorsFile.MAX_HEADER_LENGTH)
                    .maxNameLength((int) SafetensorsFile.MAX_HEADER_LENGTH)
                    .build())
            .build();

    /** The parsed header: entries in file order and the metadata map (keys in file order). */
    record Parsed(List<SafetensorsEntry> entries, Map<String, String> metadata) {
    }

    private final String json;
    private final String file;
    private JsonParser p;

    private HeaderParser(String json, String file) {
        this.json = json;
        this.file = file;
    }

    /** Parses {@code json} (the decoded header at file offset 8); errors name {@code file} and absolute byte offsets. */
    static Parsed parse(String json, String file) throws SafetensorsException {
        return new HeaderParser(json, file).run();
    }

    private Parsed run() throws SafetensorsException {
        try (JsonParser parser = JSON.createParser(json)) {
            p = parser;
            return parseRoot();
        } catch (SafetensorsException e) {
            throw e;
        } catch (JsonProcessingException e) {
            JsonLocation loc = e.getLocation();
            throw fail(Rule.INVALID_JSON, loc == null ? -1 : loc.getCharOffset(), "invalid JSON header: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new SafetensorsException(Rule.INVALID_JSON, file, -1, "invalid JSON header: " + e.getMessage());
        }
    }

    private Parsed parseRoot() throws IOException {
        if (p.nextToken() != JsonToken.START_OBJECT) {
            throw fail(Rule.HEADER_NOT_OBJECT, 0, "the header is not a JSON object");
        }
        List<SafetensorsEntry> entries = new ArrayList<>();
        Map<String, String> metadata = Collections.emptyMap();
        Set<String> keys = new HashSet<>();
        JsonToken t;
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String key = p.currentName();
            long keyOffset = tokenOffset();
            checkSurrogates(key, keyOffset);
            if (!keys.add(key)) {
                throw fail(Rule.DUPLICATE_KEY, keyOffset, (key.equals(METADATA_KEY) ? "key " : "tensor name ")
                        + quote(key) + " appears twice in the header");
            }
            p.nextToken();
            if (key.equals(METADATA_KEY)) {
                metadata = parseMetadata();
            } else {
                entries.add(parseEntry(key, keyOffset));
            }
        }
        if (t != JsonToken.END_OBJECT) {
            throw fail(Rule.INVALID_JSON, tokenOffset(), "expected a key or '}' in the header object, found " + t);
        }
        int end = (int) p.currentLocation().getCharOffset();
        for (int i = end; i < json.length(); i++) {
            if (json.charAt(i) != ' ') {
                throw fail(Rule.TRAILING_BYTES, i, String.format("character U+%04X", json.codePointAt(i))
                        + " follows the JSON object; only spaces may pad the header");
            }
        }
        return new Parsed(Collections.unmodifiableList(entries), metadata);
    }

    private Map<String, String> parseMetadata() throws IOException {
        JsonToken t = p.currentToken();
        if (t == JsonToken.VALUE_NULL) {
            // serde (the reference reader) reads a null __metadata__ as "no metadata".
            return Collections.emptyMap();
        }
        if (t != JsonToken.START_OBJECT) {
            throw fail(Rule.BAD_METADATA, tokenOffset(), METADATA_KEY + " must be an object of strings, found " + describe(t));
        }
        Map<String, String> m = new LinkedHashMap<>();
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String k = p.currentName();
            long off = tokenOffset();
            checkSurrogates(k, off);
            if (m.containsKey(k)) {
                throw fail(Rule.DUPLICATE_KEY, off, METADATA_KEY + " key " + quote(k) + " appears twice");
            }
            JsonToken v = p.nextToken();
            if (v != JsonToken.VALUE_STRING) {
                throw fail(Rule.BAD_METADATA, tokenOffset(), METADATA_KEY + " value of " + quote(k)
                        + " must be a string, found " + describe(v));
            }
            String value = p.getText();
            checkSurrogates(value, tokenOffset());
            m.put(k, value);
        }
        return Collections.unmodifiableMap(m);
    }

    private SafetensorsEntry parseEntry(String name, long nameOffset) throws IOException {
        JsonToken t = p.currentToken();
        if (t != JsonToken.START_OBJECT) {
            throw fail(Rule.WRONG_TYPE, tokenOffset(), "tensor " + quote(name) + " must be a JSON object, found " + describe(t));
        }
        String dtypeName = null;
        long dtypeOffset = -1;
        long[] shape = null;
        long[] offsets = null;
        long offsetsOffset = -1;
        Set<String> fields = new HashSet<>();
        while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
            String f = p.currentName();
            long fOffset = tokenOffset();
            checkSurrogates(f, fOffset);
            if (!fields.add(f)) {
                throw fail(Rule.DUPLICATE_KEY, fOffset, "field " + quote(f) + " appears twice in tensor " + quote(name));
            }
            JsonToken v = p.nextToken();
            switch (f) {
                case "dtype" -> {
                    dtypeOffset = tokenOffset();
                    if (v != JsonToken.VALUE_STRING) {
                        throw fail(Rule.WRONG_TYPE, dtypeOffset, "dtype of tensor " + quote(name) + " must be a string, found " + describe(v));
                    }
                    dtypeName = p.getText();
                }
                case "shape" -> shape = readNaturals(name, "shape");
                case "data_offsets" -> {
                    offsetsOffset = tokenOffset();
                    offsets = readNaturals(name, "data_offsets");
                    if (offsets.length != 2) {
                        throw fail(Rule.WRONG_TYPE, offsetsOffset, "data_offsets of tensor " + quote(name)
                                + " must hold exactly 2 numbers, found " + Arrays.toString(offsets));
                    }
                }
                default -> p.skipChildren(); // unknown fields are ignored, as the reference reader does
            }
        }
        String missing = dtypeName == null ? "dtype" : shape == null ? "shape" : offsets == null ? "data_offsets" : null;
        if (missing != null) {
            throw fail(Rule.MISSING_FIELD, nameOffset, "tensor " + quote(name) + " has no \"" + missing + "\" field");
        }
        SafetensorsDtype dtype = SafetensorsDtype.byName(dtypeName);
        if (dtype == null) {
            throw fail(Rule.UNKNOWN_DTYPE, dtypeOffset, "tensor " + quote(name) + " has unknown dtype " + quote(dtypeName));
        }
        long begin = offsets[0];
        long end = offsets[1];
        if (end < begin) {
            throw fail(Rule.END_BEFORE_BEGIN, offsetsOffset, "tensor " + quote(name) + " has data_offsets ["
                    + begin + ", " + end + "] with end < begin");
        }
        long need;
        try {
            long n = 1;
            for (long d : shape) {
                n = Math.multiplyExact(n, d);
            }
            need = Math.multiplyExact(n, (long) dtype.byteSize());
        } catch (ArithmeticException e) {
            throw fail(Rule.SIZE_OVERFLOW, nameOffset, "tensor " + quote(name) + " " + dtype + " " + Arrays.toString(shape)
                    + ": numel × " + dtype.byteSize() + " bytes overflows a signed 64-bit integer");
        }
        if (end - begin != need) {
            throw fail(Rule.SIZE_MISMATCH, offsetsOffset, "tensor " + quote(name) + " " + dtype + " " + Arrays.toString(shape)
                    + " needs " + need + " bytes but data_offsets [" + begin + ", " + end + "] span " + (end - begin));
        }
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    /** Reads a JSON array of integers in [0, 2^63); the current token must be its START_ARRAY. */
    private long[] readNaturals(String name, String field) throws IOException {
        JsonToken t = p.currentToken();
        if (t != JsonToken.START_ARRAY) {
            throw fail(Rule.WRONG_TYPE, tokenOffset(), field + " of tensor " + quote(name) + " must be an array, found " + describe(t));
        }
        long[] out = new long[4];
        int n = 0;
        while ((t = p.nextToken()) != JsonToken.END_ARRAY) {
            long off = tokenOffset();
            String where = field + "[" + n + "] of tensor " + quote(name);
            if (t == JsonToken.VALUE_NUMBER_FLOAT) {
                throw fail(Rule.NON_INTEGER, off, where + " is " + p.getText() + ", not an integer");
            }
            if (t != JsonToken.VALUE_NUMBER_INT) {
                throw fail(Rule.WRONG_TYPE, off, where + " must be an integer, found " + describe(t));
            }
            boolean negative = p.getText().startsWith("-");
            if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                throw fail(negative ? Rule.NEGATIVE_NUMBER : Rule.NUMBER_OVERFLOW, off,
                        where + " is " + p.getText() + (negative ? ", which is negative" : ", which does not fit in 63 bits"));
            }
            long v = p.getLongValue();
            if (v < 0) {
                throw fail(Rule.NEGATIVE_NUMBER, off, where + " is " + v + ", which is negative");
            }
            if (n == out.length) {
                out = Arrays.copyOf(out, n * 2);
            }
            out[n++] = v;
        }
        return Arrays.copyOf(out, n);
    }

    /** Rejects a lone UTF-16 surrogate (only possible through a \\u escape): it has no UTF-8 form. */
    private void checkSurrogates(String s, long offset) throws SafetensorsException {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw fail(Rule.INVALID_JSON, offset, String.format("string %s holds an unpaired surrogate \\u%04x",
                        quote(s), (int) c));
            }
        }
    }

    /** Char offset in {@link #json} where the current token starts. */
    private long tokenOffset() {
        return p.currentTokenLocation().getCharOffset();
    }

    /** An exception at char offset {@code at} of the header text (−1: no place), reported as a file byte offset. */
    private SafetensorsException fail(Rule rule, long at, String detail) {
        long offset = at < 0 || at > json.length() ? -1 : 8 + utf8Length(json, (int) at);
        return new SafetensorsException(rule, file, offset, detail);
    }

    /** UTF-8 byte length of the first {@code chars} chars of {@code s} (well-formed, as validated). */
    private static long utf8Length(String s, int chars) {
        long n = 0;
        for (int i = 0; i < chars; i++) {
            char c = s.charAt(i);
            n += c < 0x80 ? 1 : c < 0x800 ? 2 : Character.isSurrogate(c) ? 2 : 3;
        }
        return n;
    }

    private String describe(JsonToken t) {
        if (t == null) {
            return "end of input";
        }
        return switch (t) {
            case START_OBJECT -> "an object";
            case START_ARRAY -> "an array";
            case VALUE_STRING -> "the string " + quote(textOrEmpty());
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "the number " + textOrEmpty();
            case VALUE_TRUE -> "true";
            case VALUE_FALSE -> "false";
            case VALUE_NULL -> "null";
            default -> t.toString();
        };
    }

    private String textOrEmpty() {
        try {
            return p.getText();
        } catch (IOException e) {
            return "";
        }
    }

    /** A JSON-ish quotation, shortened to 120 characters so a crafted 100 MB name cannot flood a log. */
    static String quote(String s) {
        String body = s.length() > 120 ? s.substring(0, 117) + "..." : s;
        StringBuilder b = new StringBuilder(body.length() + 2).append('"');
        for (int i = 0; i < body.length(); i++) {
            char c = body.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20 || Character.isSurrogate(c)) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    static String hex(byte b) {
        return String.format("%02x", b & 0xff);
    }
}
