package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.util.ArrayList;
import java.util.List;

/**
 * One fused layer step of any kernel family, driven by the kernel table ({@link KernelTable}), as the
 * harness runs it (cuda/dev/steps.cuh, whose fill() per params struct this mirrors field for field):
 * the family's rows name the kernel of each role, in this order, absent rows skipped:
 * <pre>
 *   forward   prep        At = T(A) [r, d_in], Bt = T(B) [d_out, r_pad] (pad 0)          RsMbPrepParams
 *             down        U = D(X)·Aᵀ [n, r] f32 (v1) + Ug = T(γ·U) [n, r_pad] (mb)       RsLoraDownParams | RsMbDownParams
 *             forward     Y = X·Wᵀ + bias + γ·U·Bᵀ                                        RsLoraForwardParams
 *   backward  vdb         V = dY·B and dB partials (v1), or V and dB partials of Ug (mb)  RsLoraBackwardVdbParams | RsMbVdbParams
 *             vdb_reduce  V, Vg = T(γ·V), dB (=|+=) Σ partials (mb)                        RsMbVdbReduceParams
 *             reduce      dB (=|+=) γ·Σ partials, when vdb left them pending              RsReduceParams
 *             da          dA partials: γ·Vᵀ·D(X) (v1, γ in the reduce) or Vgᵀ·D(X) (mb)   RsLoraBackwardDaParams | RsMbDaParams
 *             reduce      dA (=|+=) Σ partials (× γ for v1's)                             RsReduceParams
 *             dx          dX = dY·W + γ·D'(V·A)                                           RsLoraBackwardDxParams
 * </pre>
 * Rank classes: a role with several rows takes the one whose rmax fits r ({@link KernelTable#find});
 * the mb kernels run ⌈r / rmax⌉ rank chunks. Rows with dynamic shared memory above 0, a cluster or
 * the sm90a image go through cuLaunchKernelEx ({@link KernelLauncher#launchEx}). Nothing is
 * allocated during a step: the {@link Buffers} (T copies and split-over-n workspaces) are sized
 * once by {@link #plan} for the layer's shape.
 */
final class FamilyStep {
    /** The layer-step roles in launch order (two reduces: dB's, then dA's). */
    static final List<String> FORWARD_ROLES = List.of("prep", "down", "forward");
    static final List<String> BACKWARD_ROLES = List.of("vdb", "vdb_reduce", "reduce", "da", "reduce", "dx");

    /** What launching a row needs, found once for the layer's (family, dtype, r). */
    record Rows(KernelTable.Row prep, KernelTable.Row down, KernelTable.Row forward, KernelTable.Row vdb, KernelTable.Row vdbReduce,
                KernelTable.Row reduce, KernelTable.Row da, KernelTable.Row dx) {
    }

    /** The family's own buffers for a layer of (n, d_in, d_out, r): T copies and workspaces (null when unused). */
    record Buffers(DeviceBuffer at, DeviceBuffer bt, DeviceBuffer ug, DeviceBuffer vg, DeviceBuffer wsV, DeviceBuffer wsDb,
                   DeviceBuffer wsDa) implements AutoCloseable {
        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {at, bt, ug, vg, wsV, wsDb, wsDa}) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    /** Bytes of each buffer a layer needs (0: unused). */
    record Sizes(long at, long bt, long ug, long vg, long wsV, long wsDb, long wsDa) {
    }

    private final KernelLauncher launcher;
    private final String family;
    private final DType t;
    private final Rows rows;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    private final int rPad;
    private final long wsCap;

