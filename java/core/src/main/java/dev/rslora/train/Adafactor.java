package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorSpec;
import dev.rslora.optim.AdafactorState;
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
 * Adafactor with the semantics of {@code transformers.optimization.Adafactor}: for parameters of
 * rank ≥ 2 ([..., R, C]) the second moment is factored into running row and column means of
 * grad² + eps1 (R + C numbers per matrix instead of R·C), rank 0/1 parameters keep a full one;
 * β2_t = 1 − t^decay_rate; the update is divided by max(1, RMS(update)/clip_threshold); optional
 * first moment (beta1), weight decay, and the {@code scale_parameter} / {@code relative_step} /
 * {@code warmup_init} step sizes (see {@link AdafactorConfig}). The exact fp32 arithmetic and the
 * (double) reduction order are those of {@link AdafactorSpec}, shared with the fused CUDA kernels.
 *
 * <p>State is fp32, off-heap, in an arena this optimizer owns ({@link #close()} frees it). With
 * master weights (the default), a BF16/F16 parameter gets an fp32 master copy: RMS(p) and the update
 * use the master and the parameter becomes its nearest-even rounding. Without, a 16-bit parameter is
 * widened, updated in fp32 and rounded back each step, which is what Hugging Face does.
 *
 * <p>Gradients are read, never cleared. One thread at a time.
 */
public final class Adafactor implements Optimizer {
    /** Parameter i's own state: row and column means (factored) or full v, and the first moment (or null). */
    private record Slot(Tensor row, Tensor col, Tensor v, Tensor expAvg) {
    }

    private final OptimizerParams params;  // parameters, masters, the arena of the state, closed
    private final List<Slot> slots;
    private final float[] scratch;
    private final FlatSum sum = new FlatSum();
    private AdafactorConfig config;
    private long step;

    /**
     * Adafactor over {@code params} with fp32 master weights for every BF16/F16 parameter.
     *
     * @param params the parameters to update, in the order of the state (names unique, not empty)
     * @param config the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is empty, names a parameter twice, has a read-only value, or two
     *                                  parameters share memory
     */
    public Adafactor(List<Parameter> params, AdafactorConfig config) {
        this(params, config, true);
    }

    /**
     * Adafactor over {@code params} (names unique, every parameter with at least one element). With
     * {@code masterWeights}, each BF16/F16 parameter gets an fp32 master copy of its current value.
     *
     * @param params        the parameters to update, in the order of the state (not empty)
     * @param config        the hyper-parameters of the first step
     * @param masterWeights whether BF16/F16 parameters get an fp32 master copy (F32 ones never need one)
     * @throws IllegalArgumentException if params is empty, names a parameter twice, has a read-only value, or two
     *                                  parameters share memory
     */
    public Adafactor(List<Parameter> params, AdafactorConfig config, boolean masterWeights) {
        this.config = Objects.requireNonNull(config, "config");
        this.params = new OptimizerParams("Adafactor", params, masterWeights, p -> {
            long n = p.value().numel();
            if (n < 1 || n > Tensor.MAX_ARRAY) {
                throw new IllegalArgumentException("parameter " + p.name() + " " + p.value().shapeString()
                        + " must have between 1 and " + Tensor.MAX_ARRAY + " elements");
            }
        });
        Arena arena = this.params.arena();
        List<Slot> s = new ArrayList<>(params.size());
        long largest = 0;
        for (Parameter p : params) {
            largest = Math.max(largest, p.value().numel());
            long[] shape = p.value().shape();
            Tensor row = null;
            Tensor col = null;
            Tensor v = null;
            if (AdafactorState.Entry.factored(shape)) {
                row = Tensor.allocate(arena, DType.F32, AdafactorStateFile.rowShape(shape));
                col = Tensor.allocate(arena, DType.F32, AdafactorStateFile.colShape(shape));
            } else {
                v = Tensor.allocate(arena, DType.F32, shape);
            }
            Tensor m = config.usesFirstMoment() ? Tensor.allocate(arena, DType.F32, shape) : null;
            s.add(new Slot(row, col, v, m));
        }
        this.slots = List.copyOf(s);
        this.scratch = new float[(int) largest];
    }

    /** Takes one Adafactor step (t ← t + 1) from the current gradients. */
    @Override
    public void step() {
        params.checkSteppable();
        step++;
        AdafactorSpec.Step st = AdafactorSpec.step(config, step);
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdafactorUpdate.step(AdafactorUpdate.slot(params.target(i), params.param(i).grad(), s.row(), s.col(), s.v(),
                    s.expAvg()), st, scratch, sum);
            params.roundToParam(i);
        }
    }

    @Override
    public double gradNorm() {
        return params.gradNorm();
    }

    @Override
    public double clipGradNorm(double maxNorm) {
        return params.clipGradNorm(maxNorm);
    }

    /** Re-reads every master copy from its 16-bit parameter (after the caller wrote new parameter values). */
    public void reloadMasterWeights() {
        params.reloadMasterWeights();
    }

    /**
     * A heap copy of the state (step, config, second and first moments, master weights).
     *
     * @return a copy independent of this optimizer (later steps do not change it)
     */
    public AdafactorState snapshot() {
        params.checkOpen();
        List<AdafactorState.Entry> entries = new ArrayList<>(slots.size());
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            Parameter p = params.param(i);
            entries.add(new AdafactorState.Entry(p.name(), p.value().shape(), toArray(s.row()), toArray(s.col()),
                    toArray(s.v()), toArray(s.expAvg()), params.masterArray(i)));
        }
        return new AdafactorState(step, config, entries);
    }

    /**
     * Restores a snapshot taken from an optimizer over the same parameters (same names, order,
     * shapes, first-moment and master-weight layout). A parameter with master weights is set to its
     * rounded master; other parameter values are left alone (restore them yourself).
     *
     * @param state a snapshot of an optimizer over the same parameters; its step count and config
     *              become this optimizer's
     * @throws IllegalArgumentException if state is null, or the names, order, shapes or state layout differ
     *                                  (nothing is changed then)
     */
    public void restore(AdafactorState state) {
        if (state == null) {
            throw new IllegalArgumentException("Adafactor.restore: state is null");
        }
        params.checkUsable();
        List<AdafactorState.Entry> entries = state.entries();
        params.checkEntryCount(entries.size());
        if (state.config().usesFirstMoment() != config.usesFirstMoment()) {
            throw new IllegalArgumentException("state has beta1=" + state.config().beta1() + " but this optimizer beta1="
                    + config.beta1() + " (the first-moment state must match)");
        }
        for (int i = 0; i < slots.size(); i++) {
            AdafactorState.Entry e = entries.get(i);
            params.checkEntry(i, e.name(), e.shape(), e.master() != null);
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdafactorState.Entry e = entries.get(i);
            fromArray(s.row(), e.expAvgSqRow());
            fromArray(s.col(), e.expAvgSqCol());
            fromArray(s.v(), e.expAvgSq());
            fromArray(s.expAvg(), e.expAvg());
            params.restoreMaster(i, e.master());
        }
        this.step = state.step();
        this.config = state.config();
    }

    /**
     * Writes {@link #snapshot()} to {@code file} (format: {@link AdafactorStateFile}).
     *
     * @param file the state file to write; replaced atomically if it exists
     * @throws IOException if the file cannot be written
     * @throws IllegalArgumentException if file is null
     */
    public void save(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("Adafactor.save: file is null");
        }
        AdafactorStateFile.write(snapshot(), file);
    }

    /**
     * Reads a state file written by {@link #save} and {@link #restore}s it.
     *
     * @param file a state file written by {@link #save} for the same parameters
     * @throws IOException if the file cannot be read or is not a valid Adafactor state file
     * @throws IllegalArgumentException if file is null, or the state does not fit this optimizer's parameters
     */
    public void load(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("Adafactor.load: file is null");
        }
        restore(AdafactorStateFile.read(file));
    }

    @Override
    public long stepCount() {
        return step;
    }

    /**
     * The hyper-parameters the next step uses.
     *
     * @return the config, with the learning rate last set by {@link #setLearningRate}
     */
    public AdafactorConfig config() {
        return config;
    }

    /**
     * Changes the external learning rate from the next step on (for schedules). Refused with
     * relative_step, whose step size is ρ_t (as in Hugging Face, where the lr is then unused).
     *
     * @param lr the new learning rate (finite, ≥ 0)
     * @throws IllegalStateException if the config has relative_step on
     * @throws IllegalArgumentException if lr is negative, infinite or NaN
     */

    @Override
    public void setLearningRate(double lr) {
        params.checkOpen();
        this.config = config.withLr(lr);
    }

    @Override
    public List<Parameter> parameters() {
        return params.parameters();
    }

    @Override
    public void close() {
        params.close();
    }
}
