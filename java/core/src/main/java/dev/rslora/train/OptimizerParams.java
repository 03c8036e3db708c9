package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Overlap;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The parameter bookkeeping the CPU optimizers ({@link AdamW}, {@link Adafactor}) share: the
 * parameters in state order (names unique), with master weights an fp32 master copy of each
 * BF16/F16 parameter, the off-heap arena that holds the masters and the optimizer's own state, and
 * the closed flag. An optimizer keeps only its update and its state tensors (allocated in
 * {@link #arena()}), indexed like {@link #param(int)}.
 */
final class OptimizerParams implements AutoCloseable {
    private final List<Parameter> params;
    private final Arena arena;
    private final Tensor[] masters;  // [i]: F32 master of parameter i, or null (F32 parameter or no master weights)
    private boolean closed;

    /**
     * Checks {@code params} (not empty; per parameter in order: its name unused so far, its value
     * writable, then {@code check}) and then allocates the arena and the masters.
     *
     * @param optimizer     the optimizer's name for the error message, e.g. "AdamW"
     * @param params        the parameters, in the order of the state
     * @param masterWeights whether BF16/F16 parameters get an fp32 master copy of their current value
     * @param check         the optimizer's own check of one parameter (throws IllegalArgumentException)
     */
    OptimizerParams(String optimizer, List<Parameter> params, boolean masterWeights, Consumer<Parameter> check) {
        if (params == null || params.isEmpty()) {
            throw new IllegalArgumentException(optimizer + " needs at least one parameter, got " + (params == null ? "null" : "none"));
        }
        Set<String> names = new HashSet<>();
        for (int i = 0; i < params.size(); i++) {
            Parameter p = params.get(i);
            if (p == null) {
                throw new IllegalArgumentException(optimizer + ": parameter " + i + " of the list is null");
            }
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + p.name() + "'");
            }
            if (p.value().isReadOnly()) {
                // else step() would fail on it midway, after updating the parameters before it
                throw new IllegalArgumentException("parameter '" + p.name() + "': its value " + p.value().shapeString()
                        + " is read-only (e.g. a view of a memory-mapped adapter file) and " + optimizer
                        + " updates values in place; train a writable copy");
            }
            check.accept(p);
        }
        checkDisjoint(params);
        this.params = List.copyOf(params);
        this.arena = Arena.ofShared();
        this.masters = new Tensor[params.size()];
        for (int i = 0; i < masters.length; i++) {
            Tensor value = this.params.get(i).value();
            if (masterWeights && value.dtype() != DType.F32) {
                masters[i] = value.to(arena, DType.F32);
            }
        }
    }

    /**
     * Refuses two parameters whose tensors share memory (the same value twice would be updated twice
     * per step; a value that is another's gradient would change that gradient mid-step; a shared
     * gradient would be clipped twice). Once, at construction, by {@link Overlap#find} over the
     * values and gradients in order (value 0, grad 0, value 1, …): the message names the later
     * parameter of the first clash and the earlier one it shares memory with.
     */
    private static void checkDisjoint(List<Parameter> params) {
        List<Tensor> tensors = new ArrayList<>(2 * params.size());
        for (Parameter p : params) {
            tensors.add(p.value());
            tensors.add(p.grad());
        }
        Optional<Overlap> clash = Overlap.find(tensors);
        if (clash.isPresent()) {
            int later = clash.get().second();
            int earlier = clash.get().first();
            throw new IllegalArgumentException("parameter '" + params.get(later / 2).name() + "': its " + role(later)
                    + " shares memory with the " + role(earlier) + " of parameter '" + params.get(earlier / 2).name()
                    + "'; each parameter needs its own value and gradient tensors");
        }
    }

    /** "value" or "grad": what entry i of the list of {@link #checkDisjoint} is. */
    private static String role(int i) {
        return i % 2 == 0 ? "value" : "grad";
    }

    /** The arena of the masters, for the optimizer's state; closed by {@link #close()}. */
    Arena arena() {
        return arena;
    }

    int size() {
        return params.size();
    }

    Parameter param(int i) {
        return params.get(i);
    }

    /** The fp32 master of parameter i, or null. */
    Tensor master(int i) {
        return masters[i];
    }

    /** The tensor the update of parameter i is applied to: its master if it has one, else its value. */
    Tensor target(int i) {
        return masters[i] != null ? masters[i] : params.get(i).value();
    }

    /** After an update: parameter i becomes the (nearest-even) rounding of its master, if it has one. */
    void roundToParam(int i) {
        if (masters[i] != null) {
            params.get(i).value().copyFrom(masters[i]);
        }
    }

    /** The parameters, in order (a new list). */
    List<Parameter> parameters() {
        return new ArrayList<>(params);
    }

    /** The global 2-norm of all gradients (see {@link GradClip}). */
    double gradNorm() {
        checkUsable();
        return GradClip.globalNorm(grads());
    }

    /** Clips all gradients to global 2-norm {@code maxNorm} (see {@link GradClip}); returns the norm before clipping. */
    double clipGradNorm(double maxNorm) {
        checkUsable();
        return GradClip.clipGlobalNorm(grads(), maxNorm);
    }

    private List<Tensor> grads() {
        List<Tensor> g = new ArrayList<>(params.size());
        for (Parameter p : params) {
            g.add(p.grad());
        }
        return g;
    }

    /** Re-reads every master copy from its 16-bit parameter (after the caller wrote new parameter values). */
    void reloadMasterWeights() {
        checkUsable();
        for (int i = 0; i < masters.length; i++) {
            if (masters[i] != null) {
                masters[i].copyFrom(params.get(i).value());
            }
        }
    }

    /** A heap copy of master i, or null when it has none. */
    float[] masterArray(int i) {
        return toArray(masters[i]);
    }

    /** Refuses a restored state of {@code count} parameters unless it matches this optimizer's. */
    void checkEntryCount(int count) {
        if (count != params.size()) {
            throw new IllegalArgumentException("state has " + count + " parameters, this optimizer " + params.size());
        }
    }

    /**
     * Refuses state entry i unless it names parameter i, has its shape, and has a master exactly
     * when parameter i has one.
     */
    void checkEntry(int i, String name, long[] shape, boolean hasMaster) {
        Parameter p = params.get(i);
        if (!name.equals(p.name())) {
            throw new IllegalArgumentException("state parameter " + i + " is '" + name + "', expected '" + p.name() + "'");
        }
        if (!p.value().sameShape(shape)) {
            throw new IllegalArgumentException("state parameter '" + name + "' has shape " + Arrays.toString(shape)
                    + ", the parameter " + p.value().shapeString());
        }
        boolean keeps = masters[i] != null;
        if (hasMaster != keeps) {
            throw new IllegalArgumentException("state parameter '" + name + "' " + (hasMaster ? "has" : "lacks")
                    + " master weights but this optimizer " + (keeps ? "keeps them" : "keeps none"));
        }
    }

    /** Sets master i to {@code values} and parameter i to its rounding; nothing when it has no master. */
    void restoreMaster(int i, float[] values) {
        if (masters[i] != null) {
            fromArray(masters[i], values);
            params.get(i).value().copyFrom(masters[i]);
        }
    }

    /** A heap copy of F32 tensor {@code t}, or null when t is null. */
    static float[] toArray(Tensor t) {
        if (t == null) {
            return null;
        }
        if (t.numel() > Tensor.MAX_ARRAY) {
            throw new IllegalStateException("tensor " + t.shapeString() + " too large for a heap snapshot");
        }
        float[] a = new float[(int) t.numel()];
        MemorySegment.copy(t.readOnlySegment(), DType.LE_FLOAT, 0, a, 0, a.length);
        return a;
    }

    /** Writes {@code a} into F32 tensor {@code t}; nothing when t is null. */
    static void fromArray(Tensor t, float[] a) {
        if (t != null) {
            MemorySegment.copy(a, 0, t.segment(), DType.LE_FLOAT, 0, a.length);
        }
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException("optimizer is closed");
        }
    }

    /**
     * {@link #checkOpen()}, and refuses parameters whose memory was freed (the model or layer that owns them closed
     * before the optimizer), naming the first such parameter, before anything reads or writes them: the JDK's own
     * "Already closed" would come from deep inside an update, naming nothing, after earlier parameters had moved.
     */
    void checkUsable() {
        checkOpen();
        for (Parameter p : params) {
            boolean value = p.value().readOnlySegment().scope().isAlive();
            if (!value || !p.grad().readOnlySegment().scope().isAlive()) {
                throw new IllegalStateException("parameter '" + p.name() + "': its " + (value ? "gradient" : "value")
                        + " tensor's memory is freed (the model or layer that owns it was closed): close the optimizer "
                        + "before the model, or build a new one over the new model's parameters");
            }
        }
    }

    /** {@link #checkUsable()}, and every gradient finite ({@link FiniteGrads}): what a step checks before it writes. */
    void checkSteppable() {
        checkUsable();
        FiniteGrads.require(params);
    }

    /** Frees the masters and the optimizer's state (idempotent). */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
        }
    }
}