    /**
     * The step of {@code family} at dtype t for a layer of (n, d_in, d_out, r); throws naming what the
     * table lacks or what this host cannot launch.
     */
    FamilyStep(KernelLauncher launcher, KernelTable table, String family, DType t, int n, int dIn, int dOut, int r, long wsCap) {
        this.launcher = launcher;
        this.family = family;
        this.t = t;
        this.n = n;
        this.dIn = dIn;
        this.dOut = dOut;
        this.r = r;
        this.rPad = V3Maps.rPad(r);
        this.wsCap = wsCap;
        String d = KernelSelector.dtypeToken(t);
        int rr = Math.max(1, r);
        this.rows = new Rows(table.find(family, "prep", d, rr).orElse(null), need(table, family, "down", d, rr),
                need(table, family, "forward", d, rr), need(table, family, "vdb", d, rr), table.find(family, "vdb_reduce", d, rr).orElse(null),
                need(table, family, "reduce", d, rr), need(table, family, "da", d, rr), need(table, family, "dx", d, rr));
        for (KernelTable.Row row : all()) {
            if (!launches(row)) {
                throw new IllegalArgumentException("the Java host does not launch " + row.name() + " (" + family + "/" + row.step() + ") yet");
            }
            String want = expectedGrid(row.name());
            if (!row.grid().equals(want)) {
                throw new IllegalArgumentException("table row " + family + "/" + row.step() + "/" + row.dtype() + " names " + row.name()
                        + " with grid rule " + row.grid() + "; its params (" + paramsOf(row.name()).name() + ") launch on " + want);
            }
        }
        roleCheck(rows.prep(), "prep", KernelParams.MB_PREP);
        roleCheck(rows.down(), "down", KernelParams.DOWN, KernelParams.MB_DOWN);
        roleCheck(rows.forward(), "forward", KernelParams.FORWARD);
        roleCheck(rows.vdb(), "vdb", KernelParams.BACKWARD_VDB, KernelParams.MB_VDB);
        roleCheck(rows.vdbReduce(), "vdb_reduce", KernelParams.MB_VDB_REDUCE);
        roleCheck(rows.reduce(), "reduce", KernelParams.REDUCE);
        roleCheck(rows.da(), "da", KernelParams.BACKWARD_DA, KernelParams.MB_DA);
        roleCheck(rows.dx(), "dx", KernelParams.BACKWARD_DX);
        if (paramsOf(rows.down().name()) == KernelParams.MB_DOWN && rows.prep() == null) {
            throw new IllegalArgumentException("family " + family + ": the mb down kernel reads At, which needs a prep row");
        }
    }

    private void roleCheck(KernelTable.Row row, String role, CStruct... allowed) {
        if (row == null) {
            return;
        }
        CStruct p = paramsOf(row.name());
        for (CStruct a : allowed) {
            if (a == p) {
                return;
            }
        }
        throw new IllegalArgumentException("table row " + family + "/" + role + " names " + row.name() + ", whose params "
                + p.name() + " belong to another step");
    }

    /** The grid rule a kernel's params launch on (the table must agree). */
    static String expectedGrid(String kernel) {
        CStruct p = paramsOf(kernel);
        if (p == KernelParams.DOWN) {
            return "tiles_r_n";
        }
        if (p == KernelParams.MB_DOWN) {
            return "mb_rows";
        }
        if (p == KernelParams.FORWARD) {
            return "tiles_dout_n";
        }
        if (p == KernelParams.BACKWARD_VDB) {
            return "tiles_r_groups";
        }
        if (p == KernelParams.MB_VDB) {
            return "mb_vdb";
        }
        if (p == KernelParams.BACKWARD_DA) {
            return "tiles_din_r_groups";
        }
        if (p == KernelParams.MB_DA) {
            return "mb_da";
        }
        if (p == KernelParams.BACKWARD_DX) {
            return "tiles_din_n";
        }
        return "elementwise";  // prep, vdb_reduce, reduce
    }

    private static KernelTable.Row need(KernelTable table, String family, String step, String dtype, int r) {
        return table.find(family, step, dtype, r).orElseThrow(() -> new IllegalArgumentException("kernel family " + family
                + " has no " + step + " row for " + dtype));
    }

    private List<KernelTable.Row> all() {
        List<KernelTable.Row> out = new ArrayList<>();
        for (KernelTable.Row row : new KernelTable.Row[] {rows.prep(), rows.down(), rows.forward(), rows.vdb(), rows.vdbReduce(),
            rows.reduce(), rows.da(), rows.dx()}) {
            if (row != null) {
                out.add(row);
            }
        }
        return out;
    }

    /** The params struct of a kernel, by its exported name; null when this host has none for it. */
    static CStruct paramsOf(String kernel) {
        if (kernel.startsWith("rslora_mb_prep_")) {
            return KernelParams.MB_PREP;
        }
        if (kernel.startsWith("rslora_mb_down_")) {
            return KernelParams.MB_DOWN;
        }
        if (kernel.startsWith("rslora_mb_vdb_reduce_")) {
            return KernelParams.MB_VDB_REDUCE;
        }
        if (kernel.startsWith("rslora_mb_vdb_")) {
            return KernelParams.MB_VDB;
        }
        if (kernel.startsWith("rslora_mb_da_")) {
            return KernelParams.MB_DA;
        }
        if (kernel.equals("rslora_reduce_groups_v1")) {
            return KernelParams.REDUCE;
        }
        if (kernel.matches("rslora_lora_down_v[12]_(f32|bf16|f16)")) {
            return KernelParams.DOWN;
        }
        if (kernel.matches("rslora_lora_forward_v[12]_(f32|bf16|f16)")) {
            return KernelParams.FORWARD;
        }
        if (kernel.matches("rslora_lora_backward_vdb_v1_(f32|bf16|f16)")) {
            return KernelParams.BACKWARD_VDB;
        }
        if (kernel.matches("rslora_lora_backward_da_v1_(f32|bf16|f16)")) {
            return KernelParams.BACKWARD_DA;
        }
        if (kernel.matches("rslora_lora_backward_dx_v[12]_(f32|bf16|f16)")) {
            return KernelParams.BACKWARD_DX;
        }
        return null;
    }

