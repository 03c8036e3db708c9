package dev.rslora.io;

import static dev.rslora.io.Crafted.at;
import static dev.rslora.io.Crafted.file;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.rslora.io.SafetensorsException.Rule;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One crafted bad file per format rule: the rule id, the offset and the offending value are reported. */
class SafetensorsValidationTest {
    private static final String OK_ENTRY = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    /** Parses {@code image} expecting {@code rule} at {@code offset}; the message names the rule, file and each of {@code mentions}. */
    private static SafetensorsException assertRule(byte[] image, Rule rule, long offset, String... mentions) {
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> Crafted.parse(image));
        assertEquals(rule, e.rule(), e.getMessage());
        assertEquals(offset, e.offset(), e.getMessage());
        String m = e.getMessage();
        assertTrue(m.contains("[" + rule + "]"), m);
        assertTrue(m.contains("crafted.safetensors"), m);
        if (offset >= 0) {
            assertTrue(m.contains("at byte offset " + offset), m);
        }
        for (String s : mentions) {
            assertTrue(m.contains(s), "message should mention <" + s + ">: " + m);
        }
        return e;
    }

    private static void assertRule(String json, int dataBytes, Rule rule, long offset, String... mentions) {
        assertRule(file(json, dataBytes), rule, offset, mentions);
    }

    @Test
    void fileShorterThanEightBytes() {
        assertRule(new byte[5], Rule.FILE_TOO_SHORT, 0, "5 bytes");
        assertRule(new byte[0], Rule.FILE_TOO_SHORT, 0, "0 bytes");
    }

    @Test
    void fileTooShortOnDisk(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("tiny.safetensors");
        Files.write(p, new byte[]{1, 2, 3});
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p, arena));
            assertEquals(Rule.FILE_TOO_SHORT, e.rule());
            assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        }
    }

    @Test
    void aFifoIsRefusedWithItsPathInsteadOfWaitingForAWriter(@TempDir Path dir) throws Exception {
        // opening a named pipe for reading blocks until some process writes to it: the reader would hang
        Path fifo = dev.rslora.testing.Fifo.create(dir.resolve("x.safetensors"));
        try (Arena arena = Arena.ofShared()) {
            java.io.IOException e = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10),
                    () -> assertThrows(java.io.IOException.class, () -> SafetensorsFile.open(fifo, arena)));
            assertTrue(e.getMessage().contains(fifo.toString()) && e.getMessage().contains("not a regular file"), e.getMessage());
        } finally {
            dev.rslora.testing.Fifo.release(fifo);
        }
    }

    @Test
    void aFolderIsRefusedWithItsPath(@TempDir Path dir) throws Exception {
        Path folder = Files.createDirectory(dir.resolve("model.safetensors"));
        try (Arena arena = Arena.ofConfined()) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> SafetensorsFile.open(folder, arena));
            assertTrue(e.getMessage().contains(folder.toString()) && e.getMessage().contains("is a folder"), e.getMessage());
        }
    }

    @Test
    void headerLengthOverLimit() {
        assertRule(file(100_000_001L, "{}".getBytes(), 0), Rule.HEADER_TOO_LARGE, 0, "100000001", "100000000");
        // 2^64 − 1 does not fit a signed long: reported unsigned, still no allocation.
        assertRule(file(-1L, "{}".getBytes(), 0), Rule.HEADER_TOO_LARGE, 0, "18446744073709551615");
    }

    @Test
    void headerLengthTwoToThe62DoesNotAllocate() {
        assertRule(file(1L << 62, "{}".getBytes(), 0), Rule.HEADER_TOO_LARGE, 0, Long.toString(1L << 62));
    }

    @Test
    void headerLengthPastEndOfFile() {
        // N = 100 (legal) but only 2 header bytes follow: 8 + 100 > 10.
        assertRule(file(100, "{}".getBytes(), 0), Rule.HEADER_PAST_END, 0, "N = 100", "108", "holds 10");
        // Header within the limit but near it, with a tiny file: still no 100 MB allocation.
        assertRule(file(99_999_999L, "{}".getBytes(), 0), Rule.HEADER_PAST_END, 0, "99999999");
    }

    @Test
    void headerNotUtf8() {
        byte[] h = "{\"a?\":{}}".getBytes();
        h[3] = (byte) 0xff;
        assertRule(file(h, 0), Rule.HEADER_NOT_UTF8, 8 + 3, "0xff");
        // Overlong encoding of '/', and a UTF-8-encoded surrogate: both malformed.
        byte[] overlong = {'{', '"', (byte) 0xc0, (byte) 0xaf, '"', ':', '1', '}'};
        assertRule(file(overlong, 0), Rule.HEADER_NOT_UTF8, 8 + 2, "0xc0");
        byte[] surrogate = {'{', '"', 'x', (byte) 0xed, (byte) 0xa0, (byte) 0x80, '"', '}'};
        assertRule(file(surrogate, 0), Rule.HEADER_NOT_UTF8, 8 + 3, "0xed");
        // A multi-byte sequence cut off by the end of the header.
        byte[] cut = {'{', '}', ' ', (byte) 0xe2, (byte) 0x82};
        assertRule(file(cut, 0), Rule.HEADER_NOT_UTF8, 8 + 3, "0xe2");
    }

    @Test
    void headerNotAnObject() {
        assertRule("[1,2]", 0, Rule.HEADER_NOT_OBJECT, 8, "0x5b");
        assertRule(" {}", 0, Rule.HEADER_NOT_OBJECT, 8, "0x20");
        assertRule("", 0, Rule.HEADER_NOT_OBJECT, 8, "empty");
    }

    @Test
    void invalidJson() {
        String missingValue = "{\"w\":}";
        assertRule(missingValue, 0, Rule.INVALID_JSON, at(missingValue, "}"), "invalid JSON");
        String trailingComma = "{" + OK_ENTRY.replace("[0,8]}", "[0,8],}") + "}";
        assertRule(trailingComma, 8, Rule.INVALID_JSON, at(trailingComma, ",}") + 1, "double-quote");
        assertRule("{\"w\":{\"dtype\":\"F32\"", 0, Rule.INVALID_JSON, 8 + 19, "end-of-input");
        String comment = "{/*x*/}";
        assertRule(comment, 0, Rule.INVALID_JSON, at(comment, "/"), "invalid JSON");
        // A lone surrogate written as a \\u escape has no UTF-8 form; serde rejects it too.
        String lone = "{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
        assertRule(lone, 0, Rule.INVALID_JSON, at(lone, "\"\\ud800"), "unpaired surrogate", "\\ud800");
    }

    @Test
    void trailingBytesAfterTheObject() {
        assertRule("{}x", 0, Rule.TRAILING_BYTES, 8 + 2, "U+0078");
        assertRule("{}  {}", 0, Rule.TRAILING_BYTES, 8 + 4, "U+007B");
        assertRule("{} \n", 0, Rule.TRAILING_BYTES, 8 + 3, "U+000A");
    }

    @Test
    void duplicateTensorName() {
        String json = "{" + OK_ENTRY + "," + OK_ENTRY.replace("[0,8]", "[8,16]") + "}";
        assertRule(json, 16, Rule.DUPLICATE_KEY, at(json, "\"w\"", 1), "\"w\"", "twice");
    }

    @Test
    void duplicateKeysElsewhere() {
        String field = "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRule(field, 8, Rule.DUPLICATE_KEY, at(field, "\"dtype\"", 1), "\"dtype\"", "\"w\"");
        String meta = "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}";
        assertRule(meta, 0, Rule.DUPLICATE_KEY, at(meta, "\"k\"", 1), "\"k\"");
        String twoMeta = "{\"__metadata__\":{},\"__metadata__\":{}}";
        assertRule(twoMeta, 0, Rule.DUPLICATE_KEY, at(twoMeta, "\"__metadata__\"", 1), "__metadata__");
    }

    @Test
    void missingFields() {
        String noDtype = "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRule(noDtype, 8, Rule.MISSING_FIELD, at(noDtype, "\"w\""), "\"w\"", "\"dtype\"");
        String noShape = "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}";
        assertRule(noShape, 8, Rule.MISSING_FIELD, at(noShape, "\"w\""), "\"shape\"");
        String noOffsets = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}";
        assertRule(noOffsets, 8, Rule.MISSING_FIELD, at(noOffsets, "\"w\""), "\"data_offsets\"");
    }

    @Test
    void wrongJsonTypes() {
        String entryArray = "{\"w\":[1]}";
        assertRule(entryArray, 0, Rule.WRONG_TYPE, at(entryArray, "["), "\"w\"", "an array");
        String dtypeNumber = "{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRule(dtypeNumber, 8, Rule.WRONG_TYPE, at(dtypeNumber, "32"), "dtype", "the number 32");
        String shapeString = "{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}";
        assertRule(shapeString, 8, Rule.WRONG_TYPE, at(shapeString, "\"2\""), "shape", "the string \"2\"");
        String dimString = "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}";
        assertRule(dimString, 8, Rule.WRONG_TYPE, at(dimString, "\"2\""), "shape[0]");
        String threeOffsets = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}";
        assertRule(threeOffsets, 8, Rule.WRONG_TYPE, at(threeOffsets, "[0,8,8]"), "exactly 2", "[0, 8, 8]");
        String nullOffsets = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":null}}";
        assertRule(nullOffsets, 8, Rule.WRONG_TYPE, at(nullOffsets, "null"), "data_offsets", "null");
    }

    @Test
    void negativeNumbers() {
        String dim = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}";
        assertRule(dim, 8, Rule.NEGATIVE_NUMBER, at(dim, "-2"), "shape[0]", "-2");
        String off = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}";
        assertRule(off, 8, Rule.NEGATIVE_NUMBER, at(off, "-8"), "data_offsets[0]", "-8");
        String huge = "{\"w\":{\"dtype\":\"F32\",\"shape\":[-99999999999999999999],\"data_offsets\":[0,8]}}";
        assertRule(huge, 8, Rule.NEGATIVE_NUMBER, at(huge, "-9"), "-99999999999999999999");
    }

    @Test
    void nonIntegerNumbers() {
        String dim = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}";
        assertRule(dim, 8, Rule.NON_INTEGER, at(dim, "2.0"), "shape[0]", "2.0");
        String off = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8e0]}}";
        assertRule(off, 8, Rule.NON_INTEGER, at(off, "8e0"), "data_offsets[1]", "8e0");
    }

    @Test
    void numbersThatOverflow() {
        String dim = "{\"w\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,8]}}";
        assertRule(dim, 8, Rule.NUMBER_OVERFLOW, at(dim, "9223"), "9223372036854775808");
        String off = "{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,18446744073709551616]}}";
        assertRule(off, 8, Rule.NUMBER_OVERFLOW, at(off, "1844"), "18446744073709551616");
    }

    @Test
    void unknownDtype() {
        String f128 = "{\"w\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRule(f128, 8, Rule.UNKNOWN_DTYPE, at(f128, "\"F128\""), "\"F128\"", "\"w\"");
        String lower = "{\"w\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRule(lower, 8, Rule.UNKNOWN_DTYPE, at(lower, "\"f32\""), "\"f32\"");
    }

    @Test
    void offsetsCountUtf8BytesNotChars() {
        // "ü" is 2 bytes, "✓" 3 and the emoji 4 (two UTF-16 chars): the offset is in file bytes.
        String json = "{\"ü✓\uD83D\uDE00\":{\"dtype\":\"Q8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
        long expected = 8 + json.substring(0, json.indexOf("\"Q8\"")).getBytes(StandardCharsets.UTF_8).length;
        assertEquals(at(json, "\"Q8\"") + 1 + 2 + 2, expected, "test arithmetic: 1 + 2 + 2 extra bytes");
        assertRule(json, 2, Rule.UNKNOWN_DTYPE, expected, "\"Q8\"", "ü✓");
    }

    @Test
    void largeHeadersWithinTheLimitParse() throws Exception {
        // Beyond Jackson's default limits (20 M chars per string, 50 k per name) but legal safetensors.
        String longName = "n".repeat(60_000);
        String longValue = "v".repeat(21_000_000);
        String json = "{\"__metadata__\":{\"big\":\"" + longValue + "\"},\"" + longName
                + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        SafetensorsFile f = Crafted.parse(file(json, 1));
        assertEquals(21_000_000, f.metadata().get("big").length());
        assertEquals(longName, f.entries().get(0).name());
    }

    @Test
    void endBeforeBegin() {
        String json = "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}";
        assertRule(json, 8, Rule.END_BEFORE_BEGIN, at(json, "[8,4]"), "[8, 4]");
    }

    @Test
    void byteSizeOverflow() {
        String json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}";
        assertRule(json, 8, Rule.SIZE_OVERFLOW, at(json, "\"w\""), "[4611686018427387904, 4]");
    }

    @Test
    void byteLengthDiffersFromNumelTimesElementSize() {
        String json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}";
        assertRule(json, 20, Rule.SIZE_MISMATCH, at(json, "[0,20]"), "needs 24 bytes", "span 20", "[2, 3]");
    }

    @Test
    void aQuadrillionElementTensorIsRefusedWithoutAllocating() {
        // Declared consistently (4e15 bytes) but the file holds 8: the layout check refuses it.
        String consistent = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000000000000],\"data_offsets\":[0,4000000000000000]}}";
        assertRule(consistent, 8, Rule.DATA_SIZE_MISMATCH, file(consistent, 8).length, "4000000000000000");
        String inconsistent = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000000000000],\"data_offsets\":[0,8]}}";
        assertRule(inconsistent, 8, Rule.SIZE_MISMATCH, at(inconsistent, "[0,8]"), "4000000000000000");
    }

    @Test
    void holesBetweenTensors() {
        String first = "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}";
        long ds = 8 + first.length();
        assertRule(first, 8, Rule.OFFSET_GAP, ds, "\"w\"", "begins at data offset 4, not 0");
        String middle = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[6,8]}}";
        assertRule(middle, 8, Rule.OFFSET_GAP, 8 + middle.length() + 4, "\"b\"", "\"a\"", "hole of 2 bytes");
    }

    @Test
    void overlappingTensors() {
        String json = "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}";
        assertRule(json, 12, Rule.OFFSET_OVERLAP, 8 + json.length() + 4, "\"b\" [4, 12)", "\"a\" [0, 8)");
    }

    @Test
    void dataBufferMustEndAtEndOfFile() {
        String json = "{" + OK_ENTRY + "}";
        long ds = 8 + json.length();
        assertRule(json, 9, Rule.DATA_SIZE_MISMATCH, ds + 8, "= " + (ds + 8) + " bytes", "holds " + (ds + 9));
        assertRule(json, 7, Rule.DATA_SIZE_MISMATCH, ds + 7, "holds " + (ds + 7));
        assertRule("{}", 1, Rule.DATA_SIZE_MISMATCH, 10, "holds 11");
    }

    @Test
    void metadataMustMapStringsToStrings() {
        String number = "{\"__metadata__\":{\"format\":1}}";
        assertRule(number, 0, Rule.BAD_METADATA, at(number, "1"), "\"format\"", "the number 1");
        String array = "{\"__metadata__\":[\"pt\"]}";
        assertRule(array, 0, Rule.BAD_METADATA, at(array, "["), "an array");
        String nested = "{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}";
        assertRule(nested, 0, Rule.BAD_METADATA, at(nested, "{\"b\""), "\"a\"", "an object");
        String nullValue = "{\"__metadata__\":{\"a\":null}}";
        assertRule(nullValue, 0, Rule.BAD_METADATA, at(nullValue, "null"), "null");
    }

    @Test
    void legalCornerCasesParse() throws Exception {
        // No tensors at all; a null __metadata__ (read by serde as "none"); pretty-printed JSON;
        // unknown fields inside an entry (ignored); an empty tensor; a rank-0 scalar; space padding.
        String json = "{\n  \"__metadata__\" : null ,\n"
                + "  \"e\": {\"dtype\": \"BF16\", \"shape\": [3, 0], \"data_offsets\": [4, 4], \"extra\": {\"x\": [1, 2]}},\n"
                + "  \"s\": {\"data_offsets\": [0, 4], \"shape\": [], \"dtype\": \"I32\"}\n}    ";
        SafetensorsFile f = Crafted.parse(file(json, 4));
        assertEquals(Map.of(), f.metadata());
        assertEquals(2, f.entries().size());
        assertEquals("e", f.entries().get(0).name(), "entries keep header order");
        assertArrayEquals(new long[]{3, 0}, f.entry("e").shape());
        assertEquals(0, f.bytes("e").byteSize());
        assertEquals(0, f.tensor("e").numel());
        assertArrayEquals(new long[0], f.entry("s").shape());
        assertEquals(1, f.entry("s").numel());
        assertEquals(4, f.bytes("s").byteSize());

        SafetensorsFile empty = Crafted.parse(file("{}", 0));
        assertTrue(empty.entries().isEmpty());
        assertEquals(10, empty.fileSize());
    }

    @Test
    void everyRuleHasATest() {
        // Guards this class against a new rule without a crafted case: the list must be updated.
        assertEquals(21, Rule.values().length, "a Rule was added or removed: add or drop its crafted test");
    }
}
