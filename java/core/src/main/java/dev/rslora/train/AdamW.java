package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

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
 * F32 parameters are updated in place. F32 updates use the Vector API when the
 * {@code jdk.incubator.vector} module is present (bit-identical to the scalar loop; force the
 * scalar loop with {@code -Drslora.train.scalar=true}).
 *
 * <p>Gradients are read, never cleared. One thread at a time.
 */
public final class AdamW implements Optimizer {
    /** Set to true to force the scalar update loop (for comparison). */
    public static final String SCALAR_PROPERTY = "rslora.train.scalar";

    private static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !Boolean.getBoolean(SCALAR_PROPERTY);

    /** One parameter's optimizer state: m, v [shape of p] F32, master F32 or null. */
    private record Slot(Parameter param, Tensor m, Tensor v, Tensor master) {
        /** The tensor the update is applied to. */
        Tensor target() {
            return master != null ? master : param.value();
        }
    }

    private final Arena arena = Arena.ofShared();
    private final List<Slot> slots;
    private AdamWConfig config;
    private long step;
    private boolean closed;

    /**
     * AdamW over {@code params} with fp32 master weights for every BF16/F16 parameter.
     *
     * @param params the parameters to update, in the order of the state (names unique, not empty)
     * @param config the hyper-parameters of the first step
     * @throws IllegalArgumentException if params is empty or names a parameter twice
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
     * @throws IllegalArgumentException if params is empty or names a parameter twice
     */
    public AdamW(List<Parameter> params, AdamWConfig config, boolean masterWeights) {
        this.config = Objects.requireNonNull(config, "config");
        if (params.isEmpty()) {
            throw new IllegalArgumentException("AdamW needs at least one parameter");
        }
        Set<String> names = new HashSet<>();
        List<Slot> s = new ArrayList<>(params.size());
        for (Parameter p : params) {
            if (!names.add(p.name())) {
                throw new IllegalArgumentException("duplicate parameter name '" + p.name() + "'");
            }
            long[] shape = p.value().shape();
            Tensor master = null;
            if (masterWeights && p.value().dtype() != DType.F32) {
                master = p.value().to(arena, DType.F32);
            }
            s.add(new Slot(p, Tensor.allocate(arena, DType.F32, shape), Tensor.allocate(arena, DType.F32, shape), master));
        }
        this.slots = List.copyOf(s);
    }

    /** Takes one AdamW step (t ← t + 1) from the current gradients. */
    @Override
    public void step() {
        checkOpen();
        step++;
        AdamWCoefficients c = AdamWCoefficients.of(config, step);
        for (Slot s : slots) {
            Tensor target = s.target();
            Tensor grad = s.param().grad();
            if (VECTOR && target.dtype() == DType.F32 && grad.dtype() == DType.F32) {
                AdamWVector.update(target, grad, s.m(), s.v(), c);
            } else {
                AdamWScalar.update(target, grad, s.m(), s.v(), c, 0, target.numel());
            }
            if (s.master() != null) {
                s.param().value().copyFrom(s.master());
            }
        }
    }

    /** The global 2-norm of all gradients (see {@link GradClip}). */
    @Override
    public double gradNorm() {
        checkOpen();
        return GradClip.globalNorm(grads());
    }

    /** Clips all gradients to global 2-norm {@code maxNorm} (see {@link GradClip}); returns the norm before clipping. */
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
     * A heap copy of the state (step, config, m, v, master weights).
     *
     * @return a copy independent of this optimizer (later steps do not change it)
     */
    public AdamWState snapshot() {
        checkOpen();
        List<AdamWState.Entry> entries = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            entries.add(new AdamWState.Entry(s.param().name(), s.m().shape(), toArray(s.m()), toArray(s.v()),
                    s.master() == null ? null : toArray(s.master())));
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
     * @throws IllegalArgumentException if the names, order, shapes or state layout differ (nothing is
     *                                  changed then)
     */
    public void restore(AdamWState state) {
        checkOpen();
        List<AdamWState.Entry> entries = state.entries();
        if (entries.size() != slots.size()) {
            throw new IllegalArgumentException("state has " + entries.size() + " parameters, this optimizer " + slots.size());
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdamWState.Entry e = entries.get(i);
            if (!e.name().equals(s.param().name())) {
                throw new IllegalArgumentException("state parameter " + i + " is '" + e.name() + "', expected '"
                        + s.param().name() + "'");
            }
            if (!s.m().sameShape(e.shape())) {
                throw new IllegalArgumentException("state parameter '" + e.name() + "' has shape "
                        + java.util.Arrays.toString(e.shape()) + ", the parameter " + s.m().shapeString());
            }
            if ((e.master() != null) != (s.master() != null)) {
                throw new IllegalArgumentException("state parameter '" + e.name() + "' " + (e.master() != null ? "has" : "lacks")
                        + " master weights but this optimizer " + (s.master() != null ? "keeps" : "keeps none"));
            }
        }
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            AdamWState.Entry e = entries.get(i);
            fromArray(s.m(), e.m());
            fromArray(s.v(), e.v());
            if (s.master() != null) {
                fromArray(s.master(), e.master());
                s.param().value().copyFrom(s.master());
            }
        }
        this.step = state.step();
        this.config = state.config();
    }

    /**
     * Writes {@link #snapshot()} to {@code file} (format: {@link AdamWStateFile}).
     *
     * @param file the state file to write; replaced atomically if it exists
     * @throws IOException if the file cannot be written
     */
    public void save(Path file) throws IOException {
        AdamWStateFile.write(snapshot(), file);
    }

    /**
     * Reads a state file written by {@link #save} and {@link #restore}s it.
     *
     * @param file a state file written by {@link #save} for the same parameters
     * @throws IOException if the file cannot be read or is not a valid AdamW state file
     * @throws IllegalArgumentException if the state does not fit this optimizer's parameters
     */
    public void load(Path file) throws IOException {
        restore(AdamWStateFile.read(file));
    }

    private static float[] toArray(Tensor t) {
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor " + t.shapeString() + " too large for a heap snapshot");
        }
        float[] a = new float[(int) t.numel()];
        MemorySegment.copy(t.segment(), DType.LE_FLOAT, 0, a, 0, a.length);
        return a;
    }

    private static void fromArray(Tensor t, float[] a) {
        MemorySegment.copy(a, 0, t.segment(), DType.LE_FLOAT, 0, a.length);
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
        this.config = config.withLr(lr);
    }

    /** The parameters, in order. */
    @Override
    public List<Parameter> parameters() {
        List<Parameter> p = new ArrayList<>(slots.size());
        for (Slot s : slots) {
            p.add(s.param());
        }
        return p;
    }

    /**
     * Whether the F32 update loop uses the Vector API in this JVM.
     *
     * @return true when {@code jdk.incubator.vector} is in the boot layer (else a scalar loop runs)
     */
    public static boolean vectorized() {
        return VECTOR;
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
