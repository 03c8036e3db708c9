package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

/**
 * Packing and launches of {@code cuda/kernels/seq_logprob.cuh}: per-row log-sum-exp and label terms
 * ({@code rslora_seq_logprob_rows_v1_<dtype>}, one block per row), the per-sequence sums
 * ({@code rslora_seq_logprob_sum_v1}) and the backward ({@code rslora_seq_logprob_backward_v1_<dtype>}).
 * Pure packing plus calls to a {@link KernelLauncher}, tested without a device.
 *
 * <pre>logits [rows = B·T, V], labels [rows] int32 (−100 ignored), lse [rows] f32, tok [rows] f64, logp [B] f32</pre>
 */
final class SeqLogprobKernels {
    static final String SUM = "rslora_seq_logprob_sum_v1";

    static String rows(DType t) {
        return "rslora_seq_logprob_rows_v1_" + LoraKernels.suffix(t);
    }

    static String backward(DType t) {
        return "rslora_seq_logprob_backward_v1_" + LoraKernels.suffix(t);
    }

    /** The device addresses and sizes of one call. */
    record Call(long logits, long labels, long lse, long tok, long logp, long grad, long dlogits, int batch, int time, int vocab) {
        Call {
            if (batch < 1 || time < 1 || vocab < 1 || (long) batch * time > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("sequence log-probs need B, T, V >= 1 and B·T <= " + Integer.MAX_VALUE
                        + ", got B=" + batch + " T=" + time + " V=" + vocab);
            }
        }

        int rows() {
            return batch * time;
        }
    }

    /** RsSeqLogprobParams of {@code c}. */
    static byte[] params(Call c) {
        return KernelParams.SEQ_LOGPROB.packer()
                .ptr("logits", c.logits()).ptr("labels", c.labels()).ptr("lse", c.lse()).ptr("tok", c.tok()).ptr("logp", c.logp())
                .ptr("grad", c.grad()).ptr("dlogits", c.dlogits())
                .i32("rows", c.rows()).i32("vocab", c.vocab()).i32("batch", c.batch()).i32("time", c.time())
                .bytes();
    }

    private final KernelLauncher launcher;

    SeqLogprobKernels(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    void resolve(DType t) {
        launcher.resolve(rows(t));
        launcher.resolve(SUM);
        launcher.resolve(backward(t));
    }

    /** Queues the forward: one block per row, then one thread per sequence. */
    void forward(DType t, Call c) {
        byte[] p = params(c);
        launcher.launch(rows(t), new LaunchGeometry.Grid(c.rows(), 1, 1), LaunchGeometry.THREADS, p);
        launcher.launch(SUM, new LaunchGeometry.Grid((c.batch() + LaunchGeometry.THREADS - 1) / LaunchGeometry.THREADS, 1, 1),
                LaunchGeometry.THREADS, p);
    }

    /** Queues the backward: one block per row. */
    void backward(DType t, Call c) {
        launcher.launch(backward(t), new LaunchGeometry.Grid(c.rows(), 1, 1), LaunchGeometry.THREADS, params(c));
    }
}
