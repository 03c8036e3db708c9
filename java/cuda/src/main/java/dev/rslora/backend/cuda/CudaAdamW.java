package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * AdamW on the device, with the semantics and the exact fp32 arithmetic of the CPU
 * {@code dev.rslora.train.AdamW} (torch.optim.AdamW: decoupled weight decay, bias-corrected moments,
 * eps added to the corrected √v): one launch of {@code rslora_adamw_v1} updates every parameter.
 *
 * <p>The constructor allocates f32 moments m, v (zero) and, with master weights, an f32 master copy
 * of every BF16/F16 parameter (the update runs on the master; the parameter becomes its
 * nearest-even rounding), then uploads the kernel's tensor table once. {@link #step()} queues one
 * launch on the backend's stream and returns (no host synchronisation); per step only the 56-byte
 * params struct with the step's fp32 scalars changes, so steps can also be captured in graphs by
 * a caller that resolves the kernel first. Parameters and gradients are the caller's
 * {@link DeviceTensor}s (any of F32/BF16/F16, same shape), borrowed, never freed here, and pinned
 * while this optimizer is open: closing one throws until {@link #close()} (or the backend's close).
 *
 * <p>{@link #step(double)} clips first, like {@code clip_grad_norm_(maxNorm)} then {@code step()}:
 * the global 2-norm of all gradients is computed on the device in two deterministic passes (f64)
 * and the coefficient min(maxNorm / (norm + 1e-6), 1) multiplies every gradient inside the AdamW
 * kernel (rounded to the gradient's dtype, as the CPU's in-place scaling does). Unlike the CPU
 * {@code dev.rslora.train.GradClip}, the gradients themselves are left unscaled. The f64 norm is summed
 * in a different (tree) order from GradClip's sequential sum, so the two norms may differ in their
 * last bits and, rarely, the f32 coefficients by one unit.
 *
 * <p>Results: with the same gradients and no clipping, parameters, masters and moments are bit for
 * bit those of the CPU AdamW (the kernel uses round-to-nearest intrinsics in AdamWScalar's order, no
 * FMA). One thread at a time; all work on the backend's stream.
 */
public final class CudaAdamW implements AutoCloseable {
    /**
     * A trainable device tensor and its gradient.
     *
     * @param name  unique name (matches {@link AdamWState} entries), e.g. {@code "layers.0.lora_A.weight"}
     * @param value the parameter, updated in place
     * @param grad  its gradient, same shape, read only
     */
    public record Param(String name, DeviceTensor value, DeviceTensor grad) {
        /**
         * Checks the parameter: a non-blank name, and value and grad of the same shape.
         *
         * @throws IllegalArgumentException naming the parameter when the name is blank or the shapes differ
         */
        public Param {
            OptimizerBuffers.checkParam(name, value, grad);
        }
    }

    /** One parameter's device state (buffers owned by {@link #buffers}; master null where none). */
    private record Slot(Param param, DeviceBuffer m, DeviceBuffer v, DeviceBuffer master) {
    }

    private final CudaBackend backend;
    private final OptimizerBuffers buffers;  // every buffer below and in the slots; the closed flag
    private final AdamWKernels kernels;
    private final List<Slot> slots;
    private final long total;
    private final DeviceBuffer table;
    private final DeviceBuffer partials;
    private final DeviceBuffer scalars;  // [0, 8): the last norm (f64), [8, 12): the clip coefficient (f32)
    private AdamWConfig config;
    private long step;
    private boolean normValid;

    /**
     * AdamW over {@code params} with f32 master weights for every BF16/F16 parameter.
     *
     * @param backend the backend whose context holds the tensors and runs the kernels
     * @param params  the parameters, in the order of the state (names unique, not empty)
     * @param config  the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is null or empty, holds null, names a parameter twice, holds another backend's tensor, or uses one tensor twice (value = grad, or shared between parameters)
     */
    public CudaAdamW(CudaBackend backend, List<Param> params, AdamWConfig config) {
        this(backend, params, config, true);
    }

    /**
     * AdamW over {@code params} (names unique, tensors of {@code backend}). With {@code masterWeights},
     * each BF16/F16 parameter gets an f32 master copy initialised from its current value.
     *
     * @param backend       the backend whose context holds the tensors and runs the kernels
     * @param params        the parameters, in the order of the state (not empty)
     * @param config        the hyper-parameters of the first step
     * @param masterWeights whether BF16/F16 parameters get an f32 master copy on the device
     * @throws IllegalArgumentException if params is null or empty, holds null, names a parameter twice, holds another backend's tensor, or uses one tensor twice (value = grad, or shared between parameters)
     */
    public CudaAdamW(CudaBackend backend, List<Param> params, AdamWConfig config, boolean masterWeights) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.config = Objects.requireNonNull(config, "config");
        OptimizerBuffers.checkList("AdamW", params);
        Set<String> names = new HashSet<>();
        for (Param p : params) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + p.name() + "'");
            }
            backend.checkOwn(p.value());
            backend.checkOwn(p.grad());
        }
        OptimizerBuffers.checkDisjoint(params.stream().map(Param::name).toList(), params.stream().map(Param::value).toList(),
                params.stream().map(Param::grad).toList());
        List<Slot> s = new ArrayList<>(params.size());
        this.buffers = new OptimizerBuffers(backend, "CUDA AdamW");
        synchronized (backend) {
            if (backend.isClosed()) {
                throw new IllegalStateException("cuda backend is closed");
            }
            CudaContext ctx = backend.context();
            ctx.makeCurrent();
            // the table holds the caller's tensors' addresses: pinned until close (unpinned by freeAll if this fails)
            buffers.pin(pinnedTensors(params));
            try {
                List<AdamWKernels.Entry> entries = new ArrayList<>(params.size());
                for (Param p : params) {
                    long n = p.value().numel();
                    DeviceBuffer m = buffers.zeroed(Transfers.bytes(n, DType.F32));
                    DeviceBuffer v = buffers.zeroed(Transfers.bytes(n, DType.F32));
                    DeviceBuffer master = buffers.master(p.value(), n, masterWeights);
                    s.add(new Slot(p, m, v, master));
                    entries.add(new AdamWKernels.Entry(p.value().buffer().address(), p.value().dtype(), p.grad().buffer().address(),
                            p.grad().dtype(), m.address(), v.address(), OptimizerBuffers.address(master), n));
                }
                this.total = AdamWKernels.total(entries);
                this.table = buffers.upload(AdamWKernels.table(entries));
                this.partials = buffers.allocate(8L * LaunchGeometry.gradNormBlocks(total));
                this.scalars = buffers.allocate(16);
                this.kernels = new AdamWKernels(ctx);
                kernels.resolveAll();
                ctx.synchronize();
            } catch (RuntimeException e) {
                try {
                    buffers.freeAll();
                } catch (RuntimeException | Error cleanup) {
                    e.addSuppressed(cleanup);
                }
                throw e;
            }
        }
        this.slots = List.copyOf(s);
    }

    /** Queues one AdamW step (t ← t + 1) from the current gradients: one kernel launch. */
    public void step() {
        synchronized (backend) {
            buffers.enter();
            step++;
            kernels.step(table.address(), 0, total, slots.size(), AdamWKernels.Scalars.of(config, step));
        }
    }

    /**
     * Queues the global gradient norm, the clip coefficient for {@code maxNorm} and one AdamW step
     * that multiplies every gradient by it (three launches, no host synchronisation). The norm
     * before clipping is then available from {@link #lastGradNorm()}.
     *
     * @param maxNorm the largest global gradient norm to keep (finite, &gt; 0)
     * @throws IllegalArgumentException if maxNorm is not finite and &gt; 0
     */
    public void step(double maxNorm) {
        if (!(maxNorm > 0) || Double.isInfinite(maxNorm)) {
            throw new IllegalArgumentException("maxNorm must be finite and > 0, got maxNorm=" + maxNorm);
        }
        synchronized (backend) {
            buffers.enter();
            kernels.gradNorm(table.address(), partials.address(), scalars.address(), scalars.address() + 8, total, slots.size(),
                    maxNorm);
            normValid = true;
            step++;
            kernels.step(table.address(), scalars.address() + 8, total, slots.size(), AdamWKernels.Scalars.of(config, step));
        }
    }

    /**
     * The global 2-norm of all gradients now (computed on the device; waits for it).
     *
     * @return √(Σ g²) over every gradient element, NaN if any is NaN
     */
    public double gradNorm() {
        synchronized (backend) {
            buffers.enter();
            kernels.gradNorm(table.address(), partials.address(), scalars.address(), 0, total, slots.size(), 0);
            normValid = true;
            return readNorm();
        }
    }

    /**
     * The norm before clipping of the last {@link #step(double)} or {@link #gradNorm()} (waits for it).
     *
     * @return the global norm before clipping, as {@code torch.nn.utils.clip_grad_norm_} returns it
     */
    public double lastGradNorm() {
        synchronized (backend) {
            buffers.enter();
            if (!normValid) {
                throw new IllegalStateException("no gradient norm computed yet: call step(maxNorm) or gradNorm() first");
            }
            return readNorm();
        }
    }

    private double readNorm() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(8, 8);
            backend.context().download(scalars, out);
            return out.get(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN), 0);
        }
    }

    /**
     * A heap copy of the state (step, config, m, v, master weights), in the format of the CPU
     * {@code dev.rslora.train.AdamW#snapshot()}, so it can be saved with the same state file or
     * compared with a CPU run. Waits for all queued work.
     *
     * @return a copy independent of this optimizer, equal in layout to the CPU optimizer's snapshot
     */
    public AdamWState snapshot() {
        synchronized (backend) {
            buffers.enter();
            List<AdamWState.Entry> entries = new ArrayList<>(slots.size());
            for (Slot s : slots) {
                long n = s.param().value().numel();
                entries.add(new AdamWState.Entry(s.param().name(), s.param().value().shape(), buffers.download(s.m(), n),
                        buffers.download(s.v(), n), buffers.download(s.master(), n)));
            }
            return new AdamWState(step, config, entries);
        }
    }

    /**
     * Re-reads every f32 master copy from its BF16/F16 parameter, after the caller wrote new parameter
     * values (a load, a merge): without it the next step would update the stale master and overwrite
     * the new values with its rounding. The same name and contract as the CPU
     * {@code dev.rslora.train.AdamW#reloadMasterWeights()}; parameters without a master (F32, or master
     * weights off) are untouched. Queued on the backend's stream (a conversion launch per master) after
     * the writes queued before it, and before the next step; no host synchronisation.
     *
     * @throws IllegalStateException if this optimizer or its backend is closed
     */
    public void reloadMasterWeights() {
        synchronized (backend) {
            buffers.enter();
            List<DeviceTensor> values = new ArrayList<>(slots.size());
            List<DeviceBuffer> masters = new ArrayList<>(slots.size());
            for (Slot s : slots) {
                values.add(s.param().value());
                masters.add(s.master());
            }
            OptimizerBuffers.reloadMasters(backend.kernels(), values, masters);
        }
    }

    /**
     * Steps taken so far.
     *
     * @return the number of completed steps (the next step is t = stepCount() + 1)
     */
    public long stepCount() {
        return step;
    }

    /**
     * The current hyper-parameters.
     *
     * @return the config the next step uses, with the learning rate last set by {@link #setLearningRate}
     */
    public AdamWConfig config() {
        return config;
    }

    /**
     * Changes the learning rate from the next step on (for schedules).
     *
     * @param lr the new learning rate (finite, ≥ 0)
     * @throws IllegalArgumentException if lr is negative, infinite or NaN
     */
    public void setLearningRate(double lr) {
        synchronized (backend) {
            this.config = config.withLr(lr);
        }
    }

    /**
     * The parameters, in order.
     *
     * @return the parameters this optimizer updates, in the order of its state
     */
    public List<Param> parameters() {
        List<Param> p = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            p.add(s.param());
        }
        return p;
    }

    /**
     * Total elements over all parameters (the kernel's global index space).
     *
     * @return Σ numel over the parameters
     */
    public long elementCount() {
        return total;
    }

    /** Every value and gradient of {@code params}, in order (the tensors the optimizer pins). */
    private static List<DeviceTensor> pinnedTensors(List<Param> params) {
        List<DeviceTensor> t = new ArrayList<>(2 * params.size());
        for (Param p : params) {
            t.add(p.value());
            t.add(p.grad());
        }
        return t;
    }

    /** Frees the moments, masters and the table (not the caller's parameters or gradients), and unpins those. */
    @Override
    public void close() {
        buffers.close();
    }
}
