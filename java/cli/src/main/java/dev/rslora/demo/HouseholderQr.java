package dev.rslora.demo;

/**
 * QR decomposition of a square matrix by Householder reflections, in double:
 * {@code A = Q·R} with Q [n, n] orthogonal and R [n, n] upper triangular. Small and unblocked:
 * the demo factors a few 128×128 matrices per seed.
 */
final class HouseholderQr {
    private final double[][] q;
    private final double[][] r;

    /** Factors {@code a} [n, n] (not modified). */
    HouseholderQr(double[][] a) {
        int n = a.length;
        for (double[] row : a) {
            if (row.length != n) {
                throw new IllegalArgumentException("QR needs a square matrix, got a row of " + row.length + " in [" + n + ", ?]");
            }
        }
        double[][] rr = new double[n][];
        for (int i = 0; i < n; i++) {
            rr[i] = a[i].clone();
        }
        double[][] vs = new double[n][];
        double[] vvs = new double[n];
        for (int k = 0; k < n; k++) {
            // Reflect column k below the diagonal onto e_k: v = x − α·e_k with α = −sign(x_k)·‖x‖.
            double norm = 0;
            for (int i = k; i < n; i++) {
                norm += rr[i][k] * rr[i][k];
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                continue;
            }
            double alpha = rr[k][k] > 0 ? -norm : norm;
            double[] v = new double[n];
            for (int i = k; i < n; i++) {
                v[i] = rr[i][k];
            }
            v[k] -= alpha;
            double vv = 0;
            for (int i = k; i < n; i++) {
                vv += v[i] * v[i];
            }
            if (vv == 0) {
                continue;
            }
            reflect(rr, v, vv, k);
            vs[k] = v;
            vvs[k] = vv;
        }
        // Q = H_0·H_1·…·H_{n−1}: apply the reflections in reverse order to the identity.
        double[][] qq = new double[n][n];
        for (int i = 0; i < n; i++) {
            qq[i][i] = 1;
        }
        for (int k = n - 1; k >= 0; k--) {
            if (vs[k] != null) {
                reflect(qq, vs[k], vvs[k], k);
            }
        }
        for (int i = 1; i < n; i++) {
            for (int j = 0; j < i; j++) {
                rr[i][j] = 0;
            }
        }
        this.q = qq;
        this.r = rr;
    }

    /** M ← (I − 2·v·vᵀ/vᵀv)·M on rows k.. (v is zero above k). */
    private static void reflect(double[][] m, double[] v, double vv, int k) {
        int n = m.length;
        for (int j = 0; j < m[0].length; j++) {
            double dot = 0;
            for (int i = k; i < n; i++) {
                dot += v[i] * m[i][j];
            }
            double f = 2 * dot / vv;
            if (f != 0) {
                for (int i = k; i < n; i++) {
                    m[i][j] -= f * v[i];
                }
            }
        }
    }

    /** Q [n, n] (a copy). */
    double[][] q() {
        return copy(q);
    }

    /** R [n, n] upper triangular (a copy). */
    double[][] r() {
        return copy(r);
    }

    private static double[][] copy(double[][] m) {
        double[][] c = new double[m.length][];
        for (int i = 0; i < m.length; i++) {
            c[i] = m[i].clone();
        }
        return c;
    }
}
