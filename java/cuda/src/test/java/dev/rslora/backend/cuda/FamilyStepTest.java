package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A table-driven layer step ({@link FamilyStep}) recorded without a device: for a synthetic family
 * of the memory-bound mb kernels around v1's GEMMs (the real v3/v4 GEMMs: {@code FamilyStepV3V4Test})
 * every launch's kernel, grid, block, dynamic shared memory and packed params, in order,
 * checked against the harness's fill() rules (cuda/dev/steps.cuh): where γ goes (Ug, Vg: reduces
 * with 1), which buffers each kernel reads and writes, one dropout for down, da and dx, rank classes.
 */
class FamilyStepTest {
    static final String TABLE = """
            RS_KERNEL(v3, prep,       bf16, rslora_mb_prep_bf16,              256, 0,     1x1x1, sm80, main, elementwise, 0,   none)
            RS_KERNEL(v3, down,       bf16, rslora_mb_down_r16_bf16,          256, 0,     1x1x1, sm80, main, mb_rows,     16,  none)
            RS_KERNEL(v3, down,       bf16, rslora_mb_down_r64_bf16,          256, 0,     1x1x1, sm80, main, mb_rows,     64,  none)
            RS_KERNEL(v3, forward,    bf16, rslora_lora_forward_v1_bf16,      256, 0,     1x1x1, sm80, main, tiles_dout_n, 0,  none)
            RS_KERNEL(v3, vdb,        bf16, rslora_mb_vdb_r16_bf16,           256, 97280, 1x1x1, sm80, main, mb_vdb,      16,  none)
            RS_KERNEL(v3, vdb,        bf16, rslora_mb_vdb_r64_bf16,           256, 97280, 1x1x1, sm80, main, mb_vdb,      64,  none)
            RS_KERNEL(v3, vdb_reduce, bf16, rslora_mb_vdb_reduce_bf16,        256, 0,     1x1x1, sm80, main, elementwise, 0,   none)
            RS_KERNEL(v3, reduce,     any,  rslora_reduce_groups_v1,          256, 0,     1x1x1, sm80, main, elementwise, 0,   none)
            RS_KERNEL(v3, da,         bf16, rslora_mb_da_r16_bf16,            256, 0,     1x1x1, sm80, main, mb_da,       16,  none)
            RS_KERNEL(v3, da,         bf16, rslora_mb_da_r64_bf16,            256, 0,     1x1x1, sm80, main, mb_da,       64,  none)
            RS_KERNEL(v3, dx,         bf16, rslora_lora_backward_dx_v1_bf16,  256, 0,     1x1x1, sm80, main, tiles_din_n, 0,   none)
            RS_KERNEL(v9, down,       bf16, rslora_mb_down_r16_bf16,          256, 0,     1x1x1, sm80, main, tiles_r_n,   16,  none)
            RS_KERNEL(v9, forward,    bf16, rslora_lora_forward_v3_bf16,      384, 215040, 1x1x1, sm90a, sm90a, persistent_dout_n, 0, none)
            """;

    /** One launch, plain or through cuLaunchKernelEx. */
    record Launch(String kernel, LaunchGeometry.Grid grid, int threads, int smem, byte[] params) {
        LoraKernelsLaunchTest.Launch plain() {
            return new LoraKernelsLaunchTest.Launch(kernel, grid, threads, params);
        }
    }

    static final class Recorder implements KernelLauncher {
        final List<Launch> launches = new ArrayList<>();
        final List<String> resolved = new ArrayList<>();

        @Override
        public void resolve(String kernel) {
            resolved.add("main:" + kernel);
        }

        @Override
        public void resolve(String kernel, String image) {
            resolved.add(image + ":" + kernel);
        }

        @Override
        public void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
            launches.add(new Launch(kernel, grid, threads, 0, params.clone()));
        }

        @Override
        public void launchEx(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smemBytes, DriverFfm.Cluster cluster,
                             byte[] params, List<DriverFfm.TensorMap> maps) {
            assertEquals("main", image);
            assertTrue(cluster.none() && maps.isEmpty());
            launches.add(new Launch(kernel, grid, threads, smemBytes, params.clone()));
        }

