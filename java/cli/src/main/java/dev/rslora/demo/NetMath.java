package dev.rslora.demo;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/** The demo network's element-wise pieces on F32 tensors: tanh, its backward, and the MSE loss. */
final class NetMath {
    private NetMath() {
    }

    /** t ← tanh(t). */
    static void tanhInPlace(Tensor t) {
        requireF32(t);
        MemorySegment s = t.segment();
        for (long i = 0; i < t.numel(); i++) {
            s.setAtIndex(DType.LE_FLOAT, i, (float) Math.tanh(s.getAtIndex(DType.LE_FLOAT, i)));
        }
    }

    /** Backward of {@code out = tanh(z)}: grad ← grad·(1 − out²), turning dL/d(out) into dL/dz. */
    static void tanhBackwardInPlace(Tensor grad, Tensor out) {
        requireF32(grad);
        requireF32(out);
        requireSameShape(grad, out);
        MemorySegment g = grad.segment();
        MemorySegment o = out.readOnlySegment();
        for (long i = 0; i < grad.numel(); i++) {
            float y = o.getAtIndex(DType.LE_FLOAT, i);
            g.setAtIndex(DType.LE_FLOAT, i, g.getAtIndex(DType.LE_FLOAT, i) * (1 - y * y));
        }
    }

    /**
     * Mean squared error over all elements (PyTorch {@code MSELoss}, reduction "mean"):
     * returns {@code L = Σ(y − t)² / numel} (accumulated in double) and writes
     * {@code dy = 2·(y − t) / numel}.
     */
    static double mse(Tensor y, Tensor target, Tensor dy) {
        requireF32(y);
        requireF32(target);
        requireF32(dy);
        requireSameShape(y, target);
        requireSameShape(y, dy);
        MemorySegment ys = y.readOnlySegment();
        MemorySegment ts = target.readOnlySegment();
        MemorySegment ds = dy.segment();
        long n = y.numel();
        float scale = (float) (2.0 / n);
        double sum = 0;
        for (long i = 0; i < n; i++) {
            float diff = ys.getAtIndex(DType.LE_FLOAT, i) - ts.getAtIndex(DType.LE_FLOAT, i);
            sum += (double) diff * diff;
            ds.setAtIndex(DType.LE_FLOAT, i, scale * diff);
        }
        return sum / n;
    }

    private static void requireF32(Tensor t) {
        if (t.dtype() != DType.F32) {
            throw new IllegalArgumentException("demo tensors are F32, got " + t);
        }
    }

    private static void requireSameShape(Tensor a, Tensor b) {
        if (!a.sameShape(b.shape())) {
            throw new IllegalArgumentException("shapes differ: " + a.shapeString() + " vs " + b.shapeString());
        }
    }
}
