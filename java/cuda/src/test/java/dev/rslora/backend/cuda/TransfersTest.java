package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.IdentityHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * Host ↔ device copies over a fake device (heap bytes per buffer, conversions recorded): an upload
 * reads its host tensor and so leaves its {@link Tensor#version()} alone, as Tensor's contract asks
 * of readers. A stamp moved by a read made every consumer keyed on it believe the tensor was written:
 * LoraLinear's "lora_A was written after the forward" refusal, the cpu backend's repack of A and B, a
 * CudaFrozenWeight's re-upload of a W that another upload had only read. A download writes its host
 * tensor and does move the stamp.
 */
class TransfersTest {
    /** Device memory as heap bytes per buffer, over the fake allocator. */
    static final class HeapDevice implements Transfers.Device {
        final CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
        final Map<DeviceBuffer, byte[]> bytes = new IdentityHashMap<>();

        @Override
        public DeviceBuffer allocate(long n) {
            DeviceBuffer b = alloc.allocate(n);
            bytes.put(b, new byte[(int) n]);
            return b;
        }

        @Override
        public void upload(MemorySegment src, DeviceBuffer dst) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, 0, bytes.get(dst), 0, (int) src.byteSize());
        }

        @Override
        public void download(DeviceBuffer src, MemorySegment dst) {
            MemorySegment.copy(bytes.get(src), 0, dst, ValueLayout.JAVA_BYTE, 0, (int) dst.byteSize());
        }
    }

    private final HeapDevice device = new HeapDevice();
    private final LoraKernelsLaunchTest.Recorder launcher = new LoraKernelsLaunchTest.Recorder();
    private final Transfers io = new Transfers(device, new LoraKernels(launcher, 1));

    @Test
    void anUploadLeavesTheHostTensorsVersionAlone() {
        try (Arena arena = Arena.ofConfined()) {
            for (DType host : DType.values()) {
                for (DType target : DType.values()) {
                    Tensor t = Tensor.of(arena, host, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
                    long stamp = t.version();
                    try (DeviceBuffer b = io.upload(t, target)) {
                        assertEquals(stamp, t.version(), "upload of a " + host + " tensor as " + target + " read it: same stamp");
                    }
                }
            }
        }
    }

    @Test
    void anUploadInTheHostDtypeCopiesTheBytesAndADownloadMovesTheStamp() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
            try (DeviceBuffer b = io.upload(t, DType.F32)) {
                assertArrayEquals(t.readOnlySegment().toArray(ValueLayout.JAVA_BYTE), device.bytes.get(b));
                Tensor back = Tensor.allocate(arena, DType.F32, 2, 3);
                long stamp = back.version();
                io.download(b, DType.F32, back);
                assertNotEquals(stamp, back.version(), "a download writes its host tensor");
                assertArrayEquals(t.toFloatArray(), back.toFloatArray());
            }
        }
    }
}
