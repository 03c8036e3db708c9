package dev.rslora.backend.cuda;

import dev.rslora.backend.MergeMath;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The check of ONE merge or unmerge step (SPEC §6) against {@link MergeMath}, started from the
 * same W the device started from:
 * <pre>
 *   W [d_out, d_in] T, A [r, d_in] f32, B [d_out, r] f32, γ, sign = +1 merge / −1 unmerge
 *   expected  W' = round_T(fl32(W ± fl32(fl32(Σ_j B[o,j]·A[j,c]) · fl32(γ))))      (MergeMath)
 *   allowed   |got − W'| ≤ ulp_T(|W'|) + |γ|·(r + 1)·2⁻²³·Σ_j |B[o,j]·A[j,c]|
 *             (an fp32 sum of B·A in another order moves fl32(W ± δ) by at most the second term;
 *             one rounding to T turns that into at most one ulp_T where it straddles a boundary)
 *   and, for BF16/F16, at most 0.5 % + 2 elements not bit-equal to W' (a correct kernel differs only
 *   at near-ties; a kernel that rounds δ, or its partial sums, to T differs at many)
 * </pre>
 * Why per step: the first GPU run (2026-12-04, H200) compared merge-then-unmerge on the device
 * with merge-then-unmerge on the reference; one element's merged value (magnitude ~1) came out one
 * bf16 ulp (2⁻⁷) away from the reference's, within tolerance, and unmerge carried that absolute
 * ulp into a result of magnitude ~0.1, where the relative tolerance is 10× smaller. Chained
 * comparisons measure the first step's rounding against the second step's magnitude.
 */
final class MergeRule {
    /** Most elements of a 16-bit result allowed to differ (by ≤ 1 ulp) from the SPEC result: 0.5 % + 2. */
    static long allowedMismatches(long count) {
        return count / 200 + 2;
    }

    private MergeRule() {
    }

    /** One unit in the last place of dtype {@code t} at magnitude |x| (t's subnormal spacing near 0). */
    static double ulp(DType t, double x) {
        float f = (float) Math.abs(x);
        return switch (t) {
            case F32 -> Math.ulp(f);
            case BF16 -> Math.ulp(f) * 0x1p16;                      // 8 significant bits, f32's exponent range
            case F16 -> Math.max(Math.ulp(f) * 0x1p13, 0x1p-24);    // 11 significant bits, subnormals below 2⁻¹⁴
        };
    }

    /** W' per SPEC §6 (MergeMath) from {@code before}, in before's dtype. */
    static Tensor expected(Arena arena, Tensor before, Tensor a, Tensor b, double gamma, int sign) {
        Tensor out = Tensor.allocate(arena, before.dtype(), before.shape());
        MergeMath.prepare(a, b, gamma, sign, false, before.shape()).apply(before, out);
        return out;
    }

    /** What the rule found: elements outside the bound, elements not bit-equal, the first few of each. */
    record Outcome(long outside, long unequal, long count, List<String> examples) {
        boolean passes(DType t) {
            return outside == 0 && (t == DType.F32 || unequal <= allowedMismatches(count));
        }
    }

    static Outcome check(Arena arena, Tensor before, Tensor got, Tensor a, Tensor b, double gamma, int sign) {
        Tensor exp = expected(arena, before, a, b, gamma, sign);
        int r = (int) a.dim(0);
        long rows = before.dim(0);
        long cols = before.dim(1);
        DType t = before.dtype();
        long outside = 0;
        long unequal = 0;
        List<String> examples = new ArrayList<>();
        for (long o = 0; o < rows; o++) {
            for (long c = 0; c < cols; c++) {
                double g = got.get(o, c);
                double e = exp.get(o, c);
                if (Float.floatToRawIntBits((float) g) == Float.floatToRawIntBits((float) e)) {
                    continue;
                }
                unequal++;
                double absSum = 0;
                for (int j = 0; j < r; j++) {
                    absSum += Math.abs((double) b.get(o, j) * a.get(j, c));
                }
                double bound = ulp(t, e) + Math.abs(gamma) * (r + 1) * 0x1p-23 * absSum;
                boolean out = !(Math.abs(g - e) <= bound);
                if (out) {
                    outside++;
                }
                if (examples.size() < 6 && (out || examples.size() < 3)) {
                    examples.add("[" + (o * cols + c) + "] (" + o + ", " + c + ") got " + g + " expected " + e + " was "
                            + before.get(o, c) + (out ? " OUTSIDE " + bound : ""));
                }
            }
        }
        return new Outcome(outside, unequal, rows * cols, examples);
    }

    /** Fails unless {@code got} is W' of {@code before} per the rule above; {@code context} names dtype and seed. */
    static void assertStep(String what, Tensor before, Tensor got, Tensor a, Tensor b, double gamma, int sign, String context) {
        try (Arena arena = Arena.ofConfined()) {
            Outcome o = check(arena, before, got, a, b, gamma, sign);
            if (!o.passes(before.dtype())) {
                fail(what + ": " + o.outside() + " of " + o.count() + " outside ulp_T + sum-order bound, " + o.unequal()
                        + " not bit-equal to the SPEC §6 result (allowed " + (before.dtype() == DType.F32 ? "any" : allowedMismatches(o.count()))
                        + "), " + context + ": " + o.examples());
            }
        }
    }

    /** How a kernel emulated by {@link #emulate} may do the arithmetic. */
    enum Arithmetic {
        /** cuda/kernels/lora_merge.cuh: fp32 FMA partial sums over j ascending, δ = fl32(γ·s), fl32(W + δ), round to T. */
        KERNEL,
        /** The same with W + γ·s contracted into one FMA (what nvcc made of the kernel before 2026-12: one rounding less). */
        CONTRACTED,
        /** Wrong: δ rounded to T before it is added. */
        DELTA_IN_T,
        /** Wrong: partial sums rounded to T. */
        SUM_IN_T,
        /** Wrong: ignores the sign (unmerge adds). */
        NO_SIGN
    }

    /**
     * W ← the merge of {@code w} in place, op for op as {@code how} says (for KERNEL: exactly the
     * device kernel's order, so a GPU result can be compared bit for bit). signedGamma = fl32(±γ).
     */
    static void emulate(Tensor w, Tensor a, Tensor b, float signedGamma, Arithmetic how) {
        DType t = w.dtype();
        int r = (int) a.dim(0);
        for (long o = 0; o < w.dim(0); o++) {
            for (long c = 0; c < w.dim(1); c++) {
                float acc = 0f;
                for (int j = 0; j < r; j++) {
                    acc = Math.fma(b.get(o, j), a.get(j, c), acc);
                    if (how == Arithmetic.SUM_IN_T) {
                        acc = t.round(acc);
                    }
                }
                float wv = w.get(o, c);
                float out = switch (how) {
                    case KERNEL, SUM_IN_T -> wv + signedGamma * acc;   // Java rounds the product, then the sum
                    case CONTRACTED -> Math.fma(signedGamma, acc, wv);
                    case DELTA_IN_T -> wv + t.round(signedGamma * acc);
                    case NO_SIGN -> wv + Math.abs(signedGamma) * acc;
                };
                w.set(o, c, out);  // rounds to T, nearest even
            }
        }
    }
}