    /** Whether this class can launch a row (it knows the kernel's params and grid rule). */
    static boolean launches(KernelTable.Row row) {
        return paramsOf(row.name()) != null && row.image().equals("main") && row.cluster().none();
    }

    private static long addr(DeviceBuffer b) {
        return b == null ? 0L : b.address();
    }

    /** The buffers this layer needs beyond the fused step's (T copies, mb workspaces). */
    Sizes plan() {
        long eb = t.byteSize();
        boolean mb = rows.down().name().startsWith("rslora_mb_");
        long at = rows.prep() != null ? (long) r * dIn * eb : 0;
        long bt = rows.prep() != null ? (long) dOut * rPad * eb : 0;
        long ug = mb ? (long) n * rPad * eb : 0;
        long vg = rows.vdbReduce() != null ? (long) n * rPad * eb : 0;
        long wsV = 0;
        long wsDb;
        if (rows.vdb().name().startsWith("rslora_mb_vdb_")) {
            LaunchGeometry.MbSplit s = LaunchGeometry.mbVdb(n, dOut, r, rows.vdb().rmax(), wsCap);
            wsV = (long) s.chunks() * n * r * 4;
            wsDb = (long) s.groups() * dOut * r * 4;
        } else {
            int rpg = LaunchGeometry.rowsPerGroup(n, (long) dOut * r, wsCap);
            wsDb = LaunchGeometry.workspaceBytes(n, (long) dOut * r, rpg);
        }
        long wsDa;
        if (rows.da().name().startsWith("rslora_mb_da_")) {
            LaunchGeometry.MbSplit s = LaunchGeometry.mbDa(n, dIn, r, rows.da().rmax(), wsCap);
            wsDa = (long) s.groups() * r * dIn * 4;
        } else {
            int rpg = LaunchGeometry.rowsPerGroup(n, (long) r * dIn, wsCap);
            wsDa = LaunchGeometry.workspaceBytes(n, (long) r * dIn, rpg);
        }
        return new Sizes(at, bt, ug, vg, wsV, wsDb, wsDa);
    }

    /** Allocates {@link #plan()}'s buffers. */
    Buffers allocate(CudaContext ctx) {
        Sizes s = plan();
        List<DeviceBuffer> made = new ArrayList<>();
        try {
            DeviceBuffer at = alloc(ctx, made, s.at());
            DeviceBuffer bt = alloc(ctx, made, s.bt());
            DeviceBuffer ug = alloc(ctx, made, s.ug());
            DeviceBuffer vg = alloc(ctx, made, s.vg());
            DeviceBuffer wsV = alloc(ctx, made, s.wsV());
            DeviceBuffer wsDb = alloc(ctx, made, s.wsDb());
            DeviceBuffer wsDa = alloc(ctx, made, s.wsDa());
            return new Buffers(at, bt, ug, vg, wsV, wsDb, wsDa);
        } catch (RuntimeException e) {
            made.forEach(DeviceBuffer::close);
            throw e;
        }
    }

    private static DeviceBuffer alloc(CudaContext ctx, List<DeviceBuffer> made, long bytes) {
        if (bytes == 0) {
            return null;
        }
        DeviceBuffer b = ctx.allocate(bytes);
        made.add(b);
        return b;
    }

    private void launch(KernelTable.Row row, LaunchGeometry.Grid grid, byte[] params) {
        if (row.smem() == 0) {
            launcher.launch(row.name(), grid, row.threads(), params);
        } else {
            launcher.launchEx(row.name(), row.image(), grid, row.threads(), row.smem(), DriverFfm.Cluster.NONE, params, List.of());
        }
    }

