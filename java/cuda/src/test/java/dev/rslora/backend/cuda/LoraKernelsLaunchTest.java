package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What {@link LoraKernels} hands the driver, recorded without a device: kernel names, grids, block
 * sizes and the packed params structs of a whole training step, checked against the launch
 * geometry each kernel in cuda/kernels/ assumes (tile mapping, row groups, workspace bounds) and
 * against the step's semantics (one mask for forward and backward, γ, assign/accumulate).
 */
class LoraKernelsLaunchTest {

    record Launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
        ByteBuffer bb() {
            return ByteBuffer.wrap(params).order(ByteOrder.LITTLE_ENDIAN);
        }

        int i32(CStruct s, String field) {
            return bb().getInt(s.offset(field));
        }

        long ptr(CStruct s, String field) {
            return bb().getLong(s.offset(field));
        }

        float f32(CStruct s, String field) {
            return bb().getFloat(s.offset(field));
        }

        byte[] dropout(CStruct s) {
            byte[] d = new byte[KernelParams.DROPOUT.size()];
            System.arraycopy(params, s.memberOffset("drop"), d, 0, d.length);
            return d;
        }
    }

    /** Records instead of launching. */
    static final class Recorder implements KernelLauncher {
        final List<Launch> launches = new ArrayList<>();
        final List<String> resolved = new ArrayList<>();

        @Override
        public void resolve(String kernel) {
            resolved.add(kernel);
        }

        @Override
        public void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
            launches.add(new Launch(kernel, grid, threads, params.clone()));
        }

        List<String> names() {
            return launches.stream().map(Launch::kernel).toList();
        }
    }

    /** Fake device buffers (addresses from the fake allocator; nothing is dereferenced). */
    private final CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());

    private DeviceBuffer buf(long bytes) {
        return memory.allocate(bytes);
    }

    private static int tiles(long extent) {
        return (int) ((extent + 63) / 64);
    }

    /** The buffers of one step of shape (n, d_in, d_out, r), dtype t. */
    final class StepBuffers {
        final DeviceBuffer x, dy, w, bias, a, b, u, v, ws, gA, gB, y, dx;

        StepBuffers(DType t, int n, int dIn, int dOut, int r, long cap) {
            int e = t.byteSize();
            x = buf((long) n * dIn * e);
            dy = buf((long) n * dOut * e);
            w = buf((long) dOut * dIn * e);
            bias = buf((long) dOut * e);
            a = buf((long) r * dIn * 4);
            b = buf((long) dOut * r * 4);
            u = buf((long) n * r * 4);
            v = buf((long) n * r * 4);
            ws = buf(LoraKernels.workspaceBytes(n, dIn, dOut, r, cap));
            gA = buf((long) r * dIn * 4);
            gB = buf((long) dOut * r * 4);
            y = buf((long) n * dOut * e);
            dx = buf((long) n * dIn * e);
        }
    }

    @Test
    void aTrainingStepLaunchesExactlyTheKernelsResolvedBeforeACapture() {
        for (int version : new int[] {1, 2}) {
            for (DType t : DType.values()) {
                Recorder rec = new Recorder();
                LoraKernels k = new LoraKernels(rec, version);
                StepBuffers s = new StepBuffers(t, 70, 33, 65, 8, 256L << 20);
                LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(7, 3, 1, 0.1f), 7, 3, 1);
                k.forwardStep(t, s.x, s.w, s.bias, s.a, s.b, s.u, s.y, 70, 33, 65, 8, 2f, d);
                k.backwardStep(t, s.x, s.dy, s.w, s.a, s.b, s.u, s.v, s.ws, s.gA, s.gB, s.dx, 70, 33, 65, 8, 2f, d, false,
                        256L << 20);
                assertEquals(k.stepKernelNames(t), rec.names(), "v" + version + " " + t);
                k.resolve(k.stepKernelNames(t));
                assertEquals(k.stepKernelNames(t), rec.resolved);
            }
        }
    }

    @Test
    void stepParamsMatchWhatEachKernelAssumes() {
        // awkward shape, a small workspace cap so that dB and dA need several multi-tile row groups
        int n = 1000;
        int dIn = 130;
        int dOut = 97;
        int r = 24;
        long cap = 64L * 1024;
        float gamma = 16f / (float) Math.sqrt(r);
        DType t = DType.BF16;
        Recorder rec = new Recorder();
        LoraKernels k = new LoraKernels(rec, 2);
        StepBuffers s = new StepBuffers(t, n, dIn, dOut, r, cap);
        DropoutMask mask = new DropoutMask(0x1234_5678_9ABC_DEF0L, 0x1_0000_0005L, 9, 0.1f);
        LoraKernels.Dropout d = new LoraKernels.Dropout(mask, 0x1234_5678_9ABC_DEF0L, 0x1_0000_0005L, 9);
        k.forwardStep(t, s.x, s.w, s.bias, s.a, s.b, s.u, s.y, n, dIn, dOut, r, gamma, d);
        k.backwardStep(t, s.x, s.dy, s.w, s.a, s.b, s.u, s.v, s.ws, s.gA, s.gB, s.dx, n, dIn, dOut, r, gamma, d, true, cap);
        List<Launch> l = rec.launches;
        assertEquals(7, l.size(), rec.names().toString());

        Launch down = l.get(0);
        assertEquals(new LaunchGeometry.Grid(tiles(r), tiles(n), 1), down.grid(), "down: x over rank tiles, y over row tiles");
        assertEquals(256, down.threads());
        CStruct ds = KernelParams.DOWN;
        assertEquals(s.x.address(), down.ptr(ds, "x"));
        assertEquals(s.a.address(), down.ptr(ds, "lora_a"));
        assertEquals(s.u.address(), down.ptr(ds, "u"));
        assertEquals(List.of(n, dIn, r), List.of(down.i32(ds, "n"), down.i32(ds, "d_in"), down.i32(ds, "r")));
        ByteBuffer drop = ByteBuffer.wrap(down.dropout(ds)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(0x9ABC_DEF0, drop.getInt(0), "key = (seed lo, seed hi)");
        assertEquals(0x1234_5678, drop.getInt(4));
        assertEquals(9, drop.getInt(8), "layer");
        assertEquals(5, drop.getInt(12), "low 32 bits of the step");
        assertEquals(mask.threshold(), drop.getInt(16));
        assertEquals(mask.scale(), drop.getFloat(20));
        assertEquals(1, drop.getInt(24));

        Launch fwd = l.get(1);
        assertEquals("rslora_lora_forward_v2_bf16", fwd.kernel());
        assertEquals(128, fwd.threads(), "v2 kernels are written for 4 warps");
        assertEquals(new LaunchGeometry.Grid(tiles(dOut), tiles(n), 1), fwd.grid());
        CStruct fs = KernelParams.FORWARD;
        assertEquals(s.bias.address(), fwd.ptr(fs, "bias"));
        assertEquals(s.y.address(), fwd.ptr(fs, "y"));
        assertEquals(r, fwd.i32(fs, "r"));
        assertEquals(gamma, fwd.f32(fs, "gamma"));

        Launch vdb = l.get(2);
        CStruct vs = KernelParams.BACKWARD_VDB;
        int rpgB = vdb.i32(vs, "rows_per_group");
        int groupsB = vdb.grid().y();
        assertEquals(0, rpgB % 64, "the kernel walks a group in 64-row tiles");
        assertTrue((long) groupsB * rpgB >= n && (long) (groupsB - 1) * rpgB < n, "groups cover n exactly: " + groupsB + " × " + rpgB);
        assertTrue(groupsB > 1 && rpgB > 64, "this shape exercises multi-tile groups (" + groupsB + " × " + rpgB + ")");
        assertEquals(new LaunchGeometry.Grid(tiles(r), groupsB, 1), vdb.grid());
        assertEquals(s.ws.address(), vdb.ptr(vs, "ws"));
        assertEquals(s.v.address(), vdb.ptr(vs, "v"));

        Launch reduceB = l.get(3);
        CStruct rs = KernelParams.REDUCE;
        assertEquals((long) dOut * r, reduceB.bb().getLong(rs.offset("count")));
        assertEquals(groupsB, reduceB.i32(rs, "groups"), "the reduction sums exactly the groups the kernel wrote");
        assertEquals(s.gB.address(), reduceB.ptr(rs, "out"));
        assertEquals(gamma, reduceB.f32(rs, "gamma"));
        assertEquals(1, reduceB.i32(rs, "accumulate"));
        assertTrue(s.ws.bytes() >= (long) groupsB * dOut * r * 4, "dB partials fit the workspace");

        Launch da = l.get(4);
        CStruct as = KernelParams.BACKWARD_DA;
        int rpgA = da.i32(as, "rows_per_group");
        int groupsA = da.grid().z();
        assertEquals(0, rpgA % 64);
        assertTrue((long) groupsA * rpgA >= n && (long) (groupsA - 1) * rpgA < n);
        assertEquals(new LaunchGeometry.Grid(tiles(dIn), tiles(r), groupsA), da.grid());
        assertEquals(s.x.address(), da.ptr(as, "x"));
        assertArrayEquals(down.dropout(ds), da.dropout(as), "dA regenerates the forward's mask");

        Launch reduceA = l.get(5);
        assertEquals((long) r * dIn, reduceA.bb().getLong(rs.offset("count")));
        assertEquals(groupsA, reduceA.i32(rs, "groups"));
        assertEquals(s.gA.address(), reduceA.ptr(rs, "out"));
        assertEquals(gamma, reduceA.f32(rs, "gamma"));
        assertEquals(1, reduceA.i32(rs, "accumulate"));
        assertTrue(s.ws.bytes() >= (long) groupsA * r * dIn * 4, "dA partials fit the workspace");

        Launch dx = l.get(6);
        CStruct xs = KernelParams.BACKWARD_DX;
        assertEquals("rslora_lora_backward_dx_v2_bf16", dx.kernel());
        assertEquals(new LaunchGeometry.Grid(tiles(dIn), tiles(n), 1), dx.grid());
        assertEquals(128, dx.threads());
        assertEquals(s.dx.address(), dx.ptr(xs, "dx"));
        assertEquals(s.v.address(), dx.ptr(xs, "v"));
        assertEquals(r, dx.i32(xs, "r"));
        assertEquals(gamma, dx.f32(xs, "gamma"));
        assertArrayEquals(down.dropout(ds), dx.dropout(xs), "dX regenerates the forward's mask");
    }

    @Test
    void baseOnlyStepsLaunchNoAdapterKernelAndNoMask() {
        Recorder rec = new Recorder();
        LoraKernels k = new LoraKernels(rec, 1);
        StepBuffers s = new StepBuffers(DType.F16, 5, 7, 9, 1, 1L << 20);
        k.forwardStep(DType.F16, s.x, s.w, null, null, null, null, s.y, 5, 7, 9, 0, 3f, LoraKernels.Dropout.NONE);
        k.backwardDx(DType.F16, s.dy, s.w, null, null, s.dx, 5, 7, 9, 0, 3f, LoraKernels.Dropout.NONE);
        assertEquals(List.of("rslora_lora_forward_v1_f16", "rslora_lora_backward_dx_v1_f16"), rec.names());
        Launch fwd = rec.launches.get(0);
        assertEquals(0, fwd.i32(KernelParams.FORWARD, "r"), "r = 0: the kernel skips the LoRA segment");
        assertEquals(0L, fwd.ptr(KernelParams.FORWARD, "u"));
        assertEquals(0L, fwd.ptr(KernelParams.FORWARD, "bias"), "no bias: null pointer");
        Launch dx = rec.launches.get(1);
        assertEquals(0, dx.i32(KernelParams.BACKWARD_DX, "r"));
        assertEquals(0, ByteBuffer.wrap(dx.dropout(KernelParams.BACKWARD_DX)).order(ByteOrder.LITTLE_ENDIAN).getInt(24),
                "mask disabled");
    }

    /**
     * The merge kernel tiles d_out along gridDim.y: a W of more than 65,535 · 64 = 4,194,240 rows (which
     * prepare, forward and backward take, and the host backends merge) threw "grid (1, 65536, 1) is
     * outside CUDA's limits" at merge. It now runs in row blocks of W and B, each within the limit, the
     * pointers advanced by the rows before it; a W within the limit is still one launch.
     */
    @Test
    void aMergeOfMoreRowsThanTheGridTakesRunsInRowBlocks() {
        Recorder rec = new Recorder();
        LoraKernels k = new LoraKernels(rec, 1);
        int dOut = 2 * LaunchGeometry.MAX_ROWS + 5;
        int dIn = 3;
        int r = 2;
        DeviceBuffer w = buf(1024);
        DeviceBuffer b = buf(1024);
        DeviceBuffer a = buf(1024);
        k.merge(DType.BF16, w, b, a, dOut, dIn, r, 0.5f);
        assertEquals(3, rec.launches.size(), rec.names().toString());
        int[] rows = {LaunchGeometry.MAX_ROWS, LaunchGeometry.MAX_ROWS, 5};
        long o0 = 0;
        for (int i = 0; i < 3; i++) {
            Launch l = rec.launches.get(i);
            assertEquals("rslora_lora_merge_v1_bf16", l.kernel());
            assertEquals(rows[i], l.i32(KernelParams.MERGE, "d_out"));
            assertEquals(dIn, l.i32(KernelParams.MERGE, "d_in"));
            assertEquals(w.address() + o0 * dIn * 2, l.ptr(KernelParams.MERGE, "w"));
            assertEquals(b.address() + o0 * r * 4, l.ptr(KernelParams.MERGE, "lora_b"));
            assertEquals(a.address(), l.ptr(KernelParams.MERGE, "lora_a"));
            assertEquals(new LaunchGeometry.Grid(1, tiles(rows[i]), 1), l.grid());
            o0 += rows[i];
        }
        rec.launches.clear();
        k.merge(DType.F32, w, b, a, LaunchGeometry.MAX_ROWS, dIn, r, 0.5f);
        assertEquals(1, rec.launches.size());
        assertEquals(new LaunchGeometry.Grid(1, LaunchGeometry.MAX_GRID_YZ, 1), rec.launches.getFirst().grid());
    }
}
