package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorSpec;
import dev.rslora.optim.AdafactorState;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

import static dev.rslora.backend.cuda.OptimizerBuffers.address;

/**
 * Adafactor on the device ({@code transformers.optimization.Adafactor} semantics, see
 * {@link AdafactorConfig}), with the exact fp32 arithmetic and double reduction order of
 * {@link AdafactorSpec}: the fused kernels of {@code cuda/kernels/adafactor.cuh} give, from the same
 * gradients, the same bits as the CPU {@code dev.rslora.train.Adafactor} (parameters, masters,
 * row/column or full second moments, first moment). One step is five launches over one table of
 * every parameter; reductions are deterministic (fixed order, no atomics).
 *
 * <p>Parameters are rank 0, 1 (unfactored) or 2 (factored [rows, cols]); rank ≥ 3 is refused (the CPU
 * optimizer handles it). The constructor allocates the fp32 state (zero), per tensor a reduction
 * workspace, and, with master weights, an fp32 master copy of every BF16/F16 parameter; then uploads
 * the tensor table and the two work lists once. {@link #step()} queues the launches on the backend's
 * stream and returns; per step only the 96-byte params struct changes. Parameters and gradients are
 * the caller's {@link DeviceTensor}s, borrowed, and pinned while this optimizer is open: closing one
 * throws until {@link #close()} (or the backend's close). One thread at a time.
 */
public final class CudaAdafactor implements AutoCloseable {
    /**
     * A trainable device tensor and its gradient.
     *
     * @param name  unique name (matches {@link AdafactorState} entries)
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

    /** One parameter's device state (buffers owned by {@link #buffers}; null where the layout has none). */
    private record Slot(Param param, AdafactorKernels.Layout layout, DeviceBuffer row, DeviceBuffer col, DeviceBuffer v,
                        DeviceBuffer expAvg, DeviceBuffer master) {
    }

    private final CudaBackend backend;
    private final OptimizerBuffers buffers;  // every buffer below and in the slots; the closed flag
    private final AdafactorKernels kernels;
    private final List<Slot> slots;
    private final long total;
    private final DeviceBuffer table;
    private final DeviceBuffer statsWork;
    private final DeviceBuffer updateWork;
    private final int numStats;
    private final int numUpdate;
    private AdafactorConfig config;
    private long step;

    /**
     * Adafactor over {@code params} with f32 master weights for every BF16/F16 parameter.
     *
     * @param backend the backend whose context holds the tensors and runs the kernels
     * @param params  the parameters, in the order of the state (names unique, not empty)
     * @param config  the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is null or empty, holds null, names a parameter twice, holds another backend's tensor, or uses one tensor twice (value = grad, or shared between parameters)
     */
    public CudaAdafactor(CudaBackend backend, List<Param> params, AdafactorConfig config) {
        this(backend, params, config, true);
    }

