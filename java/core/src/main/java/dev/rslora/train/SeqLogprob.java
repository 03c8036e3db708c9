package dev.rslora.train;

import dev.rslora.backend.BackendChecks;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * Summed per-sequence log-probabilities of labels under logits, and their backward, without a
 * softmax copy: the quantity DPO needs for the chosen and rejected responses
 * (TRL's {@code _get_batch_logps}, with the labels already aligned to the logits).
 *
 * <pre>
 *   logits [B, T, V] (F32, BF16 or F16), labels [B·T] int: a token id in [0, V) or {@link #IGNORE_INDEX}
 *   lse_bt  = log Σ_v exp(logits[b,t,v])                                  (saved, F32 [B, T]; 0 where ignored)
 *   logp_b  = Σ_{t: label ≠ −100} (logits[b,t,label_bt] − lse_bt)          (F32 [B])
 *   backward, given g_b = ∂L/∂logp_b:
 *   dlogits[b,t,v] = g_b·(1[v = label_bt] − exp(logits[b,t,v] − lse_bt)),  0 on ignored positions
 * </pre>
 *
 * Accumulation: each row's max, then Σ exp(x − max) in double (the Vector API path sums the fp32
 * vector exp of blocks of 32 vectors in fp32 lanes and adds each block's lanes in double, in lane order); per-token and per-sequence sums in
 * double, rounded to F32 once.
 *
 * <p>No label shift is done here, unlike TRL: its {@code _get_batch_logps} itself drops the last logit
 * position and the first label ({@code logits[:, :-1]}, {@code labels[:, 1:]}), and newer TRL's
 * {@code concatenated_forward} does the same by rolling the input ids and the completion mask left by
 * one. For a causal LM pass those shifted views (position t's logits score token t + 1), with −100 on
 * every prompt and padding label, so that only completion tokens are summed. TRL writes a dummy id 0
 * into the masked labels and zeroes their log-probs afterwards, which gives the same sum as skipping
 * them; its {@code label_pad_token_id} is configurable, here it is always −100.
 *
 * <p>The backward may write into the logits tensor itself
 * ({@code dlogits == logits}), as fused cross-entropy kernels do: each element is read before it is
 * overwritten, and nothing else of that row is read afterwards.
 */
public final class SeqLogprob {
    /** The label that marks a position without a target (the prompt, padding). */
    public static final int IGNORE_INDEX = -100;

    private static final boolean VECTOR = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent()
            && !Boolean.getBoolean(AdamW.SCALAR_PROPERTY);

    private SeqLogprob() {
    }

    /**
     * Forward: writes lse [B, T] (F32) and logp [B] (F32) for logits [B, T, V] and labels [B·T].
     * Refuses a label outside [0, V) other than −100 (naming its position).
     *
     * @param logits the scores [B, T, V] (F32, BF16 or F16; every dimension ≥ 1); only read
     * @param labels B·T token ids, row-major [b][t]: in [0, V), or {@link #IGNORE_INDEX} for no target
     * @param lse    output, F32 [B, T]: log Σ_v exp(logits[b,t,v]), 0 at ignored positions (keep it for
     *               {@link #backward})
     * @param logp   output, F32 [B]: each sequence's summed log-probability of its labels (nats, ≤ 0);
     *               0 for a sequence whose labels are all ignored
     * @throws IllegalArgumentException if an argument is null, a shape or dtype does not match, a label is out of range, lse or
     *                                  logp is read-only, they share memory with logits or with each other, or a
     *                                  tensor's memory was freed (naming it); checked before anything is written
     */
    public static void forward(Tensor logits, int[] labels, Tensor lse, Tensor logp) {
        Shape s = check(logits, labels);
        requireF32("lse", lse, s.batch, s.time);
        requireF32("logp", logp, s.batch);
        BackendChecks.writable("lse", lse);
        BackendChecks.writable("logp", logp);
        // every tensor's memory alive (not freed) before the first row of lse is written
        BackendChecks.usable("logits", logits);
        BackendChecks.usable("lse", lse);
        BackendChecks.usable("logp", logp);
        BackendChecks.disjoint("lse", lse, "logits", logits);
        BackendChecks.disjoint("logp", logp, "logits", logits);
        BackendChecks.disjoint("logp", logp, "lse", lse);
        MemorySegment xs = logits.readOnlySegment();  // only read: logits' version stamp stays
        DType dt = logits.dtype();
        MemorySegment ls = lse.segment();
        MemorySegment ps = logp.segment();
        boolean vector = VECTOR && dt == DType.F32 && VectorAccess.ok(logits);
        for (int b = 0; b < s.batch; b++) {
            double seq = 0;
            for (int t = 0; t < s.time; t++) {
                int bt = b * s.time + t;
                int label = labels[bt];
                if (label == IGNORE_INDEX) {
                    ls.setAtIndex(DType.LE_FLOAT, bt, 0f);
                    continue;
                }
                long row = (long) bt * s.vocab;
                double l = vector ? SeqLogprobVector.logSumExp(xs, row, s.vocab) : logSumExp(xs, dt, row, s.vocab);
                ls.setAtIndex(DType.LE_FLOAT, bt, (float) l);
                seq += dt.load(xs, row + label) - l;
            }
            ps.setAtIndex(DType.LE_FLOAT, b, (float) seq);
        }
    }

    /**
     * Backward: dlogits [B, T, V] (any of F32/BF16/F16, may be {@code logits} itself) from the forward's
     * lse and gradOut [B] (F32, ∂L/∂logp). Assigns every element (zeros on ignored positions).
     *
     * @param logits  the forward's scores [B, T, V]
     * @param labels  the forward's labels (B·T entries)
     * @param lse     the forward's F32 [B, T] output
     * @param gradOut F32 [B]: ∂L/∂logp_b, e.g. a {@link DpoLoss.Result}'s gradient per sequence
     * @param dlogits output [B, T, V] (F32, BF16 or F16): ∂L/∂logits, every element written; may be
     *                {@code logits} itself (the scores are then overwritten)
     * @throws IllegalArgumentException if an argument is null, a shape, dtype or label does not match the forward's rules, dlogits
     *                                  is read-only, it shares memory with lse, gradOut, or with logits other than
     *                                  as the very same elements of the same dtype, or a tensor's memory was freed
     *                                  (naming it); checked before anything is written
     */
    public static void backward(Tensor logits, int[] labels, Tensor lse, Tensor gradOut, Tensor dlogits) {
        Shape s = check(logits, labels);
        requireF32("lse", lse, s.batch, s.time);
        requireF32("grad_logp", gradOut, s.batch);
        if (dlogits == null || !dlogits.sameShape(logits.shape())) {
            throw new IllegalArgumentException("dlogits shape " + (dlogits == null ? "null" : dlogits.shapeString()) + " must be "
                    + logits.shapeString());
        }
        BackendChecks.writable("dlogits", dlogits);
        BackendChecks.usable("logits", logits);
        BackendChecks.usable("lse", lse);
        BackendChecks.usable("grad_logp", gradOut);
        BackendChecks.usable("dlogits", dlogits);
        BackendChecks.disjoint("dlogits", dlogits, "lse", lse);
        BackendChecks.disjoint("dlogits", dlogits, "grad_logp", gradOut);
        if (dlogits.overlaps(logits) && !sameElements(dlogits, logits)) {
            throw new IllegalArgumentException("dlogits " + dlogits + " partly overlaps logits " + logits + ": it may be logits itself"
                    + " (the same memory, the same dtype) or separate memory, nothing in between");
        }
        // the inputs only read (their version stamps stay); dlogits may be logits itself, written through ds
        MemorySegment xs = logits.readOnlySegment();
        MemorySegment gs = gradOut.readOnlySegment();
        MemorySegment lses = lse.readOnlySegment();
        DType dt = logits.dtype();
        MemorySegment ds = dlogits.segment();
        DType ddt = dlogits.dtype();
        boolean vector = VECTOR && dt == DType.F32 && ddt == DType.F32 && VectorAccess.ok(logits) && VectorAccess.ok(dlogits);
        for (int b = 0; b < s.batch; b++) {
            float g = gs.getAtIndex(DType.LE_FLOAT, b);
            for (int t = 0; t < s.time; t++) {
                int bt = b * s.time + t;
                long row = (long) bt * s.vocab;
                int label = labels[bt];
                if (label == IGNORE_INDEX) {
                    for (int v = 0; v < s.vocab; v++) {
                        ddt.store(ds, row + v, 0f);
                    }
                    continue;
                }
                float l = lses.getAtIndex(DType.LE_FLOAT, bt);
                float xLabel = dt.load(xs, row + label);  // read before the row is written (dlogits may alias logits)
                if (vector) {
                    SeqLogprobVector.backwardRow(xs, ds, row, s.vocab, l, g);
                } else {
                    for (int v = 0; v < s.vocab; v++) {
                        float p = (float) Math.exp(dt.load(xs, row + v) - l);
                        ddt.store(ds, row + v, -(g * p));
                    }
                }
                ddt.store(ds, row + label, g * (1f - (float) Math.exp(xLabel - l)));
            }
        }
    }

    /** log Σ_v exp(x_v) of one row: max in float, Σ exp(x − max) in double. */
    static double logSumExp(MemorySegment xs, DType dt, long row, int vocab) {
        float max = Float.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
            max = Math.max(max, dt.load(xs, row + v));
        }
        if (max == Float.NEGATIVE_INFINITY || Float.isNaN(max)) {
            return max;
        }
        double sum = 0;
        for (int v = 0; v < vocab; v++) {
            sum += Math.exp(dt.load(xs, row + v) - max);
        }
        return max + Math.log(sum);
    }

    /**
     * Whether F32 rows use the Vector API in this JVM.
     *
     * @return true when {@code jdk.incubator.vector} is in the boot layer and the scalar property
     *         ({@code AdamW.SCALAR_PROPERTY}) is not set
     */

    public static boolean vectorized() {
        return VECTOR;
    }

    private record Shape(int batch, int time, int vocab) {
    }

    private static Shape check(Tensor logits, int[] labels) {
        if (logits == null || labels == null) {
            throw new IllegalArgumentException((logits == null ? "logits" : "labels") + " is null");
        }
        if (logits.rank() != 3) {
            throw new IllegalArgumentException("logits must be [B, T, V], got " + logits.shapeString());
        }
        for (long d : logits.shape()) {
            if (d < 1 || d > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("logits " + logits.shapeString() + " has a dimension outside [1, "
                        + Integer.MAX_VALUE + "]");
            }
        }
        int batch = (int) logits.dim(0);
        int time = (int) logits.dim(1);
        int vocab = (int) logits.dim(2);
        if ((long) batch * time != labels.length) {
            throw new IllegalArgumentException("labels have " + labels.length + " entries, logits " + logits.shapeString()
                    + " need B·T = " + (long) batch * time);
        }
        for (int i = 0; i < labels.length; i++) {
            int l = labels[i];
            if (l != IGNORE_INDEX && (l < 0 || l >= vocab)) {
                throw new IllegalArgumentException("label " + l + " at [" + i / time + ", " + i % time + "] is outside [0, "
                        + vocab + ") and is not the ignore index " + IGNORE_INDEX);
            }
        }
        return new Shape(batch, time, vocab);
    }

    /** Whether two overlapping tensors of one shape are the same elements: the same bytes, read as the same dtype. */
    private static boolean sameElements(Tensor a, Tensor b) {
        MemorySegment x = a.readOnlySegment();
        MemorySegment y = b.readOnlySegment();
        return a.dtype() == b.dtype() && x.address() == y.address() && x.byteSize() == y.byteSize();
    }

    private static void requireF32(String name, Tensor t, long... shape) {
        if (t == null || t.dtype() != DType.F32 || !t.sameShape(shape)) {
            throw new IllegalArgumentException(name + " must be F32 " + java.util.Arrays.toString(shape) + ", got "
                    + (t == null ? "null" : t.dtype() + " " + t.shapeString()));
        }
    }
}
