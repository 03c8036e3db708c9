package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cpu backend behind {@link LoraLinear} and {@link Backends}, and its merge/unmerge. */
class CpuLoraLinearTest {
    private static final long SEED = Long.getLong("rslora.test.seed", 0x11AEL);

    private static Tensor random(Arena arena, SplittableRandom rng, DType t, double scale, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        for (long i = 0; i < out.numel(); i++) {
            out.set(i, (float) (scale * rng.nextDouble(-1, 1)));
        }
        return out;
    }

    @Test
    void backendsProvidesTheCpuBackend() {
        Backend b = Backends.get("cpu");
        assertInstanceOf(CpuBackend.class, b);
        assertEquals("cpu", b.name());
    }

    /**
     * Two training steps (dropout on, gradients accumulated) through LoraLinear on cpu and on the
     * reference give the same Y, dX, dA, dB within fp32 tolerance; then merge() makes the eval
     * forward equal the unmerged one, and unmerge() restores W.
     */
    @Test
    void trainingStepsThroughLoraLinearMatchTheReference() {
        SplittableRandom rng = new SplittableRandom(SEED);
        int n = 70;
        int dIn = 96;
        int dOut = 80;
        LoraConfig config = new LoraConfig(16, 8.0, Scaling.RSLORA, 0.1, Init.DEFAULT, SEED);
        String ctx = "seed=" + SEED;
        try (Arena arena = Arena.ofShared()) {
            Tensor wCpu = random(arena, rng, DType.F32, 0.1, dOut, dIn);
            Tensor wRef = wCpu.to(arena, DType.F32);
            Tensor wOrig = wCpu.to(arena, DType.F32);
            Tensor bias = random(arena, rng, DType.F32, 1, dOut);
            Tensor bInit = random(arena, rng, DType.F32, 0.5, dOut, 16);
            try (LoraLinear cpuLayer = LoraLinear.create(wCpu, bias, config, DType.F32, Backends.get("cpu"), 3);
                 LoraLinear refLayer = LoraLinear.create(wRef, bias, config, DType.F32, new ReferenceBackend(), 3)) {
                cpuLayer.loraB().copyFrom(bInit);
                refLayer.loraB().copyFrom(bInit);
                cpuLayer.setGradMode(GradMode.ACCUMULATE);
                refLayer.setGradMode(GradMode.ACCUMULATE);
                cpuLayer.zeroGrad();
                refLayer.zeroGrad();
                for (int step = 0; step < 2; step++) {
                    Tensor x = random(arena, rng, DType.F32, 1, n, dIn);
                    Tensor dy = random(arena, rng, DType.F32, 1, n, dOut);
                    Tensor yCpu = cpuLayer.forward(arena, x);
                    Tensor yRef = refLayer.forward(arena, x);
                    Tensor dxCpu = Tensor.allocate(arena, DType.F32, n, dIn);
                    Tensor dxRef = Tensor.allocate(arena, DType.F32, n, dIn);
                    dxCpu.fill(Float.NaN);
                    cpuLayer.backward(dy, dxCpu);
                    refLayer.backward(dy, dxRef);
                    Compare.close("Y step " + step, yCpu, yRef, 2e-6, 1e-5, ctx);
                    Compare.close("dX step " + step, dxCpu, dxRef, 2e-6, 1e-5, ctx);
                }
                Compare.close("dA", cpuLayer.gradA(), refLayer.gradA(), 1e-5, 1e-5, ctx);
                Compare.close("dB", cpuLayer.gradB(), refLayer.gradB(), 1e-5, 1e-5, ctx);

                cpuLayer.train(false);
                Tensor x = random(arena, rng, DType.F32, 1, n, dIn);
                Tensor unmerged = cpuLayer.forward(arena, x);
                cpuLayer.merge();
                Tensor merged = cpuLayer.forward(arena, x);
                Compare.close("merged Y", merged, unmerged, 1e-5, 1e-5, ctx);
                assertThrows(IllegalStateException.class, () -> cpuLayer.backward(Tensor.allocate(arena, DType.F32, n, dOut), null));
                cpuLayer.unmerge();
                Compare.close("W after unmerge", wCpu, wOrig, 1e-6, 1e-6, ctx);
                Tensor again = cpuLayer.forward(arena, x);
                Compare.close("Y after unmerge", again, unmerged, 1e-5, 1e-5, ctx);
            }
        }
    }

