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
 *             forward     Y = X·Wᵀ + bias + γ·U·Bᵀ (v1/v2)                                 RsLoraForwardParams
 *                         Y = X·Wᵀ + bias + Ug·Btᵀ, one accumulator (v4 mma.sync; v3 wgmma   RsLoraForwardV4Params |
 *                         with five TMA maps X, W, Ug, Bt, Y)                               RsLoraForwardV3Params + maps
 *   backward  vdb         V = dY·B and dB partials (v1), or V and dB partials of Ug (mb)  RsLoraBackwardVdbParams | RsMbVdbParams
 *             vdb_reduce  V, Vg = T(γ·V), dB (=|+=) Σ partials (mb)                        RsMbVdbReduceParams
 *             reduce      dB (=|+=) γ·Σ partials, when vdb left them pending              RsReduceParams
 *             da          dA partials: γ·Vᵀ·D(X) (v1, γ in the reduce) or Vgᵀ·D(X) (mb)   RsLoraBackwardDaParams | RsMbDaParams
 *             reduce      dA (=|+=) Σ partials (× γ for v1's)                             RsReduceParams
 *             dx          dX = dY·W + γ·D'(V·A) (v1/v2)                                    RsLoraBackwardDxParams
 *                         dX = dY·W + D'(Vg·At), accumulate = 0 (v4; v3 with maps Vg, At,    RsLoraBackwardDxV4Params |
 *                         dY, W, dX)                                                        RsLoraBackwardDxV3Params + maps
 * </pre>
 * The v3/v4 GEMMs read the mb kernels' T outputs (Ug, Bt from prep and down; Vg from vdb_reduce, At
 * from prep; γ is in Ug and Vg). A shape or pointer they refuse (cuda/kernels/lora_v4_launch.h
 * rs_v4_refusal, lora_v3_launch.h rs3launch::refuse: d_in or d_out not a multiple of 8, bases not
 * 16-byte aligned) runs v1's kernel of that role instead (it reads the f32 U, B, V, A the mb kernels
 * also write), logged once per kernel and shape, as the harness's refused_fallback() does. The v3
 * kernels run on a persistent grid of min(SMs, tiles) CTAs; W's two maps come from the frozen weight's
 * {@link TensorMapCache} (encoded once per weight), the other maps from a small cache keyed by the
 * whole descriptor (base included), so a layer's fixed buffers are encoded once and a new buffer
 * only when it appears. The maps travel by value in the launch, so a captured graph holds them.
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

    /**
     * What launching a row needs, found once for the layer's (family, dtype, r); forwardV1 / dxV1: v1's
     * kernel of that role, which runs when the family's v3/v4 GEMM refuses the shape (null for v1/v2 rows).
     */
    record Rows(KernelTable.Row prep, KernelTable.Row down, KernelTable.Row forward, KernelTable.Row vdb, KernelTable.Row vdbReduce,
                KernelTable.Row reduce, KernelTable.Row da, KernelTable.Row dx, KernelTable.Row forwardV1, KernelTable.Row dxV1) {
    }

    // launch facts of the GEMM kernels (cuda/kernels/lora_v4_launch.h via rs4::BigTile, lora_v3_launch.h); the
    // table's rows must agree, as the harness's check_v4_row checks
    static final int V4_THREADS = 256;
    static final int V4_SMEM = 98304;
    static final int V3_THREADS = 384;
    static final int V3_FORWARD_SMEM = 215040;
    static final int V3_DX_SMEM = 223232;

    private static final System.Logger LOG = System.getLogger("dev.rslora.backend.cuda");
    private static final java.util.Set<String> LOGGED_REFUSALS = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** Per-step maps kept (X, Y, dY, dX of a few callers' buffers plus the layer's Ug, Bt, Vg, At). */
    private static final int STEP_MAPS = 32;

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
    private final int sms;
    private final TensorMapCache weightMaps;
    private final java.util.Map<MapKey, DriverFfm.TensorMap> stepMaps = new java.util.LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(java.util.Map.Entry<MapKey, DriverFfm.TensorMap> eldest) {
            return size() > STEP_MAPS;
        }
    };

    /** A whole descriptor: equal keys encode equal bytes. */
    private record MapKey(int dtype, long base, long inner, long outer, long rowBytes, int boxInner, int boxOuter, int swizzle) {
    }

    /**
     * The step of {@code family} at dtype t for a layer of (n, d_in, d_out, r); throws naming what the
     * table lacks or what this host cannot launch.
     */
    FamilyStep(KernelLauncher launcher, KernelTable table, String family, DType t, int n, int dIn, int dOut, int r, long wsCap) {
        this(launcher, table, family, t, n, dIn, dOut, r, wsCap, new TensorMapCache());
    }

    /**
     * As above; {@code weightMaps}: the frozen weight's descriptor cache (its {@link ResidentTensor}'s),
     * so W's v3 maps are encoded once per weight, not once per step object.
     */
    FamilyStep(KernelLauncher launcher, KernelTable table, String family, DType t, int n, int dIn, int dOut, int r, long wsCap,
               TensorMapCache weightMaps) {
        this.launcher = launcher;
        this.weightMaps = weightMaps;
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
        KernelTable.Row prep = table.find(family, "prep", d, rr).orElse(null);
        KernelTable.Row down = need(table, family, "down", d, rr);
        KernelTable.Row fwd = need(table, family, "forward", d, rr);
        KernelTable.Row vdb = need(table, family, "vdb", d, rr);
        KernelTable.Row vdbReduce = table.find(family, "vdb_reduce", d, rr).orElse(null);
        KernelTable.Row reduce = need(table, family, "reduce", d, rr);
        KernelTable.Row da = need(table, family, "da", d, rr);
        KernelTable.Row dxRow = need(table, family, "dx", d, rr);
        this.rows = new Rows(prep, down, fwd, vdb, vdbReduce, reduce, da, dxRow,
                gemmV3V4(fwd) ? v1Row(table, fwd, "forward", d, rr) : null, gemmV3V4(dxRow) ? v1Row(table, dxRow, "dx", d, rr) : null);
        for (KernelTable.Row row : all()) {
            if (!launches(row)) {
                throw new IllegalArgumentException("the Java host does not launch " + row.name() + " (" + family + "/" + row.step() + ") yet");
            }
            String want = expectedGrid(row.name());
            if (!row.grid().equals(want)) {
                throw new IllegalArgumentException("table row " + family + "/" + row.step() + "/" + row.dtype() + " names " + row.name()
                        + " with grid rule " + row.grid() + "; its params (" + paramsOf(row.name()).name() + ") launch on " + want);
            }
            int[] ls = launchShape(row.name());
            if (ls != null && (row.threads() != ls[0] || row.smem() != ls[1])) {
                throw new IllegalArgumentException("table row " + family + "/" + row.step() + "/" + row.dtype() + " names " + row.name()
                        + " with " + row.threads() + " threads / " + row.smem() + " B shared memory; the kernel launches with " + ls[0]
                        + " / " + ls[1]);
            }
        }
        roleCheck(rows.prep(), "prep", KernelParams.MB_PREP);
        roleCheck(rows.down(), "down", KernelParams.DOWN, KernelParams.MB_DOWN);
        roleCheck(rows.forward(), "forward", KernelParams.FORWARD, KernelParams.FORWARD_V4, KernelParams.FORWARD_V3);
        roleCheck(rows.vdb(), "vdb", KernelParams.BACKWARD_VDB, KernelParams.MB_VDB);
        roleCheck(rows.vdbReduce(), "vdb_reduce", KernelParams.MB_VDB_REDUCE);
        roleCheck(rows.reduce(), "reduce", KernelParams.REDUCE);
        roleCheck(rows.da(), "da", KernelParams.BACKWARD_DA, KernelParams.MB_DA);
        roleCheck(rows.dx(), "dx", KernelParams.BACKWARD_DX, KernelParams.BACKWARD_DX_V4, KernelParams.BACKWARD_DX_V3);
        roleCheck(rows.forwardV1(), "forward", KernelParams.FORWARD);
        roleCheck(rows.dxV1(), "dx", KernelParams.BACKWARD_DX);
        if (paramsOf(rows.down().name()) == KernelParams.MB_DOWN && rows.prep() == null) {
            throw new IllegalArgumentException("family " + family + ": the mb down kernel reads At, which needs a prep row");
        }
        if (gemmV3V4(rows.forward()) && (rows.prep() == null || paramsOf(rows.down().name()) != KernelParams.MB_DOWN)) {
            throw new IllegalArgumentException("table row " + family + "/forward names " + rows.forward().name()
                    + ", which reads Bt (a prep row) and Ug (an mb down row); the family lacks one");
        }
        if (gemmV3V4(rows.dx()) && (rows.prep() == null || rows.vdbReduce() == null)) {
            throw new IllegalArgumentException("table row " + family + "/dx names " + rows.dx().name()
                    + ", which reads At (a prep row) and Vg (a vdb_reduce row); the family lacks one");
        }
        this.sms = v3(rows.forward()) || v3(rows.dx()) ? launcher.multiprocessors() : 0;
    }

    private static boolean gemmV3V4(KernelTable.Row row) {
        CStruct p = paramsOf(row.name());
        return p == KernelParams.FORWARD_V4 || p == KernelParams.FORWARD_V3 || p == KernelParams.BACKWARD_DX_V4
                || p == KernelParams.BACKWARD_DX_V3;
    }

    private static boolean v3(KernelTable.Row row) {
        CStruct p = paramsOf(row.name());
        return p == KernelParams.FORWARD_V3 || p == KernelParams.BACKWARD_DX_V3;
    }

    private static KernelTable.Row v1Row(KernelTable table, KernelTable.Row row, String step, String dtype, int r) {
        return table.find("v1", step, dtype, r).orElseThrow(() -> new IllegalArgumentException("table row " + row.family() + "/" + step
                + " names " + row.name() + ", which refuses some shapes, and v1 has no " + step + " row for " + dtype
                + " to run them"));
    }

    /** The threads and dynamic shared memory of a v3/v4 GEMM row, as its launch header fixes them (else null). */
    static int[] launchShape(String kernel) {
        CStruct p = paramsOf(kernel);
        if (p == KernelParams.FORWARD_V4 || p == KernelParams.BACKWARD_DX_V4) {
            return new int[] {V4_THREADS, V4_SMEM};
        }
        if (p == KernelParams.FORWARD_V3) {
            return new int[] {V3_THREADS, V3_FORWARD_SMEM};
        }
        if (p == KernelParams.BACKWARD_DX_V3) {
            return new int[] {V3_THREADS, V3_DX_SMEM};
        }
        return null;
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
        if (p == KernelParams.FORWARD_V4) {
            return "flat_dout_128x256";
        }
        if (p == KernelParams.BACKWARD_DX_V4) {
            return "flat_din_128x256";
        }
        if (p == KernelParams.FORWARD_V3) {
            return "persistent_dout_n";
        }
        if (p == KernelParams.BACKWARD_DX_V3) {
            return "persistent_din_n";
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
            rows.reduce(), rows.da(), rows.dx(), rows.forwardV1(), rows.dxV1()}) {
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
        if (kernel.matches("rslora_lora_forward_v4_(bf16|f16)")) {
            return KernelParams.FORWARD_V4;
        }
        if (kernel.matches("rslora_lora_backward_dx_v4_(bf16|f16)")) {
            return KernelParams.BACKWARD_DX_V4;
        }
        if (kernel.matches("rslora_lora_forward_v3_(bf16|f16)")) {
            return KernelParams.FORWARD_V3;
        }
        if (kernel.matches("rslora_lora_backward_dx_v3_(bf16|f16)")) {
            return KernelParams.BACKWARD_DX_V3;
        }
        return null;
    }

    /** Whether this class can launch a row (it knows the kernel's params and grid rule; main or sm90a image, no cluster). */
    static boolean launches(KernelTable.Row row) {
        return paramsOf(row.name()) != null && (row.image().equals("main") || row.image().equals("sm90a")) && row.cluster().none();
    }

    /**
     * Why rslora_lora_forward_v4 / rslora_lora_backward_dx_v4 refuse a step, or null: rs_v4_refusal
     * (cuda/kernels/lora_v4_launch.h) for those two kernels, which read and write 16-bit rows of both
     * widths: n ≥ 1, r ≥ 0, d_in and d_out positive multiples of 8, at most 2³¹ − 1 blocks, every
     * non-null base 16-byte aligned; and, before those, extents that fit the C function's int
     * parameters. {@code names[i]} names {@code bases[i]}.
     */
    static String v4Refusal(String kernel, long n, long dIn, long dOut, long r, String[] names, long[] bases) {
        String why = v4Extents(kernel, n, dIn, dOut, r);
        if (why != null) {
            return why;
        }
        int i = firstUnaligned(bases);
        return i < 0 ? null : v4Name(kernel) + ": " + names[i] + " = 0x" + Long.toHexString(bases[i]) + " is not 16-byte aligned";
    }

    /**
     * Why the v3 kernels refuse a step, or null: rs3launch::refuse (cuda/kernels/lora_v3_launch.h), its
     * rules in its order and its words, with the offending value added (the C returns fixed strings).
     */
    static String v3Refusal(long n, long dIn, long dOut, long r, String[] names, long[] bases) {
        String why = v3Extents(n, dIn, dOut, r);
        if (why != null) {
            return why;
        }
        int i = firstUnaligned(bases);
        return i < 0 ? null : V3_UNALIGNED + " (" + names[i] + " = 0x" + Long.toHexString(bases[i]) + ")";
    }

    /**
     * Why the v3/v4 GEMM {@code kernel} refuses a step of (n, d_in, d_out, r), or null (also for every
     * other kernel): {@link #v3Refusal} / {@link #v4Refusal} for a caller that knows only whether every
     * tensor base is 16-byte aligned, not the bases ({@link KernelSelector.Shape}).
     */
    static String gemmRefusal(String kernel, long n, long dIn, long dOut, long r, boolean aligned16) {
        CStruct p = paramsOf(kernel);
        if (p == KernelParams.FORWARD_V3 || p == KernelParams.BACKWARD_DX_V3) {
            String why = v3Extents(n, dIn, dOut, r);
            return why != null || aligned16 ? why : V3_UNALIGNED;
        }
        if (p == KernelParams.FORWARD_V4 || p == KernelParams.BACKWARD_DX_V4) {
            String why = v4Extents(kernel, n, dIn, dOut, r);
            return why != null || aligned16 ? why : v4Name(kernel) + ": a tensor base is not 16-byte aligned";
        }
        return null;
    }

    private static final String V3_UNALIGNED = "v3: a tensor base is not 16-byte aligned";

    /** rs_v4_refusal's name of the kernel (the launch's, without the dtype). */
    private static String v4Name(String kernel) {
        return paramsOf(kernel) == KernelParams.BACKWARD_DX_V4 ? "rslora_lora_backward_dx_v4" : "rslora_lora_forward_v4";
    }

    /** rs_v4_refusal's rules but the bases', after the int parameters the C function takes. */
    private static String v4Extents(String kernel, long n, long dIn, long dOut, long r) {
        boolean dx = paramsOf(kernel) == KernelParams.BACKWARD_DX_V4;
        String l = v4Name(kernel);
        String[] extents = {"n", "d_in", "d_out", "r"};
        long[] values = {n, dIn, dOut, r};
        for (int i = 0; i < values.length; i++) {
            if (values[i] != (int) values[i]) {
                return l + ": " + extents[i] + " = " + values[i] + " does not fit int32 (rs_v4_refusal takes int extents)";
            }
        }
        if (n < 1) {
            return l + ": n = " + n + " (must be >= 1)";
        }
        if (r < 0) {
            return l + ": r = " + r + " (must be >= 0)";
        }
        if (dIn < 1 || dIn % 8 != 0) {
            return l + ": d_in = " + dIn + " is not a positive multiple of 8 (16-byte rows for cp.async)";
        }
        if (dOut < 1 || dOut % 8 != 0) {
            return l + ": d_out = " + dOut + " is not a positive multiple of 8 (16-byte rows for cp.async)";
        }
        long blocks = LaunchGeometry.cdiv(n, 128) * LaunchGeometry.cdiv(dx ? dIn : dOut, 256);
        if (blocks > Integer.MAX_VALUE) {
            return l + ": " + blocks + " blocks exceed the 1-D grid limit (n = " + n + ")";
        }
        return null;
    }

    /** rs3launch::refuse's rules but the bases'. */
    private static String v3Extents(long n, long dIn, long dOut, long r) {
        if (n < 1 || dIn < 1 || dOut < 1 || r < 0) {
            return "v3: n, d_in, d_out must be >= 1 and r >= 0";
        }
        if (n > Integer.MAX_VALUE || dIn > Integer.MAX_VALUE || dOut > Integer.MAX_VALUE || r > Integer.MAX_VALUE) {
            return "v3: a dimension does not fit int32 TMA coordinates";
        }
        if (dIn % 8 != 0) {
            return "v3: d_in = " + dIn + " is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)";
        }
        if (dOut % 8 != 0) {
            return "v3: d_out = " + dOut + " is not a multiple of 8 (TMA row stride must be a multiple of 16 bytes)";
        }
        return null;
    }

    /** The index of the first non-null base that is not 16-byte aligned, or -1. */
    private static int firstUnaligned(long[] bases) {
        for (int i = 0; i < bases.length; i++) {
            if (bases[i] != 0 && (bases[i] & 15) != 0) {
                return i;
            }
        }
        return -1;
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
        // Ug: the mb down writes it, the v3/v4 forward reads it; Vg: vdb_reduce writes it, the v3/v4 dx reads it
        long ug = mb || gemmV3V4(rows.forward()) ? (long) n * rPad * eb : 0;
        long vg = rows.vdbReduce() != null || gemmV3V4(rows.dx()) ? (long) n * rPad * eb : 0;
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
        KernelTable.Row fr = rows.forward();
        if (gemmV3V4(fr)) {
            String[] names = {"x", "w", "bias", "y", "ug", "bt"};
            long[] bases = {addr(x), addr(w), addr(bias), addr(y), addr(f.ug()), addr(f.bt())};
            boolean isV3 = v3(fr);
            String why = isV3 ? v3Refusal(n, dIn, dOut, r, names, bases) : v4Refusal(fr.name(), n, dIn, dOut, r, names, bases);
            if (why == null) {
                LaunchGeometry.Grid grid = LaunchGeometry.gemmGrid(fr.grid(), sms, n, dIn, dOut);
                if (isV3) {
                    // Y = X·Wᵀ + bias + Ug·Btᵀ; the tensors as TMA maps (steps.cuh fill(RsLoraForwardV3Params))
                    byte[] p = KernelParams.FORWARD_V3.packer().ptr("bias", addr(bias)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut)
                            .i32("r", r).bytes();
                    List<DriverFfm.TensorMap> maps = V3Maps.forward(stepEncoder(), tma(), eb(), new V3Maps.Tensor2d(addr(x), n, dIn, dIn),
                            weightMap(w, V3Maps.BOX_Q), new V3Maps.Tensor2d(addr(f.ug()), n, rPad, rPad),
                            new V3Maps.Tensor2d(addr(f.bt()), dOut, rPad, rPad), new V3Maps.Tensor2d(addr(y), n, dOut, dOut));
                    launcher.launchEx(fr.name(), fr.image(), grid, fr.threads(), fr.smem(), DriverFfm.Cluster.NONE, p, maps);
                } else {
                    // Y = X·Wᵀ + bias + Ug·Btᵀ, assigned (steps.cuh fill(RsLoraForwardV4Params), accumulate 0)
                    byte[] p = KernelParams.FORWARD_V4.packer().ptr("x", addr(x)).ptr("w", addr(w)).ptr("bias", addr(bias))
                            .ptr("ug", addr(f.ug())).ptr("bt", addr(f.bt())).ptr("y", addr(y)).i32("n", n).i32("d_in", dIn)
                            .i32("d_out", dOut).i32("r", r).i32("accumulate", 0).bytes();
                    launcher.launchEx(fr.name(), fr.image(), grid, fr.threads(), fr.smem(), DriverFfm.Cluster.NONE, p, List.of());
                }
                return;
            }
            fr = refused(fr, rows.forwardV1(), why);
        }
        byte[] fp = KernelParams.FORWARD.packer().ptr("x", addr(x)).ptr("w", addr(w)).ptr("bias", addr(bias)).ptr("u", addr(u))
                .ptr("lora_b", addr(b)).ptr("y", addr(y)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r)
                .f32("gamma", gamma).bytes();
        launch(fr, LaunchGeometry.forward(n, dOut), fp);
    }

    /** Whether {@code kernel} refused a step of this shape in this JVM (and v1's kernel ran instead); for tests. */
    static boolean refusedOnce(String kernel, int n, int dIn, int dOut, int r) {
        return LOGGED_REFUSALS.contains(kernel + " " + n + "x" + dIn + "x" + dOut + "x" + r);
    }

    /** The v1 row that runs a role whose kernel refused the step, logged once per (kernel, shape). */
    private KernelTable.Row refused(KernelTable.Row row, KernelTable.Row v1, String why) {
        String key = row.name() + " " + n + "x" + dIn + "x" + dOut + "x" + r;
        if (LOGGED_REFUSALS.add(key)) {
            LOG.log(System.Logger.Level.INFO, "rslora cuda " + family + "/" + row.step() + ": " + row.name() + " refuses n=" + n + " d_in="
                    + dIn + " d_out=" + dOut + " r=" + r + " (" + why + ") -> " + v1.name());
        }
        return v1;
    }

    private int tma() {
        return DriverFfm.tmaType(t);
    }

    private int eb() {
        return t.byteSize();
    }

    /** W's map with box {64, boxOuter}, from the frozen weight's cache. */
    private DriverFfm.TensorMap weightMap(DeviceBuffer w, int boxOuter) {
        return weightMaps.get(launcher.tensorMaps(), tma(), eb(), addr(w), dIn, dOut, (long) dIn * eb(), V3Maps.BOX_INNER, boxOuter,
                DriverFfm.TMA_SWIZZLE_128B);
    }

    /** The launcher's encoder behind the per-step cache (whole descriptor as key, so equal keys mean equal bytes). */
    private TensorMapCache.Encoder stepEncoder() {
        TensorMapCache.Encoder e = launcher.tensorMaps();
        return (dtype, elementBytes, base, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle) -> {
            MapKey k = new MapKey(dtype, base, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle);
            DriverFfm.TensorMap m = stepMaps.get(k);
            if (m == null) {
                m = e.encode(dtype, elementBytes, base, inner, outer, rowStrideBytes, boxInner, boxOuter, swizzle);
                stepMaps.put(k, m);
            }
            return m;
        };
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
            dx(dy, w, a, v, dx, gamma, d, f);
        }
    }

    /** dX = dY·W + γ·D'(V·A) (v1/v2) or dY·W + D'(Vg·At) (v3/v4; refused shapes: v1). */
    private void dx(DeviceBuffer dy, DeviceBuffer w, DeviceBuffer a, DeviceBuffer v, DeviceBuffer dx, float gamma, LoraKernels.Dropout d,
                    Buffers f) {
        KernelTable.Row xr = rows.dx();
        if (gemmV3V4(xr)) {
            String[] names = {"dy", "w", "dx", "vg", "at"};
            long[] bases = {addr(dy), addr(w), addr(dx), addr(f.vg()), addr(f.at())};
            boolean isV3 = v3(xr);
            String why = isV3 ? v3Refusal(n, dIn, dOut, r, names, bases) : v4Refusal(xr.name(), n, dIn, dOut, r, names, bases);
            if (why == null) {
                LaunchGeometry.Grid grid = LaunchGeometry.gemmGrid(xr.grid(), sms, n, dIn, dOut);
                if (isV3) {
                    // the maps Vg, At, dY, W, dX (steps.cuh fill(RsLoraBackwardDxV3Params))
                    CStruct.Packer p = KernelParams.BACKWARD_DX_V3.packer().i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r);
                    KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
                    List<DriverFfm.TensorMap> maps = V3Maps.dx(stepEncoder(), tma(), eb(), new V3Maps.Tensor2d(addr(f.vg()), n, rPad, rPad),
                            new V3Maps.Tensor2d(addr(f.at()), r, dIn, dIn), new V3Maps.Tensor2d(addr(dy), n, dOut, dOut),
                            weightMap(w, V3Maps.BOX_OUT), new V3Maps.Tensor2d(addr(dx), n, dIn, dIn));
                    launcher.launchEx(xr.name(), xr.image(), grid, xr.threads(), xr.smem(), DriverFfm.Cluster.NONE, p.bytes(), maps);
                } else {
                    // dX = dY·W + D'(Vg·At), assigned (steps.cuh fill(RsLoraBackwardDxV4Params), accumulate 0)
                    CStruct.Packer p = KernelParams.BACKWARD_DX_V4.packer().ptr("dy", addr(dy)).ptr("w", addr(w)).ptr("vg", addr(f.vg()))
                            .ptr("at", addr(f.at())).ptr("dx", addr(dx)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r)
                            .i32("accumulate", 0);
                    KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
                    launcher.launchEx(xr.name(), xr.image(), grid, xr.threads(), xr.smem(), DriverFfm.Cluster.NONE, p.bytes(), List.of());
                }
                return;
            }
            xr = refused(xr, rows.dxV1(), why);
        }
        CStruct.Packer p = KernelParams.BACKWARD_DX.packer().ptr("dy", addr(dy)).ptr("w", addr(w)).ptr("v", addr(v))
                .ptr("lora_a", addr(a)).ptr("dx", addr(dx)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r)
                .f32("gamma", gamma);
        KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
        launch(xr, LaunchGeometry.backwardDx(n, dIn), p.bytes());
    }

    private void reduce(DeviceBuffer ws, DeviceBuffer out, long count, int groups, float scale, boolean accumulate) {
        byte[] p = KernelParams.REDUCE.packer().ptr("ws", addr(ws)).ptr("out", addr(out)).i64("count", count).i32("groups", groups)
                .f32("gamma", scale).i32("accumulate", accumulate ? 1 : 0).bytes();
        launch(rows.reduce(), LaunchGeometry.elementwise(count), p);
    }

    /**
     * Every kernel of the step (the v1 fallbacks included) loaded from its image and its shared memory
     * limit raised, before a graph capture, through the lookup its launch uses: {@link KernelLauncher#resolve(String)}
     * for a row {@link #launch} queues with {@code launch} (no dynamic shared memory; CudaContext keeps that
     * lookup apart from the one of cuLaunchKernelEx), {@link KernelLauncher#prepare} for the others. The v3
     * tensor maps need nothing up front: encoding one is a host call, and the launch copies it into the
     * captured node.
     */
    void resolveAll() {
        for (KernelTable.Row row : all()) {
            if (row.smem() == 0 && !gemmV3V4(row)) {
                launcher.resolve(row.name());
            } else {
                launcher.prepare(row.name(), row.image(), row.smem());
            }
        }
    }

    String family() {
        return family;
    }

    Rows rows() {
        return rows;
    }
}