    /**
     * Adafactor over {@code params} (names unique, tensors of {@code backend}, rank ≤ 2). With
     * {@code masterWeights}, each BF16/F16 parameter gets an f32 master copy of its current value.
     *
     * @param backend       the backend whose context holds the tensors and runs the kernels
     * @param params        the parameters, in the order of the state (not empty)
     * @param config        the hyper-parameters of the first step
     * @param masterWeights whether BF16/F16 parameters get an f32 master copy on the device
     * @throws IllegalArgumentException if params is null or empty, holds null, names a parameter twice, holds another backend's tensor, or uses one tensor twice (value = grad, or shared between parameters)
     */
    public CudaAdafactor(CudaBackend backend, List<Param> params, AdafactorConfig config, boolean masterWeights) {
        this.backend = Objects.requireNonNull(backend, "backend");
        this.config = Objects.requireNonNull(config, "config");
        OptimizerBuffers.checkList("Adafactor", params);
        Set<String> names = new HashSet<>();
        List<AdafactorKernels.Layout> layouts = new ArrayList<>();
        for (Param p : params) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + p.name() + "'");
            }
            backend.checkOwn(p.value());
            backend.checkOwn(p.grad());
            if (p.value().numel() < 1) {
                throw new IllegalArgumentException("parameter " + p.name() + " " + p.value().shapeString() + " is empty");
            }
            layouts.add(AdafactorKernels.Layout.of(p.value().shape()));
        }
        OptimizerBuffers.checkDisjoint(params.stream().map(Param::name).toList(), params.stream().map(Param::value).toList(),
                params.stream().map(Param::grad).toList());
        List<Slot> s = new ArrayList<>(params.size());
        this.buffers = new OptimizerBuffers(backend, "CUDA Adafactor");
        synchronized (backend) {
            if (backend.isClosed()) {
                throw new IllegalStateException("cuda backend is closed");
            }
            CudaContext ctx = backend.context();
            ctx.makeCurrent();
            // the table holds the caller's tensors' addresses: pinned until close (unpinned by freeAll if this fails)
            buffers.pin(pinnedTensors(params));
            try {
                List<AdafactorKernels.Entry> entries = new ArrayList<>(params.size());
                for (int k = 0; k < params.size(); k++) {
                    Param p = params.get(k);
                    AdafactorKernels.Layout l = layouts.get(k);
                    DeviceBuffer row = l.factored() ? buffers.zeroed(4L * l.rows()) : null;
                    DeviceBuffer col = l.factored() ? buffers.zeroed(4L * l.cols()) : null;
                    DeviceBuffer v = l.factored() ? null : buffers.zeroed(4L * l.count());
                    DeviceBuffer m = config.usesFirstMoment() ? buffers.zeroed(4L * l.count()) : null;
                    DeviceBuffer master = buffers.master(p.value(), l.count(), masterWeights);
                    DeviceBuffer ws = buffers.allocate(l.workspaceBytes());
                    s.add(new Slot(p, l, row, col, v, m, master));
                    entries.add(new AdafactorKernels.Entry(p.value().buffer().address(), p.value().dtype(),
                            p.grad().buffer().address(), p.grad().dtype(), address(master), address(row), address(col),
                            address(v), address(m), ws.address(), l));
                }
                this.total = AdafactorKernels.total(entries);
                this.table = buffers.upload(AdafactorKernels.table(entries));
                List<int[]> st = AdafactorKernels.statsWork(layouts);
                List<int[]> up = AdafactorKernels.updateWork(layouts);
                this.numStats = st.size();
                this.numUpdate = up.size();
                this.statsWork = buffers.upload(AdafactorKernels.work(st));
                this.updateWork = buffers.upload(AdafactorKernels.work(up));
                this.kernels = new AdafactorKernels(ctx);
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

    /** Queues one Adafactor step (t ← t + 1) from the current gradients: five launches, no host synchronisation. */
    public void step() {
        synchronized (backend) {
            buffers.enter();
            step++;
            kernels.step(table.address(), statsWork.address(), numStats, updateWork.address(), numUpdate, total, slots.size(),
                    AdafactorSpec.step(config, step));
        }
    }

    /**
     * A heap copy of the state in the format of the CPU {@code dev.rslora.train.Adafactor#snapshot()}
     * (save it with the same state file, or compare it with a CPU run). Waits for all queued work.
     *
     * @return a copy independent of this optimizer, equal in layout to the CPU optimizer's snapshot
     */
    public AdafactorState snapshot() {
        synchronized (backend) {
            buffers.enter();
            List<AdafactorState.Entry> entries = new ArrayList<>(slots.size());
            for (Slot s : slots) {
                AdafactorKernels.Layout l = s.layout();
                entries.add(new AdafactorState.Entry(s.param().name(), s.param().value().shape(),
                        buffers.download(s.row(), l.rows()), buffers.download(s.col(), l.cols()),
                        buffers.download(s.v(), l.count()), buffers.download(s.expAvg(), l.count()),
                        buffers.download(s.master(), l.count())));
            }
            return new AdafactorState(step, config, entries);
        }
    }

    /**
     * Re-reads every f32 master copy from its BF16/F16 parameter, after the caller wrote new parameter
     * values (a load, a merge): without it the next step would update the stale master and overwrite
     * the new values with its rounding. The same name and contract as the CPU
     * {@code dev.rslora.train.Adafactor#reloadMasterWeights()}; parameters without a master (F32, or master
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
     * The hyper-parameters the next step uses.
     *
     * @return the config the next step uses, with the learning rate last set by {@link #setLearningRate}
     */
    public AdafactorConfig config() {
        return config;
    }

    /**
     * Changes the external learning rate from the next step on (for schedules; refused with relative_step).
     *
     * @param lr the new learning rate (finite, ≥ 0)
     * @throws IllegalArgumentException if lr is negative, infinite or NaN
     * @throws IllegalStateException if the config has relative_step on
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
     * Total elements over all parameters (the apply kernel's global index space).
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

    /** Frees the state, masters, workspaces, table and work lists (not the caller's parameters or gradients), and unpins those. */
    @Override
    public void close() {
        buffers.close();
    }
}
