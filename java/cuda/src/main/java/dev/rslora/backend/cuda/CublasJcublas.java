package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import jcuda.Pointer;
import jcuda.driver.CUstream;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasStatus;
import jcuda.runtime.cudaStream_t;

/**
 * The JCublas 12.6.0 binding of {@link CublasApi} (JCublas2: cublasCreate, cublasSetStream,
 * cublasGemmEx_new (= cublasGemmEx with a cublasComputeType_t), cublasDestroy). Its native library links libcublas.so.12, so it loads on CUDA 12
 * hosts only; {@link CublasBinding} probes it and falls back to {@link CublasFfm}. Do not
 * construct it before {@link CublasBinding} has seen the probe succeed: loading JCublas2 without
 * libcublas.so.12 throws an {@link UnsatisfiedLinkError}. Runs on the context's stream; host
 * pointer mode (alpha, beta read at the call); fp32 accumulation (CUBLAS_COMPUTE_32F).
 */
final class CublasJcublas implements CublasApi {
    /** The cuBLAS soname JCublas 12.6.0's native library is linked against. */
    static final String LIBRARY = "libcublas.so.12";

    private final cublasHandle handle = new cublasHandle();
    private boolean closed;

    /** Creates a handle bound to {@code stream} (its context must be current on this thread). */
    CublasJcublas(CUstream stream) {
        check("cublasCreate", JCublas2.cublasCreate(handle));
        int status = JCublas2.cublasSetStream(handle, new cudaStream_t(stream));
        if (status != cublasStatus.CUBLAS_STATUS_SUCCESS) {
            JCublas2.cublasDestroy(handle);
            check("cublasSetStream", status);
        }
    }

    private static void check(String what, int status) {
        if (status != cublasStatus.CUBLAS_STATUS_SUCCESS) {
            throw new IllegalStateException(what + " returned " + cublasStatus.stringFor(status) + " (" + status + ")");
        }
    }

    @Override
    public String binding() {
        return "JCublas 12.6.0 (" + LIBRARY + ")";
    }

    @Override
    public void gemm(CublasGemm g, DType ab, DType ct, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, float alpha, float beta) {
        if (closed) {
            throw new IllegalStateException("cuBLAS handle is closed");
        }
        // cublasGemmEx_new passes cublasComputeType_t through; JCublas2.cublasGemmEx expects the legacy
        // cudaDataType compute type (CUDA_R_32F = 0) and answers CUBLAS_STATUS_NOT_SUPPORTED for 68
        int status = JCublas2.cublasGemmEx_new(handle, g.transa(), g.transb(), g.m(), g.n(), g.k(),
                Pointer.to(new float[] {alpha}), a.ptr(0), CublasGemm.cudaDataType(ab), g.lda(),
                b.ptr(0), CublasGemm.cudaDataType(ab), g.ldb(), Pointer.to(new float[] {beta}),
                c.ptr(0), CublasGemm.cudaDataType(ct), g.ldc(), CublasGemm.COMPUTE_32F, CublasGemm.GEMM_DEFAULT);
        check("cublasGemmEx(" + g + ", " + ab + " -> " + ct + ")", status);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            check("cublasDestroy", JCublas2.cublasDestroy(handle));
        }
    }
}
