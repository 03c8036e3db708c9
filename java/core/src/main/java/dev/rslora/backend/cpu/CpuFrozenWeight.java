package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The cpu backend's prepared W [d_out, d_in]: two fp32 packings in an arena this object owns
 * (freed by {@link #close()}), and the bias as fp32.
 * <pre>
 *   forward  = transposed panels of W (panels over d_out, K = d_in): tile of Y = X·Wᵀ
 *   backward = direct panels of W     (panels over d_in,  K = d_out): tile of dX = dY·W
 * </pre>
 * Filled by {@link CpuBackend#prepare} and refreshed by {@link CpuBackend#merge}, and by the next
 * call after W or the bias was written through its tensor ({@link Tensor#version()} moved since
 * the packing: the copies follow the live W, as the reference backend reads it). It also holds
 * the layer's packed adapter ({@link AdapterPanels}), reused while A, B and γ do not change.
 */
final class CpuFrozenWeight implements FrozenWeight {
    private final Tensor weight;
    private final Tensor bias;
    private final Arena arena = Arena.ofShared();
    final int dOut;
    final int dIn;
    final MemorySegment forward;
    final MemorySegment backward;
    /** b [d_out] as fp32, zero-padded to panels(d_out)·NR; all zeros without a bias. */
    final float[] biasF32;
    /** W's and the bias's version stamps when the packings were made (-1: not yet). */
    private long weightVersion = -1;
    private long biasVersion = -1;
    /** How many times W was packed (prepare, merge, a refresh): tests check that a step does not repack. */
    int packs;
    /** The packed A and B of the adapter last used with this weight. */
    final AdapterPanels adapter = new AdapterPanels();
    private boolean closed;

    CpuFrozenWeight(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
        this.dOut = (int) weight.dim(0);
        this.dIn = (int) weight.dim(1);
        this.forward = arena.allocate(Panels.bytes(dOut, dIn), 64);
        this.backward = arena.allocate(Panels.bytes(dIn, dOut), 64);
        this.biasF32 = new float[Panels.panels(dOut) * MicroKernel.NR];
    }

    /** Whether W or the bias was written since the packings were made. */
    boolean stale() {
        return weight.version() != weightVersion || (bias != null && bias.version() != biasVersion);
    }

    /**
     * Loads the bias and records the stamps: called by the packing, after reading W. A write
     * racing with a packing is the caller's race, as with any tensor a call reads.
     */
    void packed(long weightStamp) {
        if (bias != null) {
            biasVersion = bias.version();
            Convert.load(bias, 0, dOut, biasF32, 0);
        }
        weightVersion = weightStamp;
        packs++;
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
