package dev.rslora.demo;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HouseholderQrTest {

    private static double[][] mul(double[][] a, double[][] b) {
        int n = a.length;
        int m = b[0].length;
        double[][] c = new double[n][m];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < b.length; k++) {
                for (int j = 0; j < m; j++) {
                    c[i][j] += a[i][k] * b[k][j];
                }
            }
        }
        return c;
    }

    private static double[][] transpose(double[][] a) {
        double[][] t = new double[a[0].length][a.length];
        for (int i = 0; i < a.length; i++) {
            for (int j = 0; j < a[0].length; j++) {
                t[j][i] = a[i][j];
            }
        }
        return t;
    }

    private static void assertOrthogonal(double[][] q, double tol, String what) {
        double[][] qtq = mul(transpose(q), q);
        for (int i = 0; i < q.length; i++) {
            for (int j = 0; j < q.length; j++) {
                assertEquals(i == j ? 1.0 : 0.0, qtq[i][j], tol, what + ": (QᵀQ)[" + i + "][" + j + "]");
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 7, 64, 129})
    void factorsIntoOrthogonalTimesUpperTriangular(int n) {
        long seed = 1000 + n;
        double[][] a = RandomMatrices.gaussian(new SplittableRandom(seed), n, n, 1.0);
        HouseholderQr qr = new HouseholderQr(a);
        double[][] q = qr.q();
        double[][] r = qr.r();
        assertOrthogonal(q, 1e-12, "seed=" + seed + " n=" + n);
        double[][] back = mul(q, r);
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                if (i > j) {
                    assertEquals(0.0, r[i][j], "R below the diagonal");
                }
                assertEquals(a[i][j], back[i][j], 1e-12 * n, "seed=" + seed + " (QR)[" + i + "][" + j + "]");
            }
        }
    }

    @Test
    void randomOrthogonalIsOrthogonalSeededAndUnbiased() {
        int n = 64;
        double[][] q = RandomMatrices.orthogonal(new SplittableRandom(5), n);
        assertOrthogonal(q, 1e-12, "seed=5");
        double[][] again = RandomMatrices.orthogonal(new SplittableRandom(5), n);
        assertEquals(q[3][7], again[3][7]);
        assertNotEquals(q[3][7], RandomMatrices.orthogonal(new SplittableRandom(6), n)[3][7]);
        // Haar: the diagonal has mean 0 (an unsigned Householder QR gives a biased one); the sum of
        // n entries of variance 1/n has sd 1, so |trace| < 4 unless biased.
        double diag = 0;
        for (int i = 0; i < n; i++) {
            diag += q[i][i];
        }
        assertTrue(Math.abs(diag) < 4, "trace " + diag);
    }

    /** ΔW = U·diag(s)·Vᵀ: ‖ΔW‖_F² = Σ s_i², and the top singular value (power iteration) is s_0. */
    @Test
    void spectralDeltaHasTheRequestedSingularValues() {
        int n = 48;
        double scale = 0.5;
        double[][] d = RandomMatrices.spectralDelta(new SplittableRandom(11), n, scale);
        double fro = 0;
        double want = 0;
        for (int i = 0; i < n; i++) {
            want += Math.pow(RandomMatrices.singularValue(scale, i), 2);
            for (int j = 0; j < n; j++) {
                fro += d[i][j] * d[i][j];
            }
        }
        assertEquals(want, fro, 1e-12);
        double[][] dtd = mul(transpose(d), d);
        double[] v = new double[n];
        v[0] = 1;
        double lambda = 0;
        for (int it = 0; it < 200; it++) {
            double[] w = new double[n];
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    w[i] += dtd[i][j] * v[j];
                }
            }
            double norm = 0;
            for (double x : w) {
                norm += x * x;
            }
            norm = Math.sqrt(norm);
            lambda = norm;
            for (int i = 0; i < n; i++) {
                v[i] = w[i] / norm;
            }
        }
        assertEquals(scale, Math.sqrt(lambda), 1e-9);
    }
}
