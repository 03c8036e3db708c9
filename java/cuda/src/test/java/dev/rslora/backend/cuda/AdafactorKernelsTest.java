package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorSpec;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The fused Adafactor's host side without a device: layouts and workspace carving, the tensor table
 * at the header's offsets, the two work lists (every reduction item exactly once), the per-step params
 * (the scalars of {@link AdafactorSpec}, which the CPU Adafactor uses, bit for bit) and the five launches.
 */
class AdafactorKernelsTest {
    private static final Path KERNEL = Path.of("../..", "cuda", "kernels", "adafactor.cuh");

    @Test
    void layoutsFollowTheRank() {
        AdafactorKernels.Layout m = AdafactorKernels.Layout.of(new long[] {16, 4096});
        assertTrue(m.factored());
        assertEquals(16, m.rows());
        assertEquals(4096, m.cols());
        assertEquals(2, m.rowSegments(), "ceil(4096 / 2048)");
        assertEquals(1, m.columnChunks(), "ceil(16 / 64)");
        assertEquals(32, m.segments(), "ceil(65536 / 2048)");
        assertEquals(8L * (16 * 2 + 1 * 4096 + 2 * 32) + 4L * (16 + 4096) + 16, m.workspaceBytes());
        AdafactorKernels.Layout b = AdafactorKernels.Layout.of(new long[] {4097, 3});
        assertEquals(1, b.rowSegments());
        assertEquals(65, b.columnChunks(), "ceil(4097 / 64)");
        AdafactorKernels.Layout v = AdafactorKernels.Layout.of(new long[] {2049});
        assertTrue(!v.factored());
        assertEquals(1, v.rows());
        assertEquals(0, v.cols());
        assertEquals(2, v.segments());
        assertEquals(0, v.rowSegments());
        assertEquals(8L * 2 * 2 + 16, v.workspaceBytes());
        AdafactorKernels.Layout scalar = AdafactorKernels.Layout.of(new long[] {});
        assertEquals(1, scalar.count());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> AdafactorKernels.Layout.of(new long[] {2, 3, 4}));
        assertTrue(e.getMessage().contains("rank <= 2") && e.getMessage().contains("[2, 3, 4]"), e.getMessage());
    }

    private static AdafactorKernels.Entry entry(long base, long[] shape, boolean master, boolean firstMoment) {
        AdafactorKernels.Layout l = AdafactorKernels.Layout.of(shape);
        return new AdafactorKernels.Entry(base, master ? DType.BF16 : DType.F32, base + 0x100, DType.F32, master ? base + 0x200 : 0,
                l.factored() ? base + 0x300 : 0, l.factored() ? base + 0x400 : 0, l.factored() ? 0 : base + 0x500,
                firstMoment ? base + 0x600 : 0, base + 0x1000, l);
    }

    @Test
    void tableHoldsEveryTensorAndCarvesItsWorkspace() {
        List<AdafactorKernels.Entry> entries = List.of(entry(0x7f00_0000_0000L, new long[] {8, 3000}, false, true),
                entry(0x7f01_0000_0000L, new long[] {3000, 8}, true, true), entry(0x7f02_0000_0000L, new long[] {7}, false, true),
                entry(0x7f03_0000_0000L, new long[] {1, 1}, true, true));
        byte[] t = AdafactorKernels.table(entries);
        CStruct s = KernelParams.ADAFACTOR_TENSOR;
        assertEquals(160, s.size());
        assertEquals(entries.size() * 160, t.length);
        ByteBuffer bb = ByteBuffer.wrap(t).order(ByteOrder.LITTLE_ENDIAN);
        long offset = 0;
        for (int k = 0; k < entries.size(); k++) {
            AdafactorKernels.Entry e = entries.get(k);
            AdafactorKernels.Layout l = e.layout();
            int at = k * 160;
            String ctx = "entry " + k;
            assertEquals(e.param(), bb.getLong(at + s.offset("param")), ctx);
            assertEquals(e.grad(), bb.getLong(at + s.offset("grad")), ctx);
            assertEquals(e.master(), bb.getLong(at + s.offset("master")), ctx);
            assertEquals(e.row(), bb.getLong(at + s.offset("row")), ctx);
            assertEquals(e.col(), bb.getLong(at + s.offset("col")), ctx);
            assertEquals(e.v(), bb.getLong(at + s.offset("v")), ctx);
            assertEquals(e.expAvg(), bb.getLong(at + s.offset("exp_avg")), ctx);
            long ws = e.workspace();
            long rowPart = 8L * l.rows() * l.rowSegments();
            long colPart = 8L * l.columnChunks() * l.cols();
            assertEquals(l.factored() ? ws : 0, bb.getLong(at + s.offset("row_part")), ctx);
            assertEquals(l.factored() ? ws + rowPart : 0, bb.getLong(at + s.offset("col_part")), ctx);
            assertEquals(ws + rowPart + colPart, bb.getLong(at + s.offset("p_part")), ctx);
            assertEquals(ws + rowPart + colPart + 8L * l.segments(), bb.getLong(at + s.offset("u_part")), ctx);
            long rfac = ws + rowPart + colPart + 16L * l.segments();
            assertEquals(l.factored() ? rfac : 0, bb.getLong(at + s.offset("rfac")), ctx);
            assertEquals(l.factored() ? rfac + 4L * l.rows() : 0, bb.getLong(at + s.offset("cfac")), ctx);
            long scalars = rfac + (l.factored() ? 4L * (l.rows() + l.cols()) : 0);
            assertEquals(scalars, bb.getLong(at + s.offset("scalars")), ctx);
            assertEquals(ws + l.workspaceBytes(), scalars + 16, ctx + ": the scalars end the workspace");
            assertEquals(l.count(), bb.getLong(at + s.offset("count")), ctx);
            assertEquals(offset, bb.getLong(at + s.offset("offset")), ctx);
            assertEquals(l.rows(), bb.getInt(at + s.offset("rows")), ctx);
            assertEquals(l.cols(), bb.getInt(at + s.offset("cols")), ctx);
            assertEquals(l.rowSegments(), bb.getInt(at + s.offset("row_segs")), ctx);
            assertEquals(l.columnChunks(), bb.getInt(at + s.offset("col_chunks")), ctx);
            assertEquals(l.segments(), bb.getInt(at + s.offset("segs")), ctx);
            assertEquals(AdamWKernels.code(e.paramType()), bb.getInt(at + s.offset("param_dtype")), ctx);
            assertEquals(AdamWKernels.code(e.gradType()), bb.getInt(at + s.offset("grad_dtype")), ctx);
            assertEquals(l.factored() ? 1 : 0, bb.getInt(at + s.offset("factored")), ctx);
            offset += l.count();
        }
        assertEquals(offset, AdafactorKernels.total(entries));
        assertThrows(IllegalArgumentException.class, () -> AdafactorKernels.table(List.of()));
        AdafactorKernels.Layout m = AdafactorKernels.Layout.of(new long[] {2, 2});
        assertThrows(IllegalArgumentException.class,
                () -> new AdafactorKernels.Entry(1, DType.F32, 2, DType.F32, 0, 0, 0, 5, 0, 6, m), "factored without row/col");
        assertThrows(IllegalArgumentException.class,
                () -> new AdafactorKernels.Entry(0, DType.F32, 2, DType.F32, 0, 3, 4, 0, 0, 6, m), "null param");
    }

    @Test
    void workListsCoverEveryReductionExactlyOnce() {
        long seed = 0xAFA1L;
        SplittableRandom rnd = new SplittableRandom(seed);
        List<AdafactorKernels.Layout> layouts = new ArrayList<>();
        for (int k = 0; k < 30; k++) {
            long[] shape = switch (rnd.nextInt(3)) {
                case 0 -> new long[] {1 + rnd.nextInt(5000)};
                case 1 -> new long[] {1 + rnd.nextInt(200), 1 + rnd.nextInt(5000)};
                default -> new long[] {1 + rnd.nextInt(5000), 1 + rnd.nextInt(40)};
            };
            layouts.add(AdafactorKernels.Layout.of(shape));
        }
        List<int[]> stats = AdafactorKernels.statsWork(layouts);
        Set<String> seen = new HashSet<>();
        long[] rowItems = new long[layouts.size()];
        long[] colCells = new long[layouts.size()];
        long[] pItems = new long[layouts.size()];
        for (int[] it : stats) {
            assertTrue(seen.add(it[0] + "/" + it[1] + "/" + it[2] + "/" + it[3]), "item twice, seed " + seed);
            AdafactorKernels.Layout l = layouts.get(it[1]);
            switch (it[0]) {
                case AdafactorKernels.ROW_SEGMENT -> {
                    assertTrue(l.factored() && it[2] < l.rows() && it[3] < l.rowSegments());
                    rowItems[it[1]]++;
                }
                case AdafactorKernels.COLUMN_CHUNK -> {
                    assertTrue(l.factored() && it[2] < l.columnChunks() && it[3] % 32 == 0 && it[3] < l.cols());
                    colCells[it[1]] += Math.min(32, l.cols() - it[3]);
                }
                case AdafactorKernels.P_SEGMENT -> {
                    assertTrue(it[2] < l.segments() && it[3] == 0);
                    pItems[it[1]]++;
                }
                default -> throw new AssertionError("kind " + it[0]);
            }
        }
        for (int k = 0; k < layouts.size(); k++) {
            AdafactorKernels.Layout l = layouts.get(k);
            assertEquals((long) l.rows() * l.rowSegments(), rowItems[k], "row segments of " + l);
            assertEquals((long) l.columnChunks() * l.cols(), colCells[k], "column cells of " + l);
            assertEquals(l.segments(), pItems[k], "p² segments of " + l);
        }
        List<int[]> update = AdafactorKernels.updateWork(layouts);
        assertEquals(layouts.stream().mapToLong(AdafactorKernels.Layout::segments).sum(), update.size());
        for (int[] it : update) {
            assertEquals(AdafactorKernels.UPDATE_SEGMENT, it[0]);
        }
        byte[] w = AdafactorKernels.work(update);
        assertEquals(16 * update.size(), w.length);
        ByteBuffer bb = ByteBuffer.wrap(w).order(ByteOrder.LITTLE_ENDIAN);
        int[] last = update.getLast();
        int at = 16 * (update.size() - 1);
        CStruct s = KernelParams.ADAFACTOR_WORK;
        assertArrayEquals(last, new int[] {bb.getInt(at + s.offset("kind")), bb.getInt(at + s.offset("tensor")),
            bb.getInt(at + s.offset("a")), bb.getInt(at + s.offset("b"))});
    }

    @Test
    void aStepIsFiveLaunchesWithTheSpecsScalars() {
        AdafactorConfig c = AdafactorConfig.hfDefaults().withBeta1(0.9).withWeightDecay(0.01).withClipThreshold(0.5);
        AdafactorSpec.Step st = AdafactorSpec.step(c, 7);
        LoraKernelsLaunchTest.Recorder rec = new LoraKernelsLaunchTest.Recorder();
        new AdafactorKernels(rec).step(0xA000, 0xB000, 1000, 0xC000, 40, 3_000_007L, 9, st);
        assertEquals(AdafactorKernels.KERNELS, rec.names());
        List<LoraKernelsLaunchTest.Launch> l = rec.launches;
        assertEquals(AdafactorKernels.itemGrid(1000), l.get(0).grid());
        assertEquals(new LaunchGeometry.Grid(125, 1, 1), l.get(0).grid(), "ceil(1000 / 8) blocks");
        assertEquals(new LaunchGeometry.Grid(9, 1, 1), l.get(1).grid(), "one block per tensor");
        assertEquals(new LaunchGeometry.Grid(5, 1, 1), l.get(2).grid());
        assertEquals(new LaunchGeometry.Grid(1, 1, 1), l.get(3).grid());
        assertEquals(LaunchGeometry.elementwise(3_000_007L), l.get(4).grid());
        CStruct p = KernelParams.ADAFACTOR;
        for (int i = 0; i < 5; i++) {
            LoraKernelsLaunchTest.Launch x = l.get(i);
            assertEquals(256, x.threads());
            assertEquals(96, x.params().length);
            assertEquals(0xA000, x.ptr(p, "tensors"));
            assertEquals(i == 0 ? 0xB000 : i == 2 ? 0xC000 : 0, x.ptr(p, "work"), "work list of pass " + i);
            assertEquals(i == 0 ? 1000 : i == 2 ? 40 : 0, x.i32(p, "num_work"));
            assertEquals(3_000_007L, x.bb().getLong(p.offset("total")));
            assertEquals(9, x.i32(p, "num_tensors"));
            assertEquals(Float.floatToRawIntBits(st.beta2()), Float.floatToRawIntBits(x.f32(p, "beta2")));
            assertEquals(Float.floatToRawIntBits(st.oneMinusBeta2()), Float.floatToRawIntBits(x.f32(p, "one_minus_beta2")));
            assertEquals(Float.floatToRawIntBits(st.eps1()), Float.floatToRawIntBits(x.f32(p, "eps1")));
            assertEquals(Float.floatToRawIntBits(st.beta1()), Float.floatToRawIntBits(x.f32(p, "beta1")));
            assertEquals(Float.floatToRawIntBits(st.oneMinusBeta1()), Float.floatToRawIntBits(x.f32(p, "one_minus_beta1")));
            assertEquals(1, x.i32(p, "first_moment"));
            assertEquals(1, x.i32(p, "scale_parameter"));
            assertEquals(1, x.i32(p, "weight_decay_on"));
            assertEquals(st.rho(), x.bb().getDouble(p.offset("rho")));
            assertEquals(1e-3, x.bb().getDouble(p.offset("eps2")));
            assertEquals(0.5, x.bb().getDouble(p.offset("clip_threshold")));
            assertEquals(0.01, x.bb().getDouble(p.offset("weight_decay")));
        }
        // relative step of t = 7 without warmup_init: min(1e-2, 1/√7) = 1e-2; β2 = 1 − 7^−0.8
        assertEquals(1e-2, st.rho());
        assertEquals((float) (1 - Math.pow(7, -0.8)), st.beta2());
        assertEquals(new LaunchGeometry.Grid(4096, 1, 1), AdafactorKernels.itemGrid(1 << 20), "capped");
        assertEquals(new LaunchGeometry.Grid(1, 1, 1), AdafactorKernels.itemGrid(0));
    }

    @Test
    void theKernelSourceExportsTheFamilyAndSharesTheSpecsConstants() throws IOException {
        String src = Files.readString(KERNEL);
        for (String k : AdafactorKernels.KERNELS) {
            assertTrue(src.contains("void __launch_bounds__(rs::kThreads) " + k + "(RsAdafactorParams p)"), k);
        }
        assertTrue(src.contains("constexpr int kSegment = " + AdafactorSpec.SEGMENT + ";"), "segment size differs from AdafactorSpec");
        assertTrue(src.contains("constexpr int kColChunkRows = " + AdafactorSpec.COL_CHUNK + ";"), "column chunk differs");
        assertTrue(src.contains("constexpr int kRowSeg = " + AdafactorKernels.ROW_SEGMENT + ", kColChunk = "
                + AdafactorKernels.COLUMN_CHUNK + ", kPSeg = " + AdafactorKernels.P_SEGMENT + ", kUSeg = "
                + AdafactorKernels.UPDATE_SEGMENT + ";"), "work item kinds differ");
        String all = Files.readString(Path.of("../..", "cuda", "rslora_kernels.cu"));
        assertTrue(all.contains("#include \"kernels/adafactor.cuh\""), "adafactor.cuh is not in the fatbin's translation unit");
    }
}
