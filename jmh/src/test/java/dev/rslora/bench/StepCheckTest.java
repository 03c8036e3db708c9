package dev.rslora.bench;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GPU benchmarks' first-step checks, against the reference backend on the CPU. */
class StepCheckTest {
    private static final long SEED = 61L;

    private static Tensor random(Arena arena, SplittableRandom rnd, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) rnd.nextDouble(-1, 1));
        }
        return t;
    }

    @Test
    void rowsOfAReferenceStepPassAndWrongOnesFail() {
        int n = 9;
        int dIn = 11;
        int dOut = 6;
        int r = 3;
        double gamma = 4.0 / Math.sqrt(r);
        float p = 0.25f;
        SplittableRandom rnd = new SplittableRandom(SEED);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = random(arena, rnd, n, dIn);
            Tensor w = random(arena, rnd, dOut, dIn);
            Tensor a = random(arena, rnd, r, dIn);
            Tensor b = random(arena, rnd, dOut, r);
            Tensor dy = random(arena, rnd, n, dOut);
            Tensor u = Tensor.allocate(arena, DType.F32, n, r);
            Tensor y = Tensor.allocate(arena, DType.F32, n, dOut);
            Tensor dx = Tensor.allocate(arena, DType.F32, n, dIn);
            Tensor gA = Tensor.allocate(arena, DType.F32, r, dIn);
            Tensor gB = Tensor.allocate(arena, DType.F32, dOut, r);
            LoraParams params = new LoraParams(n, dIn, dOut, r, gamma, p, 5L, 2L, 1, true, true, GradMode.ASSIGN);
            ReferenceBackend ref = new ReferenceBackend();
            try (FrozenWeight fw = ref.prepare(w, null)) {
                ref.forward(params, fw, x, a, b, u, y);
                ref.backward(params, fw, x, a, b, u, dy, dx, gA, gB);
            }
            DropoutMask mask = new DropoutMask(5L, 2L, 1, p);
            int[] rows = {0, 4, n - 1};
            String ctx = "seed " + SEED;
            assertDoesNotThrow(() -> StepCheck.requireRows(x, w, a, b, dy, gamma, mask, true, y, dx, rows, 1e-5, 1e-6), ctx);
            // the wrong γ, no mask, or the base only: the check must notice
            assertThrows(IllegalStateException.class,
                    () -> StepCheck.requireRows(x, w, a, b, dy, gamma * 1.1, mask, true, y, dx, rows, 1e-5, 1e-6), ctx);
            assertThrows(IllegalStateException.class,
                    () -> StepCheck.requireRows(x, w, a, b, dy, gamma, null, true, y, dx, rows, 1e-5, 1e-6), ctx);
            assertThrows(IllegalStateException.class,
                    () -> StepCheck.requireRows(x, w, a, b, dy, gamma, mask, false, y, dx, rows, 1e-5, 1e-6), ctx);
            dx.set(4, 7, dx.get(4, 7) + 0.5f);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> StepCheck.requireRows(x, w, a, b, dy, gamma, mask, true, y, dx, rows, 1e-5, 1e-6), ctx);
            assertTrue(e.getMessage().contains("dX row 4") && e.getMessage().contains("[4, 7]"), e.getMessage());
        }
    }

    @Test
    void baseRowsPass() {
        SplittableRandom rnd = new SplittableRandom(SEED + 1);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = random(arena, rnd, 5, 7);
            Tensor w = random(arena, rnd, 4, 7);
            Tensor dy = random(arena, rnd, 5, 4);
            Tensor y = Tensor.allocate(arena, DType.F32, 5, 4);
            Tensor dx = Tensor.allocate(arena, DType.F32, 5, 7);
            LoraParams params = new LoraParams(5, 7, 4, 1, 1.0, 0f, 0L, 0L, 0, false, false, GradMode.ASSIGN);
            ReferenceBackend ref = new ReferenceBackend();
            try (FrozenWeight fw = ref.prepare(w, null)) {
                ref.forward(params, fw, x, null, null, null, y);
                ref.backward(params, fw, x, null, null, null, dy, dx, null, null);
            }
            assertDoesNotThrow(() -> StepCheck.requireRows(x, w, null, null, dy, 1.0, null, false, y, dx, new int[] {0, 4},
                    1e-5, 1e-6), "seed " + (SEED + 1));
        }
    }

    @Test
    void nonFiniteOrMostlyZeroOutputsFail() {
        SplittableRandom rnd = new SplittableRandom(SEED + 2);
        try (Arena arena = Arena.ofShared()) {
            Tensor t = random(arena, rnd, 20, 10);
            assertDoesNotThrow(() -> StepCheck.requireFiniteNonZero("Y", t));
            t.set(3, 0f);
            t.set(4, 0f);
            assertDoesNotThrow(() -> StepCheck.requireFiniteNonZero("Y", t), "2 zeros of 200 are 1 %: allowed");
            t.set(5, 0f);
            assertThrows(IllegalStateException.class, () -> StepCheck.requireFiniteNonZero("Y", t), "3 zeros of 200 > 1 %");
            Tensor u = random(arena, rnd, 20, 10);
            u.set(17, Float.NaN);
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> StepCheck.requireFiniteNonZero("dX", u));
            assertTrue(e.getMessage().contains("flat index 17"), e.getMessage());
        }
    }

    @Test
    void rotationCoversTwoSetsAtLeastAndStaysBounded() {
        // N = 8192, d = 4096 bf16: one set is 302 MB > 256 MiB, still two sets
        assertTrue(Rotation.sets(Rotation.bytesPerSet(8192, 4096, 4096, 2)) == 2);
        // N = 2048, d = 4096: 100 MB a set, three sets
        assertTrue(Rotation.sets(Rotation.bytesPerSet(2048, 4096, 4096, 2)) == 3);
        assertTrue(Rotation.sets(1) == Rotation.MAX_SETS);
        assertThrows(IllegalArgumentException.class, () -> Rotation.sets(0));
    }
}
