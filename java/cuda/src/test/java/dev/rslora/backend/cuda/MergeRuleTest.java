package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.opentest4j.AssertionFailedError;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Device-free checks of the merge rule the GPU tests apply ({@link MergeRule}), on the merge
 * kernel's arithmetic emulated op for op in Java ({@link MergeRule#emulate}): the first GPU run's
 * failure (CudaBackendGpuTest.mergeAndUnmergeMatchTheReference, BF16 seed 1001, 2026-12-04 on an
 * H200) is reproduced here from the same data, the old chained comparison is shown to reject the
 * correct kernel on it, and the per-step rule accepts the kernel but rejects wrong arithmetic.
 */
class MergeRuleTest {
    private static final double GAMMA = 4.0 / Math.sqrt(16);

    /** The GPU test's data for dtype t: W [130, 97] T, A [16, 97], B [130, 16] f32 from seed 1000 + ordinal. */
    private static Tensor[] gpuTestData(Arena arena, DType t) {
        SplittableRandom rnd = new SplittableRandom(1000 + t.ordinal());
        Tensor w = Tensor.allocate(arena, t, 130, 97);
        GpuSupport.fill(w, rnd, -1, 1);
        Tensor a = Tensor.allocate(arena, DType.F32, 16, 97);
        Tensor b = Tensor.allocate(arena, DType.F32, 130, 16);
        GpuSupport.fill(a, rnd, -1, 1);
        GpuSupport.fill(b, rnd, -1, 1);
        return new Tensor[] {w, a, b};
    }

    @Test
    void theFirstGpuRunsFailureComesFromTheChainedComparisonNotFromTheKernel() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor[] d = gpuTestData(arena, DType.BF16);
            Tensor w = d[0];
            Tensor a = d[1];
            Tensor b = d[2];
            Tensor device = w.to(arena, DType.BF16);
            Tensor wRef = w.to(arena, DType.BF16);
            ReferenceBackend ref = new ReferenceBackend();
            AssertionFailedError chained = null;
            try (FrozenWeight rw = ref.prepare(wRef, null)) {
                for (int sign : new int[] {1, -1}) {
                    Tensor before = device.to(arena, DType.BF16);
                    // the device as it ran on 2026-12-04: nvcc had contracted W + γ·s into one FMA
                    MergeRule.emulate(device, a, b, (float) (sign * GAMMA), MergeRule.Arithmetic.CONTRACTED);
                    ref.merge(rw, a, b, GAMMA, sign);
                    try {
                        GpuSupport.assertClose("W (sign " + sign + ")", device, wRef, GpuSupport.rtol(DType.BF16), 1e-6, "emulated");
                    } catch (AssertionFailedError e) {
                        chained = chained == null ? e : chained;
                    }
                    // the per-step rule, started from the W the device started from, accepts the same result
                    MergeRule.assertStep("W (sign " + sign + ")", before, device, a, b, GAMMA, sign, "emulated CONTRACTED");
                }
            }
            // the old check fails on the unmerge exactly as on the H200: element 11061, got 0.1103515625 ref 0.1025390625
            assertTrue(chained != null, "the chained comparison should reproduce the GPU run's failure");
            String m = chained.getMessage();
            assertTrue(m.startsWith("W (sign -1): 1 of 12610") && m.contains("[11061] got 0.1103515625 ref 0.1025390625"), m);
        }
    }

    @Test
    void theKernelArithmeticPassesTheRuleAtAwkwardShapesBothSignsAndEveryDtype() {
        int[][] shapes = {{1, 1, 1}, {7, 127, 3}, {130, 97, 16}, {33, 1025, 64}, {64, 40, 256}};
        long seed = 77;
        for (DType t : DType.values()) {
            for (int[] s : shapes) {
                for (int sign : new int[] {1, -1}) {
                    for (MergeRule.Arithmetic how : new MergeRule.Arithmetic[] {MergeRule.Arithmetic.KERNEL,
                        MergeRule.Arithmetic.CONTRACTED}) {
                        seed++;
                        try (Arena arena = Arena.ofConfined()) {
                            SplittableRandom rnd = new SplittableRandom(seed);
                            Tensor w = Tensor.allocate(arena, t, s[0], s[1]);
                            Tensor a = Tensor.allocate(arena, DType.F32, s[2], s[1]);
                            Tensor b = Tensor.allocate(arena, DType.F32, s[0], s[2]);
                            GpuSupport.fill(w, rnd, -2, 2);
                            GpuSupport.fill(a, rnd, -1, 1);
                            GpuSupport.fill(b, rnd, -1, 1);
                            double gamma = 16 / Math.sqrt(s[2]);
                            Tensor before = w.to(arena, t);
                            MergeRule.emulate(w, a, b, (float) (sign * gamma), how);
                            MergeRule.assertStep("W", before, w, a, b, gamma, sign,
                                    t + " " + java.util.Arrays.toString(s) + " sign " + sign + " " + how + " seed " + seed);
                        }
                    }
                }
            }
        }
    }

    @Test
    void theRuleRejectsWrongArithmetic() {
        for (DType t : DType.values()) {
            for (MergeRule.Arithmetic how : new MergeRule.Arithmetic[] {MergeRule.Arithmetic.DELTA_IN_T,
                MergeRule.Arithmetic.SUM_IN_T, MergeRule.Arithmetic.NO_SIGN}) {
                if (t == DType.F32 && how != MergeRule.Arithmetic.NO_SIGN) {
                    continue;  // rounding to F32 is the identity: these are the kernel's arithmetic in F32
                }
                try (Arena arena = Arena.ofConfined()) {
                    Tensor[] d = gpuTestData(arena, t);
                    Tensor before = d[0].to(arena, t);
                    MergeRule.emulate(d[0], d[1], d[2], (float) -GAMMA, how);
                    MergeRule.Outcome o = MergeRule.check(arena, before, d[0], d[1], d[2], GAMMA, -1);
                    assertFalse(o.passes(t), t + " " + how + " should fail the rule: " + o);
                }
            }
        }
    }

    @Test
    void ulpOfEachDtype() {
        assertEquals(0x1p-7, MergeRule.ulp(DType.BF16, 1.5));
        assertEquals(0x1p-10, MergeRule.ulp(DType.F16, -1.0));
        assertEquals(0x1p-24, MergeRule.ulp(DType.F16, 0x1p-20));
        assertEquals(Math.ulp(3.0f), MergeRule.ulp(DType.F32, 3.0));
        assertThrows(AssertionFailedError.class, () -> {
            try (Arena arena = Arena.ofConfined()) {
                Tensor[] d = gpuTestData(arena, DType.BF16);
                Tensor before = d[0].to(arena, DType.BF16);
                MergeRule.emulate(d[0], d[1], d[2], (float) GAMMA, MergeRule.Arithmetic.NO_SIGN);
                MergeRule.assertStep("W", before, d[0], d[1], d[2], GAMMA, -1, "NO_SIGN");
            }
        });
    }
}
