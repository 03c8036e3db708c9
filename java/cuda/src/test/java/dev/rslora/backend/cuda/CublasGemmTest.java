package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The row-major → column-major derivation of the two cuBLAS calls, checked by running them through
 * a plain column-major GEMM written from the cuBLAS definition (no GPU needed):
 * C = op(A)·op(B), op(M)(i, j) = M[i + j·ld] (N) or M[j + i·ld] (T).
 */
class CublasGemmTest {

    static void columnMajorGemm(CublasGemm g, float[] a, float[] b, float[] c) {
        for (int i = 0; i < g.m(); i++) {
            for (int j = 0; j < g.n(); j++) {
                double s = 0;
                for (int p = 0; p < g.k(); p++) {
                    float av = g.transa() == CublasGemm.OP_N ? a[i + p * g.lda()] : a[p + i * g.lda()];
                    float bv = g.transb() == CublasGemm.OP_N ? b[p + j * g.ldb()] : b[j + p * g.ldb()];
                    s += (double) av * bv;
                }
                c[i + j * g.ldc()] = (float) s;
            }
        }
    }

    static float[] random(SplittableRandom rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextInt(7) - 3;  // small integers: every sum exact
        }
        return v;
    }

    @Test
    void forwardComputesRowMajorXTimesWTransposed() {
        long seed = 5;
        SplittableRandom rnd = new SplittableRandom(seed);
        int n = 7;
        int dIn = 5;
        int dOut = 3;
        float[] x = random(rnd, n * dIn);     // X [n, d_in] row-major
        float[] w = random(rnd, dOut * dIn);  // W [d_out, d_in] row-major
        float[] y = new float[n * dOut];      // Y [n, d_out] row-major
        CublasGemm g = CublasGemm.baseForward(n, dIn, dOut);
        columnMajorGemm(g, w, x, y);          // A = W, B = X, as Cublas.gemm is called
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < dOut; o++) {
                float expect = 0;
                for (int k = 0; k < dIn; k++) {
                    expect += x[i * dIn + k] * w[o * dIn + k];
                }
                assertEquals(expect, y[i * dOut + o], "Y[" + i + "][" + o + "] seed " + seed);
            }
        }
    }

    @Test
    void backwardDataComputesRowMajorDyTimesW() {
        long seed = 6;
        SplittableRandom rnd = new SplittableRandom(seed);
        int n = 4;
        int dIn = 6;
        int dOut = 5;
        float[] dy = random(rnd, n * dOut);   // dY [n, d_out]
        float[] w = random(rnd, dOut * dIn);  // W [d_out, d_in]
        float[] dx = new float[n * dIn];      // dX [n, d_in]
        CublasGemm g = CublasGemm.baseBackwardData(n, dIn, dOut);
        columnMajorGemm(g, w, dy, dx);        // A = W, B = dY
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < dIn; k++) {
                float expect = 0;
                for (int o = 0; o < dOut; o++) {
                    expect += dy[i * dOut + o] * w[o * dIn + k];
                }
                assertEquals(expect, dx[i * dIn + k], "dX[" + i + "][" + k + "] seed " + seed);
            }
        }
    }

    @Test
    void rowMajorGeneralCaseForEveryTransposeCombination() {
        long seed = 8;
        SplittableRandom rnd = new SplittableRandom(seed);
        int rows = 5;
        int cols = 4;
        int inner = 3;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                // op(A) [rows, inner]: A is [rows, inner] or, transposed, [inner, rows]; likewise B
                int lda = ta ? rows : inner;
                int ldb = tb ? inner : cols;
                float[] a = random(rnd, rows * inner);
                float[] b = random(rnd, inner * cols);
                float[] c = new float[rows * cols];
                CublasGemm g = CublasGemm.rowMajor(ta, tb, rows, cols, inner, lda, ldb, cols);
                columnMajorGemm(g, b, a, c);  // cuBLAS's first operand is the row-major right factor
                for (int i = 0; i < rows; i++) {
                    for (int j = 0; j < cols; j++) {
                        float expect = 0;
                        for (int p = 0; p < inner; p++) {
                            float av = ta ? a[p * lda + i] : a[i * lda + p];
                            float bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                            expect += av * bv;
                        }
                        assertEquals(expect, c[i * cols + j], "transA=" + ta + " transB=" + tb + " C[" + i + "][" + j + "]");
                    }
                }
            }
        }
    }

    @Test
    void dataTypeCodesAreCudas() {
        assertEquals(0, CublasGemm.cudaDataType(dev.rslora.tensor.DType.F32));
        assertEquals(2, CublasGemm.cudaDataType(dev.rslora.tensor.DType.F16));
        assertEquals(14, CublasGemm.cudaDataType(dev.rslora.tensor.DType.BF16));
    }
}
