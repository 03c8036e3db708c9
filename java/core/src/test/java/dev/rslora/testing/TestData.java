package dev.rslora.testing;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/** Seeded random test tensors (never zeros) and NaN poisoning, shared by the numeric tests. */
public final class TestData {
    private TestData() {
    }

    /** Uniform in [-scale, scale) rounded to {@code dtype}, from {@code rng}. */
    public static Tensor uniform(Arena arena, DType dtype, SplittableRandom rng, double scale, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rng.nextDouble(-scale, scale));
        }
        return t;
    }

    /** Small integers in [-k, k] (exact in every dtype for k ≤ 256). */
    public static Tensor integers(Arena arena, DType dtype, SplittableRandom rng, int k, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, rng.nextInt(-k, k + 1));
        }
        return t;
    }

    /** Fills with NaN so an output that a backend forgets to write is caught. */
    public static Tensor poison(Tensor t) {
        t.fill(Float.NaN);
        return t;
    }

    /** A fresh NaN-filled tensor. */
    public static Tensor poisoned(Arena arena, DType dtype, long... shape) {
        return poison(Tensor.allocate(arena, dtype, shape));
    }
}
