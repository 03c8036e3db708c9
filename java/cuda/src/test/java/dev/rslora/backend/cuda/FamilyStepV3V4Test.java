package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The v4 (mma.sync) and v3 (sm_90a wgmma + TMA) families' own forward and dX GEMMs launched by
 * {@link FamilyStep} from the repository's cuda/kernels.table, recorded without a device: every
 * launch's kernel, image, grid, threads, dynamic shared memory, every params field by name (from the
 * packed bytes) and, for v3, the five tensor maps (base, dims, row stride, box, swizzle), as
 * cuda/dev/steps.cuh's fill() and cuda/kernels/lora_v3_launch.h / lora_v4_launch.h define them; the
 * shapes and pointers those kernels refuse run v1's kernel of exactly that role.
 */
class FamilyStepV3V4Test {
    private static final int SMS = 132;
    private static KernelTable table;

    @BeforeAll
    static void readTable() throws IOException {
        table = KernelTable.read(Path.of("../../cuda/kernels.table"));
    }

    /** One launch with everything the driver would get. */
    record Launch(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smem, byte[] params, List<DriverFfm.TensorMap> maps) {
        /** Every leaf field of {@code s} by name, from the packed bytes (pointers and ints as longs, floats as their bits). */
        Map<String, Object> fields(CStruct s) {
            assertEquals(s.size(), params.length, kernel + ": params are " + params.length + " bytes, " + s.name() + " is " + s.size());
            ByteBuffer bb = ByteBuffer.wrap(params).order(ByteOrder.LITTLE_ENDIAN);
            Map<String, Object> out = new LinkedHashMap<>();
            for (CStruct.Field f : s.fields()) {
                out.put(f.name(), switch (f.kind()) {
                    case PTR, I64 -> bb.getLong(f.offset());
                    case I32, U32 -> (long) bb.getInt(f.offset());
                    case F32 -> bb.getFloat(f.offset());
                    case F64 -> bb.getDouble(f.offset());
                });
            }
            return out;
        }
    }

    static final class Recorder implements KernelLauncher {
        final List<Launch> launches = new ArrayList<>();
        final List<String> resolved = new ArrayList<>();
        final TensorMapCacheTest.Counting encoder = new TensorMapCacheTest.Counting();

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
            launches.add(new Launch(kernel, "main", grid, threads, 0, params.clone(), List.of()));
        }

        final List<String> prepared = new ArrayList<>();

        @Override
        public void prepare(String kernel, String image, int smemBytes) {
            resolve(kernel, image);
            prepared.add(image + ":" + kernel + " " + smemBytes);
        }

        @Override
        public void launchEx(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smemBytes, DriverFfm.Cluster cluster,
                             byte[] params, List<DriverFfm.TensorMap> maps) {
            assertTrue(cluster.none(), kernel + ": no cluster");
            launches.add(new Launch(kernel, image, grid, threads, smemBytes, params.clone(), List.copyOf(maps)));
        }

        @Override
        public int multiprocessors() {
            return SMS;
        }

        @Override
        public TensorMapCache.Encoder tensorMaps() {
            return encoder;
        }

        List<String> names() {
            return launches.stream().map(Launch::kernel).toList();
        }

