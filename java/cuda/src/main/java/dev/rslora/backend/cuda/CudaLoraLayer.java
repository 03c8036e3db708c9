package dev.rslora.backend.cuda;

import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUstreamCaptureMode;
import jcuda.driver.JCudaDriver;

import java.util.ArrayList;
import java.util.List;

/**
 * A LoRA layer that lives on the device (the device-resident path of the {@code cuda} backend):
 * activations X, Y, dY, dX are {@link DeviceTensor}s of W's dtype T supplied by the caller, and
 * nothing crosses PCIe during a step.
 *
 * <pre>
 *   resident: W [d_out, d_in] T, bias [d_out] (as T), A [r, d_in], B [d_out, r], dA, dB f32,
 *             U, V [n, r] f32 and the dA/dB partials workspace, all for a fixed n
 *   forward : U = D(X)·Aᵀ;  Y = X·Wᵀ + bias + γ·U·Bᵀ
 *   backward: V = dY·B;  dB (=|+=) γ·dYᵀ·U;  dA (=|+=) γ·Vᵀ·D(X);  dX = dY·W + γ·D'(V·A)
 *   γ = α/√r (rsLoRA) or α/r, given by the caller; dropout mask of (seed, step, layer id)
 * </pre>
 * {@link #captureStep} records forward + backward of one step into a {@link CudaGraph}; its replay
 * runs the identical kernels with the identical parameters (including the dropout step), so it
 * reproduces the eager step bit for bit. One thread at a time; all work is on the backend's stream.
 */
public final class CudaLoraLayer implements AutoCloseable {
    private final CudaBackend backend;
    private final DType t;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    private final float gamma;
    private final float dropout;
    private final long seed;
    private final int layerId;
    private final GradMode gradMode;
    private final ResidentTensor weight;
    private final ResidentTensor bias;
    private final DeviceBuffer biasT;
    private final DeviceBuffer a;
    private final DeviceBuffer b;
    private final DeviceBuffer gradA;
    private final DeviceBuffer gradB;
    private final DeviceBuffer u;
    private final DeviceBuffer v;
    private final DeviceBuffer ws;
    private final StepPolicy.Choice step;
    private final SplitStep split;
    private final SplitStep.Scratch scratch;
    private final FamilyStep familyStep;
    private final FamilyStep.Buffers familyBuffers;
    private int graphs;
    private boolean closed;

    /**
     * Uploads W [d_out, d_in], bias [d_out] (nullable), A [r, d_in] and B [d_out, r] (any dtypes;
     * the adapter is kept in f32) and preallocates the step's buffers for {@code n} rows. Gradients
     * start at zero.
     *
     * @param backend     the backend whose context holds the layer's device copies
     * @param w           W [d_out, d_in] (copied to the device)
     * @param bias        bias [d_out], or null
     * @param loraA       A [r, d_in] (copied, kept in f32)
     * @param loraB       B [d_out, r] (copied, kept in f32)
     * @param gamma       γ (α/√r for rsLoRA, α/r for LoRA)
     * @param dropout     p in [0, 1) on the adapter input
     * @param seed        the dropout key
     * @param layerId     the dropout layer id
     * @param n           the rows of X every step uses, 1 ≤ n ≤ 4,194,240 (65,535 row tiles of 64)
     * @param gradMode    assign or accumulate dA and dB
     * @throws IllegalArgumentException if backend, W, A, B or gradMode is null, a tensor is not 2-D or has an empty dimension, the shapes do not fit, n is past the kernels' row limit,
     *                                  or γ is not finite in fp32
     */
    public CudaLoraLayer(CudaBackend backend, Tensor w, Tensor bias, Tensor loraA, Tensor loraB, double gamma,
                         float dropout, long seed, int layerId, int n, GradMode gradMode) {
        this(backend, w, bias, loraA, loraB, gamma, dropout, seed, layerId, n, gradMode, null);
    }

