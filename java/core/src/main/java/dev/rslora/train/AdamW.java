package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

import static dev.rslora.train.OptimizerParams.fromArray;
import static dev.rslora.train.OptimizerParams.toArray;

/**
 * AdamW with the semantics of {@code torch.optim.AdamW} (decoupled weight decay, bias-corrected
 * moments, eps added to the corrected √v). For step t = 1, 2, … and every parameter p with
 * gradient g (any dtype; computed in fp32):
 *
 * <pre>
 *   p ← p·(1 − lr·λ)
 *   m ← β1·m + (1−β1)·g                 v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
 * </pre>
 *
 * (exact fp32 operation order in {@link AdamWScalar}). The moments m, v are fp32 and off-heap in an
 * arena this optimizer owns ({@link #close()} frees it). With master weights, a BF16/F16
 * parameter gets an fp32 master copy: the update applies to the master and the parameter
 * becomes its rounded (nearest-even) copy, so small updates are not lost to 16-bit rounding.
 * F32 parameters are updated in place. This differs from PyTorch for 16-bit parameters on purpose:
 * {@code torch.optim.AdamW} keeps no master copy and allocates m and v in the parameter's dtype
 * ({@code zeros_like(param)}), rounding after every tensor op; here m and v are always fp32 and a
 * parameter without a master is rounded once per step. For F32 parameters the two agree.
 * F32 updates use the Vector API when the {@code jdk.incubator.vector} module is present
 * (bit-identical to the scalar loop; force the scalar loop with {@code -Drslora.train.scalar=true}).
 *
 * <p>Gradients are read, never cleared. One thread at a time.
 */
public final class AdamW implements Optimizer {
    /** Set to true to force the scalar update loop (for comparison). */
    public static final String SCALAR_PROPERTY = "rslora.train.scalar";

    private static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !Boolean.getBoolean(SCALAR_PROPERTY);

    /** Parameter i's moments: m, v [shape of p] F32. */
    private record Slot(Tensor m, Tensor v) {
    }

    private final OptimizerParams params;  // parameters, masters, the arena of the moments, closed
    private final List<Slot> slots;
    private AdamWConfig config;
    private long step;

    /**
     * AdamW over {@code params} with fp32 master weights for every BF16/F16 parameter.
     *
     * @param params the parameters to update, in the order of the state (names unique, not empty)
     * @param config the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is empty, names a parameter twice, has a read-only value, or two
     *                                  parameters share memory
     */
    public AdamW(List<Parameter> params, AdamWConfig config) {
        this(params, config, true);
    }

    /**
     * AdamW over {@code params} (names must be unique). With {@code masterWeights}, each BF16/F16
     * parameter gets an fp32 master copy initialised from its current value; without, 16-bit
     * parameters are updated in fp32 and rounded back each step.
     *
     * @param params        the parameters to update, in the order of the state (not empty)
     * @param config        the hyper-parameters of the first step
     * @param masterWeights whether BF16/F16 parameters get an fp32 master copy (F32 ones never need one)
     * @throws IllegalArgumentException if params is empty, names a parameter twice, has a read-only value, or two
     *                                  parameters share memory
     */
    public AdamW(List<Parameter> params, AdamWConfig config, boolean masterWeights) {
        this.config = Objects.requireNonNull(config, "config");
        this.params = new OptimizerParams("AdamW", params, masterWeights, p -> { });
        Arena arena = this.params.arena();
        List<Slot> s = new ArrayList<>(params.size());
        for (Parameter p : params) {
            long[] shape = p.value().shape();
            s.add(new Slot(Tensor.allocate(arena, DType.F32, shape), Tensor.allocate(arena, DType.F32, shape)));
        }
        this.slots = List.copyOf(s);
    }

