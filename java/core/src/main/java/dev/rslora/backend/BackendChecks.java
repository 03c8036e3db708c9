package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The argument checks of the {@link Backend} contract, run once per call before any work: every
 * tensor present and of the shape {@link LoraParams} says, the prepared weight of the shape the
 * params say, U F32, γ finite and merge's sign ±1, and no output sharing memory with an input or
 * another output (an aliased output would be overwritten while it is still read, silently giving
 * wrong numbers) or over read-only memory, and every tensor's memory usable by the calling thread
 * (its arena open and not confined to another thread). Each failure is an {@link IllegalArgumentException} naming the argument and its
 * value. Backends call these at their entry points; the checks do not depend on the tensors' sizes
 * beyond a few comparisons.
 */
public final class BackendChecks {
    private BackendChecks() {
    }

    /**
     * Checks the arguments of {@link Backend#prepare}.
     *
     * @param weight W [d_out, d_in], both ≥ 1
     * @param bias   b [d_out], or null
     * @throws IllegalArgumentException if W is null, not 2-D, has an empty dimension, or the bias does not match it
     */
    public static void prepare(Tensor weight, Tensor bias) {
        if (weight == null || weight.rank() != 2 || weight.dim(0) < 1 || weight.dim(1) < 1
                || weight.dim(0) > Integer.MAX_VALUE || weight.dim(1) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("weight must be 2-D [d_out, d_in] with dims >= 1, got "
                    + (weight == null ? "null" : weight.shapeString()));
        }
        if (bias != null && !(bias.rank() == 1 && bias.dim(0) == weight.dim(0))) {
            throw new IllegalArgumentException("bias shape " + bias.shapeString() + " does not match weight "
                    + weight.shapeString() + ": expected [" + weight.dim(0) + "]");
        }
        usable("weight", weight);
        usable("bias", bias);
    }

