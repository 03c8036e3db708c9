package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

/**
 * Where the split step sends its GEMMs: {@link CublasLt} on a device, a recorder in the unit tests.
 * C = alpha·op(A)·op(B) + beta·C (+ bias[m] per column-major row when bias is not null), column-major
 * per {@link CublasGemm}, A and B of dtype {@code ab}, C and bias of dtype {@code cd}, fp32 accumulation.
 */
interface LtGemm {
    void matmul(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias,
                float alpha, float beta);

    /** Makes (and caches) the plan of a later {@link #matmul} with these buffers now, outside any graph capture. */
    default void prepare(CublasGemm g, DType ab, DType cd, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, DeviceBuffer bias) {
    }

    /** Which library and binding, for logs. */
    String binding();
}