    /**
     * The forward: U [n, r] f32 (kept for the backward), Y [n, d_out] T. r must be > 0 (a layer
     * without an adapter runs the fused v1 path).
     */
    void forward(DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u, DeviceBuffer y,
                 float gamma, LoraKernels.Dropout d, Buffers f) {
        if (rows.prep() != null) {
            byte[] p = KernelParams.MB_PREP.packer().ptr("lora_a", addr(a)).ptr("lora_b", addr(b)).ptr("at", addr(f.at()))
                    .ptr("bt", addr(f.bt())).i32("r", r).i32("r_pad", rPad).i32("d_in", dIn).i32("d_out", dOut).bytes();
            launch(rows.prep(), LaunchGeometry.elementwise((long) r * dIn + (long) dOut * rPad), p);
        }
        KernelTable.Row down = rows.down();
        if (paramsOf(down.name()) == KernelParams.MB_DOWN) {
            CStruct.Packer p = KernelParams.MB_DOWN.packer().ptr("x", addr(x)).ptr("at", addr(f.at())).ptr("u", addr(u))
                    .ptr("ug", addr(f.ug())).i32("n", n).i32("d_in", dIn).i32("r", r).i32("r_pad", rPad).f32("gamma", gamma);
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            launch(down, LaunchGeometry.mbRows(n, r, down.rmax()), p.bytes());
        } else {
            CStruct.Packer p = KernelParams.DOWN.packer().ptr("x", addr(x)).ptr("lora_a", addr(a)).ptr("u", addr(u)).i32("n", n)
                    .i32("d_in", dIn).i32("r", r);
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            launch(down, LaunchGeometry.down(n, r), p.bytes());
        }
        byte[] fp = KernelParams.FORWARD.packer().ptr("x", addr(x)).ptr("w", addr(w)).ptr("bias", addr(bias)).ptr("u", addr(u))
                .ptr("lora_b", addr(b)).ptr("y", addr(y)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r)
                .f32("gamma", gamma).bytes();
        launch(rows.forward(), LaunchGeometry.forward(n, dOut), fp);
    }

    /**
     * For a backward whose forward ran in another call (the host-tensor API, whose buffers do not
     * outlive a call): At, Bt (prep) and Ug (the mb down kernel again with U not written: the same
     * kernel on the same X, At and mask, so the same bits as the forward's) for the mb vdb; nothing
     * for families whose vdb reads U and B.
     */
    void prepareBackward(DeviceBuffer x, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u, float gamma, LoraKernels.Dropout d, Buffers f) {
        if (rows.prep() != null) {
            byte[] p = KernelParams.MB_PREP.packer().ptr("lora_a", addr(a)).ptr("lora_b", addr(b)).ptr("at", addr(f.at()))
                    .ptr("bt", addr(f.bt())).i32("r", r).i32("r_pad", rPad).i32("d_in", dIn).i32("d_out", dOut).bytes();
            launch(rows.prep(), LaunchGeometry.elementwise((long) r * dIn + (long) dOut * rPad), p);
        }
        KernelTable.Row down = rows.down();
        if (paramsOf(down.name()) == KernelParams.MB_DOWN && paramsOf(rows.vdb().name()) == KernelParams.MB_VDB) {
            CStruct.Packer p = KernelParams.MB_DOWN.packer().ptr("x", addr(x)).ptr("at", addr(f.at())).ptr("u", 0L)
                    .ptr("ug", addr(f.ug())).i32("n", n).i32("d_in", dIn).i32("r", r).i32("r_pad", rPad).f32("gamma", gamma);
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            launch(down, LaunchGeometry.mbRows(n, r, down.rmax()), p.bytes());
        }
    }

