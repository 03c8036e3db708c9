package dev.rslora.bench;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * One LoRA layer training step on a host backend, with seeded random inputs, shared by the
 * CPU benchmarks. Shapes: X [n, d_in], W [d_out, d_in] (+ bias), A [r, d_in], B [d_out, r],
 * dY [n, d_out]; γ = 16/√r (α = 16, rsLoRA); dropout p on the LoRA input. X, W, the bias, dY, Y and
 * dX are in the dtype {@code t} (F32, or BF16 for a bf16 model); A, B, U and the adapter gradients
 * stay F32, as PEFT keeps a bf16 model's adapter weights.
 *
 * <p>A training step ({@link #lora}) first marks A and B written, as the optimizer's update after
 * the previous step does (its cost is not timed: only the write's effect on the backend). Without
 * that, the cpu backend would pack its copies of A and B once and reuse them in every measured
 * step (it repacks only when their {@link Tensor#version()} moves), which a real training step
 * never can. The forward-only steps are inference, where A and B do not change between calls.
 */
final class LayerStep implements AutoCloseable {
    private final Arena arena = Arena.ofShared();
    private final Backend backend;
    private final FrozenWeight weight;
    private final LoraParams lora;
    private final LoraParams base;
    private final LoraParams decode;
    private final Tensor x, a, b, u, y, dy, dx, gradA, gradB;

    LayerStep(Backend backend, int n, int dIn, int dOut, int r, float dropout) {
        this(backend, n, dIn, dOut, r, dropout, DType.F32);
    }

    LayerStep(Backend backend, int n, int dIn, int dOut, int r, float dropout, DType t) {
        this.backend = backend;
        SplittableRandom rng = new SplittableRandom(42);
        weight = backend.prepare(random(rng, t, dOut, dIn), random(rng, t, dOut));
        x = random(rng, t, n, dIn);
        a = random(rng, DType.F32, r, dIn);
        b = random(rng, DType.F32, dOut, r);
        dy = random(rng, t, n, dOut);
        u = Tensor.allocate(arena, DType.F32, n, r);
        y = Tensor.allocate(arena, t, n, dOut);
        dx = Tensor.allocate(arena, t, n, dIn);
        gradA = Tensor.allocate(arena, DType.F32, r, dIn);
        gradB = Tensor.allocate(arena, DType.F32, dOut, r);
        double gamma = 16.0 / Math.sqrt(r);
        lora = new LoraParams(n, dIn, dOut, r, gamma, dropout, 7L, 0L, 0, true, true, GradMode.ASSIGN);
        base = new LoraParams(n, dIn, dOut, r, gamma, dropout, 7L, 0L, 0, true, false, GradMode.ASSIGN);
        // decoding is inference: eval mode, so dropout never applies to the forward-only steps
        decode = new LoraParams(n, dIn, dOut, r, gamma, dropout, 7L, 0L, 0, false, true, GradMode.ASSIGN);
    }

    private Tensor random(SplittableRandom rng, DType dtype, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rng.nextDouble(-1, 1));
        }
        return t;
    }

    /**
     * One training step: A and B marked written (the previous step's optimizer update), forward
     * (Y, U) and backward (dX, dA, dB) with the adapter active; returns a sum of outputs to consume.
     */
    float lora() {
        a.markWritten();
        b.markWritten();
        backend.forward(lora, weight, x, a, b, u, y);
        backend.backward(lora, weight, x, a, b, u, dy, dx, gradA, gradB);
        return y.get(0) + dx.get(0) + gradA.get(0) + gradB.get(0);
    }

    /** The frozen base alone: forward with the adapter off, backward computing dX only. */
    float base() {
        backend.forward(base, weight, x, null, null, null, y);
        backend.backward(base, weight, x, null, null, null, dy, dx, null, null);
        return y.get(0) + dx.get(0);
    }

    /**
     * Forward only with the adapter active, in eval mode (decoding): Y = X·Wᵀ + b + γ·U·Bᵀ with
     * U = X·Aᵀ [n, r]; returns Y[0] to consume.
     */
    float loraForward() {
        backend.forward(decode, weight, x, a, b, u, y);
        return y.get(0);
    }

    /** Forward only with the adapter off (the frozen base decoding): Y = X·Wᵀ + b; returns Y[0] to consume. */
    float baseForward() {
        backend.forward(base, weight, x, null, null, null, y);
        return y.get(0);
    }

    @Override
    public void close() {
        weight.close();
        arena.close();
    }
}