        List<String> names() {
            return launches.stream().map(Launch::kernel).toList();
        }
    }

    private final CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());

    private DeviceBuffer buf(long bytes) {
        return memory.allocate(Math.max(1, bytes));
    }

    private FamilyStep.Buffers buffers(FamilyStep fs) {
        FamilyStep.Sizes z = fs.plan();
        return new FamilyStep.Buffers(buf(z.at()), buf(z.bt()), buf(z.ug()), buf(z.vg()), buf(z.wsV()), buf(z.wsDb()), buf(z.wsDa()));
    }

    private static KernelTable table() {
        return KernelTable.parse(TABLE.lines().toList(), "synthetic");
    }

    @Test
    void aV3StepLaunchesTheMemoryBoundKernelsAroundV1sGemmsAsTheHarnessDoes() {
        int n = 300;
        int dIn = 200;
        int dOut = 152;
        int r = 16;
        float gamma = 4f;
        long cap = 1L << 40;
        Recorder rec = new Recorder();
        FamilyStep fs = new FamilyStep(rec, table(), "v3", DType.BF16, n, dIn, dOut, r, cap);
        FamilyStep.Sizes z = fs.plan();
        LaunchGeometry.MbSplit vdb = LaunchGeometry.mbVdb(n, dOut, r, 16, cap);
        LaunchGeometry.MbSplit da = LaunchGeometry.mbDa(n, dIn, r, 16, cap);
        assertEquals(new FamilyStep.Sizes(2L * r * dIn, 2L * dOut * 16, 2L * n * 16, 2L * n * 16, 4L * vdb.chunks() * n * r,
                4L * vdb.groups() * dOut * r, 4L * da.groups() * r * dIn), z);
        FamilyStep.Buffers f = buffers(fs);
        DeviceBuffer x = buf(2L * n * dIn);
        DeviceBuffer w = buf(2L * dOut * dIn);
        DeviceBuffer bias = buf(2L * dOut);
        DeviceBuffer a = buf(4L * r * dIn);
        DeviceBuffer b = buf(4L * dOut * r);
        DeviceBuffer u = buf(4L * n * r);
        DeviceBuffer y = buf(2L * n * dOut);
        DeviceBuffer dy = buf(2L * n * dOut);
        DeviceBuffer v = buf(4L * n * r);
        DeviceBuffer gA = buf(4L * r * dIn);
        DeviceBuffer gB = buf(4L * dOut * r);
        DeviceBuffer dx = buf(2L * n * dIn);
        LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(5, 9, 2, 0.1f), 5, 9, 2);
        fs.forward(x, w, bias, a, b, u, y, gamma, d, f);
        fs.backward(x, dy, w, a, b, u, v, gA, gB, dx, gamma, d, true, f);
        assertEquals(List.of("rslora_mb_prep_bf16", "rslora_mb_down_r16_bf16", "rslora_lora_forward_v1_bf16", "rslora_mb_vdb_r16_bf16",
                "rslora_mb_vdb_reduce_bf16", "rslora_mb_da_r16_bf16", "rslora_reduce_groups_v1", "rslora_lora_backward_dx_v1_bf16"),
                rec.names(), "dB is reduced by vdb_reduce: no separate dB reduce");
        List<LoraKernelsLaunchTest.Launch> l = rec.launches.stream().map(Launch::plain).toList();
        // prep: At, Bt (r_pad = 16)
        assertEquals(f.at().address(), l.get(0).ptr(KernelParams.MB_PREP, "at"));
        assertEquals(f.bt().address(), l.get(0).ptr(KernelParams.MB_PREP, "bt"));
        assertEquals(16, l.get(0).i32(KernelParams.MB_PREP, "r_pad"));
        assertEquals(LaunchGeometry.elementwise((long) r * dIn + (long) dOut * 16), l.get(0).grid());
        // down: reads X and At, writes U and Ug = T(γ·U); grid (⌈n/64⌉, rank chunks)
        assertEquals(List.of(x.address(), f.at().address(), u.address(), f.ug().address()), List.of(l.get(1).ptr(KernelParams.MB_DOWN, "x"),
                l.get(1).ptr(KernelParams.MB_DOWN, "at"), l.get(1).ptr(KernelParams.MB_DOWN, "u"), l.get(1).ptr(KernelParams.MB_DOWN, "ug")));
        assertEquals(gamma, l.get(1).f32(KernelParams.MB_DOWN, "gamma"));
        assertEquals(new LaunchGeometry.Grid(5, 1, 1), l.get(1).grid());
        // forward (v1): U and B f32, γ
        assertEquals(u.address(), l.get(2).ptr(KernelParams.FORWARD, "u"));
        assertEquals(bias.address(), l.get(2).ptr(KernelParams.FORWARD, "bias"));
        assertEquals(gamma, l.get(2).f32(KernelParams.FORWARD, "gamma"));
        // vdb: through cuLaunchKernelEx with its 97280 bytes of dynamic shared memory; reads dY, Bt, Ug
        assertEquals(97280, rec.launches.get(3).smem());
        assertEquals(vdb.grid(), l.get(3).grid());
        assertEquals(List.of(dy.address(), f.bt().address(), f.ug().address(), f.wsV().address(), f.wsDb().address()),
                List.of(l.get(3).ptr(KernelParams.MB_VDB, "dy"), l.get(3).ptr(KernelParams.MB_VDB, "bt"), l.get(3).ptr(KernelParams.MB_VDB, "ug"),
                        l.get(3).ptr(KernelParams.MB_VDB, "v_ws"), l.get(3).ptr(KernelParams.MB_VDB, "db_ws")));
        assertEquals(vdb.rowsPerGroup(), l.get(3).i32(KernelParams.MB_VDB, "rows_per_group"));
        assertEquals(vdb.colsPerChunk(), l.get(3).i32(KernelParams.MB_VDB, "cols_per_chunk"));
        // vdb_reduce: V, Vg = T(γ·V), dB += Σ (accumulate), γ applied here once
        assertEquals(List.of(v.address(), f.vg().address(), gB.address()), List.of(l.get(4).ptr(KernelParams.MB_VDB_REDUCE, "v"),
                l.get(4).ptr(KernelParams.MB_VDB_REDUCE, "vg"), l.get(4).ptr(KernelParams.MB_VDB_REDUCE, "db")));
        assertEquals(gamma, l.get(4).f32(KernelParams.MB_VDB_REDUCE, "gamma"));
        assertEquals(1, l.get(4).i32(KernelParams.MB_VDB_REDUCE, "accumulate"));
        assertEquals(vdb.chunks(), l.get(4).i32(KernelParams.MB_VDB_REDUCE, "chunks"));
        assertEquals(vdb.groups(), l.get(4).i32(KernelParams.MB_VDB_REDUCE, "groups"));
        // da: reads X and Vg (γ inside), the same dropout as down and dx; its reduce multiplies by 1
        assertEquals(f.vg().address(), l.get(5).ptr(KernelParams.MB_DA, "vg"));
        assertEquals(da.grid(), l.get(5).grid());
        assertEquals(1.0f, l.get(6).f32(KernelParams.REDUCE, "gamma"));
        assertEquals(gA.address(), l.get(6).ptr(KernelParams.REDUCE, "out"));
        assertEquals(da.groups(), l.get(6).i32(KernelParams.REDUCE, "groups"));
        byte[] mask = l.get(5).dropout(KernelParams.MB_DA);
        assertArrayEquals(mask, l.get(1).dropout(KernelParams.MB_DOWN));
        assertArrayEquals(mask, l.get(7).dropout(KernelParams.BACKWARD_DX));
        // dx (v1): V f32, A f32, γ
        assertEquals(List.of(v.address(), a.address(), dx.address()), List.of(l.get(7).ptr(KernelParams.BACKWARD_DX, "v"),
                l.get(7).ptr(KernelParams.BACKWARD_DX, "lora_a"), l.get(7).ptr(KernelParams.BACKWARD_DX, "dx")));
        assertEquals(gamma, l.get(7).f32(KernelParams.BACKWARD_DX, "gamma"));
        // before a capture every kernel is resolved in its image
        fs.resolveAll();
        assertTrue(rec.resolved.containsAll(List.of("main:rslora_mb_vdb_r16_bf16", "main:rslora_lora_backward_dx_v1_bf16")), rec.resolved.toString());
    }

    @Test
    void rankClassesAndTheHostApiBackwardRebuildUgWithoutTouchingU() {
        Recorder rec = new Recorder();
        int n = 130;
        int r = 20;  // r_pad 24, rank class 64 (the smallest rmax >= 20), one rank chunk
        FamilyStep fs = new FamilyStep(rec, table(), "v3", DType.BF16, n, 64, 72, r, 1L << 40);
        assertEquals("rslora_mb_down_r64_bf16", fs.rows().down().name());
        FamilyStep.Buffers f = buffers(fs);
        DeviceBuffer x = buf(2L * n * 64);
        DeviceBuffer a = buf(4L * r * 64);
        DeviceBuffer b = buf(4L * 72 * r);
        DeviceBuffer u = buf(4L * n * r);
        fs.prepareBackward(x, a, b, u, 2f, LoraKernels.Dropout.NONE, f);
        assertEquals(List.of("rslora_mb_prep_bf16", "rslora_mb_down_r64_bf16"), rec.names());
        LoraKernelsLaunchTest.Launch down = rec.launches.get(1).plain();
        assertEquals(0L, down.ptr(KernelParams.MB_DOWN, "u"), "U is the caller's: not rewritten");
        assertEquals(f.ug().address(), down.ptr(KernelParams.MB_DOWN, "ug"));
        assertEquals(24, down.i32(KernelParams.MB_DOWN, "r_pad"));
        assertEquals(new LaunchGeometry.Grid(3, 1, 1), down.grid());
    }

    @Test
    void whatTheHostCannotLaunchOrTheTableGetsWrongIsRefusedNamingTheRow() {
        IllegalArgumentException noGemm = assertThrows(IllegalArgumentException.class,
                () -> new FamilyStep(new Recorder(), table(), "v9", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(noGemm.getMessage().contains("rslora_lora_forward_v3_bf16") || noGemm.getMessage().contains("no vdb row"),
                noGemm.getMessage());
        KernelTable wrongGrid = KernelTable.parse(TABLE.replace("rslora_mb_down_r16_bf16,          256, 0,     1x1x1, sm80, main, mb_rows",
                "rslora_mb_down_r16_bf16,          256, 0,     1x1x1, sm80, main, tiles_r_n").lines().toList(), "wrong");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new FamilyStep(new Recorder(), wrongGrid, "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(e.getMessage().contains("grid rule tiles_r_n") && e.getMessage().contains("launch on mb_rows"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new FamilyStep(new Recorder(), table(), "v3", DType.F32, 64, 64, 64, 16, 1));
        assertEquals("tiles_din_n", FamilyStep.expectedGrid("rslora_lora_backward_dx_v2_f16"));
        assertTrue(FamilyStep.launches(table().find("v3", "vdb", "bf16", 16).orElseThrow()));
    }
}
