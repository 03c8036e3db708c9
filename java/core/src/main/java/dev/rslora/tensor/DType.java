package dev.rslora.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Storage dtypes of host tensors. All data is little-endian (the safetensors byte order);
 * arithmetic is always fp32 or wider, and stores round to nearest even exactly as CUDA's
 * {@code __float2bfloat16_rn} / {@code __float2half_rn} (see {@link Fp16} and {@link Bf16}).
 */
public enum DType {
    /** IEEE single precision, 4 bytes. */
    F32("F32", 4),
    /** bfloat16, 2 bytes. */
    BF16("BF16", 2),
    /** IEEE half precision, 2 bytes. */
    F16("F16", 2);

    /** Unaligned little-endian layouts: safetensors data offsets need not be aligned. */
    public static final ValueLayout.OfFloat LE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** A little-endian unaligned 16-bit layout (BF16 and F16 storage). */
    public static final ValueLayout.OfShort LE_SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final String safetensorsName;
    private final int byteSize;

    DType(String safetensorsName, int byteSize) {
        this.safetensorsName = safetensorsName;
        this.byteSize = byteSize;
    }

    /**
     * Bytes per element.
     *
     * @return 4 for F32, 2 for BF16 and F16
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The dtype string used in safetensors headers.
     *
     * @return "F32", "BF16" or "F16"
     */
    public String safetensorsName() {
        return safetensorsName;
    }

    /**
     * Parses a safetensors dtype name.
     *
     * @param name a header's dtype string, case-sensitive ("F32", "BF16", "F16", …)
     * @return the dtype, or null when it is not one of ours (e.g. "F64", "I8")
     */
    public static DType fromSafetensorsName(String name) {
        for (DType d : values()) {
            if (d.safetensorsName.equals(name)) {
                return d;
            }
        }
        return null;
    }

    /**
     * Reads element {@code index} (element units, not bytes) widened to fp32.
     *
     * @param seg   little-endian memory holding elements of this dtype
     * @param index the element index (not a byte offset)
     * @return the element, widened exactly
     */
    public float load(MemorySegment seg, long index) {
        return switch (this) {
            case F32 -> seg.getAtIndex(LE_FLOAT, index);
            case BF16 -> Bf16.toFloat(seg.getAtIndex(LE_SHORT, index));
            case F16 -> Fp16.toFloat(seg.getAtIndex(LE_SHORT, index));
        };
    }

    /**
     * Stores {@code value} at element {@code index}, rounding to nearest even for 16-bit dtypes.
     *
     * @param seg   writable little-endian memory holding elements of this dtype
     * @param index the element index (not a byte offset)
     * @param value the value to round and store
     */
    public void store(MemorySegment seg, long index, float value) {
        switch (this) {
            case F32 -> seg.setAtIndex(LE_FLOAT, index, value);
            case BF16 -> seg.setAtIndex(LE_SHORT, index, Bf16.fromFloat(value));
            case F16 -> seg.setAtIndex(LE_SHORT, index, Fp16.fromFloat(value));
        }
    }

    /**
     * Rounds an fp32 value to this dtype and back (the value a store followed by a load gives).
     *
     * @param value any float
     * @return the nearest value of this dtype (ties to even), as a float; for BF16 and F16 every NaN becomes the
     *         canonical NaN (F32 returns {@code value} unchanged, its NaN payload included)
     */

    public float round(float value) {
        return switch (this) {
            case F32 -> value;
            case BF16 -> Bf16.toFloat(Bf16.fromFloat(value));
            case F16 -> Fp16.toFloat(Fp16.fromFloat(value));
        };
    }

    /**
     * Whether a store would turn the finite {@code value} into ±Infinity: it lies beyond this dtype's
     * range (F16 past ±65504, BF16 past ±3.3895314e38, rounding to nearest even; never for F32).
     * Cheap for values in range: only those past the largest finite value are rounded.
     *
     * @param value any float (NaN and ±Infinity give false: they are stored as they are)
     * @return true if value is finite and rounds to ±Infinity in this dtype
     */
    public boolean overflows(float value) {
        float largest = switch (this) {
            case F32 -> Float.MAX_VALUE;
            case BF16 -> 3.3895314e38f;  // 0x7F7F
            case F16 -> 65504f;
        };
        return Math.abs(value) > largest && Float.isFinite(value) && Float.isInfinite(round(value));
    }
}
