package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * dX's packing of W (direct panels, 4 bytes per element of W) is made by the first backward that
 * computes dX, not by prepare: forwards, and backwards without dX (an input that needs no gradient),
 * leave a layer holding the forward's packing alone. Once made, it follows W like the forward's
 * (a write to W after it was packed is seen by the next dX, even when forwards repacked only their own
 * layout in between), and merge repacks it only where it exists. Against the reference backend at
 * N = 1 (the one-row dX kernel), 5 and 37 (tiles over the packing) and 150 (the merged route, which
 * forms W' from it).
 */
class DxPackingTest {
    private static final int D_IN = 70;
    private static final int D_OUT = 45;
    private static final int R = 6;

    @ParameterizedTest(name = "n={0}")
    @CsvSource({"1", "5", "37", "150"})
    void dxPackingIsMadeByTheFirstDxAndFollowsW(int n) {
        SplittableRandom rng = new SplittableRandom(0xD0 + n);
        try (Arena arena = Arena.ofShared(); CpuBackend cpu = new CpuBackend(2)) {
            ReferenceBackend ref = new ReferenceBackend();
            Tensor w = TestData.uniform(arena, DType.F32, rng, 0.1, D_OUT, D_IN);
            Tensor bias = TestData.uniform(arena, DType.F32, rng, 1, D_OUT);
            Tensor a = TestData.uniform(arena, DType.F32, rng, 0.1, R, D_IN);
            Tensor b = TestData.uniform(arena, DType.F32, rng, 1, D_OUT, R);
            try (FrozenWeight fc = cpu.prepare(w, bias); FrozenWeight fr = ref.prepare(w, bias)) {
                CpuFrozenWeight packed = (CpuFrozenWeight) fc;
                Steps s = new Steps(cpu, fc, ref, fr, n, a, b, arena, rng);
                long oneLayout = Panels.bytes(D_OUT, D_IN);
                assertNull(packed.backward, "prepare packs the forward's layout only");
                assertEquals(oneLayout, packed.packedBytes());

                s.step("a training step without dX", false);
                s.step("a second one", false);
                assertNull(packed.backward, "backwards without dX need no dX packing");
                assertEquals(oneLayout, packed.packedBytes());
                cpu.merge(fc, a, b, 0.25, 1);
                assertNull(packed.backward, "merge repacks the layouts that exist, and makes none");
                s.step("merge, then a step without dX", false);

                s.step("the first step with dX", true);
                assertNotNull(packed.backward, "the first dX packs its layout");
                assertEquals(1, packed.backwardPacks);
                assertEquals(oneLayout + Panels.bytes(D_IN, D_OUT), packed.packedBytes());
                s.step("a second step with dX", true);
                assertEquals(1, packed.backwardPacks, "steps that write nothing repack nothing");

                w.copyFrom(TestData.uniform(arena, DType.F32, rng, 0.2, D_OUT, D_IN));
                int forwardPacks = packed.forwardPacks;
                s.step("W written, a step without dX", false);
                assertEquals(forwardPacks + 1, packed.forwardPacks, "the forward repacks its own layout");
                assertEquals(1, packed.backwardPacks, "a step without dX leaves dX's layout stale");
                s.step("then a step with dX", true);
                assertEquals(2, packed.backwardPacks, "the stale dX layout is packed again before use");

                cpu.merge(fc, a, b, 0.5, -1);
                assertEquals(3, packed.backwardPacks, "merge repacks dX's layout once it exists");
                s.step("merge, then a step with dX", true);
                assertEquals(3, packed.backwardPacks, "merge's packing is current: no second one");
            }
        }
    }

    /** Steps run on both backends, each compared: Y, and dX, dA and dB where computed. */
    private record Steps(Backend cpu, FrozenWeight fc, Backend ref, FrozenWeight fr, int n, Tensor a, Tensor b,
                         Arena arena, SplittableRandom rng) {
        void step(String what, boolean withDx) {
            LoraParams p = new LoraParams(n, D_IN, D_OUT, R, 0.8, 0f, 1L, 1, 0, true, true, GradMode.ASSIGN);
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, n, D_IN);
            Tensor dy = TestData.uniform(arena, DType.F32, rng, 1, n, D_OUT);
            Tensor[] got = run(cpu, fc, p, x, dy, withDx);
            Tensor[] want = run(ref, fr, p, x, dy, withDx);
            String ctx = what + ", n=" + n;
            Compare.close("Y after " + what, got[0], want[0], 2e-5, 2e-5, ctx);
            Compare.close("dA after " + what, got[1], want[1], 2e-5, 2e-5, ctx);
            Compare.close("dB after " + what, got[2], want[2], 2e-5, 2e-5, ctx);
            if (withDx) {
                Compare.close("dX after " + what, got[3], want[3], 2e-5, 2e-5, ctx);
            }
        }

        private Tensor[] run(Backend be, FrozenWeight fw, LoraParams p, Tensor x, Tensor dy, boolean withDx) {
            Tensor y = Tensor.allocate(arena, DType.F32, n, D_OUT);
            Tensor u = Tensor.allocate(arena, DType.F32, n, R);
            Tensor dx = withDx ? Tensor.allocate(arena, DType.F32, n, D_IN) : null;
            Tensor ga = Tensor.allocate(arena, DType.F32, R, D_IN);
            Tensor gb = Tensor.allocate(arena, DType.F32, D_OUT, R);
            y.fill(Float.NaN);
            ga.fill(Float.NaN);
            gb.fill(Float.NaN);
            if (dx != null) {
                dx.fill(Float.NaN);
            }
            be.forward(p, fw, x, a, b, u, y);
            be.backward(p, fw, x, a, b, u, dy, dx, ga, gb);
            return new Tensor[] {y, ga, gb, dx};
        }
    }
}
