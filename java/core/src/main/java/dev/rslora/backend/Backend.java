package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

/**
 * One implementation of the rsLoRA layer math (SPEC.md §2–3, §6). Implementations:
 * {@code reference} (scalar, double accumulation: the oracle), {@code cpu} (Vector API,
 * multi-threaded) and {@code cuda}. Backends speak in host tensors plus a {@link LoraParams};
 * {@link Backends} picks one.
 *
 * <p>Dtype rules: X, W, b, A, B, dY, Y, dX, dA, dB are each F32, BF16 or F16 (they may differ);
 * U is the backend's saved activation, always F32 [n, rank] and without γ. Every output is
 * accumulated in fp32 (or wider) and rounded once to its dtype. A backend instance may be used
 * by several layers, but one layer call at a time per thread.
 *
 * <p>Outputs (Y, U, dX, dA, dB, merge's W) must be writable and must not share memory with an input
 * or another output.
 * Every backend (reference, cpu, cuda) checks every argument once per call, before any work
 * ({@link BackendChecks}): a tensor of the wrong shape, a missing one, a U that is not F32, a γ that
 * is not finite, an output over read-only memory, a tensor whose arena is closed or confined to another
 * thread, or an aliased output is refused with an {@link IllegalArgumentException} naming it.
 * The contract is the same for all: the cuda backend, which stages host tensors in and out, would
 * compute an output that aliases an input correctly, but refuses it too, so that a call accepted by
 * one backend is accepted by every other. The layer ({@code dev.rslora.core.LoraLinear}) refuses
 * aliased outputs itself, before it calls the backend.
 */
public interface Backend {

    /**
     * The backend's name.
     *
     * @return "reference", "cpu" or "cuda" (what {@link Backends#get} takes)
     */
    String name();

    /**
     * Prepares the frozen W [d_out, d_in] and bias [d_out] (nullable) for repeated use.
     *
     * @param weight W [d_out, d_in] (borrowed: must outlive the returned handle)
     * @param bias   b [d_out], or null for none
     * @return the prepared weight (packed panels, a device copy, or just the host tensors); close it when done
     */
    FrozenWeight prepare(Tensor weight, Tensor bias);

    /**
     * Forward. {@code U = D(X)·Aᵀ} [n, r] (saved for backward, no γ) and
     * {@code Y = X·Wᵀ + b + γ·U·Bᵀ} [n, d_out]. When {@code !p.adapterActive()}, Y = X·Wᵀ + b and
     * a, b, u may be null.
     *
     * @param p the step's shapes, γ, dropout key and mode
     * @param w the prepared W and bias
     * @param x X [n, d_in]
     * @param a A [r, d_in]
     * @param b B [d_out, r]
     * @param u receives U [n, r] F32 (without γ), kept for backward
     * @param y receives Y [n, d_out] (assigned)
     */
    void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y);

    /**
     * Backward with W frozen. {@code V = dY·B}; {@code dB = γ·dYᵀ·U} [d_out, r];
     * {@code dA = γ·Vᵀ·D(X)} [r, d_in] (assigned or accumulated per {@code p.gradMode()});
     * {@code dX = dY·W + γ·D'(V·A)} [n, d_in] (always assigned; skipped when dx is null).
     * When {@code !p.adapterActive()}, only dX = dY·W is computed and a, b, u, gradA, gradB may be null.
     *
     * @param p     the forward's params (same step, so the same dropout mask)
     * @param w     the prepared W
     * @param x     the forward's X [n, d_in]
     * @param a     A [r, d_in]
     * @param b     B [d_out, r]
     * @param u     the forward's U [n, r] F32
     * @param dy    dY [n, d_out]
     * @param dx    receives dX [n, d_in] (assigned), or null to skip it
     * @param gradA receives dA [r, d_in] (assigned or accumulated)
     * @param gradB receives dB [d_out, r] (assigned or accumulated)
     */
    void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                  Tensor dx, Tensor gradA, Tensor gradB);

    /**
     * {@code W ← round(W + sign·γ·B·A)} computed in fp32 and rounded once to W's dtype
     * (sign = +1 merge, −1 unmerge); updates the host W and any prepared copy.
     *
     * @param w     the prepared W, written in place
     * @param a     A [r, d_in]
     * @param b     B [d_out, r]
     * @param gamma γ of the layer
     * @param sign  +1 to merge, −1 to unmerge
     * @throws IllegalArgumentException if an argument does not fit ({@link BackendChecks#merge}), or a merged element
     *                                  would not be finite in W's dtype while W's element is (beyond F16's range,
     *                                  say): checked for every element before W takes any (the {@code cuda} backend
     *                                  checks the result downloaded from the device and restores the device copy), so
     *                                  W is unchanged ({@link BackendChecks#mergeNotFinite} names the element)
     */

    void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign);

    /**
     * Runs {@link #merge}'s checks, element check included where the backend has one that writes nothing, and
     * writes nothing: what a caller merging several weights all or nothing runs on every weight first. The
     * {@code reference} and {@code cpu} backends compute every merged element (as merge does before it
     * writes); the default, which the {@code cuda} backend keeps, checks the arguments only, and its merge
     * still refuses an element before writing W.
     *
     * @param w     the prepared W, unchanged
     * @param a     A [r, d_in]
     * @param b     B [d_out, r]
     * @param gamma γ of the layer
     * @param sign  +1 to merge, −1 to unmerge
     * @throws IllegalArgumentException as {@link #merge} would
     */
    default void checkMerge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        BackendChecks.merge(w, a, b, gamma, sign);
    }

    /**
     * Whether this instance was closed. The {@code cpu} and {@code cuda} backends hold threads or a
     * device context and are {@link AutoCloseable}; closed, they refuse every call (and so do the
     * layers built on them). {@link Backends#get} never hands out a closed instance.
     *
     * @return true once a closeable backend was closed; false for one that holds nothing ({@code reference})
     */
    default boolean isClosed() {
        return false;
    }
}
