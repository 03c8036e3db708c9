package dev.rslora.train;

import dev.rslora.optim.AdafactorSpec;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * One Adafactor step of one parameter on the CPU, in exactly the fp32 operations and double
 * reduction order of {@link AdafactorSpec} (Java never contracts a multiply and an add, so the CUDA
 * kernels, written with round-to-nearest intrinsics, give the same bits).
 *
 * <pre>
 *   target [..., R, C] or [n]  the tensor updated: the fp32 master, else the parameter (any dtype)
 *   grad   same shape, any dtype
 *   row [B·R], col [B·C] F32   factored second moments (rank ≥ 2), else v [n] F32
 *   expAvg [n] F32 or null     first moment (beta1)
 *   scratch                    ≥ n floats (the update u)
 * </pre>
 */
final class AdafactorUpdate {
    private AdafactorUpdate() {
    }

    /** The state of one parameter: shapes and the tensors the step reads and writes. */
    record Slot(Tensor target, Tensor grad, Tensor row, Tensor col, Tensor v, Tensor expAvg, long batch, long rows, long cols) {
        boolean factored() {
            return row != null;
        }

        long numel() {
            return target.numel();
        }
    }

    /** A slot of {@code target}'s shape (factored when rank ≥ 2). */
    static Slot slot(Tensor target, Tensor grad, Tensor row, Tensor col, Tensor v, Tensor expAvg) {
        long[] s = target.shape();
        if (s.length >= 2) {
            long cols = s[s.length - 1];
            long rows = s[s.length - 2];
            long batch = target.numel() / (rows * cols);
            return new Slot(target, grad, row, col, null, expAvg, batch, rows, cols);
        }
        return new Slot(target, grad, null, null, v, expAvg, 1, 1, target.numel());
    }

    /** Applies step {@code s} to {@code slot}; {@code scratch} holds at least numel floats. */
    static void step(Slot slot, AdafactorSpec.Step s, float[] scratch, FlatSum sum) {
        Tensor target = slot.target();
        DType pt = target.dtype();
        MemorySegment ps = target.segment();
        DType gt = slot.grad().dtype();
        MemorySegment gs = slot.grad().readOnlySegment();  // only read: the gradient's version stamp stays
        int n = Math.toIntExact(slot.numel());
        float eps1 = s.eps1();
        float b2 = s.beta2();
        float omb2 = s.oneMinusBeta2();

        // RMS(p) of the parameter before the step (flat order over the whole tensor)
        double rmsP = 0;
        if (s.scaleParameter()) {
            sum.reset();
            for (int k = 0; k < n; k++) {
                double p = pt.load(ps, k);
                sum.add(p * p);
            }
            rmsP = AdafactorSpec.rms(sum.finish(), n);
        }

        // the update u (before clipping) into scratch
        if (slot.factored()) {
            factoredUpdate(slot, gt, gs, eps1, b2, omb2, scratch, sum);
        } else {
            MemorySegment vs = slot.v().segment();
            for (int k = 0; k < n; k++) {
                float g = gt.load(gs, k);
                float sq = g * g + eps1;
                float v = vs.getAtIndex(DType.LE_FLOAT, k) * b2 + sq * omb2;
                vs.setAtIndex(DType.LE_FLOAT, k, v);
                scratch[k] = (1f / (float) Math.sqrt(v)) * g;
            }
        }
        sum.reset();
        for (int k = 0; k < n; k++) {
            double u = scratch[k];
            sum.add(u * u);
        }
        float divisor = s.clipDivisor(AdafactorSpec.rms(sum.finish(), n));
        double lr = s.lr(rmsP);
        float lrF = (float) lr;
        float decay = s.decay(lr);
        boolean wd = s.weightDecay() != 0;
        MemorySegment ms = slot.expAvg() == null ? null : slot.expAvg().segment();
        float b1 = s.beta1();
        float omb1 = s.oneMinusBeta1();
        for (int k = 0; k < n; k++) {
            float u = scratch[k] / divisor;
            u = u * lrF;
            if (ms != null) {
                u = ms.getAtIndex(DType.LE_FLOAT, k) * b1 + u * omb1;
                ms.setAtIndex(DType.LE_FLOAT, k, u);
            }
            float p = pt.load(ps, k);
            if (wd) {
                p = p + p * decay;
            }
            pt.store(ps, k, p - u);
        }
    }

    /** Factored second moments: updates row/col and writes u = ((1/√(row/m̄))·(1/√col))·g into scratch. */
    private static void factoredUpdate(Slot slot, DType gt, MemorySegment gs, float eps1, float b2, float omb2, float[] scratch,
                                       FlatSum sum) {
        int batch = Math.toIntExact(slot.batch());
        int rows = Math.toIntExact(slot.rows());
        int cols = Math.toIntExact(slot.cols());
        MemorySegment rowS = slot.row().segment();
        MemorySegment colS = slot.col().segment();
        double[] colTotal = new double[cols];
        double[] colChunk = new double[cols];
        float[] cfac = new float[cols];
        float[] rfac = new float[rows];
        for (int b = 0; b < batch; b++) {
            java.util.Arrays.fill(colTotal, 0.0);
            java.util.Arrays.fill(colChunk, 0.0);
            long base = (long) b * rows * cols;
            for (int i = 0; i < rows; i++) {
                long off = base + (long) i * cols;
                sum.reset();
                for (int j = 0; j < cols; j++) {
                    float g = gt.load(gs, off + j);
                    double sq = g * g + eps1;
                    sum.add(sq);
                    colChunk[j] = colChunk[j] + sq;
                }
                if ((i + 1) % AdafactorSpec.COL_CHUNK == 0 || i == rows - 1) {
                    for (int j = 0; j < cols; j++) {
                        colTotal[j] = colTotal[j] + colChunk[j];
                        colChunk[j] = 0.0;
                    }
                }
                long ri = (long) b * rows + i;
                float mean = (float) (sum.finish() / cols);
                rowS.setAtIndex(DType.LE_FLOAT, ri, rowS.getAtIndex(DType.LE_FLOAT, ri) * b2 + mean * omb2);
            }
            for (int j = 0; j < cols; j++) {
                long cj = (long) b * cols + j;
                float mean = (float) (colTotal[j] / rows);
                float c = colS.getAtIndex(DType.LE_FLOAT, cj) * b2 + mean * omb2;
                colS.setAtIndex(DType.LE_FLOAT, cj, c);
                cfac[j] = 1f / (float) Math.sqrt(c);
            }
            sum.reset();
            for (int i = 0; i < rows; i++) {
                sum.add(rowS.getAtIndex(DType.LE_FLOAT, (long) b * rows + i));
            }
            float rowMean = (float) (sum.finish() / rows);
            for (int i = 0; i < rows; i++) {
                rfac[i] = 1f / (float) Math.sqrt(rowS.getAtIndex(DType.LE_FLOAT, (long) b * rows + i) / rowMean);
            }
            for (int i = 0; i < rows; i++) {
                long off = base + (long) i * cols;
                float r = rfac[i];
                for (int j = 0; j < cols; j++) {
                    scratch[(int) (off + j)] = (r * cfac[j]) * gt.load(gs, off + j);
                }
            }
        }
    }
}
