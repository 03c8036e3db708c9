package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;

/**
 * The AdamW formulas of torch.optim.AdamW in double, on heap arrays: the oracle of the tests.
 * p ← p·(1 − lr·λ); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − (lr/(1−β1^t))·m/(√v/√(1−β2^t) + eps).
 */
final class AdamWReference {
    final double[] p;
    final double[] m;
    final double[] v;
    private final AdamWConfig c;
    private long t;

    AdamWReference(float[] initial, AdamWConfig c) {
        this.p = new double[initial.length];
        for (int i = 0; i < initial.length; i++) {
            p[i] = initial[i];
        }
        this.m = new double[initial.length];
        this.v = new double[initial.length];
        this.c = c;
    }

    /** One step; returns the largest |Adam update| of this step (without weight decay). */
    double step(float[] g) {
        t++;
        double bc1 = 1 - Math.pow(c.beta1(), t);
        double bc2 = 1 - Math.pow(c.beta2(), t);
        double largest = 0;
        for (int i = 0; i < p.length; i++) {
            p[i] *= 1 - c.lr() * c.weightDecay();
            m[i] = c.beta1() * m[i] + (1 - c.beta1()) * g[i];
            v[i] = c.beta2() * v[i] + (1 - c.beta2()) * g[i] * (double) g[i];
            double u = (c.lr() / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + c.eps());
            p[i] -= u;
            largest = Math.max(largest, Math.abs(u));
        }
        return largest;
    }
}
