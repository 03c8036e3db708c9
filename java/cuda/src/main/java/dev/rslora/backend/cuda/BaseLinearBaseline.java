package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

/**
 * The frozen base linear layer on cuBLAS: {@code Y = X·Wᵀ} [n, d_out] and {@code dX = dY·W} [n, d_in]
 * (no dW: W is frozen), the denominator of the PERFORMANCE.md ratio R = (LoRA fwd + bwd) / (base fwd
 * + bwd) (../shared/docs/, outside this repository), and an independent cross-check of the kernels'
 * base GEMMs. Operates on {@link DeviceTensor}s of one dtype on the backend's stream. Two ways: the
 * classic {@code cublasGemmEx} ({@link CublasBinding}: JCublas or java.lang.foreign; algorithm
 * CUBLAS_GEMM_DEFAULT, cuBLAS's own workspace), or {@link #cublasLt} (the backend's cuBLASLt handle:
 * heuristic algorithm, our 32 MiB workspace; the split step's GEMMs).
 */
public final class BaseLinearBaseline implements AutoCloseable {
    private final CudaBackend backend;
    private final CublasApi cublas;
    private final LtGemm lt;
    private final String library;

    /**
     * Binds cuBLAS to the backend's stream through the binding {@link CublasBinding} selects (JCublas
     * where libcublas.so.12 loads, else java.lang.foreign); throws with both reasons when neither does.
     *
     * @param backend the backend whose context and stream the GEMMs run on
     * @throws IllegalStateException naming both bindings' reasons when neither loads
     */
    public BaseLinearBaseline(CudaBackend backend) {
        this(backend, CublasBinding.current());
    }

    /** On a given binding (tests cover each binding that loads). */
    BaseLinearBaseline(CudaBackend backend, CublasBinding.Choice binding) {
        this.backend = backend;
        synchronized (backend) {
            this.cublas = CublasBinding.open(backend.context(), binding);
        }
        this.lt = null;
        this.library = binding.library();
    }

    private BaseLinearBaseline(CudaBackend backend, CublasLt lt) {
        this(backend, lt, lt.library());
    }

    /** On a given cuBLASLt-style GEMM (a recorder in tests) from {@code library}. */
    BaseLinearBaseline(CudaBackend backend, LtGemm lt, String library) {
        this.backend = backend;
        this.cublas = null;
        this.lt = lt;
        this.library = library;
    }

    /**
     * The base on the backend's cuBLASLt handle (shared with the split step; closing this leaves it open).
     *
     * @param backend the backend whose cuBLASLt handle is used
     * @return the baseline on cuBLASLt
     * @throws IllegalStateException when cuBLASLt is not usable here (with the reason)
     */
    public static BaseLinearBaseline cublasLt(CudaBackend backend) {
        CublasLt lt = backend.cublasLt();
        if (lt == null) {
            throw new IllegalStateException("no cuBLASLt here: " + backend.splitUnavailableReason());
        }
        return new BaseLinearBaseline(backend, lt);
    }

    /**
     * The cuBLAS library in use, e.g. "libcublas.so.13".
     *
     * @return the shared library's file name
     */
    public String library() {
        return library;
    }

    /**
     * The cuBLAS binding and library in use, e.g. "JCublas 12.6.0 (libcublas.so.12)".
     *
     * @return the binding (JCublas, java.lang.foreign or cuBLASLt) and library
     */
    public String binding() {
        return cublas != null ? cublas.binding() : lt.binding();
    }

    /**
     * Queues Y = X·Wᵀ: X [n, d_in], W [d_out, d_in], Y [n, d_out], one dtype.
     *
     * @param x X [n, d_in]
     * @param w W [d_out, d_in], X's dtype
     * @param y receives Y [n, d_out], X's dtype
     * @throws IllegalArgumentException if a tensor is not 2-D, belongs to another backend, or the shapes or dtypes disagree
     */
    public void forward(DeviceTensor x, DeviceTensor w, DeviceTensor y) {
        operands("x", x, "w", w, "y", y);
        int n = (int) x.dim(0);
        int dIn = (int) x.dim(1);
        int dOut = (int) w.dim(0);
        check(x, w, y, n, dIn, dOut, y, n, dOut);
        synchronized (backend) {
            backend.context().makeCurrent();
            if (cublas != null) {
                cublas.gemm(CublasGemm.baseForward(n, dIn, dOut), x.dtype(), w.buffer(), x.buffer(), y.buffer());
            } else {
                lt.matmul(CublasGemm.baseForward(n, dIn, dOut), x.dtype(), x.dtype(), w.buffer(), x.buffer(), y.buffer(), null, 1f, 0f);
            }
        }
    }

    /**
     * Queues dX = dY·W: dY [n, d_out], W [d_out, d_in], dX [n, d_in], one dtype.
     *
     * @param dy dY [n, d_out]
     * @param w  W [d_out, d_in], dY's dtype
     * @param dx receives dX [n, d_in], dY's dtype
     * @throws IllegalArgumentException if a tensor is not 2-D, belongs to another backend, or the shapes or dtypes disagree
     */
    public void backwardData(DeviceTensor dy, DeviceTensor w, DeviceTensor dx) {
        operands("grad_y", dy, "w", w, "grad_x", dx);
        int n = (int) dy.dim(0);
        int dOut = (int) dy.dim(1);
        int dIn = (int) w.dim(1);
        check(dx, w, dy, n, dIn, dOut, dy, n, dOut);
        synchronized (backend) {
            backend.context().makeCurrent();
            if (cublas != null) {
                cublas.gemm(CublasGemm.baseBackwardData(n, dIn, dOut), dy.dtype(), w.buffer(), dy.buffer(), dx.buffer());
            } else {
                lt.matmul(CublasGemm.baseBackwardData(n, dIn, dOut), dy.dtype(), dy.dtype(), w.buffer(), dy.buffer(), dx.buffer(), null,
                        1f, 0f);
            }
        }
    }

    /**
     * Refuses a tensor of another backend (its address belongs to another context) and one that is not
     * 2-D (the GEMM would read or write only its first two dimensions' worth of elements), naming it.
     */
    private void operands(String n1, DeviceTensor t1, String n2, DeviceTensor t2, String n3, DeviceTensor t3) {
        String[] names = {n1, n2, n3};
        DeviceTensor[] ts = {t1, t2, t3};
        for (int i = 0; i < ts.length; i++) {
            backend.checkOwn(ts[i]);
            if (ts[i].shape().length != 2) {
                throw new IllegalArgumentException("cuBLAS baseline: " + names[i] + " must be 2-D, got " + ts[i]);
            }
        }
    }

    private static void check(DeviceTensor nByDin, DeviceTensor w, DeviceTensor other, int n, int dIn, int dOut,
                              DeviceTensor nByDout, long rows, long cols) {
        DType t = w.dtype();
        if (nByDin.dtype() != t || other.dtype() != t || nByDout.dtype() != t) {
            throw new IllegalArgumentException("cuBLAS baseline needs one dtype: " + nByDin + ", " + w + ", " + other);
        }
        if (nByDin.dim(0) != n || nByDin.dim(1) != dIn || w.dim(0) != dOut || w.dim(1) != dIn
                || nByDout.dim(0) != rows || nByDout.dim(1) != cols) {
            throw new IllegalArgumentException("shapes disagree: " + nByDin + ", W " + w + ", " + nByDout);
        }
    }

    @Override
    public void close() {
        synchronized (backend) {
            if (!backend.isClosed()) {
                backend.context().makeCurrent();
            }
            if (cublas != null) {
                cublas.close();
            }
        }
    }
}
