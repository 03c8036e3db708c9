package dev.rslora.backend.cuda;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendChecks;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The {@code cuda} backend: the version-1 kernels of {@code cuda/} on one device through JCuda.
 *
 * <p>This class speaks the {@link Backend} contract in HOST tensors: every call stages its inputs
 * to the device (pinned, chunked), runs the kernels on the context's stream, and copies the
 * outputs back before returning; only W and bias ({@link #prepare}) stay resident. A trainer that
 * wants activations to stay on the device uses {@link CudaLoraLayer}, whose X, Y, dY, dX are
 * device buffers. Shapes and γ as in {@link Backend}: U = D(X)·Aᵀ [n, r] f32 without γ;
 * Y = X·Wᵀ + b + γ·U·Bᵀ; V = dY·B; dB (=|+=) γ·dYᵀ·U; dA (=|+=) γ·Vᵀ·D(X); dX = dY·W + γ·D'(V·A).
 *
 * <p>Dtypes: the kernels run in W's dtype when X, Y (or dY, dX) and bias share it, else in F32
 * (inputs widened exactly, outputs rounded once); A, B, U, V, dA, dB are f32 on the device and
 * rounded once to their host dtype. dA and dB are reduced over N in a fixed order (deterministic).
 * Calls are serialised (synchronized): one device, one stream.
 *
 * <p>Arguments: {@link #prepare}, {@link #forward}, {@link #backward} and {@link #merge} run
 * {@link BackendChecks} first, as the other backends do, so they refuse what the contract refuses
 * (a shape, U not F32, γ not finite, an output sharing memory with an input or another output)
 * with the same message. Staging alone would make an output that aliases an input harmless here
 * (every upload precedes every download), but not two outputs over one buffer (the later download
 * overwrites the earlier); the contract refuses both, for every backend alike.
 */
public final class CudaBackend implements Backend, AutoCloseable {
    /** Upper bound for the split-over-N partials of dA and dB, MiB (property {@code rslora.cuda.workspaceMiB}). */
    static final String WORKSPACE_PROPERTY = "rslora.cuda.workspaceMiB";

    private static final System.Logger LOG = System.getLogger("dev.rslora.backend.cuda");

    private final CudaContext ctx;
    private final LoraKernels kernels;
    private final Transfers io;
    private final long workspaceCapBytes;
    private final FamilyChoice family;
    private String stepRequest = System.getProperty(StepPolicy.PROPERTY, "auto");
    private boolean ltOpened;
    private CublasLt lt;
    private DeviceBuffer ltWorkspace;
    private String ltMissing = "";
    private final java.util.Set<String> loggedSteps = new java.util.HashSet<>();
    private boolean closed;
    /** The graphs captured on this backend and not closed yet: {@link #close()} frees them with the context. */
    private final java.util.Set<CudaGraph> graphs = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
    /** The device optimizers open on this backend (they pin tensors): {@link #close()} closes them first. */
    private final java.util.Set<OptimizerBuffers> optimizers = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());

    CudaBackend(CudaContext ctx) {
        this(ctx, workspaceCapFromProperty());
    }

    /** Default of {@value #WORKSPACE_PROPERTY}, MiB. */
    static final long DEFAULT_WORKSPACE_MIB = 256;

    /**
     * The cap of the split-over-N partials: {@value #WORKSPACE_PROPERTY} MiB (default 256).
     *
     * @throws IllegalArgumentException naming the property and its value when it is not an integer in
     *                                  1..2^43-1 (0 or less leaves no room for one group of partials)
     */
    static long workspaceCapFromProperty() {
        String v = System.getProperty(WORKSPACE_PROPERTY);
        if (v == null || v.isBlank()) {
            return DEFAULT_WORKSPACE_MIB << 20;
        }
        try {
            long mib = Long.parseLong(v.strip());
            if (mib >= 1 && mib <= Long.MAX_VALUE >> 20) {
                return mib << 20;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw new IllegalArgumentException("-D" + WORKSPACE_PROPERTY + "=" + v + ": expected MiB, an integer >= 1");
    }

    CudaBackend(CudaContext ctx, long workspaceCapBytes) {
        this(ctx, workspaceCapBytes, chooseFamily(ctx, System.getProperty(KernelSelector.PROPERTY, "auto")));
    }

    /** The fused family requested or chosen for the device, the kernel table it came from (null: none in this jar). */
    record FamilyChoice(String family, KernelTable table) {
        /** LoraKernels' version for the v1/v2 paths (and for the r = 0 base-only calls of every family). */
        int version() {
            return family.equals("v2") ? 2 : 1;
        }
    }

    /**
     * The fused family: {@link KernelSelector} over the jar's kernel table ({@value KernelSelector#PROPERTY}
     * = auto | v1 | v2 | v3 | v4) among the families this host can launch ({@link FamilyStep#launches}),
     * for bf16 at a typical aligned shape; each layer shape and dtype is then checked again
     * ({@link #familyFor}) and falls back with its reason. Logged once. Without a table in the jar:
     * the requested v1/v2, auto = v1.
     */
    static FamilyChoice chooseFamily(CudaContext ctx, String requested) {
        String req = KernelSelector.requested(requested);
        KernelTable table;
        try {
            table = KernelTable.load();
        } catch (IllegalStateException e) {
            table = null;  // a jar built before the table was copied into it
        }
        if (table == null) {
            int v = req.equals("auto") ? 1 : LoraKernels.parseVersion(req);
            logFamily("v" + v + " (" + (req.equals("auto") ? "auto" : "-D" + KernelSelector.PROPERTY + "=" + req)
                    + "; no kernel table in this jar)");
            return new FamilyChoice("v" + v, null);
        }
        KernelSelector.Selection sel = KernelSelector.select(req, table, ctx.computeCapabilityMajor(), ctx.computeCapabilityMinor(),
                DType.BF16, new KernelSelector.Shape(4096, 4096, 4096, 16, true), CudaBackend::hostLaunches, java.util.Map.of());
        logFamily(sel.toString());
        return new FamilyChoice(sel.family(), table);
    }

    private static final java.util.Set<String> LOGGED_FAMILIES = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private static void logFamily(String line) {
        if (LOGGED_FAMILIES.add(line)) {
            LOG.log(System.Logger.Level.INFO, "rslora cuda fused kernel family: " + line);
        }
    }

    /** A second backend on {@code ctx} (shared context, own kernels) with the fused family chosen as {@code requested} says. */
    static CudaBackend withFamily(CudaContext ctx, long workspaceCapBytes, String requested) {
        return new CudaBackend(ctx, workspaceCapBytes, chooseFamily(ctx, requested));
    }

    /**
     * The fused family this backend was opened with (its layers may still fall back per shape: {@link #familyFor}).
     *
     * @return the family's name, e.g. "v1", "v3" (sm_90a) or "v4" (sm_80 mma.sync)
     */
    public String fusedFamily() {
        return family.family();
    }

    /** A backend on {@code ctx} using kernel {@code version} (1, or 2 for the bf16/fp16 GEMMs). */
    CudaBackend(CudaContext ctx, long workspaceCapBytes, int version) {
        this(ctx, workspaceCapBytes, new FamilyChoice("v" + version, null));
    }

    private CudaBackend(CudaContext ctx, long workspaceCapBytes, FamilyChoice family) {
        this.ctx = ctx;
        this.kernels = new LoraKernels(ctx, family.version());
        this.io = new Transfers(ctx, kernels);
        this.workspaceCapBytes = workspaceCapBytes;
        this.family = family;
    }

    /**
     * The fused family for one layer of this shape and dtype: the backend's family when it can take
     * it, else its fallback (v3 → v4 → v1) with the reason logged once. v1 and v2 run through
     * {@link LoraKernels}; other families through {@link FamilyStep}.
     */
    synchronized String familyFor(DType t, int n, int dIn, int dOut, int r, boolean aligned16) {
        if (family.table() == null || family.family().equals("v1") || family.family().equals("v2") || r == 0) {
            return family.family().equals("v2") ? "v2" : "v1";
        }
        KernelSelector.Selection sel = KernelSelector.select(family.family(), family.table(), ctx.computeCapabilityMajor(),
                ctx.computeCapabilityMinor(), t, new KernelSelector.Shape(n, dIn, dOut, r, aligned16), CudaBackend::hostLaunches,
                java.util.Map.of());
        if (!sel.family().equals(family.family())) {
            logFamily("for n=" + n + " d_in=" + dIn + " d_out=" + dOut + " r=" + r + " " + t + ": " + sel);
        }
        return sel.family();
    }

    /** A table-driven step of {@code fam} (not v1/v2) for this layer shape. */
    FamilyStep familyStep(String fam, DType t, int n, int dIn, int dOut, int r) {
        return new FamilyStep(ctx, family.table(), fam, t, n, dIn, dOut, r, workspaceCapBytes);
    }

    /** As above, with the frozen weight's descriptor cache (W's v3 TMA maps encoded once per weight). */
    FamilyStep familyStep(String fam, DType t, int n, int dIn, int dOut, int r, TensorMapCache weightMaps) {
        return new FamilyStep(ctx, family.table(), fam, t, n, dIn, dOut, r, workspaceCapBytes, weightMaps);
    }

    private static volatile Boolean sm90aImage;

    /**
     * The rows this host launches: {@link FamilyStep#launches}, and an sm90a row only when the jar
     * holds the sm_90a image (else an explicit v3 falls back to v4 with that reason instead of failing
     * at its first launch).
     */
    static boolean hostLaunches(KernelTable.Row row) {
        if (!FamilyStep.launches(row)) {
            return false;
        }
        if (!row.image().equals("sm90a")) {
            return true;
        }
        Boolean has = sm90aImage;
        if (has == null) {
            has = KernelImage.sm90a() != null;
            sm90aImage = has;
        }
        return has;
    }

    static boolean tableFamily(String fam) {
        return !fam.equals("v1") && !fam.equals("v2");
    }

    @Override
    public String name() {
        return "cuda";
    }

    /**
     * "NVIDIA H200 (sm_90, 132 SMs, device 0, kernels v1)".
     *
     * @return the device's name, compute capability, SM count, ordinal and kernel version
     */
    public String deviceDescription() {
        return ctx.deviceName() + " (sm_" + ctx.computeCapabilityMajor() + ctx.computeCapabilityMinor() + ", "
                + ctx.multiprocessors() + " SMs, device " + ctx.ordinal() + ", kernels " + family.family() + ")";
    }

    /**
     * Waits until all work queued so far on the backend's stream (layer steps, graph replays,
     * cuBLAS baselines) has finished: what a benchmark calls inside its measured method.
     */
    public synchronized void synchronize() {
        enter();
        ctx.synchronize();
    }

    /**
     * The caching allocator's counters.
     *
     * @return bytes in use, high-water mark, bytes cached and buffer counts, now
     */
    public synchronized DeviceMemoryStats memoryStats() {
        return ctx.allocator().stats();
    }

    /** For tests: fill every new device buffer with 0xFF (NaN) so an unwritten output cannot pass. */
    synchronized void setPoison(boolean on) {
        ctx.allocator().setPoison(on);
    }

    CudaContext context() {
        return ctx;
    }

    /** For tests: fused, split or auto instead of {@value StepPolicy#PROPERTY}. */
    synchronized void setStepRequest(String request) {
        this.stepRequest = StepPolicy.requested(request);
    }

    /** cuBLASLt on this backend's stream with a workspace from its allocator, opened on first use; null when absent. */
    synchronized CublasLt cublasLt() {
        enter();
        if (!ltOpened) {
            ltOpened = true;
            String lib = CublasLt.findLibrary();
            if (lib == null) {
                ltMissing = "none of " + String.join(", ", CublasLt.LIBRARIES) + " loads";
            } else {
                long ws = CublasLt.workspaceBytes();
                try {
                    ltWorkspace = ws > 0 ? ctx.allocate(ws) : null;
                    lt = new CublasLt(lib, ctx.streamAddress(), ctx.deviceName() + " sm_" + ctx.computeCapabilityMajor()
                            + ctx.computeCapabilityMinor() + " #" + ctx.ordinal(), ltWorkspace);
                } catch (RuntimeException e) {
                    ltMissing = CublasBinding.firstLine(e);
                    if (ltWorkspace != null) {
                        ltWorkspace.close();
                        ltWorkspace = null;
                    }
                }
            }
        }
        return lt;
    }

    /**
     * Why cuBLASLt (so the split step) is not usable here, or "" when it is or was not tried yet.
     *
     * @return the reason, or "" when cuBLASLt loads or has not been tried
     */
    public synchronized String splitUnavailableReason() {
        return ltMissing;
    }

    /** The split step on this backend's kernels and cuBLASLt; throws with the reason when cuBLASLt is absent. */
    synchronized SplitStep splitStep() {
        CublasLt l = cublasLt();
        if (l == null) {
            throw new IllegalStateException("the split step needs cuBLASLt: " + ltMissing);
        }
        return new SplitStep(kernels, l);
    }

    /**
     * Which step (fused or split) runs a layer of this shape and dtype here ({@link StepPolicy};
     * {@value StepPolicy#PROPERTY} overrides); each distinct choice is logged once.
     *
     * @param t    the activations' dtype
     * @param n    the rows of X
     * @param dIn  d_in
     * @param dOut d_out
     * @param r    the adapter rank
     * @return fused or split, with the reason
     */
    public synchronized StepPolicy.Choice stepFor(DType t, int n, int dIn, int dOut, int r) {
        return stepFor(t, n, dIn, dOut, r, stepRequest);
    }

    /**
     * {@link #stepFor(DType, int, int, int, int)} with the request given (fused, split or auto).
     *
     * @param t       the activations' dtype
     * @param n       the rows of X
     * @param dIn     d_in
     * @param dOut    d_out
     * @param r       the adapter rank
     * @param request "fused", "split" or "auto" (null: the backend's default)
     * @return fused or split, with the reason
     * @throws IllegalArgumentException if the request is none of fused, split, auto
     * @throws IllegalStateException if split is requested and cuBLASLt is not usable here
     */
    public synchronized StepPolicy.Choice stepFor(DType t, int n, int dIn, int dOut, int r, String request) {
        CublasLt l = cublasLt();
        List<StepPolicy.Fused> fused = new ArrayList<>();
        String fam = familyFor(t, n, dIn, dOut, r, true);
        boolean validated = family.table() != null && family.table().validatedOn(fam, KernelSelector.dtypeToken(t),
                KernelSelector.smArch(ctx.computeCapabilityMajor(), ctx.computeCapabilityMinor()));
        fused.add(new StepPolicy.Fused(fam, !fam.equals("v1") && t != DType.F32, validated, Double.NaN));
        StepPolicy.Choice c = StepPolicy.choose(request, t, l == null ? null : l.binding(), ltMissing, Double.NaN, fused);
        String line = "rslora cuda step for n=" + n + " d_in=" + dIn + " d_out=" + dOut + " r=" + r + " " + t + " on sm_"
                + ctx.computeCapabilityMajor() + ctx.computeCapabilityMinor() + ": " + c;
        if (loggedSteps.add(c.kind() + " " + c.reason() + " " + t)) {
            LOG.log(System.Logger.Level.INFO, line);
        }
        return c;
    }

    @Override
    public synchronized boolean isClosed() {
        return closed;
    }

    LoraKernels kernels() {
        return kernels;
    }

    Transfers transfers() {
        return io;
    }

    long workspaceCapBytes() {
        return workspaceCapBytes;
    }

    /**
     * A new device tensor (contents undefined, or NaN when poisoning is on); the caller owns it.
     *
     * @param t     the element type
     * @param shape the dimensions, each ≥ 1
     * @return the tensor; close it to return its memory to the caching allocator
     */
    public synchronized DeviceTensor allocate(DType t, long... shape) {
        // the shape first: a refused one must not leave device memory behind (two negative
        // dimensions multiply to a positive count)
        if (t == null || shape == null) {
            throw new IllegalArgumentException("device tensor: " + (t == null ? "dtype" : "shape") + " is null");
        }
        long n = 1;
        for (long d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException("device tensor shape " + Arrays.toString(shape)
                        + ": every dimension must be >= 1, got " + d);
            }
            try {
                n = Math.multiplyExact(n, d);
            } catch (ArithmeticException e) {
                throw new IllegalArgumentException("device tensor shape " + Arrays.toString(shape)
                        + " has more elements than a long holds");
            }
        }
        if (n > Long.MAX_VALUE / t.byteSize()) {
            throw new IllegalArgumentException("device tensor shape " + Arrays.toString(shape) + " " + t
                    + " has more bytes than a long holds");
        }
        enter();
        return new DeviceTensor(this, t, shape, ctx.allocate(Transfers.bytes(n, t)));
    }

    /**
     * A new device tensor holding a copy of {@code host} (same dtype and shape).
     *
     * @param host the host tensor to copy (F32, BF16 or F16)
     * @return a new device tensor the caller owns; the copy is complete on return
     */
    public synchronized DeviceTensor upload(Tensor host) {
        usableHost("upload", host);
        enter();
        return new DeviceTensor(this, host.dtype(), host.shape(), io.upload(host, host.dtype()));
    }

    /**
     * Refuses a null host tensor, or one whose arena was closed or that another thread confines, naming
     * it, before any device call (FFM's own refusal says only "Already closed").
     */
    static void usableHost(String method, Tensor host) {
        if (host == null) {
            throw new IllegalArgumentException(method + ": the host tensor is null");
        }
        try {
            BackendChecks.usable("host tensor", host);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(method + ": " + e.getMessage(), e);
        }
    }

    synchronized void copyIn(Tensor host, DeviceTensor dst) {
        enter();
        checkOwn(dst);
        if (host.dtype() == dst.dtype()) {
            ctx.upload(host.readOnlySegment(), dst.buffer());  // a read: host's version stamp stays
            return;
        }
        try (DeviceBuffer tmp = io.upload(host, dst.dtype())) {
            JCudaDriverCopies.deviceToDevice(ctx, tmp, dst.buffer(), Transfers.bytes(dst.numel(), dst.dtype()));
        }
    }

    synchronized void copyOut(DeviceTensor src, Tensor host) {
        enter();
        checkOwn(src);
        io.download(src.buffer(), src.dtype(), host);
    }

    synchronized void free(DeviceBuffer b) {
        if (!closed) {
            ctx.makeCurrent();
        }
        b.close();
    }

    void checkOwn(DeviceTensor t) {
        if (t.backend() != this) {
            throw new IllegalArgumentException(t + " belongs to another cuda backend");
        }
    }

    @Override
    public synchronized FrozenWeight prepare(Tensor weight, Tensor bias) {
        enter();
        BackendChecks.prepare(weight, bias);
        ResidentTensor w = new ResidentTensor(io, weight);
        try {
            ResidentTensor b = bias == null ? null : new ResidentTensor(io, bias);
            return new CudaFrozenWeight(this, w, b);
        } catch (RuntimeException e) {
            w.close();
            throw e;
        }
    }

    synchronized void release(CudaFrozenWeight w) {
        if (!closed) {
            ctx.makeCurrent();
            w.freeDeviceCopies();
        }
    }

    @Override
    public synchronized void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        enter();
        CudaFrozenWeight fw = own(w);
        BackendChecks.forward(p, fw, x, a, b, u, y);
        LaunchGeometry.checkRows(p.n());  // every step path tiles n by 64 along gridDim.y: refused before any upload
        fw.refresh(ctx);
        ResidentTensor bias = fw.residentBias();
        DType t = computeType(fw, bias, x, y);
        boolean lora = p.adapterActive();
        LoraKernels.Dropout drop = dropout(p);
        try (DeviceBuffer dx = io.upload(x, t);
             DeviceBuffer da = lora ? io.upload(a, DType.F32) : null;
             DeviceBuffer db = lora ? io.upload(b, DType.F32) : null;
             DeviceBuffer du = lora ? ctx.allocate(Transfers.bytes((long) p.n() * p.rank(), DType.F32)) : null;
             DeviceBuffer dy = ctx.allocate(Transfers.bytes((long) p.n() * p.dOut(), t))) {
            int r = lora ? p.rank() : 0;
            DeviceBuffer wt = fw.residentWeight().as(io, t);
            DeviceBuffer bt = bias == null ? null : bias.as(io, t);
            if (stepFor(t, p.n(), p.dIn(), p.dOut(), r).kind() == StepPolicy.Kind.SPLIT) {
                try (SplitStep.Scratch s = SplitStep.Scratch.allocate(ctx, t, p.n(), p.dIn(), p.dOut(), r)) {
                    splitStep().forward(t, dx, wt, bt, da, db, du, dy, p.n(), p.dIn(), p.dOut(), r, (float) p.gamma(), drop, s);
                }
            } else {
                String fam = familyFor(t, p.n(), p.dIn(), p.dOut(), r, true);
                if (tableFamily(fam)) {
                    FamilyStep fs = familyStep(fam, t, p.n(), p.dIn(), p.dOut(), r, fw.residentWeight().tensorMaps());
                    try (FamilyStep.Buffers fb = fs.allocate(ctx)) {
                        fs.forward(dx, wt, bt, da, db, du, dy, (float) p.gamma(), drop, fb);
                    }
                } else {
                    kernels.forwardStep(t, dx, wt, bt, da, db, du, dy, p.n(), p.dIn(), p.dOut(), r, (float) p.gamma(), drop);
                }
            }
            io.download(dy, t, y);
            if (lora && u != null) {
                io.download(du, DType.F32, u);
            }
        }
    }

    @Override
    public synchronized void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                                      Tensor dx, Tensor gradA, Tensor gradB) {
        enter();
        CudaFrozenWeight fw = own(w);
        BackendChecks.backward(p, fw, x, a, b, u, dy, dx, gradA, gradB, true);  // U is read, not recomputed
        LaunchGeometry.checkRows(p.n());
        fw.refresh(ctx);
        boolean lora = p.adapterActive();
        DType t = computeType(fw, null, lora ? x : null, dy, dx);
        if (!lora) {
            if (dx != null) {
                try (DeviceBuffer ddy = io.upload(dy, t);
                     DeviceBuffer ddx = ctx.allocate(Transfers.bytes((long) p.n() * p.dIn(), t))) {
                    DeviceBuffer wt = fw.residentWeight().as(io, t);
                    if (stepFor(t, p.n(), p.dIn(), p.dOut(), 0).kind() == StepPolicy.Kind.SPLIT) {
                        splitStep().backwardDx(t, ddy, wt, null, null, ddx, p.n(), p.dIn(), p.dOut(), 0, (float) p.gamma(),
                                LoraKernels.Dropout.NONE, null);
                    } else {
                        kernels.backwardDx(t, ddy, wt, null, null, ddx, p.n(), p.dIn(), p.dOut(), 0, (float) p.gamma(),
                                LoraKernels.Dropout.NONE);
                    }
                    io.download(ddx, t, dx);
                }
            }
            return;
        }
        int n = p.n();
        int r = p.rank();
        long wsBytes = LoraKernels.workspaceBytes(n, p.dIn(), p.dOut(), r, workspaceCapBytes);
        boolean acc = p.gradMode() == GradMode.ACCUMULATE;
        LoraKernels.Dropout drop = dropout(p);
        try (DeviceBuffer ddy = io.upload(dy, t);
             DeviceBuffer dxIn = io.upload(x, t);
             DeviceBuffer da = io.upload(a, DType.F32);
             DeviceBuffer db = io.upload(b, DType.F32);
             DeviceBuffer du = io.upload(u, DType.F32);
             DeviceBuffer dv = ctx.allocate(Transfers.bytes((long) n * r, DType.F32));
             DeviceBuffer ws = ctx.allocate(wsBytes);
             DeviceBuffer gA = acc ? io.upload(gradA, DType.F32) : ctx.allocate(Transfers.bytes((long) r * p.dIn(), DType.F32));
             DeviceBuffer gB = acc ? io.upload(gradB, DType.F32) : ctx.allocate(Transfers.bytes((long) p.dOut() * r, DType.F32));
             DeviceBuffer ddx = dx != null ? ctx.allocate(Transfers.bytes((long) n * p.dIn(), t)) : null) {
            DeviceBuffer wt = dx != null ? fw.residentWeight().as(io, t) : null;
            if (stepFor(t, n, p.dIn(), p.dOut(), r).kind() == StepPolicy.Kind.SPLIT) {
                try (SplitStep.Scratch s = SplitStep.Scratch.allocate(ctx, t, n, p.dIn(), p.dOut(), r)) {
                    splitStep().backward(t, dxIn, ddy, wt, da, db, du, dv, ws, gA, gB, ddx, n, p.dIn(), p.dOut(), r,
                            (float) p.gamma(), drop, acc, workspaceCapBytes, s);
                }
            } else {
                String fam = familyFor(t, n, p.dIn(), p.dOut(), r, true);
                if (tableFamily(fam)) {
                    FamilyStep fs = familyStep(fam, t, n, p.dIn(), p.dOut(), r, fw.residentWeight().tensorMaps());
                    // this call's buffers did not exist in the forward's call: At, Bt and Ug are made again
                    try (FamilyStep.Buffers fb = fs.allocate(ctx)) {
                        fs.prepareBackward(dxIn, da, db, du, (float) p.gamma(), drop, fb);
                        fs.backward(dxIn, ddy, wt, da, db, du, dv, gA, gB, ddx, (float) p.gamma(), drop, acc, fb);
                    }
                } else {
                    kernels.backwardStep(t, dxIn, ddy, wt, da, db, du, dv, ws, gA, gB, ddx, n, p.dIn(), p.dOut(), r, (float) p.gamma(),
                            drop, acc, workspaceCapBytes);
                }
            }
            io.download(gA, DType.F32, gradA);
            io.download(gB, DType.F32, gradB);
            if (dx != null) {
                io.download(ddx, t, dx);
            }
        }
    }

    @Override
    public synchronized void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        enter();
        CudaFrozenWeight fw = own(w);
        BackendChecks.merge(fw, a, b, gamma, sign);
        fw.refresh(ctx);  // merge into the W the caller holds now
        ResidentTensor wt = fw.residentWeight();
        int dOut = (int) wt.host().dim(0);
        int dIn = (int) wt.host().dim(1);
        int r = (int) a.dim(0);
        try (DeviceBuffer da = io.upload(a, DType.F32); DeviceBuffer db = io.upload(b, DType.F32);
             Arena scratch = Arena.ofConfined()) {
            // the result goes to a host copy first: an element W's dtype cannot hold (±Infinity where W was
            // finite, which unmerge could not undo) is refused with W unchanged, the device copy restored from
            // the host (as the reference and cpu backends refuse before writing); the copy is allocated before
            // the kernel runs, and any failure after it restores the device copy too
            Tensor result = Tensor.allocate(scratch, wt.dtype(), dOut, dIn);
            long bad;
            try {
                kernels.merge(wt.dtype(), wt.primary(), db, da, dOut, dIn, r, (float) (sign * gamma));
                wt.invalidateConversions();
                io.download(wt.primary(), wt.dtype(), result);
                bad = BackendChecks.firstDestroyed(wt.host(), result);
            } catch (RuntimeException | Error e) {
                restore(wt, e);
                throw e;
            }
            if (bad >= 0) {
                restore(wt, null);
                throw BackendChecks.mergeNotFinite(fw, a, b, gamma, sign, bad / dIn, bad % dIn);
            }
            wt.host().copyFrom(result);
            wt.markCurrent();
        }
    }

    /**
     * Puts the host W back into the device copy after a merge that W does not take (refused, or failed
     * after its kernel ran), in place (the copy's TMA descriptors stay valid). A failure here is added to
     * {@code cause} as suppressed, or thrown when there is none.
     */
    private void restore(ResidentTensor wt, Throwable cause) {
        try {
            ctx.upload(wt.host().readOnlySegment(), wt.primary());
        } catch (RuntimeException e) {
            if (cause == null) {
                throw e;
            }
            cause.addSuppressed(e);
        }
    }

    /** The kernels' storage dtype: W's when every T tensor shares it, else F32. */
    private static DType computeType(CudaFrozenWeight fw, ResidentTensor bias, Tensor... ts) {
        DType wt = fw.residentWeight().dtype();
        if (bias != null && bias.dtype() != wt) {
            return DType.F32;
        }
        for (Tensor t : ts) {
            if (t != null && t.dtype() != wt) {
                return DType.F32;
            }
        }
        return wt;
    }

    private static LoraKernels.Dropout dropout(LoraParams p) {
        return new LoraKernels.Dropout(p.mask(), p.seed(), p.step(), p.layer());
    }

    private CudaFrozenWeight own(FrozenWeight w) {
        if (!(w instanceof CudaFrozenWeight fw) || fw.owner() != this) {
            throw new IllegalArgumentException("frozen weight " + (w == null ? "null" : w.getClass().getSimpleName())
                    + " was not prepared by this cuda backend");
        }
        return fw;
    }

    private void enter() {
        if (closed) {
            throw new IllegalStateException("cuda backend is closed");
        }
        ctx.makeCurrent();
    }

    synchronized void register(CudaGraph g) {
        graphs.add(g);
    }

    synchronized void unregister(CudaGraph g) {
        graphs.remove(g);
    }

    synchronized void register(OptimizerBuffers o) {
        optimizers.add(o);
    }

    synchronized void unregister(OptimizerBuffers o) {
        optimizers.remove(o);
    }

    /**
     * Releases the device context. Frozen weights, captured graphs and device optimizers still open
     * are freed with it (the graphs and optimizers unpin their tensors, so layers and tensors can still
     * be closed; a later close of the graph or optimizer is a no-op).
     *
     * <p>Failure-safe: every release (each graph, cuBLASLt and its workspace, the context with its
     * memory, modules, stream and primary-context retain) is attempted once, even when an earlier one
     * throws, e.g. the sticky error a faulted kernel leaves on the stream. The backend is closed
     * afterwards either way; the first failure is thrown with the others suppressed in it, and a
     * second close is a no-op.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        Release release = new Release();
        release.run(() -> ctx.makeCurrent());
        for (CudaGraph g : java.util.List.copyOf(graphs)) {
            release.run(g::destroy);
        }
        for (OptimizerBuffers o : java.util.List.copyOf(optimizers)) {
            release.run(o::close);
        }
        if (lt != null) {
            CublasLt l = lt;
            lt = null;
            release.run(l::close);
        }
        if (ltWorkspace != null) {
            DeviceBuffer w = ltWorkspace;
            ltWorkspace = null;
            release.run(w::close);
        }
        release.run(() -> ctx.close());
        release.rethrow();
    }
}
