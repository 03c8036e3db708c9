package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

/**
 * The few cuBLAS calls of the unfused baseline, behind one small interface with two bindings:
 * {@link CublasJcublas} (JCublas 12.6.0, needs libcublas.so.12) and {@link CublasFfm}
 * (java.lang.foreign, libcublas.so.13 or .12). {@link CublasBinding} picks one at run time. A handle
 * is bound to one context's stream; every product is C = alpha·op(A)·op(B) + beta·C in column-major
 * cuBLAS terms as laid out by {@link CublasGemm}, with fp32 accumulation (CUBLAS_COMPUTE_32F).
 */
interface CublasApi extends AutoCloseable {
    /** Which binding and library, e.g. "JCublas 12.6.0 (libcublas.so.12)". */
    String binding();

    /**
     * C = alpha·A·B + beta·C per {@code g}; A and B of dtype {@code ab}, C of dtype {@code ct} (equal,
     * or F32 with 16-bit A/B); queued on the stream.
     */
    void gemm(CublasGemm g, DType ab, DType ct, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, float alpha, float beta);

    /** C = A·B per {@code g}, all three buffers of dtype {@code t}; queued on the stream. */
    default void gemm(CublasGemm g, DType t, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c) {
        gemm(g, t, t, a, b, c, 1.0f, 0.0f);
    }

    /** Destroys the handle. */
    @Override
    void close();
}
