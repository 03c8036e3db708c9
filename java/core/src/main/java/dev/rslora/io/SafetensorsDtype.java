package dev.rslora.io;

import dev.rslora.tensor.DType;

/**
 * Every dtype name a safetensors header may carry, with its element size in bytes.
 *
 * <p>The constants are declared in the reference implementation's order (increasing alignment:
 * {@code BOOL} first, {@code U64} last); the writer orders tensors by this order, largest first,
 * then by name. Any tensor of a listed dtype can be read and copied as raw bytes; only
 * {@code F32}, {@code BF16} and {@code F16} map to a {@link DType} for arithmetic (a merge copies the
 * others byte for byte). A name missing from this table (the sub-byte {@code F4}/{@code F6_*} types of
 * newer writers, whose elements are not whole bytes) is an unknown dtype and the file is refused.
 */
public enum SafetensorsDtype {
    /** Boolean, one byte. */
    BOOL(1, null),
    /** Unsigned 8-bit integer. */
    U8(1, null),
    /** Signed 8-bit integer. */
    I8(1, null),
    /** 8-bit float, 5 exponent and 2 mantissa bits. */
    F8_E5M2(1, null),
    /** 8-bit float, 4 exponent and 3 mantissa bits. */
    F8_E4M3(1, null),
    /** 8-bit exponent-only float (OCP MX block scales, torch.float8_e8m0fnu). */
    F8_E8M0(1, null),
    /** 8-bit float, 4 exponent and 3 mantissa bits, no negative zero (AMD's FNUZ variant). */
    F8_E4M3FNUZ(1, null),
    /** 8-bit float, 5 exponent and 2 mantissa bits, no negative zero (AMD's FNUZ variant). */
    F8_E5M2FNUZ(1, null),
    /** Signed 16-bit integer. */
    I16(2, null),
    /** Unsigned 16-bit integer. */
    U16(2, null),
    /** IEEE half precision ({@link DType#F16}). */
    F16(2, DType.F16),
    /** bfloat16 ({@link DType#BF16}). */
    BF16(2, DType.BF16),
    /** Signed 32-bit integer. */
    I32(4, null),
    /** Unsigned 32-bit integer. */
    U32(4, null),
    /** IEEE single precision ({@link DType#F32}). */
    F32(4, DType.F32),
    /** Complex number of two IEEE single-precision floats. */
    C64(8, null),
    /** IEEE double precision. */
    F64(8, null),
    /** Signed 64-bit integer. */
    I64(8, null),
    /** Unsigned 64-bit integer. */
    U64(8, null);

    private final int byteSize;
    private final DType compute;

    SafetensorsDtype(int byteSize, DType compute) {
        this.byteSize = byteSize;
        this.compute = compute;
    }

    /**
     * Bytes per element.
     *
     * @return 1 (BOOL, U8, I8, F8_*), 2 (16-bit), 4 (32-bit) or 8 (C64, F64, I64, U64)
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The name written in headers.
     *
     * @return the header spelling ("F32", "F8_E4M3", ...), equal to the constant's name
     */
    public String headerName() {
        return name();
    }

    /**
     * The arithmetic dtype of F32/BF16/F16.
     *
     * @return that dtype, or null for the dtypes that are read as raw bytes only
     */
    public DType compute() {
        return compute;
    }

    /**
     * Whether tensors of this dtype can be computed with.
     *
     * @return true for F32, BF16 and F16
     */
    public boolean isComputable() {
        return compute != null;
    }

    /**
     * The table entry for a header dtype name (case-sensitive).
     *
     * @param name a header's dtype string
     * @return the entry, or null when the name is unknown
     */
    public static SafetensorsDtype byName(String name) {
        for (SafetensorsDtype d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /**
     * The table entry of an arithmetic dtype.
     *
     * @param dtype F32, BF16 or F16
     * @return the matching entry
     */

    public static SafetensorsDtype of(DType dtype) {
        return switch (dtype) {
            case F32 -> F32;
            case BF16 -> BF16;
            case F16 -> F16;
        };
    }
}
