package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;

/**
 * The scalar AdamW update over flat elements [from, to) of any dtypes. Per element, in fp32 and in
 * this order (PyTorch's single-tensor AdamW; Java never contracts to FMA, so the
 * {@link AdamWVector} path that uses the same operations gives bit-identical results):
 *
 * <pre>
 *   p ← p·decay
 *   m ← m + (1−β1)·(g − m)                 (torch: exp_avg.lerp_(g, 1−β1), weight 1−β1 &lt; 0.5)
 *   m ← g − (g − m)·(1 − (1−β1))           (the same lerp_, weight ≥ 0.5: m = g exactly when β1 = 0)
 *   v ← v·β2 + ((1−β2)·g)·g                (torch: exp_avg_sq.mul_(β2).addcmul_(g, g, 1−β2))
 *   p ← p − stepSize·(m / (√v / bc2Sqrt + eps))
 * </pre>
 *
 * The lerp is ATen's scalar {@code lerp} (no fused multiply-add). PyTorch's vectorised CPU kernel
 * computes the same lerp as one FMA ({@code fmadd(w, g − m, m)}, or {@code fmadd(w − 1, g − m, g)} for
 * w ≥ 0.5, with w = 1−β1), so m can differ from PyTorch's in the last bit: the same formula, not a
 * bit-for-bit copy of torch.
 *
 * {@code target} is the tensor updated (the parameter, or its fp32 master copy); m and v are F32.
 */
final class AdamWScalar {
    private AdamWScalar() {
    }

    static void update(Tensor target, Tensor grad, Tensor m, Tensor v, AdamWCoefficients c, long from, long to) {
        DType pt = target.dtype();
        DType gt = grad.dtype();
        MemorySegment ps = target.segment();
        MemorySegment gs = grad.readOnlySegment();  // only read: the gradient's version stamp stays
        MemorySegment ms = m.segment();
        MemorySegment vs = v.segment();
        float decay = c.decay();
        float omb1 = c.oneMinusB1();
        boolean smallWeight = omb1 < 0.5f;  // torch's lerp picks its formula by |weight| < 0.5
        float omw = 1f - omb1;
        float b2 = c.beta2();
        float omb2 = c.oneMinusB2();
        float stepSize = c.stepSize();
        float bc2Sqrt = c.bc2Sqrt();
        float eps = c.eps();
        for (long i = from; i < to; i++) {
            float g = gt.load(gs, i);
            float p = pt.load(ps, i) * decay;
            float mi = ms.getAtIndex(DType.LE_FLOAT, i);
            float vi = vs.getAtIndex(DType.LE_FLOAT, i);
            float diff = g - mi;
            mi = smallWeight ? mi + omb1 * diff : g - diff * omw;
            vi = vi * b2 + (omb2 * g) * g;
            float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
            p = p - stepSize * (mi / denom);
            ms.setAtIndex(DType.LE_FLOAT, i, mi);
            vs.setAtIndex(DType.LE_FLOAT, i, vi);
            pt.store(ps, i, p);
        }
    }
}
