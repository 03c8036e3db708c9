package dev.rslora.demo;

import java.util.SplittableRandom;

/** Seeded random matrices for the demo network, in double, row-major {@code [rows][cols]}. */
final class RandomMatrices {
    private RandomMatrices() {
    }

    /** Independent sub-seed number {@code stream} of {@code seed} (SplitMix64 finaliser of their mix). */
    static long subSeed(long seed, long stream) {
        long z = seed * 0x9E3779B97F4A7C15L + (stream + 1) * 0xD1B54A32D192ED03L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** [rows, cols] with i.i.d. N(0, std²) entries. */
    static double[][] gaussian(SplittableRandom rng, int rows, int cols, double std) {
        double[][] m = new double[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                m[i][j] = std * rng.nextGaussian();
            }
        }
        return m;
    }

    /**
     * A Haar-distributed random orthogonal [n, n]: Q of the QR of a Gaussian matrix, with each
     * column's sign fixed so that R has a positive diagonal (Mezzadri 2007).
     */
    static double[][] orthogonal(SplittableRandom rng, int n) {
        HouseholderQr qr = new HouseholderQr(gaussian(rng, n, n, 1.0));
        double[][] q = qr.q();
        double[][] r = qr.r();
        for (int j = 0; j < n; j++) {
            if (r[j][j] < 0) {
                for (int i = 0; i < n; i++) {
                    q[i][j] = -q[i][j];
                }
            }
        }
        return q;
    }

    /**
     * ΔW = U·diag(s)·Vᵀ [n, n] with U, V random orthogonal and {@code s_i = scale/√(1+i)} for
     * i = 0..n−1: a perturbation of high intrinsic rank (no good low-rank approximation).
     */
    static double[][] spectralDelta(SplittableRandom rng, int n, double scale) {
        double[][] u = orthogonal(rng, n);
        double[][] v = orthogonal(rng, n);
        double[][] d = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < n; k++) {
                double s = 0;
                for (int j = 0; j < n; j++) {
                    s += u[i][j] * singularValue(scale, j) * v[k][j];
                }
                d[i][k] = s;
            }
        }
        return d;
    }

    /** s_i = scale/√(1+i). */
    static double singularValue(double scale, int i) {
        return scale / Math.sqrt(1.0 + i);
    }
}