    /**
     * Checks the arguments of {@link Backend#forward}: shapes, U's dtype, and that Y and U share no
     * memory with X, W, b, A, B or each other.
     *
     * @param p the step's params (not null)
     * @param w the prepared weight, of [p.dOut(), p.dIn()]
     * @param x X [n, d_in]
     * @param a A [r, d_in] (checked when the adapter is active)
     * @param b B [d_out, r] (checked when the adapter is active)
     * @param u U [n, r] F32, or null
     * @param y Y [n, d_out]
     * @throws IllegalArgumentException naming the first argument that does not fit
     */
    public static void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        weight(p, w);
        shape("x", x, p.n(), p.dIn());
        shape("y", y, p.n(), p.dOut());
        boolean active = p.adapterActive();
        if (active) {
            shape("a", a, p.rank(), p.dIn());
            shape("b", b, p.dOut(), p.rank());
            if (u != null) {
                u(u, p);
            }
        }
        writable("y", y);
        if (active) {
            writable("u", u);
        }
        Tensor wt = w.weight();
        Tensor bias = w.bias();
        usable("x", x);
        usable("y", y);
        usable("weight", wt);
        usable("bias", bias);
        if (active) {
            usable("a", a);
            usable("b", b);
            usable("u", u);
        }
        disjoint("y", y, "x", x);
        disjoint("y", y, "weight", wt);
        disjoint("y", y, "bias", bias);
        if (active) {
            disjoint("y", y, "a", a);
            disjoint("y", y, "b", b);
            disjoint("y", y, "u", u);
            disjoint("u", u, "x", x);
            disjoint("u", u, "weight", wt);
            disjoint("u", u, "bias", bias);
            disjoint("u", u, "a", a);
            disjoint("u", u, "b", b);
        }
    }

    /**
     * Checks the arguments of {@link Backend#backward}: shapes, U's dtype, and that dX, dA and dB
     * share no memory with X, W, A, B, U, dY or each other.
     *
     * @param p     the forward's params (not null)
     * @param w     the prepared weight, of [p.dOut(), p.dIn()]
     * @param x     X [n, d_in] (checked when the adapter is active, else may be null)
     * @param a     A [r, d_in] (adapter active)
     * @param b     B [d_out, r] (adapter active)
     * @param u     U [n, r] F32 (adapter active); null only where {@code uRequired} is false
     * @param dy    dY [n, d_out]
     * @param dx    dX [n, d_in], or null
     * @param gradA dA [r, d_in] (adapter active)
     * @param gradB dB [d_out, r] (adapter active)
     * @param uRequired whether the backend reads the saved U (else a null U is allowed)
     * @throws IllegalArgumentException naming the first argument that does not fit
     */
    public static void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                                Tensor dx, Tensor gradA, Tensor gradB, boolean uRequired) {
        weight(p, w);
        shape("dy", dy, p.n(), p.dOut());
        if (dx != null) {
            shape("dx", dx, p.n(), p.dIn());
        }
        boolean active = p.adapterActive();
        if (active) {
            shape("x", x, p.n(), p.dIn());
            shape("a", a, p.rank(), p.dIn());
            shape("b", b, p.dOut(), p.rank());
            if (u == null && uRequired) {
                throw new IllegalArgumentException("u (the U = D(X)·Aᵀ saved by forward) is required by backward, "
                        + "expected F32 [" + p.n() + ", " + p.rank() + "]");
            }
            if (u != null) {
                u(u, p);
            }
            shape("gradA", gradA, p.rank(), p.dIn());
            shape("gradB", gradB, p.dOut(), p.rank());
        }
        writable("dx", dx);
        if (active) {
            writable("gradA", gradA);
            writable("gradB", gradB);
        }
        Tensor wt = w.weight();
        usable("dy", dy);
        usable("dx", dx);
        usable("weight", wt);
        if (active) {
            usable("x", x);
            usable("a", a);
            usable("b", b);
            usable("u", u);
            usable("gradA", gradA);
            usable("gradB", gradB);
        }
        disjoint("dx", dx, "dy", dy);
        disjoint("dx", dx, "x", x);
        disjoint("dx", dx, "weight", wt);
        if (active) {
            disjoint("dx", dx, "a", a);
            disjoint("dx", dx, "b", b);
            disjoint("dx", dx, "u", u);
            disjoint("dx", dx, "gradA", gradA);
            disjoint("dx", dx, "gradB", gradB);
            gradDisjoint("gradA", gradA, x, wt, a, b, u, dy);
            gradDisjoint("gradB", gradB, x, wt, a, b, u, dy);
            disjoint("gradA", gradA, "gradB", gradB);
        }
    }

    /**
     * Checks the arguments of {@link Backend#merge}: A [r, d_in] and B [d_out, r] of the weight's
     * shape, γ finite in fp32, sign ±1, and A and B sharing no memory with W.
     *
     * @param w     the prepared weight (not null)
     * @param a     A [r, d_in], r ≥ 1
     * @param b     B [d_out, r]
     * @param gamma γ, finite and within fp32's range
     * @param sign  +1 or −1
     * @throws IllegalArgumentException naming the first argument that does not fit
     */
    public static void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        if (w == null) {
            throw new IllegalArgumentException("the prepared weight is null");
        }
        if (sign != 1 && sign != -1) {
            throw new IllegalArgumentException("sign must be +1 (merge) or -1 (unmerge), got " + sign);
        }
        if (!(Math.abs(gamma) <= Float.MAX_VALUE)) {
            throw new IllegalArgumentException("gamma must be finite (within fp32's range), got gamma=" + gamma);
        }
        Tensor wt = w.weight();
        long dIn = wt.dim(1);
        if (a == null || a.rank() != 2 || a.dim(1) != dIn || a.dim(0) < 1 || a.dim(0) > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a must be [r, " + dIn + "], got " + (a == null ? "null" : a.shapeString()));
        }
        shape("b", b, wt.dim(0), a.dim(0));
        writable("weight", wt);
        usable("weight", wt);
        usable("a", a);
        usable("b", b);
        disjoint("weight", wt, "a", a);
        disjoint("weight", wt, "b", b);
    }

    /**
     * The refusal of a merge (or unmerge) whose result at W[row, col] would not be finite although W's
     * element is: a value beyond the weight dtype's range (stored as ±Infinity) or NaN (a non-finite A or
     * B). Such a W could not be restored by unmerge, so a backend checks every element before it writes
     * any and throws this, leaving W unchanged. The message recomputes the element's terms in double.
     *
     * @param w     the prepared weight, still unchanged
     * @param a     A [r, d_in]
     * @param b     B [d_out, r]
     * @param gamma γ of the layer
     * @param sign  +1 merge, −1 unmerge
     * @param row   the element's row in W [d_out, d_in]
     * @param col   the element's column
     * @return the exception to throw, naming the element, W's value there, γ·(B·A) there, the sum and the dtype
     */
    public static IllegalArgumentException mergeNotFinite(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign,
                                                          long row, long col) {
        Tensor wt = w.weight();
        double s = 0;
        for (long j = 0; j < a.dim(0); j++) {
            s += (double) b.get(row, j) * a.get(j, col);
        }
        float old = wt.get(row, col);
        double delta = sign * gamma * s;
        double sum = old + delta;
        DType dt = wt.dtype();
        String op = sign > 0 ? "merge" : "unmerge";
        boolean fits = Double.isFinite(sum) && Float.isFinite(dt.round((float) sum));  // the exact value: a backend's fp32 steps overflowed
        String why = Double.isNaN(sum) ? "is NaN (lora_A or lora_B holds a non-finite value)"
                : fits ? "is within " + dt + "'s range, but the merge's fp32 arithmetic overflows on the way (a term of"
                        + " B·A, or γ times it, beyond " + Float.MAX_VALUE + ")"
                : "is beyond " + dt + "'s range (largest finite " + largestFinite(dt) + ")";
        return new IllegalArgumentException(op + ": the " + dt + " weight's W[" + row + ", " + col + "] = " + old
                + (sign > 0 ? " + " : " - ") + "γ·(B·A)[" + row + ", " + col + "] = " + (sign > 0 ? delta : -delta)
                + " gives " + sum + ", which " + why + ": it would be stored as " + (Double.isNaN(sum) ? "NaN" : "Infinity")
                + " and unmerge could not restore W; nothing was written (W is unchanged)");
    }

    private static float largestFinite(DType dt) {
        return switch (dt) {
            case F32 -> Float.MAX_VALUE;
            case BF16 -> 3.3895314e38f;
            case F16 -> 65504f;
        };
    }

    /**
     * Whether storing {@code merged} over the finite-or-not W value {@code old} would destroy it: the rounded
     * result is not finite while {@code old} is (a W element already ±Infinity or NaN stays the caller's).
     *
     * @param dtype  the weight's dtype
     * @param old    W's element before the merge
     * @param merged the fp32 result before rounding to {@code dtype}
     * @return true if the merge must be refused
     */
    public static boolean mergeDestroys(DType dtype, float old, float merged) {
        return !Float.isFinite(dtype.round(merged)) && Float.isFinite(old);
    }

    /**
     * The first element (flat index) where a merge result computed apart from W, and already in W's
     * dtype, is not finite while W's element is ({@link #mergeDestroys}), or −1: how a backend that
     * merges on a device checks the downloaded result before W takes it.
     *
     * @param before W, unchanged
     * @param after  the merge result, of W's shape and dtype
     * @return the flat index of the first element the merge would destroy, or −1
     * @throws IllegalArgumentException if the shapes or dtypes differ
     */
    public static long firstDestroyed(Tensor before, Tensor after) {
        if (!Arrays.equals(before.shape(), after.shape()) || before.dtype() != after.dtype()) {
            throw new IllegalArgumentException("merge result " + after + " does not match W " + before);
        }
        MemorySegment was = before.readOnlySegment();
        MemorySegment is = after.readOnlySegment();
        DType dt = before.dtype();
        for (long i = 0; i < before.numel(); i++) {
            float v = dt.load(is, i);
            if (!Float.isFinite(v) && Float.isFinite(dt.load(was, i))) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Refuses an output that shares memory with another tensor (nulls are ignored).
     *
     * @param outName the output's name, for the message
     * @param out     the tensor written, or null
     * @param inName  the other tensor's name
     * @param in      a tensor read (or another output), or null
     * @throws IllegalArgumentException if both are present and overlap
     */
    public static void disjoint(String outName, Tensor out, String inName, Tensor in) {
        if (out != null && out.overlaps(in)) {
            throw new IllegalArgumentException(outName + " " + out.shapeString() + " shares memory with " + inName + " "
                    + in.shapeString() + ": an output must not alias an input or another output (pass a separate tensor)");
        }
    }

    /**
     * Refuses a tensor (nulls are ignored) whose memory this thread cannot use: its arena is closed,
     * or confined to another thread. The first access would fail inside the call, naming nothing,
     * possibly after the call had written (or accumulated into) other outputs.
     *
     * @param name the tensor's name, for the message
     * @param t    the tensor, or null
     * @throws IllegalArgumentException naming the tensor and its shape if its arena is closed or confined to another
     *                                  thread
     */
    public static void usable(String name, Tensor t) {
        if (t == null) {
            return;
        }
        MemorySegment seg = t.readOnlySegment();
        if (!seg.scope().isAlive()) {
            throw new IllegalArgumentException(name + " " + t.shapeString() + ": its arena is closed (the tensor's memory"
                    + " was freed)");
        }
        if (!seg.isAccessibleBy(Thread.currentThread())) {
            throw new IllegalArgumentException(name + " " + t.shapeString() + ": its memory is confined to another thread"
                    + " (allocate it in a shared arena, Arena.ofShared(), to use it from " + Thread.currentThread().getName() + ")");
        }
    }

    /**
     * Refuses an output over read-only memory (nulls are ignored): its first store would fail deep
     * inside the call, naming nothing, after the call had written its other outputs.
     *
     * @param name the output's name, for the message
     * @param out  the tensor written, or null
     * @throws IllegalArgumentException if out is read-only
     */
    public static void writable(String name, Tensor out) {
        if (out != null && out.isReadOnly()) {
            throw new IllegalArgumentException(name + " " + out.shapeString() + " is read-only memory (for example a"
                    + " memory-mapped file's tensor) but is written by this call: pass a writable tensor (copy it first)");
        }
    }

    private static void gradDisjoint(String name, Tensor g, Tensor x, Tensor wt, Tensor a, Tensor b, Tensor u, Tensor dy) {
        disjoint(name, g, "dy", dy);
        disjoint(name, g, "x", x);
        disjoint(name, g, "weight", wt);
        disjoint(name, g, "a", a);
        disjoint(name, g, "b", b);
        disjoint(name, g, "u", u);
    }

    private static void weight(LoraParams p, FrozenWeight w) {
        if (p == null) {
            throw new IllegalArgumentException("params are null");
        }
        if (w == null) {
            throw new IllegalArgumentException("the prepared weight is null");
        }
        Tensor wt = w.weight();
        if (wt == null || !wt.sameShape(p.dOut(), p.dIn())) {
            throw new IllegalArgumentException("prepared weight is " + (wt == null ? "null" : wt.shapeString())
                    + " but params say d_out=" + p.dOut() + ", d_in=" + p.dIn());
        }
    }

    private static void shape(String name, Tensor t, long rows, long cols) {
        if (t == null || !t.sameShape(rows, cols)) {
            throw new IllegalArgumentException(name + " shape " + (t == null ? "null" : t.shapeString())
                    + " must be [" + rows + ", " + cols + "]");
        }
    }

    private static void u(Tensor u, LoraParams p) {
        shape("u", u, p.n(), p.rank());
        if (u.dtype() != DType.F32) {
            throw new IllegalArgumentException("u must be F32 [" + p.n() + ", " + p.rank() + "], got " + u.dtype());
        }
    }
}