    /** Takes one AdamW step (t ← t + 1) from the current gradients. */
    @Override
    public void step() {
        params.checkSteppable();
        step++;
        AdamWCoefficients c = AdamWCoefficients.of(config, step);
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            Tensor target = params.target(i);
            Tensor grad = params.param(i).grad();
            // heap tensors take the scalar loop (the same arithmetic): see VectorAccess
            if (VECTOR && target.dtype() == DType.F32 && grad.dtype() == DType.F32 && VectorAccess.ok(target)
                    && VectorAccess.ok(grad)) {
                AdamWVector.update(target, grad, s.m(), s.v(), c);
            } else {
                AdamWScalar.update(target, grad, s.m(), s.v(), c, 0, target.numel());
            }
            params.roundToParam(i);
        }
    }

    /** The global 2-norm of all gradients (see {@link GradClip}). */
    @Override
    public double gradNorm() {
        return params.gradNorm();
    }

    /** Clips all gradients to global 2-norm {@code maxNorm} (see {@link GradClip}); returns the norm before clipping. */
    @Override
    public double clipGradNorm(double maxNorm) {
        return params.clipGradNorm(maxNorm);
    }

    /** Re-reads every master copy from its 16-bit parameter (after the caller wrote new parameter values). */
    public void reloadMasterWeights() {
        params.reloadMasterWeights();
    }

    /**
     * A heap copy of the state (step, config, m, v, master weights).
     *
     * @return a copy independent of this optimizer (later steps do not change it)
     */
    public AdamWState snapshot() {
        params.checkOpen();
        List<AdamWState.Entry> entries = new ArrayList<>(slots.size());
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            entries.add(new AdamWState.Entry(params.param(i).name(), s.m().shape(), toArray(s.m()), toArray(s.v()),
                    params.masterArray(i)));
        }
        return new AdamWState(step, config, entries);
    }

    /**
     * Restores a snapshot taken from an optimizer over the same parameters (same names, order,
     * shapes and master-weight layout). A parameter with master weights is set to its rounded
     * master; other parameter values are left alone (restore them yourself).
     *
     * @param state a snapshot of an optimizer over the same parameters; its step count and config
     *              become this optimizer's
     * @throws IllegalArgumentException if state is null, or the names, order, shapes or state layout differ
     *                                  (nothing is changed then)
     */
    public void restore(AdamWState state) {
        if (state == null) {
            throw new IllegalArgumentException("AdamW.restore: state is null");
        }
        params.checkUsable();
        List<AdamWState.Entry> entries = state.entries();
        params.checkEntryCount(entries.size());
        for (int i = 0; i < slots.size(); i++) {
            AdamWState.Entry e = entries.get(i);
            params.checkEntry(i, e.name(), e.shape(), e.master() != null);
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdamWState.Entry e = entries.get(i);
            fromArray(s.m(), e.m());
            fromArray(s.v(), e.v());
            params.restoreMaster(i, e.master());
        }
        this.step = state.step();
        this.config = state.config();
    }

    /**
     * Writes {@link #snapshot()} to {@code file} (format: {@link AdamWStateFile}).
     *
     * @param file the state file to write; replaced atomically if it exists
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if file is null
     */
    public void save(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("AdamW.save: file is null");
        }
        AdamWStateFile.write(snapshot(), file);
    }

    /**
     * Reads a state file written by {@link #save} and {@link #restore}s it.
     *
     * @param file a state file written by {@link #save} for the same parameters
     * @throws IOException if the file cannot be read or is not a valid AdamW state file
     * @throws IllegalArgumentException if file is null, or the state does not fit this optimizer's parameters
     */
    public void load(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("AdamW.load: file is null");
        }
        restore(AdamWStateFile.read(file));
    }

    /** Steps taken so far. */
    @Override
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

    /** Changes the learning rate from the next step on (for schedules). */
    @Override
    public void setLearningRate(double lr) {
        params.checkOpen();
        this.config = config.withLr(lr);
    }

    /** The parameters, in order. */
    @Override
    public List<Parameter> parameters() {
        return params.parameters();
    }

    /**
     * Whether the F32 update loop uses the Vector API in this JVM.
     *
     * @return true when {@code jdk.incubator.vector} is in the boot layer (else a scalar loop runs)
     */
    public static boolean vectorized() {
        return VECTOR;
    }

    @Override
    public void close() {
        params.close();
    }
}