    /** merge() rounds W + γ·B·A once to W's dtype like the reference, and re-packs W. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void mergeMatchesReferenceAndRepacks(DType dtype) {
        SplittableRandom rng = new SplittableRandom(SEED + dtype.ordinal());
        int dOut = 45;
        int dIn = 70;
        int r = 12;
        double gamma = 1.7;
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(2)) {
            Tensor w = random(arena, rng, dtype, 1, dOut, dIn);
            Tensor wRef = w.to(arena, dtype);
            Tensor a = random(arena, rng, DType.F32, 0.3, r, dIn);
            Tensor b = random(arena, rng, DType.F32, 0.3, dOut, r);
            ReferenceBackend ref = new ReferenceBackend();
            try (FrozenWeight fw = cpu.prepare(w, null); FrozenWeight fr = ref.prepare(wRef, null)) {
                cpu.merge(fw, a, b, gamma, +1);
                ref.merge(fr, a, b, gamma, +1);
                double ulp = switch (dtype) {
                    case F32 -> 0x1p-23;
                    case BF16 -> 0x1p-7;
                    case F16 -> 0x1p-10;
                };
                Compare.close("merged W " + dtype, w, wRef, 1e-6, ulp, "seed=" + (SEED + dtype.ordinal()));
                // The packed copy follows: the base forward uses the merged W.
                int n = 9;
                Tensor x = random(arena, rng, DType.F32, 1, n, dIn);
                LoraParams base = new LoraParams(n, dIn, dOut, r, gamma, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
                Tensor y = Tensor.allocate(arena, DType.F32, n, dOut);
                Tensor yRef = Tensor.allocate(arena, DType.F32, n, dOut);
                cpu.forward(base, fw, x, null, null, null, y);
                ref.forward(base, fw, x, null, null, null, yRef);
                Compare.close("Y after merge", y, yRef, 2e-6, 1e-5, "seed=" + (SEED + dtype.ordinal()));
            }
        }
    }

    @Test
    void rejectsWrongShapesAndForeignWeights() {
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(2)) {
            Tensor w = Tensor.allocate(arena, DType.F32, 4, 3);
            Tensor x = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor y = Tensor.allocate(arena, DType.F32, 2, 4);
            Tensor a = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor b = Tensor.allocate(arena, DType.F32, 4, 2);
            Tensor u = Tensor.allocate(arena, DType.F32, 2, 2);
            LoraParams p = new LoraParams(2, 3, 4, 2, 1.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
            try (FrozenWeight fw = cpu.prepare(w, null); FrozenWeight foreign = new ReferenceBackend().prepare(w, null)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> cpu.forward(p, fw, x, a, b, u, Tensor.allocate(arena, DType.F32, 2, 5)));
                assertTrue(e.getMessage().contains("y shape [2, 5]"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class,
                        () -> cpu.forward(p, fw, x, a, b, Tensor.allocate(arena, DType.BF16, 2, 2), y));
                assertTrue(e.getMessage().contains("u must be F32"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> cpu.forward(p, foreign, x, a, b, u, y));
                assertTrue(e.getMessage().contains("another backend"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> cpu.backward(p, fw, x, a, b, null,
                        y, x, a, b));
                assertTrue(e.getMessage().contains("u (the U"), e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> cpu.prepare(w, Tensor.allocate(arena, DType.F32, 3)));
                assertTrue(e.getMessage().contains("bias shape [3]"), e.getMessage());
            }
            FrozenWeight closed = cpu.prepare(w, null);
            closed.close();
            assertThrows(IllegalStateException.class, () -> cpu.forward(p, closed, x, a, b, u, y));
            FrozenWeight open = cpu.prepare(w, null);
            CpuBackend other = new CpuBackend(2);
            other.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> other.prepare(w, null));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> other.forward(p, open, x, a, b, u, y));
            open.close();
        }
    }
}
