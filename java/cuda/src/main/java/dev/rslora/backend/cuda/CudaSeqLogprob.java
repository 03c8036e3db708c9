package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Objects;

/**
 * Per-sequence log-probabilities on the device ({@code dev.rslora.train.SeqLogprob}'s contract, the
 * kernels of {@code cuda/kernels/seq_logprob.cuh}), for one shape B × T × V: the logits stay on the
 * device and no softmax copy is made; the backward may write into the logits.
 *
 * <pre>
 *   forward:  logits [B, T, V] (F32/BF16/F16), labels [B·T] (−100 ignored) → logp [B] = Σ_t log softmax(logits[b,t])[label]
 *   backward: g [B] = ∂L/∂logp → dlogits[b,t,v] = g_b·(1[v = label] − softmax(logits[b,t])_v), 0 on ignored positions
 * </pre>
 *
 * The object owns its small workspaces (labels, lse [B·T] f32, token terms [B·T] f64, logp and g [B]
 * f32) and frees them on {@link #close()}. {@code expf} on the device is within 2 ulp, so results agree
 * with the CPU op to about 1e-6 relative, not bit for bit. One thread at a time.
 */
public final class CudaSeqLogprob implements AutoCloseable {
    private static final ValueLayout.OfInt LE_INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);

    private final CudaBackend backend;
    private final SeqLogprobKernels kernels;
    private final int batch;
    private final int time;
    private final int vocab;
    private final DeviceBuffer labels;
    private final DeviceBuffer lse;
    private final DeviceBuffer tok;
    private final DeviceBuffer logp;
    private final DeviceBuffer grad;
    private DType forwardType;
    private boolean closed;

    /**
     * Workspaces for logits of shape [batch, time, vocab].
     *
     * @param backend the backend that runs the kernels
     * @param batch   B, the sequences, ≥ 1
     * @param time    T, the positions per sequence, ≥ 1
     * @param vocab   V, the vocabulary size, ≥ 1
     */
    public CudaSeqLogprob(CudaBackend backend, int batch, int time, int vocab) {
        this.backend = Objects.requireNonNull(backend, "backend");
        new SeqLogprobKernels.Call(1, 1, 1, 1, 1, 1, 1, batch, time, vocab);  // validates the shape
        this.batch = batch;
        this.time = time;
        this.vocab = vocab;
        long rows = (long) batch * time;
        synchronized (backend) {
            if (backend.isClosed()) {
                throw new IllegalStateException("cuda backend is closed");
            }
            CudaContext ctx = backend.context();
            ctx.makeCurrent();
            DeviceBuffer l = null;
            DeviceBuffer s = null;
            DeviceBuffer t = null;
            DeviceBuffer p = null;
            try {
                l = ctx.allocate(4 * rows);
                s = ctx.allocate(4 * rows);
                t = ctx.allocate(8 * rows);
                p = ctx.allocate(4L * batch);
                this.grad = ctx.allocate(4L * batch);
            } catch (RuntimeException e) {
                for (DeviceBuffer b : new DeviceBuffer[] {l, s, t, p}) {
                    if (b != null) {
                        b.close();
                    }
                }
                throw e;
            }
            this.labels = l;
            this.lse = s;
            this.tok = t;
            this.logp = p;
            this.kernels = new SeqLogprobKernels(ctx);
        }
    }

    private void checkLogits(String what, DeviceTensor t) {
        backend.checkOwn(t);
        if (!Arrays.equals(t.shape(), new long[] {batch, time, vocab})) {
            throw new IllegalArgumentException(what + " shape " + t.shapeString() + " must be [" + batch + ", " + time + ", " + vocab + "]");
        }
    }

    /**
     * Uploads {@code labels} [B·T] (each in [0, V) or −100, checked), runs the forward on {@code logits}
     * and returns logp [B] (waits for it). The lse of every row stays on the device for {@link #backward}.
     *
     * @param logits   [B, T, V] on this backend (F32, BF16 or F16)
     * @param labelIds B·T labels, row-major: token ids in [0, V) or −100 (ignored)
     * @return logp [B]: each sequence's summed log-probability of its labels (nats, ≤ 0)
     */
    public float[] forward(DeviceTensor logits, int[] labelIds) {
        checkLogits("logits", logits);
        if (labelIds.length != batch * time) {
            throw new IllegalArgumentException("labels have " + labelIds.length + " entries, need B·T = " + batch * time);
        }
        for (int i = 0; i < labelIds.length; i++) {
            int l = labelIds[i];
            if (l != -100 && (l < 0 || l >= vocab)) {
                throw new IllegalArgumentException("label " + l + " at [" + i / time + ", " + i % time + "] is outside [0, " + vocab
                        + ") and is not the ignore index -100");
            }
        }
        synchronized (backend) {
            enter();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = arena.allocate(4L * labelIds.length, 4);
                MemorySegment.copy(labelIds, 0, seg, LE_INT, 0, labelIds.length);
                backend.context().upload(seg, labels);
                kernels.resolve(logits.dtype());
                kernels.forward(logits.dtype(), call(logits.buffer().address(), 0, 0));
                forwardType = logits.dtype();
                MemorySegment out = arena.allocate(4L * batch, 4);
                backend.context().download(logp, out);
                float[] r = new float[batch];
                MemorySegment.copy(out, DType.LE_FLOAT, 0, r, 0, batch);
                return r;
            }
        }
    }

    /**
     * The backward of the last forward: dlogits [B, T, V] (same dtype as the logits; may be the logits
     * tensor itself) from g [B]. Queued on the stream; returns without waiting.
     *
     * @param logits   the forward's logits
     * @param gradLogp g [B] = ∂L/∂logp
     * @param dlogits  receives ∂L/∂logits [B, T, V], every element (zeros on ignored positions)
     */
    public void backward(DeviceTensor logits, float[] gradLogp, DeviceTensor dlogits) {
        checkLogits("logits", logits);
        checkLogits("dlogits", dlogits);
        if (forwardType == null) {
            throw new IllegalStateException("backward called before forward");
        }
        if (logits.dtype() != forwardType || dlogits.dtype() != forwardType) {
            throw new IllegalArgumentException("logits " + logits.dtype() + " and dlogits " + dlogits.dtype()
                    + " must have the forward's dtype " + forwardType);
        }
        if (gradLogp.length != batch) {
            throw new IllegalArgumentException("grad has " + gradLogp.length + " entries, need B = " + batch);
        }
        synchronized (backend) {
            enter();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = arena.allocate(4L * batch, 4);
                MemorySegment.copy(gradLogp, 0, seg, DType.LE_FLOAT, 0, batch);
                backend.context().upload(seg, grad);
            }
            kernels.backward(logits.dtype(), call(logits.buffer().address(), grad.address(), dlogits.buffer().address()));
        }
    }

    /**
     * The lse [B·T] of the last forward (0 on ignored rows; waits for it).
     *
     * @return a new array of B·T log-sum-exps
     */
    public float[] lse() {
        synchronized (backend) {
            enter();
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(4L * batch * time, 4);
                backend.context().download(lse, out);
                float[] r = new float[batch * time];
                MemorySegment.copy(out, DType.LE_FLOAT, 0, r, 0, r.length);
                return r;
            }
        }
    }

    private SeqLogprobKernels.Call call(long logits, long g, long d) {
        return new SeqLogprobKernels.Call(logits, labels.address(), lse.address(), tok.address(), logp.address(), g, d, batch, time,
                vocab);
    }

    private void enter() {
        if (closed) {
            throw new IllegalStateException("CUDA sequence log-probs are closed");
        }
        if (backend.isClosed()) {
            throw new IllegalStateException("cuda backend is closed");
        }
        backend.context().makeCurrent();
    }

    @Override
    public void close() {
        synchronized (backend) {
            if (closed) {
                return;
            }
            closed = true;
            if (!backend.isClosed()) {
                backend.context().makeCurrent();
            }
            for (DeviceBuffer b : new DeviceBuffer[] {labels, lse, tok, logp, grad}) {
                b.close();
            }
        }
    }
}