    /** The backward: V [n, r] f32, dB, dA (=|+=), and dX when dx is not null. */
    void backward(DeviceBuffer x, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u, DeviceBuffer v,
                  DeviceBuffer gradA, DeviceBuffer gradB, DeviceBuffer dx, float gamma, LoraKernels.Dropout d, boolean accumulate,
                  Buffers f) {
        KernelTable.Row vdb = rows.vdb();
        boolean dbPending;
        int dbGroups;
        float dbScale;
        if (paramsOf(vdb.name()) == KernelParams.MB_VDB) {
            LaunchGeometry.MbSplit s = LaunchGeometry.mbVdb(n, dOut, r, vdb.rmax(), wsCap);
            byte[] p = KernelParams.MB_VDB.packer().ptr("dy", addr(dy)).ptr("bt", addr(f.bt())).ptr("ug", addr(f.ug()))
                    .ptr("v_ws", addr(f.wsV())).ptr("db_ws", addr(f.wsDb())).i32("n", n).i32("d_out", dOut).i32("r", r)
                    .i32("r_pad", rPad).i32("rows_per_group", s.rowsPerGroup()).i32("cols_per_chunk", s.colsPerChunk()).bytes();
            launch(vdb, s.grid(), p);
            // V, Vg and dB from the partials (γ is in Ug, so dB needs no further scale)
            KernelTable.Row vr = rows.vdbReduce();
            if (vr == null) {
                throw new IllegalStateException("family " + family + ": an mb vdb row needs a vdb_reduce row");
            }
            byte[] rp = KernelParams.MB_VDB_REDUCE.packer().ptr("v_ws", addr(f.wsV())).ptr("db_ws", addr(f.wsDb())).ptr("v", addr(v))
                    .ptr("vg", addr(f.vg())).ptr("db", addr(gradB)).i32("n", n).i32("d_out", dOut).i32("r", r).i32("r_pad", rPad)
                    .i32("chunks", s.chunks()).i32("groups", s.groups()).f32("gamma", gamma).i32("accumulate", accumulate ? 1 : 0)
                    .bytes();
            launch(vr, LaunchGeometry.elementwise((long) n * rPad + (long) dOut * r), rp);
            dbPending = false;
            dbGroups = s.groups();
            dbScale = 1.0f;
        } else {
            int rpg = LaunchGeometry.rowsPerGroup(n, (long) dOut * r, wsCap);
            byte[] p = KernelParams.BACKWARD_VDB.packer().ptr("dy", addr(dy)).ptr("lora_b", addr(b)).ptr("u", addr(u)).ptr("v", addr(v))
                    .ptr("ws", addr(f.wsDb())).i32("n", n).i32("d_out", dOut).i32("r", r).i32("rows_per_group", rpg).bytes();
            dbGroups = LaunchGeometry.groups(n, rpg);
            launch(vdb, LaunchGeometry.backwardVdb(r, dbGroups), p);
            dbPending = true;
            dbScale = gamma;
        }
        if (dbPending) {
            reduce(f.wsDb(), gradB, (long) dOut * r, dbGroups, dbScale, accumulate);
        }
        KernelTable.Row da = rows.da();
        int daGroups;
        float daScale;
        if (paramsOf(da.name()) == KernelParams.MB_DA) {
            LaunchGeometry.MbSplit s = LaunchGeometry.mbDa(n, dIn, r, da.rmax(), wsCap);
            CStruct.Packer p = KernelParams.MB_DA.packer().ptr("x", addr(x)).ptr("vg", addr(f.vg())).ptr("ws", addr(f.wsDa())).i32("n", n)
                    .i32("d_in", dIn).i32("r", r).i32("r_pad", rPad).i32("rows_per_group", s.rowsPerGroup());
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            launch(da, s.grid(), p.bytes());
            daGroups = s.groups();
            daScale = 1.0f;  // γ is in Vg, the dropout scale in the partials
        } else {
            int rpg = LaunchGeometry.rowsPerGroup(n, (long) r * dIn, wsCap);
            CStruct.Packer p = KernelParams.BACKWARD_DA.packer().ptr("v", addr(v)).ptr("x", addr(x)).ptr("ws", addr(f.wsDa())).i32("n", n)
                    .i32("d_in", dIn).i32("r", r).i32("rows_per_group", rpg);
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            daGroups = LaunchGeometry.groups(n, rpg);
            launch(da, LaunchGeometry.backwardDa(dIn, r, daGroups), p.bytes());
            daScale = gamma;
        }
        reduce(f.wsDa(), gradA, (long) r * dIn, daGroups, daScale, accumulate);
        if (dx != null) {
            CStruct.Packer p = KernelParams.BACKWARD_DX.packer().ptr("dy", addr(dy)).ptr("w", addr(w)).ptr("v", addr(v))
                    .ptr("lora_a", addr(a)).ptr("dx", addr(dx)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r)
                    .f32("gamma", gamma);
            KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
            launch(rows.dx(), LaunchGeometry.backwardDx(n, dIn), p.bytes());
        }
    }

    private void reduce(DeviceBuffer ws, DeviceBuffer out, long count, int groups, float scale, boolean accumulate) {
        byte[] p = KernelParams.REDUCE.packer().ptr("ws", addr(ws)).ptr("out", addr(out)).i64("count", count).i32("groups", groups)
                .f32("gamma", scale).i32("accumulate", accumulate ? 1 : 0).bytes();
        launch(rows.reduce(), LaunchGeometry.elementwise(count), p);
    }

    /** Every kernel of the step with its image, to load them before a graph capture. */
    void resolveAll() {
        for (KernelTable.Row row : all()) {
            launcher.resolve(row.name(), row.image());
        }
    }

    String family() {
        return family;
    }

    Rows rows() {
        return rows;
    }
}
