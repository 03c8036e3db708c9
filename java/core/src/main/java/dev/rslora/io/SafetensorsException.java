package dev.rslora.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * A safetensors file broke one of the format's rules.
 *
 * <p>Checked (an {@link IOException}) because a malformed file is an input problem the caller must
 * handle, like a missing file. Each failure names one stable {@link Rule}, the file, the offending
 * value and, where the rule concerns a place in the file, the absolute byte offset from the start
 * of the file ({@link #offset()}, −1 when no single place is to blame).
 */
public final class SafetensorsException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The rule a file broke. The names are stable: tests and callers may switch on them. */
    public enum Rule {
        /** The file has fewer than the 8 bytes of the header length. */
        FILE_TOO_SHORT,
        /** The declared header length N exceeds 100,000,000 bytes (or does not fit a signed 64-bit value). */
        HEADER_TOO_LARGE,
        /** 8 + N is beyond the end of the file. */
        HEADER_PAST_END,
        /** The header bytes are not valid UTF-8. */
        HEADER_NOT_UTF8,
        /** The header does not start with '{' (it must be a JSON object). */
        HEADER_NOT_OBJECT,
        /** The header is not well-formed JSON (or a string holds an unpaired surrogate). */
        INVALID_JSON,
        /** Bytes other than spaces follow the JSON object inside the header. */
        TRAILING_BYTES,
        /** A JSON object repeats a key: two tensors with one name, or a repeated field. */
        DUPLICATE_KEY,
        /** A tensor entry lacks "dtype", "shape" or "data_offsets". */
        MISSING_FIELD,
        /** A value has the wrong JSON type, or data_offsets does not hold exactly two numbers. */
        WRONG_TYPE,
        /** A shape dimension or data offset is negative. */
        NEGATIVE_NUMBER,
        /** A shape dimension or data offset is not an integer (e.g. 2.0 or 1e3). */
        NON_INTEGER,
        /** A shape dimension or data offset does not fit in a signed 64-bit integer. */
        NUMBER_OVERFLOW,
        /** The dtype name is not in {@link SafetensorsDtype}. */
        UNKNOWN_DTYPE,
        /** data_offsets has end &lt; begin. */
        END_BEFORE_BEGIN,
        /** numel × element size overflows a signed 64-bit integer. */
        SIZE_OVERFLOW,
        /** end − begin differs from numel × element size. */
        SIZE_MISMATCH,
        /** Sorted by begin, a tensor starts after the previous one ends (or the first after 0). */
        OFFSET_GAP,
        /** Sorted by begin, a tensor starts before the previous one ends. */
        OFFSET_OVERLAP,
        /** 8 + N + the last end differs from the file size. */
        DATA_SIZE_MISMATCH,
        /** "__metadata__" is not an object of string values. */
        BAD_METADATA
    }

    /** The rule the file broke. */
    private final Rule rule;
    /** The byte offset in the file where it broke the rule, or −1. */
    private final long offset;
    /** The file's name, as given to the reader. */
    private final String file;

    SafetensorsException(Rule rule, String file, long offset, String detail) {
        super("[" + rule + "] " + file + ": " + detail + (offset >= 0 ? " (at byte offset " + offset + ")" : ""));
        this.rule = Objects.requireNonNull(rule, "rule");
        this.file = file;
        this.offset = offset;
    }

    SafetensorsException(Rule rule, Path file, long offset, String detail) {
        this(rule, String.valueOf(file), offset, detail);
    }

    /**
     * The rule the file broke.
     *
     * @return the broken rule, one constant per check of the reader
     */
    public Rule rule() {
        return rule;
    }

    /**
     * Absolute byte offset in the file where the problem is.
     *
     * @return the offset from the start of the file, or −1 when not applicable
     */
    public long offset() {
        return offset;
    }

    /**
     * The file, as given to the reader.
     *
     * @return the path or source name as text
     */
    public String file() {

        return file;
    }
}
