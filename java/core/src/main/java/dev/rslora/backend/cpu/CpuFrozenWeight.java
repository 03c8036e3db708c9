package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The cpu backend's prepared W [d_out, d_in]: fp32 packings in an arena this object owns (freed by
 * {@link #close()}), and the bias as fp32.
 * <pre>
 *   forward  = transposed panels of W (panels over d_out, K = d_in): tile of Y = X·Wᵀ     packed by prepare
 *   backward = direct panels of W     (panels over d_in,  K = d_out): tile of dX = dY·W    packed by the first
 *                                                                                          call that computes dX
 * </pre>
 * Each packing holds 4 bytes per element of W (padded to whole panels), whatever W's dtype: a
 * layer that only runs forwards (inference), or whose backwards compute no dX (its input needs no
 * gradient), never allocates the second one. Each packing follows the live W on its own, as the
 * reference backend reads it: a call repacks the layout it reads when W (or, for the forward, the
 * bias) was written through its tensor since that layout was packed ({@link Tensor#version()});
 * {@link CpuBackend#merge} repacks the layouts that exist. It also holds the layer's packed adapter
 * ({@link AdapterPanels}), reused while A, B and γ do not change.
 */
final class CpuFrozenWeight implements FrozenWeight {
    private final Tensor weight;
    private final Tensor bias;
    private final Arena arena = Arena.ofShared();
    final int dOut;
    final int dIn;
    /** Y = X·Wᵀ's panels, allocated with this object. */
    final MemorySegment forward;
    /** dX = dY·W's panels, or null until {@link #backwardPanels()} allocates them. */
    MemorySegment backward;
    /** b [d_out] as fp32, zero-padded to panels(d_out)·NR; all zeros without a bias. */
    final float[] biasF32;
    /** W's version stamp when each layout was packed, and the bias's when it was loaded (-1: not yet). */
    private long forwardVersion = -1;
    private long backwardVersion = -1;
    private long biasVersion = -1;
    /** How many times each layout was packed: tests check that a step does not repack, and when dX's is made. */
    int forwardPacks;
    int backwardPacks;
    /** The packed A and B of the adapter last used with this weight. */
    final AdapterPanels adapter = new AdapterPanels();
    private boolean closed;

    CpuFrozenWeight(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
        this.dOut = (int) weight.dim(0);
        this.dIn = (int) weight.dim(1);
        this.forward = arena.allocate(Panels.bytes(dOut, dIn), 64);
        this.biasF32 = new float[Panels.panels(dOut) * MicroKernel.NR];
    }

    /** Whether the forward's layout (or the bias) is older than W's (or the bias's) last write. */
    boolean forwardStale() {
        return weight.version() != forwardVersion || (bias != null && bias.version() != biasVersion);
    }

    /** Whether dX's layout is missing or older than W's last write. */
    boolean backwardStale() {
        return backward == null || weight.version() != backwardVersion;
    }

    /** dX's panels, allocated (not filled) on the first call. */
    MemorySegment backwardPanels() {
        if (backward == null) {
            backward = arena.allocate(Panels.bytes(dIn, dOut), 64);
        }
        return backward;
    }

    /**
     * Records a packing of the forward's layout made from W at {@code weightStamp} (read before
     * W), and loads the bias with its stamp. A write racing with a packing is the caller's race, as
     * with any tensor a call reads.
     */
    void forwardPacked(long weightStamp) {
        if (bias != null) {
            biasVersion = bias.version();
            Convert.load(bias, 0, dOut, biasF32, 0);
        }
        forwardVersion = weightStamp;
        forwardPacks++;
    }

    /** Records a packing of dX's layout made from W at {@code weightStamp}. */
    void backwardPacked(long weightStamp) {
        backwardVersion = weightStamp;
        backwardPacks++;
    }

    /** Bytes of the packings allocated so far (the bias and the adapter's panels not counted). */
    long packedBytes() {
        return forward.byteSize() + (backward == null ? 0 : backward.byteSize());
    }

    @Override
    public Tensor weight() {
        return weight;
    }

    @Override
    public Tensor bias() {
        return bias;
    }

    void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the prepared weight " + weight.shapeString() + " is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            arena.close();
            adapter.close();
        }
    }
}
