package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * One layer problem (shapes, dtype, dropout, grad mode, seed) with fresh random inputs in a
 * shared arena, and the outputs of one backend's forward + backward on it. Outputs are poisoned
 * with NaN before each call; in ACCUMULATE mode dA and dB start from random values instead.
 */
final class LayerFixture implements AutoCloseable {
    final Arena arena = Arena.ofShared();
    final int n;
    final int dIn;
    final int dOut;
    final int r;
    final DType dtype;
    final LoraParams params;
    final long seed;
    final Tensor x;
    final Tensor w;
    final Tensor bias;
    final Tensor a;
    final Tensor b;
    final Tensor dy;
    /** Initial dA, dB for ACCUMULATE (random), null for ASSIGN. */
    final Tensor gradA0;
    final Tensor gradB0;

    LayerFixture(int n, int dIn, int dOut, int r, DType dtype, float dropout, GradMode mode, boolean withBias,
                 long seed) {
        this.n = n;
        this.dIn = dIn;
        this.dOut = dOut;
        this.r = r;
        this.dtype = dtype;
        this.seed = seed;
        SplittableRandom rng = new SplittableRandom(seed);
        double gamma = 2.0 / Math.sqrt(r) * (0.5 + rng.nextDouble());
        this.params = new LoraParams(n, dIn, dOut, r, gamma, dropout, rng.nextLong(), rng.nextInt(1000),
                rng.nextInt(64), true, true, mode);
        this.x = random(rng, dtype, 1.0, n, dIn);
        this.w = random(rng, dtype, 1.0 / Math.sqrt(dIn), dOut, dIn);
        this.bias = withBias ? random(rng, dtype, 1.0, dOut) : null;
        this.a = random(rng, dtype, 1.0 / Math.sqrt(dIn), r, dIn);
        this.b = random(rng, dtype, 1.0, dOut, r);
        this.dy = random(rng, dtype, 1.0, n, dOut);
        if (mode == GradMode.ACCUMULATE) {
            this.gradA0 = random(rng, dtype, 1.0, r, dIn);
            this.gradB0 = random(rng, dtype, 1.0, dOut, r);
        } else {
            this.gradA0 = null;
            this.gradB0 = null;
        }
    }

    /** Uniform values in ±scale, never all zeros. */
    Tensor random(SplittableRandom rng, DType t, double scale, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        for (long i = 0; i < out.numel(); i++) {
            out.set(i, (float) (scale * rng.nextDouble(-1, 1)));
        }
        return out;
    }

    Tensor poisoned(DType t, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        out.fill(Float.NaN);
        return out;
    }

    /** The outputs of one backend on this problem. */
    record Outputs(Tensor y, Tensor u, Tensor dx, Tensor gradA, Tensor gradB) {
    }

    /** Forward then backward through {@code backend}, outputs freshly poisoned. */
    Outputs run(Backend backend) {
        try (FrozenWeight fw = backend.prepare(w, bias)) {
            Tensor y = poisoned(dtype, n, dOut);
            Tensor u = poisoned(DType.F32, n, r);
            backend.forward(params, fw, x, a, b, u, y);
            Tensor dx = poisoned(dtype, n, dIn);
            Tensor gA = poisoned(dtype, r, dIn);
            Tensor gB = poisoned(dtype, dOut, r);
            if (gradA0 != null) {
                gA.copyFrom(gradA0);
                gB.copyFrom(gradB0);
            }
            backend.backward(params, fw, x, a, b, u, dy, dx, gA, gB);
            return new Outputs(y, u, dx, gA, gB);
        }
    }

    String describe() {
        return "n=" + n + " dIn=" + dIn + " dOut=" + dOut + " r=" + r + " " + dtype + " p=" + params.dropout()
                + " " + params.gradMode() + " bias=" + (bias != null) + " seed=" + seed;
    }

    @Override
    public void close() {
        arena.close();
    }
}
