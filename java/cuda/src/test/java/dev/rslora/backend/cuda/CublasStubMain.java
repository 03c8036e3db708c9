package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import jcuda.NativePointerObject;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

import java.lang.reflect.Field;

/**
 * Child-JVM program of {@link CublasBindingStubTest} (started with LD_LIBRARY_PATH pointing at a
 * stub libcublas): {@code probe} prints the binding chosen here; {@code gemm KIND} opens binding
 * KIND (jcublas or ffm) on a made-up stream, queues one GEMM on made-up device addresses and closes
 * it; the stub logs every call it receives, which the test compares between the two bindings.
 */
final class CublasStubMain {
    static final long STREAM = 0xABC000L;
    static final long A = 0x7000_0000_1000L;
    static final long B = 0x7000_0000_2000L;
    static final long C = 0x7000_0000_3000L;
    /** C [5, 6] f32 = 0.5·Aᵀ·B + 1·C with A [7, 5], B [7, 6] bf16 (the dB / dA shape of the PEFT chain). */
    static final CublasGemm GEMM = CublasGemm.rowMajor(true, false, 5, 6, 7, 5, 6, 6);

    private CublasStubMain() {
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("probe")) {
            CublasBinding.Choice c = CublasBinding.current();
            System.out.println("choice " + (c.available() ? c.kind() + " " + c.library() : "none"));
            System.out.println("detail " + c.detail());
            return;
        }
        CublasBinding.Choice c = CublasBinding.choose(args[1], CublasBinding::probeJcublas, CublasBinding::probeFfm);
        if (!c.available()) {
            System.out.println("unavailable " + c.detail());
            return;
        }
        CachingAllocator memory = new CachingAllocator(new FixedAddresses());
        try (DeviceBuffer a = memory.allocate(7 * 5 * 2); DeviceBuffer b = memory.allocate(7 * 6 * 2);
             DeviceBuffer out = memory.allocate(5 * 6 * 4)) {
            CublasApi api = c.kind() == CublasBinding.Kind.JCUBLAS ? new CublasJcublas(stream()) : new CublasFfm(STREAM);
            try {
                System.out.println("binding " + api.binding());
                api.gemm(GEMM, DType.BF16, DType.F32, a, b, out, 0.5f, 1.0f);
                System.out.println("ok");
            } catch (IllegalStateException e) {
                System.out.println("error " + e.getMessage());
            } finally {
                api.close();
            }
        }
    }

    /** A CUstream whose raw handle is {@link #STREAM} (no driver here: set the field JCuda would fill). */
    static CUstream stream() throws ReflectiveOperationException {
        CUstream s = new CUstream();
        Field f = NativePointerObject.class.getDeclaredField("nativePointer");
        f.setAccessible(true);
        f.setLong(s, STREAM);
        return s;
    }

    /** Hands out A, B, C in turn as "device" blocks; JCuda pointers carry the same made-up addresses. */
    static final class FixedAddresses implements RawDeviceMemory {
        private final long[] next = {A, B, C};
        private int i;

        @Override
        public RawBlock allocate(long bytes) {
            long address = next[i++];
            return new RawBlock(address, bytes, new CUdeviceptr().withByteOffset(address));
        }

        @Override
        public void free(RawBlock block) {
        }

        @Override
        public void fill(RawBlock block, long bytes, byte value) {
        }
    }
}
