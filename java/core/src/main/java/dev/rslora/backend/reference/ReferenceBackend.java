package dev.rslora.backend.reference;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendChecks;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.Tensor;

/**
 * The oracle: plain scalar loops, every sum accumulated in double, each output rounded once to
 * its dtype. Deliberately naive; every other backend is tested against it. The saved U is
 * written (fp32) for API symmetry, but backward recomputes U in double from X and A so the
 * oracle's gradients carry no fp32 rounding of intermediates.
 */
public final class ReferenceBackend implements Backend {

    @Override
    public String name() {
        return "reference";
    }

    @Override
    public FrozenWeight prepare(Tensor weight, Tensor bias) {
        BackendChecks.prepare(weight, bias);
        return new HostWeight(weight, bias);
    }

    /** A frozen weight that is just the host tensors. */
    record HostWeight(Tensor weight, Tensor bias) implements FrozenWeight {
        @Override
        public void close() {
        }
    }

    /** D(X)[i,k] as a double: 0 where dropped, x·scale where kept (scale = fp32 1/(1-p)). */
    private static double dropped(DropoutMask mask, Tensor x, long i, long k) {
        double v = x.get(i, k);
        if (mask == null) {
            return v;
        }
        return mask.keep(i, k) ? v * mask.scale() : 0.0;
    }

    /**
     * Refuses an r that a row of U or V, double[r], cannot hold ("Requested array size exceeds VM
     * limit" otherwise); n·r beyond the heap is the JVM's OutOfMemoryError, as for any heap array.
     */
    private static void checkRank(LoraParams p) {
        if (p.adapterActive() && p.rank() > Tensor.MAX_ARRAY) {
            throw new IllegalArgumentException("reference backend: r=" + p.rank() + " is above " + Tensor.MAX_ARRAY
                    + ", the most values of a Java array, and U and V are double[n][r]");
        }
    }

    /** U [n, r] in double: U[i,j] = Σ_k D(X)[i,k]·A[j,k]. */
    private static double[][] computeU(LoraParams p, Tensor x, Tensor a, DropoutMask mask) {
        double[][] u = new double[p.n()][p.rank()];
        for (int i = 0; i < p.n(); i++) {
            for (int j = 0; j < p.rank(); j++) {
                double s = 0;
                for (int k = 0; k < p.dIn(); k++) {
                    s += dropped(mask, x, i, k) * a.get(j, k);
                }
                u[i][j] = s;
            }
        }
        return u;
    }

