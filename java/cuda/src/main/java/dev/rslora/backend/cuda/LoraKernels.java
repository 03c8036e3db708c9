package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;

import java.util.List;

/**
 * Launchers of the version-1 kernels of {@code cuda/kernels/}, one method per kernel family: each
 * packs the family's params struct ({@link KernelParams}), computes the grid
 * ({@link LaunchGeometry}) and queues the launch on the context's stream. Shapes (row-major):
 * X [n, d_in], W [d_out, d_in], bias [d_out], A [r, d_in], B [d_out, r], U, V [n, r],
 * Y, dY [n, d_out], dX [n, d_in]; "T" buffers hold dtype {@code t}, the adapter side is f32.
 */
final class LoraKernels {
    /** The dropout of one step: mask null = identity (eval, or p = 0). */
    record Dropout(DropoutMask mask, long seed, long step, int layer) {
        static final Dropout NONE = new Dropout(null, 0, 0, 0);
    }

    /**
     * System property choosing the kernel versions: {@code v1} (default, the plain tiled kernels) or
     * {@code v2} (tensor-core forward and dX GEMMs for bf16/fp16, NOT YET VALIDATED ON HARDWARE; f32
     * and every other kernel stay v1).
     */
    static final String VERSION_PROPERTY = "rslora.cuda.kernels";

    private final KernelLauncher launcher;
    private final int version;

    LoraKernels(KernelLauncher launcher) {
        this(launcher, parseVersion(System.getProperty(VERSION_PROPERTY, "v1")));
    }

    LoraKernels(KernelLauncher launcher, int version) {
        this.launcher = launcher;
        this.version = version;
    }

    static int parseVersion(String s) {
        return switch (s.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "v1", "1", "auto" -> 1;
            case "v2", "2" -> 2;
            default -> throw new IllegalArgumentException("-D" + VERSION_PROPERTY + "=" + s + ": expected v1 or v2");
        };
    }

    /** The version used for the GEMM families (forward, dX) at dtype {@code t}: v2 exists for BF16/F16 only. */
    static int gemmVersion(int requested, DType t) {
        return requested == 2 && t != DType.F32 ? 2 : 1;
    }

    static String kernelName(String family, int version, DType t) {
        return "rslora_" + family + "_v" + version + "_" + suffix(t);
    }

    /** The exported-name suffix of dtype {@code t}. */
    static String suffix(DType t) {
        return switch (t) {
            case F32 -> "f32";
            case BF16 -> "bf16";
            case F16 -> "f16";
        };
    }

    /** The version-1 name of a family at dtype {@code t}. */
    static String kernelName(String family, DType t) {
        return kernelName(family, 1, t);
    }

    /** The requested version (1 or 2). */
    int version() {
        return version;
    }

    private static long addr(DeviceBuffer b) {
        return b == null ? 0L : b.address();
    }

    /** (1) U = D(X)·Aᵀ  [n, r] f32. */
    void down(DType t, DeviceBuffer x, DeviceBuffer a, DeviceBuffer u, int n, int dIn, int r, Dropout d) {
        CStruct.Packer p = KernelParams.DOWN.packer()
                .ptr("x", addr(x)).ptr("lora_a", addr(a)).ptr("u", addr(u)).i32("n", n).i32("d_in", dIn).i32("r", r);
        KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
        launcher.launch(kernelName("lora_down", t), LaunchGeometry.down(n, r), LaunchGeometry.THREADS, p.bytes());
    }

