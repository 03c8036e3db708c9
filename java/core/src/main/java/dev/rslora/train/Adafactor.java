package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorSpec;
import dev.rslora.optim.AdafactorState;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

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
    private record Slot(Parameter param, Tensor row, Tensor col, Tensor v, Tensor expAvg, Tensor master) {
        Tensor target() {
            return master != null ? master : param.value();
        }
    }

    private final Arena arena = Arena.ofShared();
    private final List<Slot> slots;
    private final float[] scratch;
    private final FlatSum sum = new FlatSum();
    private AdafactorConfig config;
    private long step;
    private boolean closed;

    /**
     * Adafactor over {@code params} with fp32 master weights for every BF16/F16 parameter.
     *
     * @param params the parameters to update, in the order of the state (names unique, not empty)
     * @param config the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is empty or names a parameter twice
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
     * @throws IllegalArgumentException if params is empty or names a parameter twice
     */
    public Adafactor(List<Parameter> params, AdafactorConfig config, boolean masterWeights) {
        this.config = Objects.requireNonNull(config, "config");
        if (params.isEmpty()) {
            throw new IllegalArgumentException("Adafactor needs at least one parameter");
        }
        Set<String> names = new HashSet<>();
        List<Slot> s = new ArrayList<>(params.size());
        long largest = 0;
        for (Parameter p : params) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + p.name() + "'");
            }
            long n = p.value().numel();
            if (n < 1 || n > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("parameter " + p.name() + " " + p.value().shapeString()
                        + " must have between 1 and " + (Integer.MAX_VALUE - 8) + " elements");
            }
            largest = Math.max(largest, n);
            long[] shape = p.value().shape();
            Tensor row = null;
            Tensor col = null;
            Tensor v = null;
            if (AdafactorState.Entry.factored(shape)) {
                row = Tensor.allocate(arena, DType.F32, Arrays.copyOf(shape, shape.length - 1));
                long[] colShape = Arrays.copyOf(shape, shape.length - 1);
                colShape[colShape.length - 1] = shape[shape.length - 1];
                col = Tensor.allocate(arena, DType.F32, colShape);
            } else {
                v = Tensor.allocate(arena, DType.F32, shape);
            }
            Tensor m = config.usesFirstMoment() ? Tensor.allocate(arena, DType.F32, shape) : null;
            Tensor master = masterWeights && p.value().dtype() != DType.F32 ? p.value().to(arena, DType.F32) : null;
            s.add(new Slot(p, row, col, v, m, master));
        }
        this.slots = List.copyOf(s);
        this.scratch = new float[(int) largest];
    }

    /** Takes one Adafactor step (t ← t + 1) from the current gradients. */
    @Override
    public void step() {
        checkOpen();
        step++;
        AdafactorSpec.Step st = AdafactorSpec.step(config, step);
        for (Slot s : slots) {
            AdafactorUpdate.step(AdafactorUpdate.slot(s.target(), s.param().grad(), s.row(), s.col(), s.v(), s.expAvg()), st,
                    scratch, sum);
            if (s.master() != null) {
                s.param().value().copyFrom(s.master());
            }
        }
    }

    @Override
    public double gradNorm() {
        checkOpen();
        return GradClip.globalNorm(grads());
    }

    @Override
    public double clipGradNorm(double maxNorm) {
        checkOpen();
        return GradClip.clipGlobalNorm(grads(), maxNorm);
    }

    private List<Tensor> grads() {
        List<Tensor> g = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            g.add(s.param().grad());
        }
        return g;
    }

    /** Re-reads every master copy from its 16-bit parameter (after the caller wrote new parameter values). */
    public void reloadMasterWeights() {
        checkOpen();
        for (Slot s : slots) {
            if (s.master() != null) {
                s.master().copyFrom(s.param().value());
            }
        }
    }

    /**
     * A heap copy of the state (step, config, second and first moments, master weights).
     *
     * @return a copy independent of this optimizer (later steps do not change it)
     */
    public AdafactorState snapshot() {
        checkOpen();
        List<AdafactorState.Entry> entries = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            entries.add(new AdafactorState.Entry(s.param().name(), s.param().value().shape(), toArray(s.row()), toArray(s.col()),
                    toArray(s.v()), toArray(s.expAvg()), toArray(s.master())));
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
     * @throws IllegalArgumentException if the names, order, shapes or state layout differ (nothing is
     *                                  changed then)
     */
    public void restore(AdafactorState state) {
        checkOpen();
        List<AdafactorState.Entry> entries = state.entries();
        if (entries.size() != slots.size()) {
            throw new IllegalArgumentException("state has " + entries.size() + " parameters, this optimizer " + slots.size());
        }
        if (state.config().usesFirstMoment() != config.usesFirstMoment()) {
            throw new IllegalArgumentException("state has beta1=" + state.config().beta1() + " but this optimizer beta1="
                    + config.beta1() + " (the first-moment state must match)");
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdafactorState.Entry e = entries.get(i);
            if (!e.name().equals(s.param().name())) {
                throw new IllegalArgumentException("state parameter " + i + " is '" + e.name() + "', expected '"
                        + s.param().name() + "'");
            }
            if (!s.param().value().sameShape(e.shape())) {
                throw new IllegalArgumentException("state parameter '" + e.name() + "' has shape " + Arrays.toString(e.shape())
                        + ", the parameter " + s.param().value().shapeString());
            }
            if ((e.master() != null) != (s.master() != null)) {
                throw new IllegalArgumentException("state parameter '" + e.name() + "' " + (e.master() != null ? "has" : "lacks")
                        + " master weights but this optimizer " + (s.master() != null ? "keeps them" : "keeps none"));
            }
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdafactorState.Entry e = entries.get(i);
            fromArray(s.row(), e.expAvgSqRow());
            fromArray(s.col(), e.expAvgSqCol());
            fromArray(s.v(), e.expAvgSq());
            fromArray(s.expAvg(), e.expAvg());
            if (s.master() != null) {
                fromArray(s.master(), e.master());
                s.param().value().copyFrom(s.master());
            }
        }
        this.step = state.step();
        this.config = state.config();
    }

    /**
     * Writes {@link #snapshot()} to {@code file} (format: {@link AdafactorStateFile}).
     *
     * @param file the state file to write; replaced atomically if it exists
     * @throws IOException if the file cannot be written
     */
    public void save(Path file) throws IOException {
        AdafactorStateFile.write(snapshot(), file);
    }

    /**
     * Reads a state file written by {@link #save} and {@link #restore}s it.
     *
     * @param file a state file written by {@link #save} for the same parameters
     * @throws IOException if the file cannot be read or is not a valid Adafactor state file
     * @throws IllegalArgumentException if the state does not fit this optimizer's parameters
     */
    public void load(Path file) throws IOException {
        restore(AdafactorStateFile.read(file));
    }

    private static float[] toArray(Tensor t) {
        if (t == null) {
            return null;
        }
        float[] a = new float[(int) t.numel()];
        MemorySegment.copy(t.segment(), DType.LE_FLOAT, 0, a, 0, a.length);
        return a;
    }

    private static void fromArray(Tensor t, float[] a) {
        if (t != null) {
            MemorySegment.copy(a, 0, t.segment(), DType.LE_FLOAT, 0, a.length);
        }
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
        this.config = config.withLr(lr);
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> p = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            p.add(s.param());
        }
        return p;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("optimizer is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
