package dev.rslora.backend;

import dev.rslora.dropout.DropoutMask;

/**
 * Everything a backend needs to run one LoRA layer step besides the tensors.
 *
 * <pre>
 *   X [n, dIn], W [dOut, dIn], b [dOut], A [rank, dIn], B [dOut, rank], U [n, rank], Y/dY [n, dOut]
 *   forward : U = D(X)·Aᵀ;  Y = X·Wᵀ + b + γ·U·Bᵀ
 *   backward: V = dY·B;  dB (=|+=) γ·dYᵀ·U;  dA (=|+=) γ·Vᵀ·D(X);  dX = dY·W + γ·D'(V·A)
 * </pre>
 *
 * @param n             the rows of X (tokens in the batch), ≥ 1
 * @param dIn           d_in, the columns of X, W and A, ≥ 1
 * @param dOut          d_out, the rows of W and B, ≥ 1
 * @param rank          r, the rows of A and columns of B, ≥ 1
 * @param gamma         γ (α/√r for rsLoRA, α/r for LoRA), as computed by {@link dev.rslora.core.LoraConfig#gamma()};
 *                      finite and within fp32's range
 * @param dropout       p; the mask is applied only when {@code training} and p &gt; 0
 * @param seed          dropout key
 * @param step          dropout step (the same in a forward and its backward)
 * @param layer         dropout layer id
 * @param training      training mode (dropout active); eval mode skips the mask
 * @param adapterActive false when the adapter is merged into W: forward and backward are the base layer only
 * @param gradMode      assign or accumulate dA and dB
 */
public record LoraParams(int n, int dIn, int dOut, int rank, double gamma, float dropout, long seed, long step,
                         int layer, boolean training, boolean adapterActive, GradMode gradMode) {

    /** Checks the shapes, γ, p and the grad mode (IllegalArgumentException naming the bad value). */
    public LoraParams {
        if (n < 1 || dIn < 1 || dOut < 1 || rank < 1) {
            throw new IllegalArgumentException("shapes must be >= 1: n=" + n + " dIn=" + dIn + " dOut=" + dOut + " rank=" + rank);
        }
        if (!(Math.abs(gamma) <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("gamma must be finite (within fp32's range: backends scale in fp32), got gamma="
                    + gamma);
        }
        if (!(dropout >= 0f && dropout < 1f)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), got " + dropout);
        }
        if (gradMode == null) {
            throw new IllegalArgumentException("gradMode is null");
        }
    }

    /**
     * Whether the forward/backward apply a dropout mask.
     *
     * @return true in training mode with p &gt; 0
     */
    public boolean dropoutActive() {
        return training && dropout > 0f;
    }

    /**
     * The mask of this step, or null when dropout is inactive.
     *
     * @return the mask of (seed, step, layer, p), or null
     */
    public DropoutMask mask() {
        return dropoutActive() ? new DropoutMask(seed, step, layer, dropout) : null;
    }

    /**
     * The same step with a different row count (for benchmarks and chunked callers).
     *
     * @param newN the row count, ≥ 1
     * @return a copy with n = newN
     */

    public LoraParams withN(int newN) {
        return new LoraParams(newN, dIn, dOut, rank, gamma, dropout, seed, step, layer, training, adapterActive, gradMode);
    }
}