    /** (2) Y = X·Wᵀ + bias + γ·U·Bᵀ  [n, d_out] T; r = 0 (u, b null): Y = X·Wᵀ + bias. */
    void forward(DType t, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer u, DeviceBuffer b,
                 DeviceBuffer y, int n, int dIn, int dOut, int r, float gamma) {
        byte[] params = KernelParams.FORWARD.packer()
                .ptr("x", addr(x)).ptr("w", addr(w)).ptr("bias", addr(bias)).ptr("u", addr(u)).ptr("lora_b", addr(b))
                .ptr("y", addr(y)).i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r).f32("gamma", gamma)
                .bytes();
        int ver = gemmVersion(version, t);
        launcher.launch(kernelName("lora_forward", ver, t), LaunchGeometry.forward(n, dOut),
                ver == 2 ? LaunchGeometry.THREADS_V2 : LaunchGeometry.THREADS, params);
    }

    /** (3) V = dY·B [n, r] and ws[g] = dYᵀ·U over row group g ([groups, d_out, r] f32). */
    void backwardVdb(DType t, DeviceBuffer dy, DeviceBuffer b, DeviceBuffer u, DeviceBuffer v, DeviceBuffer ws,
                     int n, int dOut, int r, int rowsPerGroup) {
        byte[] params = KernelParams.BACKWARD_VDB.packer()
                .ptr("dy", addr(dy)).ptr("lora_b", addr(b)).ptr("u", addr(u)).ptr("v", addr(v)).ptr("ws", addr(ws))
                .i32("n", n).i32("d_out", dOut).i32("r", r).i32("rows_per_group", rowsPerGroup)
                .bytes();
        launcher.launch(kernelName("lora_backward_vdb", t),
                LaunchGeometry.backwardVdb(r, LaunchGeometry.groups(n, rowsPerGroup)), LaunchGeometry.THREADS, params);
    }

    /** (4) ws[g] = Vᵀ·D(X) over row group g ([groups, r, d_in] f32). */
    void backwardDa(DType t, DeviceBuffer v, DeviceBuffer x, DeviceBuffer ws, int n, int dIn, int r, int rowsPerGroup,
                    Dropout d) {
        CStruct.Packer p = KernelParams.BACKWARD_DA.packer()
                .ptr("v", addr(v)).ptr("x", addr(x)).ptr("ws", addr(ws))
                .i32("n", n).i32("d_in", dIn).i32("r", r).i32("rows_per_group", rowsPerGroup);
        KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
        launcher.launch(kernelName("lora_backward_da", t),
                LaunchGeometry.backwardDa(dIn, r, LaunchGeometry.groups(n, rowsPerGroup)), LaunchGeometry.THREADS, p.bytes());
    }

    /** out (=|+=) γ·Σ_g ws[g]  (count f32 elements per group; deterministic order). */
    void reduceGroups(DeviceBuffer ws, DeviceBuffer out, long count, int groups, float gamma, boolean accumulate) {
        byte[] params = KernelParams.REDUCE.packer()
                .ptr("ws", addr(ws)).ptr("out", addr(out)).i64("count", count).i32("groups", groups)
                .f32("gamma", gamma).i32("accumulate", accumulate ? 1 : 0)
                .bytes();
        launcher.launch("rslora_reduce_groups_v1", LaunchGeometry.elementwise(count), LaunchGeometry.THREADS, params);
    }

    /** (5) dX = dY·W + γ·D'(V·A)  [n, d_in] T; r = 0 (v, a null): dX = dY·W. */
    void backwardDx(DType t, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer v, DeviceBuffer a, DeviceBuffer dx,
                    int n, int dIn, int dOut, int r, float gamma, Dropout d) {
        CStruct.Packer p = KernelParams.BACKWARD_DX.packer()
                .ptr("dy", addr(dy)).ptr("w", addr(w)).ptr("v", addr(v)).ptr("lora_a", addr(a)).ptr("dx", addr(dx))
                .i32("n", n).i32("d_in", dIn).i32("d_out", dOut).i32("r", r).f32("gamma", gamma);
        KernelParams.dropout(p, "drop", d.mask(), d.seed(), d.step(), d.layer());
        int ver = gemmVersion(version, t);
        launcher.launch(kernelName("lora_backward_dx", ver, t), LaunchGeometry.backwardDx(n, dIn),
                ver == 2 ? LaunchGeometry.THREADS_V2 : LaunchGeometry.THREADS, p.bytes());
    }

    /**
     * (6) W ← round(W + signedGamma·B·A)  (W [d_out, d_in] T in place). The kernel tiles d_out along
     * gridDim.y (at most 65,535 tiles of 64 rows), so a taller W runs in blocks of
     * {@link LaunchGeometry#MAX_ROWS} rows of W and B: each element depends on its own row of B only,
     * so the result is the same.
     */
    void merge(DType t, DeviceBuffer w, DeviceBuffer b, DeviceBuffer a, int dOut, int dIn, int r, float signedGamma) {
        if (dOut < 1) {
            throw new IllegalArgumentException("merge of W with d_out = " + dOut);
        }
        for (int o0 = 0, rows; o0 < dOut; o0 += rows) {
            rows = Math.min(LaunchGeometry.MAX_ROWS, dOut - o0);
            byte[] params = KernelParams.MERGE.packer()
                    .ptr("w", addr(w) + (long) o0 * dIn * t.byteSize()).ptr("lora_b", addr(b) + (long) o0 * r * Float.BYTES)
                    .ptr("lora_a", addr(a))
                    .i32("d_out", rows).i32("d_in", dIn).i32("r", r).f32("signed_gamma", signedGamma)
                    .bytes();
            launcher.launch(kernelName("lora_merge", t), LaunchGeometry.merge(rows, dIn), LaunchGeometry.THREADS, params);
        }
    }

    /** dst = convert(src) for {@code count} elements; one of the two dtypes must be F32 and they must differ. */
    void convert(DType from, DType to, DeviceBuffer src, DeviceBuffer dst, long count) {
        byte[] params = KernelParams.CONVERT.packer().ptr("src", addr(src)).ptr("dst", addr(dst)).i64("count", count).bytes();
        launcher.launch(convertName(from, to), LaunchGeometry.elementwise(count), LaunchGeometry.THREADS, params);
    }

    /**
     * Unfused baseline only: dst = D(src) ({@code add} false) or dst += D'(src) ({@code add} true),
     * src and dst [n, d] of dtype t.
     */
    void dropoutElementwise(DType t, boolean add, DeviceBuffer src, DeviceBuffer dst, int n, int d, Dropout drop) {
        CStruct.Packer p = KernelParams.DROPOUT_ELEMENTWISE.packer().ptr("src", addr(src)).ptr("dst", addr(dst))
                .i32("n", n).i32("d", d);
        KernelParams.dropout(p, "drop", drop.mask(), drop.seed(), drop.step(), drop.layer());
        long quads = (long) n * ((d + 3) / 4);
        launcher.launch(kernelName(add ? "dropout_add" : "dropout_apply", t), LaunchGeometry.elementwise(quads), LaunchGeometry.THREADS, p.bytes());
    }

    static String convertName(DType from, DType to) {
        if (from == to || (from != DType.F32 && to != DType.F32)) {
            throw new IllegalArgumentException("no conversion kernel from " + from + " to " + to
                    + " (kernels convert between F32 and BF16/F16)");
        }
        return "rslora_convert_" + suffix(from) + "_to_" + suffix(to);
    }

    /**
     * The forward of one layer: {@code U = D(X)·Aᵀ} (r > 0) then {@code Y = X·Wᵀ + bias + γ·U·Bᵀ}.
     * r = 0: Y = X·Wᵀ + bias (a, b, u unused).
     */
    void forwardStep(DType t, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer a, DeviceBuffer b,
                     DeviceBuffer u, DeviceBuffer y, int n, int dIn, int dOut, int r, float gamma, Dropout d) {
        if (r > 0) {
            down(t, x, a, u, n, dIn, r, d);
        }
        forward(t, x, w, bias, u, b, y, n, dIn, dOut, r, gamma);
    }

    /**
     * The backward of one layer (r > 0): V = dY·B and dB (=|+=) γ·dYᵀ·U (kernel + reduction), dA (=|+=)
     * γ·Vᵀ·D(X) (kernel + reduction), then dX = dY·W + γ·D'(V·A) when dx is not null. ws must hold
     * {@link #workspaceBytes} bytes for the same (n, d_in, d_out, r, cap).
     */
    void backwardStep(DType t, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer a, DeviceBuffer b,
                      DeviceBuffer u, DeviceBuffer v, DeviceBuffer ws, DeviceBuffer gradA, DeviceBuffer gradB,
                      DeviceBuffer dx, int n, int dIn, int dOut, int r, float gamma, Dropout d, boolean accumulate,
                      long wsCap) {
        long dbCount = (long) dOut * r;
        long daCount = (long) r * dIn;
        int rpgB = LaunchGeometry.rowsPerGroup(n, dbCount, wsCap);
        int rpgA = LaunchGeometry.rowsPerGroup(n, daCount, wsCap);
        if (ws.bytes() < workspaceBytes(n, dIn, dOut, r, wsCap)) {
            throw new IllegalArgumentException("workspace of " + ws.bytes() + " bytes < " + workspaceBytes(n, dIn, dOut, r, wsCap));
        }
        backwardVdb(t, dy, b, u, v, ws, n, dOut, r, rpgB);
        reduceGroups(ws, gradB, dbCount, LaunchGeometry.groups(n, rpgB), gamma, accumulate);
        backwardDa(t, v, x, ws, n, dIn, r, rpgA, d);
        reduceGroups(ws, gradA, daCount, LaunchGeometry.groups(n, rpgA), gamma, accumulate);
        if (dx != null) {
            backwardDx(t, dy, w, v, a, dx, n, dIn, dOut, r, gamma, d);
        }
    }

    /**
     * Every kernel that {@link #forwardStep} and {@link #backwardStep} (r > 0, with dX) launch at dtype
     * {@code t}, in launch order. A graph capture resolves them first ({@link #resolve}): with lazy
     * module loading (the default since CUDA 12.2) the first {@code cuModuleGetFunction} of a kernel
     * loads its code, which must not happen inside a stream capture.
     */
    List<String> stepKernelNames(DType t) {
        int ver = gemmVersion(version, t);
        return List.of(kernelName("lora_down", t), kernelName("lora_forward", ver, t), kernelName("lora_backward_vdb", t),
                "rslora_reduce_groups_v1", kernelName("lora_backward_da", t), "rslora_reduce_groups_v1",
                kernelName("lora_backward_dx", ver, t));
    }

    /** Looks up (and so loads) each kernel now, outside any capture. */
    void resolve(List<String> kernelNames) {
        for (String k : kernelNames) {
            launcher.resolve(k);
        }
    }

    /** Bytes of the split-over-N partials that {@link #backwardStep} needs (shared by dB and dA, used in turn). */
    static long workspaceBytes(int n, int dIn, int dOut, int r, long wsCap) {
        long dbCount = (long) dOut * r;
        long daCount = (long) r * dIn;
        return Math.max(LaunchGeometry.workspaceBytes(n, dbCount, LaunchGeometry.rowsPerGroup(n, dbCount, wsCap)),
                LaunchGeometry.workspaceBytes(n, daCount, LaunchGeometry.rowsPerGroup(n, daCount, wsCap)));
    }
}
