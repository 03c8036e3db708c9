package dev.rslora.peft;

import dev.rslora.io.SafetensorsDtype;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Writing a tensor to a file only reads it, so its version stamp (which the cpu backend's cached
 * adapter panels key on) stays: a save must not make the next step repack A and B.
 */
class SaveKeepsVersionTest {
    @TempDir
    Path dir;

    @Test
    void writingATensorDoesNotBumpItsVersion() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = Tensor.allocate(arena, DType.F32, 3, 5);
            a.set(1, 2, 0.5f);
            long v = a.version();
            SafetensorsWriter w = new SafetensorsWriter();
            w.add("a", a);
            // the adapter save path (AdapterSet.writeFiles): converted and same-dtype
            w.add(SafetensorsWriter.Item.computed("a_bf16", SafetensorsDtype.of(DType.BF16), a.shape(), TensorBytes.convert(a, DType.BF16)));
            w.add(SafetensorsWriter.Item.computed("a_f32", SafetensorsDtype.of(DType.F32), a.shape(), TensorBytes.convert(a, DType.F32)));
            w.write(dir.resolve("a.safetensors"));
            assertEquals(v, a.version(), "the write read A through a path that counts as a write");
            MemorySegment.copy(new float[] {1f}, 0, a.segment(), java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, 0, 1);
            assertEquals(v + 1, a.version(), "segment() is the write path and must still bump it");
        }
    }
}