        Launch of(String kernel) {
            return launches.stream().filter(l -> l.kernel().equals(kernel)).findFirst().orElseThrow(() -> new AssertionError(kernel
                    + " not launched: " + names()));
        }
    }

    private final CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());

    private DeviceBuffer buf(long bytes) {
        DeviceBuffer b = memory.allocate(Math.max(1, bytes));
        assertEquals(0, b.address() & 15, "the fake device's blocks are 16-byte aligned");
        return b;
    }

    /** A view 2 bytes into a fresh block: a base TMA and cp.async refuse. */
    private DeviceBuffer unaligned(long bytes) {
        DeviceBuffer b = buf(bytes + 16);
        return new DeviceBuffer(memory, new RawDeviceMemory.RawBlock(b.address() + 2, bytes, null), bytes);
    }

    private FamilyStep.Buffers buffers(FamilyStep fs) {
        FamilyStep.Sizes z = fs.plan();
        return new FamilyStep.Buffers(buf(z.at()), buf(z.bt()), buf(z.ug()), buf(z.vg()), buf(z.wsV()), buf(z.wsDb()), buf(z.wsDa()));
    }

    /** A layer's device tensors (T = bf16 or f16, adapter f32). */
    final class Layer {
        final int n;
        final int dIn;
        final int dOut;
        final int r;
        DeviceBuffer x;
        DeviceBuffer w;
        DeviceBuffer bias;
        DeviceBuffer a;
        DeviceBuffer b;
        DeviceBuffer u;
        DeviceBuffer y;
        DeviceBuffer dy;
        DeviceBuffer v;
        DeviceBuffer gA;
        DeviceBuffer gB;
        DeviceBuffer dx;

        Layer(int n, int dIn, int dOut, int r) {
            this.n = n;
            this.dIn = dIn;
            this.dOut = dOut;
            this.r = r;
            x = buf(2L * n * dIn);
            w = buf(2L * dOut * dIn);
            bias = buf(2L * dOut);
            a = buf(4L * r * dIn);
            b = buf(4L * dOut * r);
            u = buf(4L * n * r);
            y = buf(2L * n * dOut);
            dy = buf(2L * n * dOut);
            v = buf(4L * n * r);
            gA = buf(4L * r * dIn);
            gB = buf(4L * dOut * r);
            dx = buf(2L * n * dIn);
        }

        void step(FamilyStep fs, float gamma, LoraKernels.Dropout d, FamilyStep.Buffers f) {
            fs.forward(x, w, bias, a, b, u, y, gamma, d, f);
            fs.backward(x, dy, w, a, b, u, v, gA, gB, dx, gamma, d, false, f);
        }
    }

    private static LoraKernels.Dropout dropout() {
        return new LoraKernels.Dropout(new DropoutMask(77, 5, 3, 0.1f), 77, 5, 3);
    }

    private static long cdiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static String mbRank(int r) {
        return r <= 16 ? "r16" : r <= 64 ? "r64" : r <= 128 ? "r128" : "r256";
    }

    @Test
    void aV4StepRunsItsOwnForwardAndDxGemmsOnTheMbKernelsOutputs() {
        for (int[] s : new int[][] {{300, 200, 152, 16}, {1000, 4096, 1024, 64}}) {
            int n = s[0], dIn = s[1], dOut = s[2], r = s[3], rPad = (r + 7) / 8 * 8;
            for (DType t : new DType[] {DType.BF16, DType.F16}) {
                String d = t == DType.BF16 ? "bf16" : "f16";
                Recorder rec = new Recorder();
                FamilyStep fs = new FamilyStep(rec, table, "v4", t, n, dIn, dOut, r, 256L << 20);
                FamilyStep.Buffers f = buffers(fs);
                Layer l = new Layer(n, dIn, dOut, r);
                LoraKernels.Dropout drop = dropout();
                l.step(fs, 2.5f, drop, f);
                String rk = mbRank(r);
                assertEquals(List.of("rslora_mb_prep_" + d, "rslora_mb_down_" + rk + "_" + d, "rslora_lora_forward_v4_" + d,
                        "rslora_mb_vdb_" + rk + "_" + d, "rslora_mb_vdb_reduce_" + d, "rslora_mb_da_" + rk + "_" + d, "rslora_reduce_groups_v1",
                        "rslora_lora_backward_dx_v4_" + d), rec.names(), n + "x" + dIn + "x" + dOut + "x" + r);
                // forward: 256 threads, 98304 B, 1-D grid of every 128×256 tile of Y, main image, no maps
                Launch fw = rec.of("rslora_lora_forward_v4_" + d);
                assertEquals("main", fw.image());
                assertEquals(256, fw.threads());
                assertEquals(98304, fw.smem());
                assertEquals(new LaunchGeometry.Grid((int) (cdiv(n, 128) * cdiv(dOut, 256)), 1, 1), fw.grid());
                assertTrue(fw.maps().isEmpty());
                Map<String, Object> want = new LinkedHashMap<>();
                want.put("x", l.x.address());
                want.put("w", l.w.address());
                want.put("bias", l.bias.address());
                want.put("ug", f.ug().address());  // T(γ·U): γ is not a field of the v4 forward
                want.put("bt", f.bt().address());
                want.put("y", l.y.address());
                want.put("n", (long) n);
                want.put("d_in", (long) dIn);
                want.put("d_out", (long) dOut);
                want.put("r", (long) r);
                want.put("accumulate", 0L);  // Y is assigned in the fused step
                assertEquals(want, fw.fields(KernelParams.FORWARD_V4));
                // Ug is the down kernel's output, Bt the prep's: the forward reads what they wrote
                Launch down = rec.launches.get(1);
                assertEquals(f.ug().address(), down.fields(KernelParams.MB_DOWN).get("ug"));
                assertEquals(2.5f, down.fields(KernelParams.MB_DOWN).get("gamma"));
                assertEquals(f.bt().address(), rec.launches.get(0).fields(KernelParams.MB_PREP).get("bt"));
                assertEquals(f.at().address(), rec.launches.get(0).fields(KernelParams.MB_PREP).get("at"));
                // dx: Vg from vdb_reduce, At from prep; the forward's dropout
                Launch dxl = rec.of("rslora_lora_backward_dx_v4_" + d);
                assertEquals("main", dxl.image());
                assertEquals(256, dxl.threads());
                assertEquals(98304, dxl.smem());
                assertEquals(new LaunchGeometry.Grid((int) (cdiv(n, 128) * cdiv(dIn, 256)), 1, 1), dxl.grid());
                Map<String, Object> wantDx = new LinkedHashMap<>();
                wantDx.put("dy", l.dy.address());
                wantDx.put("w", l.w.address());
                wantDx.put("vg", f.vg().address());
                wantDx.put("at", f.at().address());
                wantDx.put("dx", l.dx.address());
                wantDx.put("n", (long) n);
                wantDx.put("d_in", (long) dIn);
                wantDx.put("d_out", (long) dOut);
                wantDx.put("r", (long) r);
                wantDx.put("accumulate", 0L);
                wantDx.putAll(dropoutFields(drop));
                assertEquals(wantDx, dxl.fields(KernelParams.BACKWARD_DX_V4));
                assertEquals(f.vg().address(), rec.launches.get(4).fields(KernelParams.MB_VDB_REDUCE).get("vg"));
                assertEquals(dropoutFields(drop), subset(rec.launches.get(1).fields(KernelParams.MB_DOWN), "drop."));
                // the buffers the GEMMs read are planned at [n, r_pad] / [d_out, r_pad] / [r, d_in] T
                FamilyStep.Sizes z = fs.plan();
                assertEquals(List.of(2L * n * rPad, 2L * n * rPad, 2L * dOut * rPad, 2L * r * dIn), List.of(z.ug(), z.vg(), z.bt(), z.at()));
                assertTrue(rec.encoder.calls.isEmpty(), "v4 encodes no tensor maps");
            }
        }
    }

    private static Map<String, Object> dropoutFields(LoraKernels.Dropout d) {
        Map<String, Object> m = new LinkedHashMap<>();
        DropoutMask mask = d.mask();
        m.put("drop.key_lo", d.seed() & 0xffffffffL);
        m.put("drop.key_hi", d.seed() >>> 32);
        m.put("drop.layer", (long) d.layer());
        m.put("drop.step", d.step());
        m.put("drop.threshold", (long) mask.threshold());
        m.put("drop.scale", mask.scale());
        m.put("drop.enabled", 1L);
        return m;
    }

    private static Map<String, Object> subset(Map<String, Object> all, String prefix) {
        Map<String, Object> m = new LinkedHashMap<>();
        all.forEach((k, v) -> {
            if (k.startsWith(prefix)) {
                m.put(k, v);
            }
        });
        return m;
    }

    /** "base rows x cols row B box outer x inner sw": what a map describes, from the recorded descriptor. */
    private static String map(DriverFfm.TensorMap m) {
        return "0x" + Long.toHexString(m.base()) + " " + m.outer() + "x" + m.inner() + " row " + m.rowStrideBytes() + " box " + m.boxOuter()
                + "x" + m.boxInner() + " sw " + m.swizzle() + " dt " + m.dtype();
    }

    private static String map(DeviceBuffer b, long rows, long cols, int boxOuter, int boxInner, int dtype) {
        return "0x" + Long.toHexString(b.address()) + " " + rows + "x" + cols + " row " + 2 * cols + " box " + boxOuter + "x" + boxInner
                + " sw " + DriverFfm.TMA_SWIZZLE_128B + " dt " + dtype;
    }

    @Test
    void aV3StepRunsTheSm90aGemmsWithFiveMapsEachOnAPersistentGrid() {
        // tiles of Y / dX: 3·1 and 3·1 (< 132 SMs); 40·4 and 40·16 (> 132: one CTA per SM)
        for (int[] s : new int[][] {{300, 200, 152, 16, 3, 3}, {5000, 4096, 1024, 64, 132, 132}, {129, 513 + 7, 8, 100, 2, 6}}) {
            int n = s[0], dIn = s[1], dOut = s[2], r = s[3], rPad = (r + 7) / 8 * 8;
            for (DType t : new DType[] {DType.BF16, DType.F16}) {
                String d = t == DType.BF16 ? "bf16" : "f16";
                int dt = t == DType.BF16 ? DriverFfm.TMA_BFLOAT16 : DriverFfm.TMA_FLOAT16;
                Recorder rec = new Recorder();
                TensorMapCache weightMaps = new TensorMapCache();
                FamilyStep fs = new FamilyStep(rec, table, "v3", t, n, dIn, dOut, r, 256L << 20, weightMaps);
                FamilyStep.Buffers f = buffers(fs);
                Layer l = new Layer(n, dIn, dOut, r);
                LoraKernels.Dropout drop = dropout();
                l.step(fs, 0.75f, drop, f);
                String rk = mbRank(r);
                String ctx = n + "x" + dIn + "x" + dOut + "x" + r + " " + d;
                assertEquals(List.of("rslora_mb_prep_" + d, "rslora_mb_down_" + rk + "_" + d, "rslora_lora_forward_v3_" + d,
                        "rslora_mb_vdb_" + (r <= 16 ? "r16" : "r64") + "_" + d, "rslora_mb_vdb_reduce_" + d,
                        "rslora_mb_da_" + (r <= 16 ? "r16" : r <= 64 ? "r64" : "r128") + "_" + d, "rslora_reduce_groups_v1",
                        "rslora_lora_backward_dx_v3_" + d), rec.names(), ctx);
                Launch fw = rec.of("rslora_lora_forward_v3_" + d);
                assertEquals("sm90a", fw.image(), ctx);
                assertEquals(384, fw.threads());
                assertEquals(215040, fw.smem());
                assertEquals(new LaunchGeometry.Grid(s[4], 1, 1), fw.grid(), ctx);
                assertEquals(Map.of("bias", l.bias.address(), "n", (long) n, "d_in", (long) dIn, "d_out", (long) dOut, "r", (long) r),
                        fw.fields(KernelParams.FORWARD_V3));
                // X {d_in, n} box {64, 128}, W {d_in, d_out} box {64, 256}, Ug {r_pad, n} box {64, 128},
                // Bt {r_pad, d_out} box {64, 256}, Y {d_out, n} box {64, 64}
                assertEquals(List.of(map(l.x, n, dIn, 128, 64, dt), map(l.w, dOut, dIn, 256, 64, dt), map(f.ug(), n, rPad, 128, 64, dt),
                        map(f.bt(), dOut, rPad, 256, 64, dt), map(l.y, n, dOut, 64, 64, dt)), fw.maps().stream().map(FamilyStepV3V4Test::map).toList(),
                        ctx);
                Launch dxl = rec.of("rslora_lora_backward_dx_v3_" + d);
                assertEquals("sm90a", dxl.image());
                assertEquals(384, dxl.threads());
                assertEquals(223232, dxl.smem());
                assertEquals(new LaunchGeometry.Grid(s[5], 1, 1), dxl.grid(), ctx);
                Map<String, Object> wantDx = new LinkedHashMap<>();
                wantDx.put("n", (long) n);
                wantDx.put("d_in", (long) dIn);
                wantDx.put("d_out", (long) dOut);
                wantDx.put("r", (long) r);
                wantDx.putAll(dropoutFields(drop));
                assertEquals(wantDx, dxl.fields(KernelParams.BACKWARD_DX_V3));
                // Vg {r_pad, n} box {64, 128}, At {d_in, r} box {64, 64}, dY {d_out, n} box {64, 128},
                // W {d_in, d_out} box {64, 64}, dX {d_in, n} box {64, 64}
                assertEquals(List.of(map(f.vg(), n, rPad, 128, 64, dt), map(f.at(), r, dIn, 64, 64, dt), map(l.dy, n, dOut, 128, 64, dt),
                        map(l.w, dOut, dIn, 64, 64, dt), map(l.dx, n, dIn, 64, 64, dt)), dxl.maps().stream().map(FamilyStepV3V4Test::map).toList(),
                        ctx);
                // a second step on the same buffers encodes nothing; W's two maps live in the weight's cache
                int encoded = rec.encoder.calls.size();
                assertEquals(10, encoded, rec.encoder.calls.toString());
                assertEquals(2, weightMaps.encoded());
                l.step(fs, 0.75f, drop, f);
                assertEquals(encoded, rec.encoder.calls.size(), "maps re-encoded for unchanged buffers");
                Launch again = rec.launches.get(rec.launches.size() - 1);
                assertArrayEquals(dxl.maps().get(3).bytes(), again.maps().get(3).bytes());
                // a new step object on the same weight (the host API makes one per call) reuses W's maps
                FamilyStep fs2 = new FamilyStep(rec, table, "v3", t, n, dIn, dOut, r, 256L << 20, weightMaps);
                fs2.forward(l.x, l.w, l.bias, l.a, l.b, l.u, l.y, 0.75f, drop, f);
                assertSame(fw.maps().get(1), rec.launches.get(rec.launches.size() - 1).maps().get(1));
                assertEquals(2, weightMaps.encoded());
                // before a capture: both images' kernels and the v1 fallbacks are loaded
                fs.resolveAll();
                assertTrue(rec.resolved.containsAll(List.of("sm90a:rslora_lora_forward_v3_" + d, "sm90a:rslora_lora_backward_dx_v3_" + d,
                        "main:rslora_lora_forward_v1_" + d, "main:rslora_lora_backward_dx_v1_" + d)), rec.resolved.toString());
                assertTrue(rec.prepared.containsAll(List.of("sm90a:rslora_lora_forward_v3_" + d + " 215040",
                        "sm90a:rslora_lora_backward_dx_v3_" + d + " 223232", "main:rslora_mb_vdb_" + (r <= 16 ? "r16" : "r64") + "_" + d + " 97280")),
                        "shared memory limits raised before a capture: " + rec.prepared);
            }
        }
    }

    @Test
    void aRefusedShapeRunsV1ForExactlyTheRolesThatRefuse() {
        for (String fam : List.of("v4", "v3")) {
            String gemm = fam.equals("v4") ? "_v4_bf16" : "_v3_bf16";
            // d_in = 1030 (not a multiple of 8): both GEMMs read 16-bit rows of d_in, so both refuse
            Recorder rec = new Recorder();
            int n = 300, dIn = 1030, dOut = 152, r = 24;
            FamilyStep fs = new FamilyStep(rec, table, fam, DType.BF16, n, dIn, dOut, r, 256L << 20);
            FamilyStep.Buffers f = buffers(fs);
            Layer l = new Layer(n, dIn, dOut, r);
            l.step(fs, 1.5f, dropout(), f);
            assertEquals(List.of("rslora_mb_prep_bf16", "rslora_mb_down_r64_bf16", "rslora_lora_forward_v1_bf16", "rslora_mb_vdb_r64_bf16",
                    "rslora_mb_vdb_reduce_bf16", "rslora_mb_da_r64_bf16", "rslora_reduce_groups_v1", "rslora_lora_backward_dx_v1_bf16"),
                    rec.names(), fam);
            // the v1 kernels read the f32 U and V that the mb kernels also wrote, B and A, and take γ
            Launch fw = rec.of("rslora_lora_forward_v1_bf16");
            assertEquals(256, fw.threads());
            assertEquals(0, fw.smem());
            assertEquals(LaunchGeometry.forward(n, dOut), fw.grid());
            Map<String, Object> fwf = fw.fields(KernelParams.FORWARD);
            assertEquals(List.of(l.u.address(), l.b.address(), 1.5f), List.of(fwf.get("u"), fwf.get("lora_b"), fwf.get("gamma")));
            assertEquals(l.u.address(), rec.launches.get(1).fields(KernelParams.MB_DOWN).get("u"), "down writes U for the v1 forward");
            Map<String, Object> dxf = rec.of("rslora_lora_backward_dx_v1_bf16").fields(KernelParams.BACKWARD_DX);
            assertEquals(List.of(l.v.address(), l.a.address(), l.dx.address(), 1.5f), List.of(dxf.get("v"), dxf.get("lora_a"), dxf.get("dx"),
                    dxf.get("gamma")));
            assertEquals(l.v.address(), rec.launches.get(4).fields(KernelParams.MB_VDB_REDUCE).get("v"), "vdb_reduce writes V for v1's dx");
            assertEquals(LaunchGeometry.backwardDx(n, dIn), rec.of("rslora_lora_backward_dx_v1_bf16").grid());
            assertTrue(FamilyStep.refusedOnce("rslora_lora_forward" + gemm, n, dIn, dOut, r), "the refusal is logged (and visible to tests)");
            assertTrue(FamilyStep.refusedOnce("rslora_lora_backward_dx" + gemm, n, dIn, dOut, r));
            assertTrue(!FamilyStep.refusedOnce("rslora_lora_forward" + gemm, n, 1024, dOut, r));

            // an unaligned dY (read by dx only): the forward keeps its GEMM, dx runs v1's
            rec.launches.clear();
            FamilyStep ok = new FamilyStep(rec, table, fam, DType.BF16, n, 1024, dOut, r, 256L << 20);
            FamilyStep.Buffers g = buffers(ok);
            Layer m = new Layer(n, 1024, dOut, r);
            m.dy = unaligned(2L * n * dOut);
            m.step(ok, 1.5f, dropout(), g);
            assertEquals("rslora_lora_forward" + gemm, rec.launches.get(2).kernel(), fam);
            assertEquals("rslora_lora_backward_dx_v1_bf16", rec.launches.get(7).kernel(), fam);
            assertEquals(m.dy.address(), rec.launches.get(7).fields(KernelParams.BACKWARD_DX).get("dy"));
            // an unaligned Y (written by the forward only): the forward runs v1's, dx its GEMM
            rec.launches.clear();
            m.dy = buf(2L * n * dOut);
            m.y = unaligned(2L * n * dOut);
            m.step(ok, 1.5f, dropout(), g);
            assertEquals("rslora_lora_forward_v1_bf16", rec.launches.get(2).kernel(), fam);
            assertEquals("rslora_lora_backward_dx" + gemm, rec.launches.get(7).kernel(), fam);
        }
    }

    @Test
    void theRefusalRulesAreThoseOfTheLaunchHeaders() {
        String[] names = {"x", "y"};
        long[] aligned = {0x1000, 0};
        assertNull(FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", 1, 8, 8, 0, names, aligned));
        assertEquals("rslora_lora_forward_v4: d_in = 1030 is not a positive multiple of 8 (16-byte rows for cp.async)",
                FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", 300, 1030, 152, 16, names, aligned));
        assertEquals("rslora_lora_backward_dx_v4: d_out = 33 is not a positive multiple of 8 (16-byte rows for cp.async)",
                FamilyStep.v4Refusal("rslora_lora_backward_dx_v4_f16", 300, 1024, 33, 16, names, aligned));
        assertEquals("rslora_lora_forward_v4: y = 0x1002 is not 16-byte aligned",
                FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", 300, 1024, 152, 16, names, new long[] {0x1000, 0x1002}));
        assertEquals("rslora_lora_forward_v4: n = 0 (must be >= 1)", FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", 0, 8, 8, 1, names, aligned));
        assertTrue(FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", Integer.MAX_VALUE, 8, 1L << 20, 1, names, aligned)
                .contains("blocks exceed the 1-D grid limit"));
        assertNull(FamilyStep.v3Refusal(1, 8, 8, 0, names, aligned));
        assertEquals("v3: d_in = 1030 is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)",
                FamilyStep.v3Refusal(300, 1030, 152, 16, names, aligned));
        assertEquals("v3: d_out = 1030 is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)",
                FamilyStep.v3Refusal(300, 1024, 1030, 16, names, aligned));
        assertEquals("v3: a tensor base is not 16-byte aligned (x = 0x1008)", FamilyStep.v3Refusal(300, 1024, 152, 16, names,
                new long[] {0x1008, 0}));
        assertEquals("v3: a dimension does not fit int32 TMA coordinates", FamilyStep.v3Refusal(1L << 31, 8, 8, 1, names, aligned));
        // the C takes int extents: a wider one cannot reach rs_v4_refusal
        assertEquals("rslora_lora_backward_dx_v4: n = 2147483648 does not fit int32 (rs_v4_refusal takes int extents)",
                FamilyStep.v4Refusal("rslora_lora_backward_dx_v4_bf16", 1L << 31, 8, 8, 1, names, aligned));
        // the same rules for a caller that knows only whether every base is aligned (the selector's shape)
        assertNull(FamilyStep.gemmRefusal("rslora_lora_forward_v3_bf16", 300, 1024, 152, 16, true));
        assertEquals("v3: a tensor base is not 16-byte aligned", FamilyStep.gemmRefusal("rslora_lora_backward_dx_v3_f16", 300, 1024, 152,
                16, false));
        assertEquals("rslora_lora_backward_dx_v4: a tensor base is not 16-byte aligned",
                FamilyStep.gemmRefusal("rslora_lora_backward_dx_v4_bf16", 300, 1024, 152, 16, false));
        assertEquals(FamilyStep.v4Refusal("rslora_lora_forward_v4_bf16", 300, 1030, 152, 16, names, aligned),
                FamilyStep.gemmRefusal("rslora_lora_forward_v4_bf16", 300, 1030, 152, 16, false), "the shape's rules come first");
        assertEquals(FamilyStep.v3Refusal(300, 1024, 1030, 16, names, aligned),
                FamilyStep.gemmRefusal("rslora_lora_forward_v3_bf16", 300, 1024, 1030, 16, true));
        assertNull(FamilyStep.gemmRefusal("rslora_lora_forward_v1_bf16", 300, 1030, 1001, 16, false), "v1 refuses nothing");
    }

    @Test
    void theConstructorAcceptsTheV3AndV4RowsAndNamesTheRowItRefuses() {
        for (String fam : List.of("v3", "v4")) {
            for (String d : List.of("bf16", "f16")) {
                assertTrue(FamilyStep.launches(table.find(fam, "forward", d, 16).orElseThrow()), fam);
                assertTrue(FamilyStep.launches(table.find(fam, "dx", d, 16).orElseThrow()), fam);
            }
        }
        assertEquals("flat_dout_128x256", FamilyStep.expectedGrid("rslora_lora_forward_v4_bf16"));
        assertEquals("flat_din_128x256", FamilyStep.expectedGrid("rslora_lora_backward_dx_v4_f16"));
        assertEquals("persistent_dout_n", FamilyStep.expectedGrid("rslora_lora_forward_v3_f16"));
        assertEquals("persistent_din_n", FamilyStep.expectedGrid("rslora_lora_backward_dx_v3_bf16"));
        assertSame(KernelParams.FORWARD_V3, FamilyStep.paramsOf("rslora_lora_forward_v3_bf16"));
        assertSame(KernelParams.BACKWARD_DX_V4, FamilyStep.paramsOf("rslora_lora_backward_dx_v4_f16"));
        assertNull(FamilyStep.paramsOf("rslora_lora_up_add_v4_bf16"), "the split step's kernels are not FamilyStep's");

        List<String> lines = FamilyStepTest.TABLE.lines().filter(s -> !s.contains("v9,")).toList();
        String fwdV4 = "RS_KERNEL(v3, forward,    bf16, rslora_lora_forward_v4_bf16,      256, 98304, 1x1x1, sm80, main, flat_dout_128x256, 0, none)";
        String v1 = "RS_KERNEL(v1, forward,    bf16, rslora_lora_forward_v1_bf16,      256, 0,     1x1x1, sm80, main, tiles_dout_n, 0,  none)\n"
                + "RS_KERNEL(v1, dx,         bf16, rslora_lora_backward_dx_v1_bf16,  256, 0,     1x1x1, sm80, main, tiles_din_n, 0,   none)";
        java.util.function.Function<String, KernelTable> withForward = row -> KernelTable.parse((String.join("\n", lines.stream()
                .map(s -> s.contains("v3, forward") ? row : s).toList()) + "\n" + v1).lines().toList(), "synthetic");
        assertEquals("rslora_lora_forward_v4_bf16", new FamilyStep(new Recorder(), withForward.apply(fwdV4), "v3", DType.BF16, 64, 64, 64, 16,
                1L << 30).rows().forward().name());
        // the table's threads / shared memory must be the kernel's
        IllegalArgumentException smem = assertThrows(IllegalArgumentException.class, () -> new FamilyStep(new Recorder(),
                withForward.apply(fwdV4.replace("98304", "49152")), "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(smem.getMessage().contains("v3/forward/bf16 names rslora_lora_forward_v4_bf16 with 256 threads / 49152 B"), smem.getMessage());
        // a wrong grid rule names the row and the rule its params launch on
        IllegalArgumentException grid = assertThrows(IllegalArgumentException.class, () -> new FamilyStep(new Recorder(),
                withForward.apply(fwdV4.replace("flat_dout_128x256", "persistent_dout_n")), "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(grid.getMessage().contains("grid rule persistent_dout_n") && grid.getMessage().contains("launch on flat_dout_128x256"),
                grid.getMessage());
        // the v4 forward reads Bt and Ug: without the mb down (here v1's down) the family is refused, naming the row
        KernelTable noMbDown = KernelTable.parse((String.join("\n", lines.stream().filter(s -> !s.contains("v3, down"))
                .map(s -> s.contains("v3, forward") ? fwdV4 : s).toList()) + "\n" + v1
                + "\nRS_KERNEL(v3, down, bf16, rslora_lora_down_v1_bf16, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)").lines().toList(), "x");
        IllegalArgumentException reads = assertThrows(IllegalArgumentException.class,
                () -> new FamilyStep(new Recorder(), noMbDown, "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(reads.getMessage().contains("v3/forward names rslora_lora_forward_v4_bf16, which reads Bt"), reads.getMessage());
        // without a v1 row to fall back on, a refusing GEMM row is refused
        KernelTable noV1 = KernelTable.parse(String.join("\n", lines.stream().map(s -> s.contains("v3, forward") ? fwdV4 : s).toList())
                .lines().toList(), "y");
        IllegalArgumentException fallback = assertThrows(IllegalArgumentException.class,
                () -> new FamilyStep(new Recorder(), noV1, "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
        assertTrue(fallback.getMessage().contains("v1 has no forward row for bf16"), fallback.getMessage());
        // a v3 family asks the launcher for the SM count once, at construction
        KernelLauncher noSms = new LoraKernelsLaunchTest.Recorder();
        assertThrows(UnsupportedOperationException.class, () -> new FamilyStep(noSms, table, "v3", DType.BF16, 64, 64, 64, 16, 1L << 30));
    }

    @Test
    void autoOnSm90PicksNoUnvalidatedFamilyAndAnExplicitV3OrV4RunsItsOwnKernels() {
        KernelSelector.Shape s = new KernelSelector.Shape(8192, 4096, 4096, 16, true);
        KernelSelector.Selection auto = KernelSelector.select("auto", table, 9, 0, DType.BF16, s, FamilyStep::launches, Map.of());
        assertTrue(!auto.family().equals("v3") && !auto.family().equals("v4"), auto.toString());
        assertTrue(auto.skipped().get("v3").contains("not validated on sm90"), auto.toString());
        assertTrue(auto.skipped().get("v4").contains("not validated on sm90"), auto.toString());
        for (String fam : List.of("v3", "v4")) {
            KernelSelector.Selection sel = KernelSelector.select(fam, table, 9, 0, DType.BF16, s, FamilyStep::launches, Map.of());
            assertEquals(fam, sel.family(), sel.toString());
            Recorder rec = new Recorder();
            FamilyStep fs = new FamilyStep(rec, table, sel.family(), DType.BF16, 256, 256, 256, 16, 1L << 30);
            assertEquals("rslora_lora_forward_" + fam + "_bf16", fs.rows().forward().name());
            assertEquals("rslora_lora_backward_dx_" + fam + "_bf16", fs.rows().dx().name());
        }
        // v3 is sm_90a code: on an sm_89 device an explicit v3 runs v4, saying why
        KernelSelector.Selection ada = KernelSelector.select("v3", table, 8, 9, DType.BF16, s, FamilyStep::launches, Map.of());
        assertEquals("v4", ada.family());
        assertTrue(ada.skipped().get("v3").contains("sm90a code"), ada.toString());
        // a shape the GEMMs refuse: an explicit v4 runs v1
        KernelSelector.Selection odd = KernelSelector.select("v4", table, 9, 0, DType.BF16, new KernelSelector.Shape(300, 1030, 152, 16, true),
                FamilyStep::launches, Map.of());
        assertEquals("v1", odd.family());
    }
}
