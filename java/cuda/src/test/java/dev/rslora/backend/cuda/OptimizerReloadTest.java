package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@code reloadMasterWeights} of the device optimizers, recorded without a device: for every parameter
 * with an f32 master, one conversion launch from the parameter's dtype to f32, reading the parameter's
 * memory and writing the master's, over numel elements; nothing for a parameter without a master.
 */
class OptimizerReloadTest {
    private final CachingAllocator alloc = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
    private final CudaBackend backend = new CudaBackend(null, 1L << 20, 1);

    private DeviceTensor tensor(DType t, long... shape) {
        long n = Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        return new DeviceTensor(backend, t, shape, alloc.allocate(n * t.byteSize()));
    }

    @Test
    void eachMasterIsConvertedFromItsParameter() {
        DeviceTensor bf = tensor(DType.BF16, 8, 129);
        DeviceTensor f32 = tensor(DType.F32, 4, 4);
        DeviceTensor f16 = tensor(DType.F16, 33, 8);
        DeviceTensor noMaster = tensor(DType.BF16, 2, 2);
        DeviceBuffer mBf = alloc.allocate(4L * 8 * 129);
        DeviceBuffer mF16 = alloc.allocate(4L * 33 * 8);
        LoraKernelsLaunchTest.Recorder rec = new LoraKernelsLaunchTest.Recorder();

        OptimizerBuffers.reloadMasters(new LoraKernels(rec), List.of(bf, f32, f16, noMaster),
                Arrays.asList(mBf, null, mF16, null));

        assertEquals(List.of("rslora_convert_bf16_to_f32", "rslora_convert_f16_to_f32"), rec.names());
        CStruct s = KernelParams.CONVERT;
        LoraKernelsLaunchTest.Launch first = rec.launches.get(0);
        assertEquals(bf.buffer().address(), first.ptr(s, "src"));
        assertEquals(mBf.address(), first.ptr(s, "dst"));
        assertEquals(8L * 129, first.bb().getLong(s.offset("count")));
        LoraKernelsLaunchTest.Launch second = rec.launches.get(1);
        assertEquals(f16.buffer().address(), second.ptr(s, "src"));
        assertEquals(mF16.address(), second.ptr(s, "dst"));
        assertEquals(33L * 8, second.bb().getLong(s.offset("count")));
    }
}
