package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

/**
 * The two base-layer products of the unfused baseline, as cuBLAS (column-major) calls on
 * row-major buffers. A row-major M [rows, cols] is, to cuBLAS, the column-major Mᵀ [cols × rows]
 * with leading dimension cols. Hence:
 * <pre>
 *   Y [n, d_out] = X [n, d_in] · W [d_out, d_in]ᵀ
 *     ⇔ Yᵀ (d_out × n, ldc = d_out) = W · Xᵀ
 *       W   = op(Wᵀ_cm), Wᵀ_cm = W row-major seen column-major (d_in × d_out, lda = d_in) → transa = T
 *       Xᵀ  = X row-major seen column-major (d_in × n, ldb = d_in)                    → transb = N
 *       m = d_out, n = n, k = d_in
 *   dX [n, d_in] = dY [n, d_out] · W [d_out, d_in]
 *     ⇔ dXᵀ (d_in × n, ldc = d_in) = Wᵀ · dYᵀ
 *       Wᵀ  = W row-major seen column-major (d_in × d_out, lda = d_in)                → transa = N
 *       dYᵀ = dY row-major seen column-major (d_out × n, ldb = d_out)                 → transb = N
 *       m = d_in, n = n, k = d_out
 * </pre>
 * Both are instances of {@link #rowMajor}. Pure arithmetic, unit-tested; {@link Cublas} executes it
 * with cuBLAS's first operand = the row-major right factor (W here) and second = the left (X, dY).
 */
record CublasGemm(int transa, int transb, int m, int n, int k, int lda, int ldb, int ldc) {
    static final int OP_N = 0;
    static final int OP_T = 1;

    /**
     * The general case: row-major C [M, N] = op(A) [M, K] · op(B) [K, N], A and B row-major with
     * leading dimensions lda, ldb (op = transpose when {@code transA}/{@code transB}), C with ldc.
     * In column-major terms Cᵀ = op(B)ᵀ · op(A)ᵀ, and a row-major matrix seen column-major is its
     * transpose, so cuBLAS is called with its FIRST operand = B (transa = transB ? T : N, lda = ldb)
     * and its SECOND = A (transb = transA ? T : N, ldb = lda), m = N, n = M, k = K, ldc = ldc.
     */
    static CublasGemm rowMajor(boolean transA, boolean transB, int rowsM, int colsN, int inner, int lda, int ldb,
                               int ldc) {
        return new CublasGemm(transB ? OP_T : OP_N, transA ? OP_T : OP_N, colsN, rowsM, inner, ldb, lda, ldc);
    }

    /** Y = X·Wᵀ: C = Y [n, d_out], A = X [n, d_in], B = W [d_out, d_in] transposed. */
    static CublasGemm baseForward(int n, int dIn, int dOut) {
        return rowMajor(false, true, n, dOut, dIn, dIn, dIn, dOut);
    }

    /** dX = dY·W: C = dX [n, d_in], A = dY [n, d_out], B = W [d_out, d_in]. */
    static CublasGemm baseBackwardData(int n, int dIn, int dOut) {
        return rowMajor(false, false, n, dIn, dOut, dOut, dIn, dIn);
    }

    /** cudaDataType_t of a storage dtype: CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14. */
    static int cudaDataType(DType t) {
        return switch (t) {
            case F32 -> 0;
            case F16 -> 2;
            case BF16 -> 14;
        };
    }

    /** CUBLAS_COMPUTE_32F: fp32 accumulation for every storage dtype. */
    static final int COMPUTE_32F = 68;
    /** CUBLAS_GEMM_DEFAULT. */
    static final int GEMM_DEFAULT = -1;
}
