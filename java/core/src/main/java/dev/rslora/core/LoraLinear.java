package dev.rslora.core;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendChecks;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A linear layer with a LoRA adapter: {@code Y = X·Wᵀ + b + γ·B(A·D(X))}, W and b frozen.
 *
 * <pre>
 *   W [d_out, d_in] frozen (borrowed: the caller owns it; merge() writes into it)
 *   b [d_out]       frozen, optional (borrowed)
 *   A [r, d_in], B [d_out, r]  trainable, owned by this layer (dtype F32 by default, as PEFT)
 *   γ = α/√r (rsLoRA, default) or α/r (LoRA), from {@link LoraConfig#gamma()}
 * </pre>
 *
 * <p>Training step: {@link #forward(Tensor, Tensor)} then {@link #backward(Tensor, Tensor)}; the
 * caller keeps X alive between the two (the layer keeps only U = D(X)·Aᵀ [N, r]). The dropout mask
 * is a function of (seed, step, layer id, row, column): each training forward uses the next
 * step, and its backward regenerates the same mask. Gradients dA, dB are assigned or accumulated
 * ({@link #setGradMode}); {@link #zeroGrad()} clears them.
 *
 * <p>{@link #disableAdapter()} (PEFT's {@code disable_adapter()}) makes the layer its base path only,
 * {@code Y = X·Wᵀ + b} exactly, without a second copy of the model: the reference pass of DPO.
 *
 * <p>Ownership: the layer owns a shared arena holding A, B, their gradients and U; {@link #close()}
 * frees it. One thread at a time may call a layer (checked: a concurrent call throws), {@link #close()}
 * included: closing while another thread is inside a call throws instead of freeing the memory that
 * call is using.
 */
public final class LoraLinear implements AutoCloseable {
    private final LoraConfig config;
    private final int layerId;
    private final Backend backend;
    private final FrozenWeight frozen;
    private final Arena arena = Arena.ofShared();
    private final Tensor a;
    private final Tensor b;
    private final Tensor gradA;
    private final Tensor gradB;
    private final AtomicReference<Thread> user = new AtomicReference<>();

    private Tensor u;              // [capacity, r] F32, reused across steps
    private Tensor savedX;         // the X of the last forward (borrowed)
    private LoraParams savedParams;
    /** A's version stamp when the last forward (or backward) finished: the A that U = D(X)·Aᵀ was computed from. */
    private long savedAVersion;
    private long savedXVersion;    // X's stamp after the last forward: dA reads X again in backward
    private long savedWVersion;    // W's stamp after the last forward: dX = dY·W must read the W that gave Y
    /** Copies of A and B as merge() added them to W (allocated at the first merge): what unmerge() subtracts. */
    private Tensor mergedA;
    private Tensor mergedB;
    /** A's and B's stamps after the merge: a write to either while merged leaves W holding the old adapter. */
    private long mergedAVersion;
    private long mergedBVersion;
    private long nextStep;
    private boolean training = true;
    private boolean merged;
    private boolean adapterEnabled = true;
    private volatile boolean closed;
    private GradMode gradMode = GradMode.ASSIGN;

    private LoraLinear(Tensor weight, Tensor bias, LoraConfig config, DType adapterDType, Backend backend, int layerId) {
        checkWeight(weight, bias);
        long dOut = weight.dim(0);
        long dIn = weight.dim(1);
        this.config = Objects.requireNonNull(config, "config");
        Objects.requireNonNull(adapterDType, "adapterDType");
        this.layerId = layerId;
        this.backend = Objects.requireNonNull(backend, "backend");
        try {  // the arena holds off-heap memory until closed: a failed construction must not leak it
            try {
                this.a = Tensor.allocate(arena, adapterDType, config.rank(), dIn);
                this.b = Tensor.allocate(arena, adapterDType, dOut, config.rank());
                this.gradA = Tensor.allocate(arena, adapterDType, config.rank(), dIn);
                this.gradB = Tensor.allocate(arena, adapterDType, dOut, config.rank());
            } catch (OutOfMemoryError e) {  // malloc refused (off-heap: -Xmx would not help)
                throw new IllegalArgumentException("r=" + config.rank() + " needs A [" + config.rank() + ", " + dIn + "], B ["
                        + dOut + ", " + config.rank() + "] and their gradients in " + adapterDType + ", "
                        + adapterBytes(config.rank(), dIn, dOut, adapterDType) + ", which could not be allocated off the Java heap"
                        + " (the machine's free memory or a ulimit/container limit bounds it, not -Xmx: " + e.getMessage() + ")", e);
            }
            this.frozen = backend.prepare(weight, bias);
        } catch (RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /** The bytes of A, B and their gradients, in words when they pass 2^63 − 1. */
    private static String adapterBytes(long r, long dIn, long dOut, DType dtype) {
        try {
            return Math.multiplyExact(Math.multiplyExact(2L * dtype.byteSize(), r), Math.addExact(dIn, dOut)) + " bytes";
        } catch (ArithmeticException e) {
            return "over 2^63 bytes";
        }
    }

    /**
     * A new adapter over the frozen {@code weight} [d_out, d_in] and optional {@code bias} [d_out]:
     * A initialised per {@code config.init()} from {@code config.seed()} and the layer id, B = 0,
     * so the layer starts as exactly the base layer.
     *
     * @param weight       the frozen W [d_out, d_in] (borrowed: must outlive the layer; prepared by the backend)
     * @param bias         the frozen bias [d_out], or null for none
     * @param config       r, α, scaling, dropout, initialisation and seed
     * @param adapterDType the dtype of A, B and their gradients (F32, BF16 or F16)
     * @param backend      the backend that runs forward and backward
     * @param layerId      this layer's id: seeds A's initialisation with config.seed() and enters the
     *                     dropout mask's counter, so give each layer of a model its own
     * @return the new layer, in training mode with its adapter enabled
     * @throws IllegalArgumentException if W is not 2-D, has an empty dimension, or the bias does not match it; or
     *                                  A, B and their gradients cannot be allocated (naming r and the bytes)
     */
    public static LoraLinear create(Tensor weight, Tensor bias, LoraConfig config, DType adapterDType,
                                    Backend backend, int layerId) {
        LoraLinear layer = new LoraLinear(weight, bias, config, adapterDType, backend, layerId);
        layer.initA();
        return layer;
    }

    /**
     * {@link #create} with F32 adapters and layer id 0.
     *
     * @param weight the frozen W [d_out, d_in] (borrowed)
     * @param bias   the frozen bias [d_out], or null
     * @param config r, α, scaling, dropout, initialisation and seed
     * @param backend the backend that runs forward and backward
     * @return the new layer
     */
    public static LoraLinear create(Tensor weight, Tensor bias, LoraConfig config, Backend backend) {
        return create(weight, bias, config, DType.F32, backend, 0);
    }

    /**
     * A layer with the given adapter weights (copied): A [r, d_in], B [d_out, r], r = config.rank().
     *
     * @param weight  the frozen W [d_out, d_in] (borrowed)
     * @param bias    the frozen bias [d_out], or null
     * @param loraA   A [r, d_in]; its dtype becomes the adapter dtype
     * @param loraB   B [d_out, r], any dtype (converted)
     * @param config  r (must match A and B), α, scaling, dropout and seed (init is unused)
     * @param backend the backend that runs forward and backward
     * @param layerId this layer's dropout id
     * @return the new layer
     * @throws IllegalArgumentException if a shape does not match, or the memory of lora_A or lora_B was freed (its
     *                                  arena closed) or is confined to another thread (naming which); checked before
     *                                  anything is allocated
     */
    public static LoraLinear withAdapter(Tensor weight, Tensor bias, Tensor loraA, Tensor loraB, LoraConfig config,
                                         Backend backend, int layerId) {
        checkWeight(weight, bias);
        Objects.requireNonNull(config, "config");
        // checked before the layer allocates its adapter and the backend prepares W
        requireShape("lora_A", loraA, new long[] {config.rank(), weight.dim(1)});
        requireShape("lora_B", loraB, new long[] {weight.dim(0), config.rank()});
        BackendChecks.usable("lora_A", loraA);
        BackendChecks.usable("lora_B", loraB);
        LoraLinear layer = new LoraLinear(weight, bias, config, loraA.dtype(), backend, layerId);
        try {
            layer.a.copyFrom(loraA);
            layer.b.copyFrom(loraB);
        } catch (RuntimeException | Error e) {
            layer.close();  // the layer holds off-heap A, B, their gradients and the backend's copy of W
            throw e;
        }
        return layer;
    }

    private void initA() {
        SplittableRandom rng = new SplittableRandom(config.seed() * 0x9E3779B97F4A7C15L + layerId);
        long dIn = a.dim(1);
        double bound = 1.0 / Math.sqrt(dIn);
        double std = 1.0 / config.rank();
        for (long i = 0; i < a.numel(); i++) {
            double v = switch (config.init()) {
                case DEFAULT -> rng.nextDouble(-bound, bound);
                case GAUSSIAN -> std * gaussian(rng);
            };
            a.set(i, (float) v);
        }
    }

    private static double gaussian(SplittableRandom rng) {
        // Box–Muller; one normal per call keeps the stream simple and reproducible.
        double u1 = 1.0 - rng.nextDouble();
        double u2 = rng.nextDouble();
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }

    /**
     * Forward: {@code Y = X·Wᵀ + b + γ·U·Bᵀ} with {@code U = D(X)·Aᵀ}. X [N, d_in] and Y [N, d_out]
     * are caller-owned; X must stay alive until {@link #backward}. In training mode with p &gt; 0
     * each call advances the dropout step. A merged layer computes the base output only; so does a
     * layer with its adapter disabled ({@code Y = X·Wᵀ + b}, the dropout step not advanced).
     *
     * @param x the input X [N, d_in], N ≥ 1 (borrowed until the next backward)
     * @param y the output Y [N, d_out], overwritten; must not share memory with X, W, b, A or B
     * @throws IllegalArgumentException if a shape does not match, y aliases an input, or the backend refuses the
     *                                  batch (the cpu backend's limits); a refused forward leaves the last one for
     *                                  {@link #backward} and does not advance the dropout step
     * @throws IllegalStateException if the layer is closed or used by two threads at once, merged and A or B
     *                               was written since the merge (W holds the adapter as merged), or a training
     *                               forward with dropout would advance the step past Long.MAX_VALUE
     */
    public void forward(Tensor x, Tensor y) {
        enter();
        try {
            int n = checkRows("x", x, dIn());
            requireShape("y", y, new long[] {n, dOut()});
            BackendChecks.disjoint("y", y, "x", x);
            BackendChecks.disjoint("y", y, "weight", frozen.weight());
            BackendChecks.disjoint("y", y, "bias", frozen.bias());
            BackendChecks.disjoint("y", y, "lora_A", a);
            BackendChecks.disjoint("y", y, "lora_B", b);
            if (merged && (a.version() != mergedAVersion || b.version() != mergedBVersion)) {
                // W holds γ·B·A of the merge: the output would silently be that of the old adapter
                throw new IllegalStateException("lora_A or lora_B was written after merge(): W holds the adapter as"
                        + " merged; unmerge() (which subtracts what merge() added) and merge() again");
            }
            LoraParams p = params(n, nextStep);
            if (p.adapterActive() && training && config.dropout() > 0 && nextStep == Long.MAX_VALUE) {
                throw new IllegalStateException("dropout step " + nextStep + " is the last one: this forward could not advance it"
                        + " (setStep a smaller step); nothing was computed");
            }
            Tensor uBefore = u;
            Tensor uView = null;
            if (p.adapterActive()) {
                uView = uFor(n);
            }
            try {
                backend.forward(p, frozen, x, a, b, uView, y);
            } catch (RuntimeException | Error e) {
                // refused (a batch past the cpu backend's limits): the last forward's U and step stay what backward reads
                u = uBefore;
                throw e;
            }
            if (p.adapterActive() && training && config.dropout() > 0) {
                nextStep++;  // a disabled adapter draws no mask (PEFT does not call its dropout)
            }
            savedX = x;
            savedParams = p;
            savedAVersion = a.version();
            savedXVersion = x.version();
            savedWVersion = frozen.weight().version();
        } finally {
            exit();
        }
    }

    /**
     * Whether the last forward read {@code x} (the same tensor object): what {@link #backward} will
     * differentiate. A caller that keeps its own input buffer (the model's heap-array API) checks with
     * this that no other forward of this layer ran in between.
     *
     * @param x a tensor
     * @return true when a forward ran and its X was {@code x}
     */
    public boolean lastForwardRead(Tensor x) {
        return x != null && savedX == x;
    }

    /**
     * Forward into a new Y [N, d_out] of X's dtype allocated in {@code arena}.
     *
     * @param outArena the arena that owns Y
     * @param x        the input X [N, d_in]
     * @return Y [N, d_out]
     * @throws IllegalArgumentException if outArena is null, or X is not [N, d_in] (checked before Y is allocated)
     */
    public Tensor forward(Arena outArena, Tensor x) {
        if (outArena == null) {
            throw new IllegalArgumentException("LoraLinear.forward: outArena is null");
        }
        int n = checkRows("x", x, dIn());
        Tensor y = Tensor.allocate(outArena, x.dtype(), n, dOut());
        forward(x, y);
        return y;
    }

    /**
     * Backward of the last forward (same X, same dropout mask):
     * {@code dX = dY·W + γ·D'(V·A)} (assigned; skipped when dx is null),
     * {@code dA (=|+=) γ·Vᵀ·D(X)}, {@code dB (=|+=) γ·dYᵀ·U} with {@code V = dY·B}. After a forward
     * with the adapter disabled: {@code dX = dY·W} and dA, dB (=|+=) 0 (set to zero in assign mode,
     * left alone in accumulate mode).
     *
     * @param dy the upstream gradient dY [N, d_out], N as in the last forward
     * @param dx receives dX [N, d_in] (assigned), or null when the input needs no gradient; must not share
     *           memory with dY, the forward's X, W, A, B, dA or dB
     * @throws IllegalStateException if no forward ran, the adapter is merged, A was written (through its
     *                               tensor's write paths, see {@link Tensor#version()}) since that forward (its U
     *                               is stale; B may change: the backward then is that of the current A and B),
     *                               the forward's X was written (the same way) since, while the adapter is active
     *                               (dA reads X again), W was written since while dx is not null (dX reads W),
     *                               or the layer is closed
     * @throws IllegalArgumentException if a shape does not match, or dx aliases an input or a gradient
     */
    public void backward(Tensor dy, Tensor dx) {
        enter();
        try {
            if (savedParams == null) {
                throw new IllegalStateException("backward called before forward (or after merge()/unmerge() changed W)");
            }
            if (merged) {
                throw new IllegalStateException("the adapter is merged into W: unmerge() before training");
            }
            int n = savedParams.n();
            requireShape("grad_y", dy, new long[] {n, dOut()});
            if (dx != null) {
                requireShape("grad_x", dx, new long[] {n, dIn()});
            }
            BackendChecks.disjoint("grad_x", dx, "grad_y", dy);
            BackendChecks.disjoint("grad_x", dx, "x (of the forward)", savedX);
            BackendChecks.disjoint("grad_x", dx, "weight", frozen.weight());
            BackendChecks.disjoint("grad_x", dx, "lora_A", a);
            BackendChecks.disjoint("grad_x", dx, "lora_B", b);
            BackendChecks.disjoint("grad_x", dx, "grad_A", gradA);
            BackendChecks.disjoint("grad_x", dx, "grad_B", gradB);
            BackendChecks.disjoint("grad_A", gradA, "grad_y", dy);
            BackendChecks.disjoint("grad_B", gradB, "grad_y", dy);
            if (dx != null && frozen.weight().version() != savedWVersion) {
                // dX = dY·W with a W that did not give Y is the gradient of no function (PyTorch refuses the same for
                // a weight modified in place); dA and dB do not read W, so a backward without dX may go on
                throw new IllegalStateException("the base weight W was written after the forward this backward would"
                        + " differentiate (set, fill or copyFrom on it, or a merge() by another layer sharing it): dX would"
                        + " use the new W; run forward again, or pass dx = null");
            }
            if (!savedParams.adapterActive()) {
                // the forward ran with the adapter disabled: dX = dY·W, and A, B received no gradient
                if (dx != null) {
                    backend.backward(savedParams, frozen, savedX, null, null, null, dy, dx, null, null);
                }
                if (gradMode == GradMode.ASSIGN) {
                    clearGrads();
                }
                return;
            }
            if (a.version() != savedAVersion) {
                // U = D(X)·Aᵀ holds the old A: dB = γ·dYᵀ·U from it and dX from the new A would be the gradient of no
                // function (PyTorch refuses the same: "modified by an inplace operation"). B may change: nothing
                // saved depends on it, and the backward is then that of the current A and B.
                throw new IllegalStateException("lora_A was written after the forward this backward would differentiate"
                        + " (an optimizer step or a load between forward and backward?): its U is stale; run forward again");
            }
            if (savedX.version() != savedXVersion) {
                // U = D(X)·Aᵀ holds the old X while dA = γ·Vᵀ·D(X) would read the new one (PyTorch refuses the same)
                throw new IllegalStateException("x was written after the forward this backward would differentiate"
                        + " (its buffer reused for the next batch?): dA would mix the new X with the U of the old;"
                        + " run forward again");
            }
            LoraParams p = new LoraParams(n, dIn(), dOut(), config.rank(), savedParams.gamma(), savedParams.dropout(),
                    savedParams.seed(), savedParams.step(), layerId, savedParams.training(), true, gradMode);
            backend.backward(p, frozen, savedX, a, b, uFor(n), dy, dx, gradA, gradB);
            savedAVersion = a.version();  // a backend that reads A, X or W through segment() bumps its stamp
            savedXVersion = savedX.version();
            savedWVersion = frozen.weight().version();
        } finally {
            exit();
        }
    }

    /**
     * Runs {@link #merge()}'s checks and writes nothing: on the {@code reference} and {@code cpu} backends every
     * merged element is computed and checked, as merge does before it writes ({@link Backend#checkMerge}); the
     * {@code cuda} backend checks the arguments here and the elements in merge. A model merging all its layers
     * runs this on every layer first ({@code LoraModel.merge}).
     *
     * @throws IllegalStateException    as {@link #merge()}: already merged, the adapter disabled, the layer closed
     * @throws IllegalArgumentException as {@link #merge()}: a merged element that would not be finite in W's dtype
     */
    public void checkMerge() {
        enter();
        try {
            requireMergeable();
            backend.checkMerge(frozen, a, b, config.gamma(), +1);
        } finally {
            exit();
        }
    }

    /** merge()'s and checkMerge()'s state checks: not merged yet, the adapter enabled. */
    private void requireMergeable() {
        if (merged) {
            throw new IllegalStateException("already merged");
        }
        if (!adapterEnabled) {
            throw new IllegalStateException("the adapter is disabled: enable it before merging");
        }
    }

    /**
     * W ← round(W + γ·B·A); afterwards forward is the base layer alone (as PEFT's merge). The layer keeps a
     * copy of this A and B for {@link #unmerge()}.
     *
     * @throws IllegalStateException if already merged, the adapter is disabled, or the layer is closed
     * @throws IllegalArgumentException if W is read-only (e.g. memory-mapped from a checkpoint), or a merged element
     *                                  would not be finite in W's dtype (W + γ·B·A beyond F16's range, say: it would
     *                                  be stored as ±Infinity, which unmerge could not undo; the message names the
     *                                  element, its value and the dtype); W is then unchanged and the layer unmerged
     */
    public void merge() {
        enter();
        try {
            requireMergeable();
            if (mergedA == null) {
                mergedA = Tensor.allocate(arena, a.dtype(), a.shape());
                mergedB = Tensor.allocate(arena, b.dtype(), b.shape());
            }
            mergedA.copyFrom(a);
            mergedB.copyFrom(b);
            backend.merge(frozen, a, b, config.gamma(), +1);
            merged = true;
            mergedAVersion = a.version();  // after the backend: one that reads A or B through segment() bumps them
            mergedBVersion = b.version();
            forgetForward();
        } finally {
            exit();
        }
    }

    /**
     * W ← round(W − γ·B·A) with the A and B that {@link #merge()} added, undoing it up to rounding even when
     * A or B was written while merged.
     *
     * @throws IllegalStateException if not merged, or the layer is closed
     * @throws IllegalArgumentException if an unmerged element would not be finite in W's dtype (as {@link #merge()});
     *                                  W is then unchanged and the layer stays merged
     */
    public void unmerge() {
        enter();
        try {
            if (!merged) {
                throw new IllegalStateException("not merged");
            }
            backend.merge(frozen, mergedA, mergedB, config.gamma(), -1);
            merged = false;
            forgetForward();
        } finally {
            exit();
        }
    }

    /** The last forward read a W that merge/unmerge has since changed: its backward would use the wrong W. */
    private void forgetForward() {
        savedX = null;
        savedParams = null;
    }

    /**
     * Sets dA and dB to zero.
     *
     * @throws IllegalStateException if the layer is closed, or used by another thread at the same time (a backward
     *                               writing the gradients)
     */
    public void zeroGrad() {
        enter();
        try {
            clearGrads();
        } finally {
            exit();
        }
    }

    private void clearGrads() {
        gradA.segment().fill((byte) 0);
        gradB.segment().fill((byte) 0);
    }

    private LoraParams params(int n, long step) {
        return new LoraParams(n, dIn(), dOut(), config.rank(), config.gamma(), (float) config.dropout(), config.seed(),
                step, layerId, training, !merged && adapterEnabled, gradMode);
    }

    private Tensor uFor(int n) {
        if (u == null || u.dim(0) < n) {
            u = Tensor.allocate(arena, DType.F32, n, config.rank());
        }
        if (u.dim(0) == n) {
            return u;
        }
        return Tensor.wrap(u.segment().asSlice(0, (long) n * config.rank() * 4), DType.F32, n, config.rank());
    }

    private void enter() {
        if (closed) {
            throw new IllegalStateException("layer is closed");
        }
        claim("");
        if (closed) {  // closed by another thread between the check above and the claim
            exit();
            throw new IllegalStateException("layer is closed");
        }
    }

    /** Takes the one-thread-at-a-time claim, or throws naming both threads ({@code what}: this thread's call, or ""). */
    private void claim(String what) {
        Thread me = Thread.currentThread();
        if (!user.compareAndSet(null, me)) {
            Thread other = user.get();  // null if it left since the claim failed: the message must not throw
            if (other == me) {
                throw new IllegalStateException("LoraLinear called from inside one of its own calls on thread " + me.getName()
                        + (what.isEmpty() ? "" : " (" + what.substring(2) + ")") + ": a layer's calls do not nest");
            }
            throw new IllegalStateException("LoraLinear used by two threads at once (" + (other == null ? "another thread"
                    : other.getName()) + " and " + me.getName() + what + "): one thread at a time");
        }
    }

    private void exit() {
        user.set(null);
    }

    /** W 2-D with both dimensions in [1, 2^31), the bias [d_out] or null (IllegalArgumentException naming the shape). */
    private static void checkWeight(Tensor weight, Tensor bias) {
        checkMatrix("weight", weight);
        if (weight.dim(0) < 1 || weight.dim(1) < 1 || weight.dim(0) > Integer.MAX_VALUE || weight.dim(1) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("weight shape " + weight.shapeString() + " must be [d_out, d_in] with both in [1, "
                    + Integer.MAX_VALUE + "]");
        }
        if (bias != null && !(bias.rank() == 1 && bias.dim(0) == weight.dim(0))) {
            throw new IllegalArgumentException("bias shape " + bias.shapeString() + " does not match weight "
                    + weight.shapeString() + ": expected [" + weight.dim(0) + "]");
        }
    }

    private static void checkMatrix(String name, Tensor t) {
        if (t == null || t.rank() != 2) {
            throw new IllegalArgumentException(name + " must be 2-D, got " + (t == null ? "null" : t.shapeString()));
        }
    }

    private static int checkRows(String name, Tensor t, int cols) {
        checkMatrix(name, t);
        if (t.dim(1) != cols || t.dim(0) < 1 || t.dim(0) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(name + " shape " + t.shapeString() + " must be [N, " + cols + "] with N >= 1");
        }
        return (int) t.dim(0);
    }

    private static void requireShape(String name, Tensor t, long[] expected) {
        if (t == null || !t.sameShape(expected)) {
            throw new IllegalArgumentException(name + " shape " + (t == null ? "null" : t.shapeString())
                    + " must be " + java.util.Arrays.toString(expected));
        }
    }

    /**
     * The hyper-parameters r, α, scaling, dropout, init and seed.
     *
     * @return the config this layer was built with
     */
    public LoraConfig config() {
        return config;
    }

    /**
     * γ = α/√r (rsLoRA) or α/r (LoRA).
     *
     * @return the factor of the adapter term
     */
    public double gamma() {
        return config.gamma();
    }

    /**
     * d_in, the columns of W and A.
     *
     * @return the input width
     */
    public int dIn() {
        return frozen.dIn();
    }

    /**
     * d_out, the rows of W and B.
     *
     * @return the output width
     */
    public int dOut() {
        return frozen.dOut();
    }

    /**
     * The dropout layer id (part of the mask's counter).
     *
     * @return the id given at construction
     */
    public int layerId() {
        return layerId;
    }

    /**
     * The backend this layer runs on.
     *
     * @return the backend given at construction
     */
    public Backend backend() {
        return backend;
    }

    /**
     * Trainable A [r, d_in] (live view: an optimizer updates it in place).
     *
     * @return A, owned by this layer (valid until {@link #close()})
     */
    public Tensor loraA() {
        return a;
    }

    /**
     * Trainable B [d_out, r] (live view).
     *
     * @return B, owned by this layer (valid until {@link #close()})
     */
    public Tensor loraB() {
        return b;
    }

    /**
     * dA [r, d_in], written by {@link #backward}.
     *
     * @return the gradient of A, in the adapter dtype, owned by this layer
     */
    public Tensor gradA() {
        return gradA;
    }

    /**
     * dB [d_out, r], written by {@link #backward}.
     *
     * @return the gradient of B, in the adapter dtype, owned by this layer
     */
    public Tensor gradB() {
        return gradB;
    }

    /**
     * The frozen W [d_out, d_in] (borrowed).
     *
     * @return the caller's W (holding γ·B·A too while merged)
     */
    public Tensor weight() {
        return frozen.weight();
    }

    /**
     * The frozen bias [d_out], or null.
     *
     * @return the caller's bias, or null when the layer has none
     */
    public Tensor bias() {
        return frozen.bias();
    }

    /**
     * Whether the layer is in training mode.
     *
     * @return true in training mode (dropout applied), false in eval mode
     */
    public boolean isTraining() {
        return training;
    }

    /**
     * Training mode applies dropout; eval mode does not.
     *
     * @param on true for training mode, false for eval mode
     * @throws IllegalStateException if the layer is closed, or used by another thread at the same time
     */
    public void train(boolean on) {
        enter();
        try {
            this.training = on;
        } finally {
            exit();
        }
    }

    /**
     * Whether {@link #close()} was called: every other method then refuses.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed;
    }

    /**
     * Whether γ·B·A is merged into W ({@link #merge()}).
     *
     * @return true between merge() and unmerge()
     */
    public boolean isMerged() {
        return merged;
    }

    /**
     * Whether forward adds the adapter term.
     *
     * @return true unless {@link #disableAdapter()} or {@link #setAdapterEnabled}(false) turned it off
     */
    public boolean isAdapterEnabled() {
        return adapterEnabled;
    }

    /**
     * Enables or disables the adapter (PEFT's {@code enable_adapters} / {@code disable_adapters}):
     * disabled, forward is the base layer {@code Y = X·Wᵀ + b} exactly. Refused while merged (the
     * base weight then holds the adapter; unmerge first).
     *
     * @param on true to add the adapter term, false for the base layer alone
     * @throws IllegalStateException if the layer is closed or used by another thread at the same time, or disabling
     *                               while merged
     */
    public void setAdapterEnabled(boolean on) {
        enter();
        try {
            if (!on && merged) {
                throw new IllegalStateException("the adapter is merged into W: unmerge() before disabling it");
            }
            this.adapterEnabled = on;
        } finally {
            exit();
        }
    }

    /**
     * Disables the adapter until the returned scope is closed, which restores the previous state
     * (PEFT's {@code with model.disable_adapter():}); for the reference log-probs of DPO:
     * <pre>{@code try (var off = layer.disableAdapter()) { layer.forward(x, yRef); }}</pre>
     *
     * @return a scope whose close() re-enables the adapter if it was enabled before
     * @throws IllegalStateException if the layer is closed or merged
     */
    public AdapterScope disableAdapter() {
        boolean before = adapterEnabled;
        setAdapterEnabled(false);
        return () -> setAdapterEnabled(before);
    }

    /** The scope of {@link #disableAdapter()}; closing it restores the previous adapter state. */
    @FunctionalInterface
    public interface AdapterScope extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Whether backward assigns or accumulates dA and dB.
     *
     * @return ASSIGN (the default) or ACCUMULATE
     */
    public GradMode gradMode() {
        return gradMode;
    }

    /**
     * Sets whether backward assigns (default) or accumulates dA and dB.
     *
     * @param mode ASSIGN, or ACCUMULATE for gradient accumulation over micro-batches (not null)
     * @throws IllegalStateException if the layer is closed, or used by another thread at the same time
     */
    public void setGradMode(GradMode mode) {
        Objects.requireNonNull(mode, "mode");
        enter();
        try {
            this.gradMode = mode;
        } finally {
            exit();
        }
    }

    /**
     * The dropout step the next training forward will use.
     *
     * @return the step, 0 for a new layer; advanced by each training forward with dropout
     */
    public long step() {
        return nextStep;
    }

    /**
     * Sets the dropout step of the next training forward (to resume a run reproducibly; a whole model's
     * steps are saved and restored by {@code LoraModel.saveDropoutSteps} / {@code loadDropoutSteps}).
     *
     * @param step the step a saved run had reached ({@link #step()}), ≥ 0
     * @throws IllegalArgumentException if step is negative
     * @throws IllegalStateException if the layer is closed, or used by another thread at the same time
     */
    public void setStep(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("dropout step " + step + " is negative (a layer starts at 0 and counts up)");
        }
        enter();
        try {
            this.nextStep = step;
        } finally {
            exit();
        }
    }

    /**
     * Frees A, B, their gradients, U and the backend's prepared W; a second close does nothing. Takes the
     * same one-thread-at-a-time claim as every other call, so it never frees memory another thread's call
     * is using: it throws instead, and the caller closes once that call has returned.
     *
     * @throws IllegalStateException if another thread is inside a call of this layer (naming both threads);
     *                               the layer then stays open
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        claim(", closing it");
        try {
            if (!closed) {
                closed = true;
                frozen.close();
                arena.close();
            }
        } finally {
            exit();
        }
    }
}
