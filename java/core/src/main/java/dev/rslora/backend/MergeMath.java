package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The merge {@code W ← round(W ± γ·B·A)} over any range of a stored weight, reading W from one
 * segment and writing the result to another: a checkpoint merge streams through it a chunk at a
 * time, so neither W nor ΔW is ever whole in memory.
 *
 * <pre>
 *   A [r, d_in], B [d_out, r], γ = α/√r (rsLoRA) or α/r (LoRA), sign = +1 merge, −1 unmerge
 *   stored W [d_out, d_in]                 (nn.Linear)
 *   stored W [d_in, d_out], ΔW transposed  (GPT-2 Conv1D, PEFT fan_in_fan_out = true)
 *   per element:  s  = fl32(Σ_j B[o,j]·A[j,i])   (summed in double, rounded once to fp32)
 *                 δ  = fl32(s · fl32(γ))
 *                 W' = round_dtype(fl32(W ± δ))
 * </pre>
 * These are PEFT's operations: {@code delta = (B @ A) * scaling} in the fp32 adapter dtype, then
 * {@code weight += delta}, computed in fp32 and rounded once to the weight's dtype (F32, BF16 or
 * F16, round to nearest even). Summing B·A in double makes the result independent of summation
 * order (PEFT's fp32 BLAS may differ from it in the last fp32 bit).
 *
 * <p>Heap use: one copy of the adapter factors as fp32 arrays, r × (d_in + d_out) floats. An
 * instance is immutable and may be shared by threads.
 */
public final class MergeMath {
    private final int rank;
    private final long rows;       // stored W rows: d_out, or d_in with fan_in_fan_out
    private final long cols;       // stored W columns
    private final float[] left;    // [rows, r]: B, or Aᵀ with fan_in_fan_out
    private final float[] right;   // [r, cols]: A, or Bᵀ with fan_in_fan_out
    private final float gamma32;
    private final int sign;

    private MergeMath(int rank, long rows, long cols, float[] left, float[] right, float gamma32, int sign) {
        this.rank = rank;
        this.rows = rows;
        this.cols = cols;
        this.left = left;
        this.right = right;
        this.gamma32 = gamma32;
        this.sign = sign;
    }

    /**
     * Prepares {@code W ± γ·B·A} for a stored weight of shape {@code weightShape}.
     *
     * @param a            A [r, d_in], any dtype
     * @param b            B [d_out, r], any dtype
     * @param gamma        γ of the adapter (finite)
     * @param sign         +1 (merge) or −1 (unmerge)
     * @param fanInFanOut  true when W is stored [d_in, d_out] (GPT-2 Conv1D)
     * @param weightShape  the stored W's shape, [d_out, d_in] (or [d_in, d_out] with fanInFanOut)
     * @return the staged factors (fp32 heap copies of B and A, laid out for the stored orientation)
     * @throws IllegalArgumentException when the shapes disagree (the message shows all three), sign
     *                                  is not ±1, γ is not finite, or the factors are too large to stage
     */
    public static MergeMath prepare(Tensor a, Tensor b, double gamma, int sign, boolean fanInFanOut, long[] weightShape) {
        if (sign != 1 && sign != -1) {
            throw new IllegalArgumentException("sign must be +1 or -1, got " + sign);
        }
        if (!Double.isFinite(gamma)) {
            throw new IllegalArgumentException("gamma must be finite, got " + gamma);
        }
        checkShapes(a, b, fanInFanOut, weightShape);
        long r = a.dim(0);
        long rows = weightShape[0];
        long cols = weightShape[1];
        if (Math.multiplyHigh(r, rows + cols) != 0 || r * (rows + cols) > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("adapter factors of rank " + r + " over " + Arrays.toString(weightShape)
                    + " are too large to stage (" + r + " x " + (rows + cols) + " floats)");
        }
        int rk = (int) r;
        float[] left = new float[(int) (rows * r)];
        float[] right = new float[(int) (r * cols)];
        if (!fanInFanOut) {
            copyRowMajor(b, left);                       // left[o, j] = B[o, j]
            copyRowMajor(a, right);                      // right[j, i] = A[j, i]
        } else {
            for (long i = 0; i < rows; i++) {            // left[i, j] = A[j, i]
                for (int j = 0; j < rk; j++) {
                    left[(int) (i * r + j)] = a.get(j, i);
                }
            }
            for (int j = 0; j < rk; j++) {               // right[j, o] = B[o, j]
                for (long o = 0; o < cols; o++) {
                    right[(int) (j * cols + o)] = b.get(o, j);
                }
            }
        }
        return new MergeMath(rk, rows, cols, left, right, (float) gamma, sign);
    }

    /**
     * Checks A [r, d_in], B [d_out, r] (r ≥ 1) against the stored weight shape ([d_out, d_in], or
     * [d_in, d_out] with fan_in_fan_out) without staging anything.
     *
     * @param a           A [r, d_in]
     * @param b           B [d_out, r]
     * @param fanInFanOut true when W is stored [d_in, d_out]
     * @param weightShape the stored W's shape
     * @throws IllegalArgumentException showing all three shapes when they do not fit
     */
    public static void checkShapes(Tensor a, Tensor b, boolean fanInFanOut, long[] weightShape) {
        if (a.rank() != 2 || b.rank() != 2 || weightShape.length != 2 || a.dim(0) != b.dim(1) || a.dim(0) < 1) {
            throw shapeError(a, b, weightShape, fanInFanOut);
        }
        long[] expected = fanInFanOut ? new long[] {a.dim(1), b.dim(0)} : new long[] {b.dim(0), a.dim(1)};
        if (!Arrays.equals(expected, weightShape)) {
            throw shapeError(a, b, weightShape, fanInFanOut);
        }
    }

    private static IllegalArgumentException shapeError(Tensor a, Tensor b, long[] w, boolean fanInFanOut) {
        return new IllegalArgumentException("lora_A " + a.shapeString() + " and lora_B " + b.shapeString()
                + " do not fit weight " + Arrays.toString(w) + ": expected A [r, d_in], B [d_out, r] and W "
                + (fanInFanOut ? "[d_in, d_out] (fan_in_fan_out)" : "[d_out, d_in]"));
    }

    private static void copyRowMajor(Tensor t, float[] out) {
        for (int i = 0; i < out.length; i++) {
            out[i] = t.get(i);
        }
    }

    /**
     * Stored shape of the weight this delta applies to.
     *
     * @return a new array [rows, cols] of the stored W
     */
    public long[] weightShape() {
        return new long[] {rows, cols};
    }

    /**
     * Writes merged elements [first, first + count) (flat, row-major) of the stored weight into
     * {@code dst}, reading the base values from {@code w}; dst holds exactly count elements of
     * {@code dstType}. w may be a read-only memory mapping; dst must not overlap it.
     *
     * @param w       the stored base weight, of {@link #weightShape()}; only read
     * @param first   the first flat element, ≥ 0
     * @param count   the number of elements, ≥ 0 (first + count ≤ numel)
     * @param dst     receives W ± γ·B·A for those elements: exactly count·dstType bytes
     * @param dstType the dtype written to dst (the sum is rounded once to it)
     * @throws IllegalArgumentException if w's shape or dst's size does not match, or a finite merged value is
     *                                  beyond dstType's range (it would be stored as ±Infinity; naming the element), or
     *                                  a merged value is not finite where W's element is (NaN or ±Inf in A or B)
     * @throws IndexOutOfBoundsException if [first, first + count) is outside the weight
     */
    public void apply(Tensor w, long first, long count, MemorySegment dst, DType dstType) {
        if (!w.sameShape(rows, cols)) {
            throw new IllegalArgumentException("weight " + w.shapeString() + " is not the prepared " + Arrays.toString(weightShape()));
        }
        if (first < 0 || count < 0 || first + count > rows * cols) {
            throw new IndexOutOfBoundsException("elements [" + first + ", " + (first + count) + ") outside " + w.shapeString());
        }
        if (dst.byteSize() != count * dstType.byteSize()) {
            throw new IllegalArgumentException("destination holds " + dst.byteSize() + " bytes, not " + count + " " + dstType + " elements");
        }
        DType src = w.dtype();
        MemorySegment ws = w.readOnlySegment();  // only read: not a write of W (its version stamp stays)
        double[] acc = new double[(int) Math.min(cols, Math.max(1, count))];
        long e = first;
        long end = first + count;
        while (e < end) {
            long row = e / cols;
            long c0 = e % cols;
            int width = (int) Math.min(cols - c0, end - e);
            Arrays.fill(acc, 0, width, 0.0);
            int lBase = (int) (row * rank);
            for (int j = 0; j < rank; j++) {
                double l = left[lBase + j];
                int rBase = (int) (j * cols + c0);
                for (int c = 0; c < width; c++) {
                    acc[c] += l * right[rBase + c];
                }
            }
            long outBase = e - first;
            for (int c = 0; c < width; c++) {
                float delta = (float) acc[c] * gamma32;
                float old = src.load(ws, e + c);
                float v = old + (sign > 0 ? delta : -delta);
                if (dstType.overflows(v)) {
                    throw new IllegalArgumentException("the merged W[" + row + ", " + (c0 + c) + "] = " + v + " is beyond "
                            + dstType + "'s range: it would be stored as Infinity");
                }
                if (BackendChecks.mergeDestroys(dstType, old, v)) {  // NaN or ±Inf in A or B, or fp32 overflow on the way
                    throw new IllegalArgumentException("the merged W[" + row + ", " + (c0 + c) + "] = " + old
                            + (sign > 0 ? " + " : " - ") + "γ·(B·A) = " + v + " is not finite while W's element is (lora_A or"
                            + " lora_B holds a non-finite value, or γ·B·A overflows fp32): it would be stored as " + v);
                }
                dstType.store(dst, outBase + c, v);
            }
            e += width;
        }
    }

    /**
     * The whole merged weight into {@code dst} (same shape as W; dtype of dst).
     *
     * @param w   the stored base weight; only read
     * @param dst receives W ± γ·B·A, same shape as W, any dtype (may not overlap w)
     * @throws IllegalArgumentException if a shape does not match
     */

    public void apply(Tensor w, Tensor dst) {
        if (!dst.sameShape(rows, cols)) {
            throw new IllegalArgumentException("destination " + dst.shapeString() + " is not " + Arrays.toString(weightShape()));
        }
        apply(w, 0, rows * cols, dst.segment(), dst.dtype());
    }
}