    /**
     * As above, with the step forced: {@code stepRequest} = "fused", "split" or "auto" (null: the backend's
     * {@value StepPolicy#PROPERTY}, default auto).
     *
     * @param backend     the backend whose context holds the layer's device copies
     * @param w           W [d_out, d_in] (copied to the device)
     * @param bias        bias [d_out], or null
     * @param loraA       A [r, d_in] (copied, kept in f32)
     * @param loraB       B [d_out, r] (copied, kept in f32)
     * @param gamma       γ (α/√r for rsLoRA, α/r for LoRA)
     * @param dropout     p in [0, 1) on the adapter input
     * @param seed        the dropout key
     * @param layerId     the dropout layer id
     * @param n           the rows of X every step uses, 1 ≤ n ≤ 4,194,240 (65,535 row tiles of 64)
     * @param gradMode    assign or accumulate dA and dB
     * @param stepRequest "fused", "split", "auto", or null for the backend's default
     * @throws IllegalArgumentException if backend, W, A, B or gradMode is null, a tensor is not 2-D or has an empty dimension, the shapes do not fit, n is past the kernels' row limit,
     *                                  γ is not finite in fp32, or the request is unknown
     * @throws IllegalStateException if split is requested and cuBLASLt is not usable here
     */
    public CudaLoraLayer(CudaBackend backend, Tensor w, Tensor bias, Tensor loraA, Tensor loraB, double gamma,
                         float dropout, long seed, int layerId, int n, GradMode gradMode, String stepRequest) {
        String absent = backend == null ? "backend" : w == null ? "W" : loraA == null ? "A" : loraB == null ? "B"
                : gradMode == null ? "gradMode" : null;
        if (absent != null) {
            throw new IllegalArgumentException("CUDA LoRA layer: " + absent + " is null");
        }
        if (w.rank() != 2 || loraA.rank() != 2 || loraB.rank() != 2) {
            throw new IllegalArgumentException("W, A, B must be 2-D: " + w.shapeString() + " " + loraA.shapeString() + " "
                    + loraB.shapeString());
        }
        this.dOut = (int) w.dim(0);
        this.dIn = (int) w.dim(1);
        this.r = (int) loraA.dim(0);
        if (!loraA.sameShape(r, dIn) || !loraB.sameShape(dOut, r) || (bias != null && !bias.sameShape(dOut)) || n < 1
                || r < 1 || dIn < 1 || dOut < 1) {
            throw new IllegalArgumentException("shapes disagree: W " + w.shapeString() + ", A " + loraA.shapeString() + ", B "
                    + loraB.shapeString() + ", bias " + (bias == null ? "none" : bias.shapeString()) + ", n " + n);
        }
        LaunchGeometry.checkRows(n);
        if (!(dropout >= 0f && dropout < 1f)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        }
        if (!(Math.abs(gamma) <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("gamma must be finite (within fp32's range: the kernels scale in fp32), got gamma="
                    + gamma);
        }
        this.backend = backend;
        this.t = w.dtype();
        this.n = n;
        this.gamma = (float) gamma;
        this.dropout = dropout;
        this.seed = seed;
        this.layerId = layerId;
        this.gradMode = gradMode;
        synchronized (backend) {
            backend.context().makeCurrent();
            Transfers io = backend.transfers();
            CudaContext ctx = backend.context();
            // the choices that can refuse (an unknown request, split without cuBLASLt) come before any
            // allocation, and what is allocated is freed again if a later step throws
            this.step = stepRequest == null ? backend.stepFor(t, n, dIn, dOut, r) : backend.stepFor(t, n, dIn, dOut, r, stepRequest);
            this.split = step.kind() == StepPolicy.Kind.SPLIT ? backend.splitStep() : null;
            String fam = split == null ? backend.familyFor(t, n, dIn, dOut, r, true) : "v1";
            List<AutoCloseable> made = new ArrayList<>();
            try {
                this.weight = made(made, new ResidentTensor(io, w));
                this.bias = bias == null ? null : made(made, new ResidentTensor(io, bias));
                this.biasT = bias == null ? null : this.bias.as(io, t);
                this.a = made(made, io.upload(loraA, DType.F32));
                this.b = made(made, io.upload(loraB, DType.F32));
                this.gradA = made(made, ctx.allocate(Transfers.bytes((long) r * dIn, DType.F32)));
                this.gradB = made(made, ctx.allocate(Transfers.bytes((long) dOut * r, DType.F32)));
                this.u = made(made, ctx.allocate(Transfers.bytes((long) n * r, DType.F32)));
                this.v = made(made, ctx.allocate(Transfers.bytes((long) n * r, DType.F32)));
                this.ws = made(made, ctx.allocate(LoraKernels.workspaceBytes(n, dIn, dOut, r, backend.workspaceCapBytes())));
                this.scratch = split != null ? made(made, SplitStep.Scratch.allocate(ctx, t, n, dIn, dOut, r)) : null;
                this.familyStep = CudaBackend.tableFamily(fam) ? backend.familyStep(fam, t, n, dIn, dOut, r, weight.tensorMaps()) : null;
                this.familyBuffers = familyStep != null ? made(made, familyStep.allocate(ctx)) : null;
                JCudaDriverCopies.zero(ctx, gradA);
                JCudaDriverCopies.zero(ctx, gradB);
                ctx.synchronize();
            } catch (RuntimeException | Error e) {
                for (int i = made.size() - 1; i >= 0; i--) {
                    try {
                        made.get(i).close();
                    } catch (Exception suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
                throw e;
            }
        }
    }

    private static <T extends AutoCloseable> T made(List<AutoCloseable> made, T resource) {
        made.add(resource);
        return resource;
    }

    /**
     * The step this layer runs (fused or split) and why; chosen once, at construction.
     *
     * @return fused or split, with the reason
     */
    public StepPolicy.Choice step() {
        return step;
    }

    private LoraKernels.Dropout drop(long step, boolean training) {
        DropoutMask mask = training && dropout > 0f ? new DropoutMask(seed, step, layerId, dropout) : null;
        return new LoraKernels.Dropout(mask, seed, step, layerId);
    }

    private void check(String name, DeviceTensor x, long rows, long cols) {
        if (x == null) {
            throw new IllegalArgumentException(name + " is null: expected [" + rows + ", " + cols + "] " + t);
        }
        backend.checkOwn(x);
        if (x.dtype() != t || !java.util.Arrays.equals(x.shape(), new long[] {rows, cols})) {
            throw new IllegalArgumentException(name + " must be [" + rows + ", " + cols + "] " + t + ", got " + x);
        }
    }

    /**
     * Refuses an output that is an input or another output (written while it is still read: wrong
     * numbers, silently), as {@code BackendChecks.disjoint} does for host tensors. A device tensor owns
     * its buffer, so two of them share memory only when they share the buffer.
     */
    static void disjoint(String outName, DeviceTensor out, String inName, DeviceTensor in) {
        if (out != null && in != null && out.buffer() == in.buffer()) {
            throw new IllegalArgumentException(outName + " " + out + " is also " + inName
                    + ": an output must not alias an input or another output (pass a separate tensor)");
        }
    }

    private void enter() {
        if (closed) {
            throw new IllegalStateException("CUDA LoRA layer is closed");
        }
        backend.context().makeCurrent();
    }

    /**
     * Queues the forward: U = D(X)·Aᵀ, Y = X·Wᵀ + bias + γ·U·Bᵀ (X [n, d_in], Y [n, d_out], dtype T).
     *
     * @param x        X [n, d_in], dtype T
     * @param y        receives Y [n, d_out], dtype T
     * @param step     the dropout step (the backward of this forward must pass the same)
     * @param training whether dropout applies (p &gt; 0 too)
     */
    public void forward(DeviceTensor x, DeviceTensor y, long step, boolean training) {
        check("x", x, n, dIn);
        check("y", y, n, dOut);
        disjoint("y", y, "x", x);
        synchronized (backend) {
            enter();
            launchForward(x, y, step, training);
        }
    }

    /**
     * Queues the backward of the forward with the same X and step; dx may be null.
     *
     * @param x        the forward's X [n, d_in]
     * @param dy       dY [n, d_out]
     * @param dx       receives dX [n, d_in], or null to skip it
     * @param step     the forward's dropout step
     * @param training the forward's mode
     */
    public void backward(DeviceTensor x, DeviceTensor dy, DeviceTensor dx, long step, boolean training) {
        check("x", x, n, dIn);
        check("grad_y", dy, n, dOut);
        if (dx != null) {
            check("grad_x", dx, n, dIn);
        }
        disjoint("grad_x", dx, "x", x);
        disjoint("grad_x", dx, "grad_y", dy);
        synchronized (backend) {
            enter();
            launchBackward(x, dy, dx, step, training);
        }
    }

    private void launchForward(DeviceTensor x, DeviceTensor y, long step, boolean training) {
        if (split != null) {
            split.forward(t, x.buffer(), weight.primary(), biasT, a, b, u, y.buffer(), n, dIn, dOut, r, gamma, drop(step, training),
                    scratch);
            return;
        }
        if (familyStep != null) {
            familyStep.forward(x.buffer(), weight.primary(), biasT, a, b, u, y.buffer(), gamma, drop(step, training), familyBuffers);
            return;
        }
        backend.kernels().forwardStep(t, x.buffer(), weight.primary(), biasT, a, b, u, y.buffer(), n, dIn, dOut, r, gamma,
                drop(step, training));
    }

    private void launchBackward(DeviceTensor x, DeviceTensor dy, DeviceTensor dx, long step, boolean training) {
        if (split != null) {
            split.backward(t, x.buffer(), dy.buffer(), weight.primary(), a, b, u, v, ws, gradA, gradB,
                    dx == null ? null : dx.buffer(), n, dIn, dOut, r, gamma, drop(step, training),
                    gradMode == GradMode.ACCUMULATE, backend.workspaceCapBytes(), scratch);
            return;
        }
        if (familyStep != null) {
            familyStep.backward(x.buffer(), dy.buffer(), weight.primary(), a, b, u, v, gradA, gradB, dx == null ? null : dx.buffer(), gamma,
                    drop(step, training), gradMode == GradMode.ACCUMULATE, familyBuffers);
            return;
        }
        backend.kernels().backwardStep(t, x.buffer(), dy.buffer(), weight.primary(), a, b, u, v, ws, gradA, gradB,
                dx == null ? null : dx.buffer(), n, dIn, dOut, r, gamma, drop(step, training),
                gradMode == GradMode.ACCUMULATE, backend.workspaceCapBytes());
    }

    /**
     * Captures one training step (forward then backward at {@code step}, dropout on) into a graph.
     * Nothing runs during the capture; every {@link CudaGraph#replay()} runs the step. The graph pins
     * x, y, dy, dx and this layer until it is closed.
     *
     * @param x    X [n, d_in]
     * @param y    receives Y [n, d_out] at each replay
     * @param dy   dY [n, d_out], read at each replay
     * @param dx   receives dX [n, d_in] at each replay, or null
     * @param step the dropout step every replay uses
     * @return the graph; close it to release the pins
     */
    public CudaGraph captureStep(DeviceTensor x, DeviceTensor y, DeviceTensor dy, DeviceTensor dx, long step) {
        check("x", x, n, dIn);
        check("y", y, n, dOut);
        check("grad_y", dy, n, dOut);
        if (dx != null) {
            check("grad_x", dx, n, dIn);
        }
        disjoint("y", y, "x", x);
        disjoint("y", y, "grad_y", dy);
        disjoint("grad_x", dx, "x", x);
        disjoint("grad_x", dx, "grad_y", dy);
        disjoint("grad_x", dx, "y", y);
        synchronized (backend) {
            enter();
            CudaContext ctx = backend.context();
            // no module loading inside the capture: look every kernel of the step up first; no
            // cuBLASLt heuristic either: make the split step's plans first
            if (split != null) {
                backend.kernels().resolve(split.kernelNames(t, dropout > 0f));
                split.preparePlans(t, x.buffer(), weight.primary(), biasT, a, b, u, y.buffer(), dy.buffer(), v, dx == null ? null : dx.buffer(), n, dIn,
                        dOut, r, scratch);
            } else if (familyStep != null) {
                familyStep.resolveAll();
            } else {
                backend.kernels().resolve(backend.kernels().stepKernelNames(t));
            }
            ctx.synchronize();
            JCudaDriver.cuStreamBeginCapture(ctx.stream(), CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
            CUgraph graph = new CUgraph();
            try {
                launchForward(x, y, step, true);
                launchBackward(x, dy, dx, step, true);
            } catch (RuntimeException | Error e) {
                // end the capture (the stream must leave capture mode) and free the partial graph; a
                // failure there (an invalidated capture) is added to the launch's error, not put in its place
                try {
                    JCudaDriver.cuStreamEndCapture(ctx.stream(), graph);
                    JCudaDriver.cuGraphDestroy(graph);
                } catch (RuntimeException | Error cleanup) {
                    e.addSuppressed(cleanup);
                }
                throw e;
            }
            JCudaDriver.cuStreamEndCapture(ctx.stream(), graph);
            CUgraphExec exec = new CUgraphExec();
            try {
                JCudaDriver.cuGraphInstantiate(exec, graph, 0);
            } catch (RuntimeException e) {
                JCudaDriver.cuGraphDestroy(graph);
                throw e;
            }
            graphs++;
            return new CudaGraph(backend, graph, exec, dx == null ? List.of(x, y, dy) : List.of(x, y, dy, dx), () -> graphs--);
        }
    }

    /**
     * Copies dA [r, d_in] and dB [d_out, r] (rounded once to the host dtypes); complete on return.
     *
     * @param hostGradA receives dA [r, d_in], any dtype
     * @param hostGradB receives dB [d_out, r], any dtype
     */
    public void copyGradientsTo(Tensor hostGradA, Tensor hostGradB) {
        if (hostGradA == null || hostGradB == null || !hostGradA.sameShape(r, dIn) || !hostGradB.sameShape(dOut, r)) {
            throw new IllegalArgumentException("gradient shapes " + (hostGradA == null ? "null" : hostGradA.shapeString()) + ", "
                    + (hostGradB == null ? "null" : hostGradB.shapeString())
                    + " != [" + r + ", " + dIn + "], [" + dOut + ", " + r + "]");
        }
        synchronized (backend) {
            enter();
            backend.transfers().download(gradA, DType.F32, hostGradA);
            backend.transfers().download(gradB, DType.F32, hostGradB);
        }
    }

    /**
     * Copies U [n, r] f32 of the last forward; complete on return.
     *
     * @param hostU receives U [n, r] (any dtype; U is without γ)
     */
    public void copyUTo(Tensor hostU) {
        if (hostU == null || !hostU.sameShape(n, r)) {
            throw new IllegalArgumentException("U shape " + (hostU == null ? "null" : hostU.shapeString()) + " != [" + n + ", " + r + "]");
        }
        synchronized (backend) {
            enter();
            backend.transfers().download(u, DType.F32, hostU);
        }
    }

    /** Queues dA = 0, dB = 0. */
    public void zeroGradients() {
        synchronized (backend) {
            enter();
            JCudaDriverCopies.zero(backend.context(), gradA);
            JCudaDriverCopies.zero(backend.context(), gradB);
        }
    }

    /** Frees every device buffer of the layer (not the caller's tensors). Refused while a captured graph is open. */
    @Override
    public void close() {
        synchronized (backend) {
            if (closed) {
                return;
            }
            if (graphs > 0) {
                throw new IllegalStateException("CUDA LoRA layer is used by " + graphs + " captured graph(s): close them first");
            }
            closed = true;
            if (!backend.isClosed()) {
                backend.context().makeCurrent();
            }
            for (DeviceBuffer buf : new DeviceBuffer[] {a, b, gradA, gradB, u, v, ws}) {
                buf.close();
            }
            if (scratch != null) {
                scratch.close();
            }
            if (familyBuffers != null) {
                familyBuffers.close();
            }
            weight.close();
            if (bias != null) {
                bias.close();
            }
        }
    }
}