    @Override
    public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        BackendChecks.forward(p, w, x, a, b, u, y);
        checkRank(p);
        Tensor wt = w.weight();
        Tensor bias = w.bias();
        double[][] uu = p.adapterActive() ? computeU(p, x, a, p.mask()) : null;
        if (uu != null && u != null) {
            for (int i = 0; i < p.n(); i++) {
                for (int j = 0; j < p.rank(); j++) {
                    u.set(i, j, (float) uu[i][j]);
                }
            }
        }
        for (int i = 0; i < p.n(); i++) {
            for (int o = 0; o < p.dOut(); o++) {
                double s = 0;
                for (int k = 0; k < p.dIn(); k++) {
                    s += (double) x.get(i, k) * wt.get(o, k);
                }
                if (bias != null) {
                    s += bias.get(o);
                }
                if (uu != null) {
                    double l = 0;
                    for (int j = 0; j < p.rank(); j++) {
                        l += uu[i][j] * b.get(o, j);
                    }
                    s += p.gamma() * l;
                }
                y.set(i, o, (float) s);
            }
        }
    }

    @Override
    public void backward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                         Tensor dx, Tensor gradA, Tensor gradB) {
        BackendChecks.backward(p, w, x, a, b, u, dy, dx, gradA, gradB, false);  // U is recomputed, so it may be null
        checkRank(p);
        Tensor wt = w.weight();
        boolean acc = p.gradMode() == GradMode.ACCUMULATE;
        DropoutMask mask = p.adapterActive() ? p.mask() : null;
        double[][] v = null;
        if (p.adapterActive()) {
            // V = dY·B [n, r]
            v = new double[p.n()][p.rank()];
            for (int i = 0; i < p.n(); i++) {
                for (int j = 0; j < p.rank(); j++) {
                    double s = 0;
                    for (int o = 0; o < p.dOut(); o++) {
                        s += (double) dy.get(i, o) * b.get(o, j);
                    }
                    v[i][j] = s;
                }
            }
            double[][] uu = computeU(p, x, a, mask);
            // dB = γ·dYᵀ·U [d_out, r]
            for (int o = 0; o < p.dOut(); o++) {
                for (int j = 0; j < p.rank(); j++) {
                    double s = 0;
                    for (int i = 0; i < p.n(); i++) {
                        s += (double) dy.get(i, o) * uu[i][j];
                    }
                    double g = p.gamma() * s;
                    gradB.set(o, j, (float) (acc ? gradB.get(o, j) + g : g));
                }
            }
            // dA = γ·Vᵀ·D(X) [r, d_in]
            for (int j = 0; j < p.rank(); j++) {
                for (int k = 0; k < p.dIn(); k++) {
                    double s = 0;
                    for (int i = 0; i < p.n(); i++) {
                        s += v[i][j] * dropped(mask, x, i, k);
                    }
                    double g = p.gamma() * s;
                    gradA.set(j, k, (float) (acc ? gradA.get(j, k) + g : g));
                }
            }
        }
        if (dx == null) {
            return;
        }
        // dX = dY·W + γ·D'(V·A) [n, d_in]
        for (int i = 0; i < p.n(); i++) {
            for (int k = 0; k < p.dIn(); k++) {
                double s = 0;
                for (int o = 0; o < p.dOut(); o++) {
                    s += (double) dy.get(i, o) * wt.get(o, k);
                }
                if (v != null) {
                    double l = 0;
                    for (int j = 0; j < p.rank(); j++) {
                        l += v[i][j] * a.get(j, k);
                    }
                    if (mask != null) {
                        l = mask.keep(i, k) ? l * mask.scale() : 0.0;
                    }
                    s += p.gamma() * l;
                }
                dx.set(i, k, (float) s);
            }
        }
    }

    @Override
    public void merge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        // two passes: every element is checked before any is written, so a refused merge leaves W as it was
        checkMerge(w, a, b, gamma, sign);
        Tensor wt = w.weight();
        int dOut = (int) wt.dim(0);
        int dIn = (int) wt.dim(1);
        int r = (int) a.dim(0);
        for (int o = 0; o < dOut; o++) {
            for (int k = 0; k < dIn; k++) {
                wt.set(o, k, merged(wt, a, b, gamma, sign, r, o, k));
            }
        }
    }

    @Override
    public void checkMerge(FrozenWeight w, Tensor a, Tensor b, double gamma, int sign) {
        BackendChecks.merge(w, a, b, gamma, sign);
        Tensor wt = w.weight();
        int dOut = (int) wt.dim(0);
        int dIn = (int) wt.dim(1);
        int r = (int) a.dim(0);
        for (int o = 0; o < dOut; o++) {
            for (int k = 0; k < dIn; k++) {
                if (BackendChecks.mergeDestroys(wt.dtype(), wt.get(o, k), merged(wt, a, b, gamma, sign, r, o, k))) {
                    throw BackendChecks.mergeNotFinite(w, a, b, gamma, sign, o, k);
                }
            }
        }
    }

    /** fl32(W[o, k] + sign·γ·Σ_j B[o, j]·A[j, k]), the sum in double: the value merge stores (rounded to W's dtype). */
    private static float merged(Tensor wt, Tensor a, Tensor b, double gamma, int sign, int r, int o, int k) {
        double s = 0;
        for (int j = 0; j < r; j++) {
            s += (double) b.get(o, j) * a.get(j, k);
        }
        return (float) (wt.get(o, k) + sign * gamma * s);
    }
}
