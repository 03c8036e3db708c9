package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.optim.AdamWConfig;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused AdamW's host side without a device: the tensor table, the per-step scalars (the CPU
 * AdamW's own numbers), the params structs at the header's offsets and the launches
 * (names, grids, block size) of a plain and a clipped step.
 */
class AdamWKernelsTest {
    private static final DType[] DTYPES = DType.values();

    private static List<AdamWKernels.Entry> randomEntries(SplittableRandom rnd, int count) {
        List<AdamWKernels.Entry> e = new ArrayList<>();
        for (int k = 0; k < count; k++) {
            long base = 0x7f00_0000_0000L + 0x1_0000_0000L * k;
            long n = rnd.nextInt(4) == 0 ? 1 : 1 + rnd.nextLong(100_000);
            e.add(new AdamWKernels.Entry(base, DTYPES[rnd.nextInt(3)], base + 0x100, DTYPES[rnd.nextInt(3)], base + 0x200,
                    base + 0x300, rnd.nextBoolean() ? base + 0x400 : 0, n));
        }
        return e;
    }

    @Test
    void tableHoldsEveryTensorAtContiguousOffsets() {
        long seed = 0xADA1L;
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int count : new int[] {1, 2, 37}) {
            List<AdamWKernels.Entry> entries = randomEntries(rnd, count);
            byte[] t = AdamWKernels.table(entries);
            CStruct s = KernelParams.ADAMW_TENSOR;
            assertEquals(64, s.size());
            assertEquals(count * 64, t.length, "seed " + seed);
            ByteBuffer bb = ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN);
            long offset = 0;
            for (int k = 0; k < count; k++) {
                AdamWKernels.Entry e = entries.get(k);
                int at = k * 64;
                String ctx = "entry " + k + " of " + count + ", seed " + seed;
                assertEquals(e.param(), bb.getLong(at + s.offset("param")), ctx);
                assertEquals(e.grad(), bb.getLong(at + s.offset("grad")), ctx);
                assertEquals(e.expAvg(), bb.getLong(at + s.offset("exp_avg")), ctx);
                assertEquals(e.expAvgSq(), bb.getLong(at + s.offset("exp_avg_sq")), ctx);
                assertEquals(e.master(), bb.getLong(at + s.offset("master")), ctx);
                assertEquals(e.count(), bb.getLong(at + s.offset("count")), ctx);
                assertEquals(offset, bb.getLong(at + s.offset("offset")), ctx);
                assertEquals(AdamWKernels.code(e.paramType()), bb.getInt(at + s.offset("param_dtype")), ctx);
                assertEquals(AdamWKernels.code(e.gradType()), bb.getInt(at + s.offset("grad_dtype")), ctx);
                offset += e.count();
            }
            assertEquals(offset, AdamWKernels.total(entries));
        }
    }

    @Test
    void dtypeCodesAreTheKernels() throws IOException {
        assertEquals(0, AdamWKernels.code(DType.F32));
        assertEquals(1, AdamWKernels.code(DType.BF16));
        assertEquals(2, AdamWKernels.code(DType.F16));
        String src = Files.readString(Path.of("../..", "cuda", "kernels", "adamw.cuh"));
        assertTrue(src.contains("constexpr int kF32 = 0, kBF16 = 1, kF16 = 2;"), "adamw.cuh dtype codes changed");
    }

    @Test
    void refusesEmptyTablesAndBadEntries() {
        assertThrows(IllegalArgumentException.class, () -> AdamWKernels.table(List.of()));
        assertThrows(IllegalArgumentException.class, () -> new AdamWKernels.Entry(1, DType.F32, 2, DType.F32, 3, 4, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new AdamWKernels.Entry(0, DType.F32, 2, DType.F32, 3, 4, 0, 5));
    }

    /** The CPU AdamW's package-private AdamWCoefficients.of(config, t), read reflectively. */
    private static float[] cpuCoefficients(AdamWConfig c, long t) throws Exception {
        Class<?> k = Class.forName("dev.rslora.train.AdamWCoefficients");
        Method of = k.getDeclaredMethod("of", AdamWConfig.class, long.class);
        of.setAccessible(true);
        Object r = of.invoke(null, c, t);
        String[] names = {"decay", "oneMinusB1", "beta2", "oneMinusB2", "stepSize", "bc2Sqrt", "eps"};
        float[] out = new float[names.length];
        for (int i = 0; i < names.length; i++) {
            Method m = k.getDeclaredMethod(names[i]);
            m.setAccessible(true);
            out[i] = (float) m.invoke(r);
        }
        return out;
    }

    @Test
    void stepScalarsAreTheCpuAdamWsBitForBit() throws Exception {
        AdamWConfig[] configs = {AdamWConfig.torchDefaults(), new AdamWConfig(5e-5, 0.9, 0.999, 1e-8, 0.0),
            new AdamWConfig(0.3, 0.5, 0.95, 1e-6, 0.2), new AdamWConfig(1e-3, 0.0, 0.0, 0.0, 1e-4)};
        for (AdamWConfig c : configs) {
            for (long t : new long[] {1, 2, 3, 10, 999, 100_000}) {
                AdamWKernels.Scalars s = AdamWKernels.Scalars.of(c, t);
                float[] got = {s.decay(), s.oneMinusB1(), s.beta2(), s.oneMinusB2(), s.stepSize(), s.bc2Sqrt(), s.eps()};
                float[] want = cpuCoefficients(c, t);
                for (int i = 0; i < got.length; i++) {
                    assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]),
                            "scalar " + i + " of " + c + " at t=" + t);
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> AdamWKernels.Scalars.of(AdamWConfig.torchDefaults(), 0));
    }

    @Test
    void aStepIsOneLaunchOverTheWholeTable() {
        LoraKernelsLaunchTest.Recorder rec = new LoraKernelsLaunchTest.Recorder();
        AdamWKernels k = new AdamWKernels(rec);
        AdamWKernels.Scalars s = AdamWKernels.Scalars.of(AdamWConfig.torchDefaults(), 7);
        long total = 3L * 1_000_003;
        k.step(0xAB00, 0, total, 5, s);
        assertEquals(List.of("rslora_adamw_v1"), rec.names());
        LoraKernelsLaunchTest.Launch l = rec.launches.get(0);
        assertEquals(LaunchGeometry.elementwise(total), l.grid());
        assertEquals(256, l.threads());
        CStruct p = KernelParams.ADAMW;
        assertEquals(56, l.params().length);
        assertEquals(0xAB00, l.ptr(p, "tensors"));
        assertEquals(0, l.ptr(p, "grad_scale"), "no clipping: null scale");
        assertEquals(total, l.bb().getLong(p.offset("total")));
        assertEquals(5, l.i32(p, "num_tensors"));
        assertEquals(s.decay(), l.f32(p, "decay"));
        assertEquals(s.oneMinusB1(), l.f32(p, "one_minus_beta1"));
        assertEquals(s.beta2(), l.f32(p, "beta2"));
        assertEquals(s.oneMinusB2(), l.f32(p, "one_minus_beta2"));
        assertEquals(s.stepSize(), l.f32(p, "step_size"));
        assertEquals(s.bc2Sqrt(), l.f32(p, "bc2_sqrt"));
        assertEquals(s.eps(), l.f32(p, "eps"));
    }

    @Test
    void theNormIsTwoPassesOverAGridFixedByTheElementCount() {
        LoraKernelsLaunchTest.Recorder rec = new LoraKernelsLaunchTest.Recorder();
        AdamWKernels k = new AdamWKernels(rec);
        long total = 70_000;
        k.gradNorm(0x1000, 0x2000, 0x3000, 0x3008, total, 4, 1.5);
        assertEquals(List.of("rslora_grad_sumsq_v1", "rslora_grad_norm_finish_v1"), rec.names());
        assertEquals(new LaunchGeometry.Grid(274, 1, 1), rec.launches.get(0).grid(), "ceil(70000/256) blocks");
        assertEquals(new LaunchGeometry.Grid(1, 1, 1), rec.launches.get(1).grid());
        assertArrayEquals(rec.launches.get(0).params(), rec.launches.get(1).params(), "both passes read the same struct");
        LoraKernelsLaunchTest.Launch l = rec.launches.get(0);
        CStruct p = KernelParams.GRAD_NORM;
        assertEquals(0x1000, l.ptr(p, "tensors"));
        assertEquals(0x2000, l.ptr(p, "partials"));
        assertEquals(0x3000, l.ptr(p, "norm_out"));
        assertEquals(0x3008, l.ptr(p, "clip_coef"));
        assertEquals(total, l.bb().getLong(p.offset("total")));
        assertEquals(4, l.i32(p, "num_tensors"));
        assertEquals(274, l.i32(p, "num_partials"));
        assertEquals(1.5, l.bb().getDouble(p.offset("max_norm")));
        assertThrows(IllegalArgumentException.class, () -> k.gradNorm(1, 2, 3, 4, total, 4, 0));
        assertThrows(IllegalArgumentException.class, () -> k.gradNorm(1, 2, 3, 4, total, 4, Double.POSITIVE_INFINITY));
        k.gradNorm(1, 2, 3, 0, total, 4, 0);  // norm only: no max norm needed
        assertEquals(4, rec.launches.size());
    }

    @Test
    void normGridIsCappedAndNeverDependsOnTheDevice() {
        assertEquals(1, LaunchGeometry.gradNormBlocks(1));
        assertEquals(1, LaunchGeometry.gradNormBlocks(256));
        assertEquals(2, LaunchGeometry.gradNormBlocks(257));
        assertEquals(1024, LaunchGeometry.gradNormBlocks(1024L * 256));
        assertEquals(1024, LaunchGeometry.gradNormBlocks(1L << 40));
        assertThrows(IllegalArgumentException.class, () -> LaunchGeometry.gradNormBlocks(0));
    }

    @Test
    void everyAdamWKernelIsExportedByTheSource() throws IOException {
        String src = Files.readString(Path.of("../..", "cuda", "kernels", "adamw.cuh"));
        assertTrue(src.contains("void __launch_bounds__(rs::kThreads) rslora_adamw_v1(RsAdamWParams p)"));
        assertTrue(src.contains("void __launch_bounds__(rs::kThreads) rslora_grad_sumsq_v1(RsGradNormParams p)"));
        assertTrue(src.contains("void __launch_bounds__(rs::kThreads) rslora_grad_norm_finish_v1(RsGradNormParams p)"));
        assertEquals(List.of(AdamWKernels.GRAD_SUMSQ, AdamWKernels.GRAD_NORM_FINISH, AdamWKernels.ADAMW), AdamWKernels.KERNELS);
        String all = Files.readString(Path.of("../..", "cuda", "rslora_kernels.cu"));
        assertTrue(all.contains("#include \"kernels/adamw.cuh\""), "adamw.cuh is not in the fatbin's translation unit");
    }
}
