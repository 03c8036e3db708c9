package dev.rslora.peft;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/** Byte producers for {@link SafetensorsWriter.Item#computed}: a byte-for-byte copy and a dtype conversion. */
final class TensorBytes {
    private TensorBytes() {
    }

    /** Copies {@code src} byte for byte. */
    static SafetensorsWriter.ByteProducer copy(MemorySegment src) {
        return (offset, dst) -> MemorySegment.copy(src, offset, dst, 0, dst.byteSize());
    }

    /** {@code src} converted element by element to {@code target} (round to nearest even), or copied when the dtypes agree. */
    static SafetensorsWriter.ByteProducer convert(Tensor src, DType target) {
        if (src.dtype() == target) {
            return copy(src.readOnlySegment());
        }
        DType from = src.dtype();
        MemorySegment s = src.readOnlySegment();
        int size = target.byteSize();
        return (offset, dst) -> {
            long first = offset / size;
            long n = dst.byteSize() / size;
            for (long i = 0; i < n; i++) {
                target.store(dst, i, from.load(s, first + i));
            }
        };
    }
}
