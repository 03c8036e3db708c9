package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The cpu backend's packed W and bias follow the caller's tensors, as the reference backend (which
 * reads them live) does: a write through W's or the bias's tensor after prepare (set, copyFrom,
 * fill, a kept segment plus markWritten) is picked up by the next forward or backward, and steps
 * that write nothing do not repack. Before, the packing made at prepare stayed in use: every later
 * call computed with the old W, silently. Row path (N = 37), small-N path (N = 5), the merged route
 * (N = 150 ≥ 2·d).
 */
class FrozenWeightRefreshTest {
    private static final int D_IN = 70;
    private static final int D_OUT = 45;
    private static final int R = 6;

    @ParameterizedTest(name = "n={0}")
    @CsvSource({"37", "5", "150"})
    void writesToWOrTheBiasAreSeenAndPlainStepsDoNotRepack(int n) {
        SplittableRandom rng = new SplittableRandom(0xF00D + n);
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(2)) {
            ReferenceBackend ref = new ReferenceBackend();
            Tensor w = random(arena, rng, 0.1, D_OUT, D_IN);
            Tensor bias = random(arena, rng, 1, D_OUT);
            Tensor a = random(arena, rng, 0.1, R, D_IN);
            Tensor b = random(arena, rng, 1, D_OUT, R);
            try (FrozenWeight fc = cpu.prepare(w, bias); FrozenWeight fr = ref.prepare(w, bias)) {
                CpuFrozenWeight packed = (CpuFrozenWeight) fc;
                int step = 0;
                compare("the first step", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                compare("a second step", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                assertEquals(1, packed.forwardPacks, "steps that write nothing repack nothing");
                assertEquals(1, packed.backwardPacks, "steps that write nothing repack nothing");

                w.set(3, 5, 7f);
                compare("W.set", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                w.copyFrom(random(arena, rng, 0.2, D_OUT, D_IN));
                compare("W.copyFrom", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                bias.fill(-2f);
                compare("bias.fill", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                MemorySegment kept = w.segment();
                kept.set(DType.LE_FLOAT, 4L * (2 * D_IN + 1), -3f);
                w.markWritten();
                compare("a kept segment and markWritten", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                int before = packs(packed);
                compare("a step after them", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                assertEquals(before, packs(packed), "one repack per write, not one per call");

                // merge writes W in place and repacks it: the reference reads the merged W from the same tensor
                cpu.merge(fc, a, b, 0.5, 1);
                before = packs(packed);
                compare("merge", cpu, fc, ref, fr, n, a, b, arena, rng, ++step);
                assertEquals(before, packs(packed), "merge's own packing is current: no second one");
            }
        }
    }

    private static int packs(CpuFrozenWeight w) {
        return w.forwardPacks + w.backwardPacks;
    }

    private static void compare(String what, Backend cpu, FrozenWeight fc, Backend ref, FrozenWeight fr, int n, Tensor a,
                                Tensor b, Arena arena, SplittableRandom rng, int step) {
        LoraParams p = new LoraParams(n, D_IN, D_OUT, R, 0.8, 0f, 1L, step, 0, true, true, GradMode.ASSIGN);
        Tensor x = random(arena, rng, 1, n, D_IN);
        Tensor dy = random(arena, rng, 1, n, D_OUT);
        Tensor[] got = run(cpu, fc, p, x, a, b, dy, arena);
        Tensor[] want = run(ref, fr, p, x, a, b, dy, arena);
        String ctx = what + ", n=" + n + ", step " + step;
        Compare.close("Y after " + what, got[0], want[0], 2e-5, 2e-5, ctx);
        Compare.close("dX after " + what, got[1], want[1], 2e-5, 2e-5, ctx);
    }

    private static Tensor[] run(Backend be, FrozenWeight fw, LoraParams p, Tensor x, Tensor a, Tensor b, Tensor dy, Arena arena) {
        int n = p.n();
        Tensor y = Tensor.allocate(arena, DType.F32, n, D_OUT);
        Tensor u = Tensor.allocate(arena, DType.F32, n, R);
        Tensor dx = Tensor.allocate(arena, DType.F32, n, D_IN);
        Tensor ga = Tensor.allocate(arena, DType.F32, R, D_IN);
        Tensor gb = Tensor.allocate(arena, DType.F32, D_OUT, R);
        y.fill(Float.NaN);
        dx.fill(Float.NaN);
        be.forward(p, fw, x, a, b, u, y);
        be.backward(p, fw, x, a, b, u, dy, dx, ga, gb);
        return new Tensor[] {y, dx};
    }

    private static Tensor random(Arena arena, SplittableRandom rng, double scale, long... shape) {
        Tensor t = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < t.numel(); i++) {
            t.set(i, (float) (scale * rng.nextDouble(-1, 1)));
        }
        return t;
    }
}
