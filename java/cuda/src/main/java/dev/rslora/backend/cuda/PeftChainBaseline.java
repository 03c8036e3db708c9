package dev.rslora.backend.cuda;

import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;

/**
 * The unfused, PEFT-equivalent LoRA layer on cuBLAS, the baseline the fused kernels are measured
 * and cross-checked against. Like PEFT's eager {@code lora.Linear} it materialises the dropped
 * input and keeps every intermediate in the storage dtype T (bias-free):
 * <pre>
 *   forward : Y = X·Wᵀ;  Xd = D(X);  U = Xd·Aᵀ;  Y += γ·U·Bᵀ                    (3 GEMMs + 1 kernel)
 *   backward: dX = dY·W;  V = dY·B;  dB (=|+=) γ·dYᵀ·U;  dA (=|+=) γ·Vᵀ·Xd;
 *             T1 = γ·V·A;  dX += D'(T1)                                          (5 GEMMs + 1 kernel)
 * </pre>
 * Shapes: X, Xd [n, d_in], W [d_out, d_in], A [r, d_in], B [d_out, r] (T), U, V [n, r] (T),
 * Y, dY [n, d_out], dX [n, d_in] (T), dA [r, d_in], dB [d_out, r] (F32). Each GEMM is
 * {@link CublasGemm#rowMajor}: cuBLAS's first operand is the row-major right factor. Xd, U, V, T1
 * are owned here, sized for n rows (the backward uses the Xd and U of the last forward).
 */
public final class PeftChainBaseline implements AutoCloseable {
    private final CudaBackend backend;
    private final CublasApi cublas;
    private final DType t;
    private final int n;
    private final int dIn;
    private final int dOut;
    private final int r;
    private final DeviceBuffer xd;
    private final DeviceBuffer u;
    private final DeviceBuffer v;
    private final DeviceBuffer t1;

    /**
     * Binds cuBLAS ({@link CublasBinding#current()}) and allocates Xd, U, V, T1 for n rows.
     *
     * @param backend the backend whose context and stream run the chain
     * @param t       the storage dtype T of X, W, A, B, Y and the intermediates
     * @param n       the rows of X, ≥ 1
     * @param dIn     d_in
     * @param dOut    d_out
     * @param r       the adapter rank
     */
    public PeftChainBaseline(CudaBackend backend, DType t, int n, int dIn, int dOut, int r) {
        this(backend, t, n, dIn, dOut, r, CublasBinding.current());
    }

    /** On a given cuBLAS binding (tests cover each binding that loads). */
    PeftChainBaseline(CudaBackend backend, DType t, int n, int dIn, int dOut, int r, CublasBinding.Choice binding) {
        this.backend = backend;
        this.t = t;
        this.n = n;
        this.dIn = dIn;
        this.dOut = dOut;
        this.r = r;
        synchronized (backend) {
            CudaContext ctx = backend.context();
            ctx.makeCurrent();
            this.cublas = CublasBinding.open(ctx, binding);
            this.xd = ctx.allocate(Transfers.bytes((long) n * dIn, t));
            this.u = ctx.allocate(Transfers.bytes((long) n * r, t));
            this.v = ctx.allocate(Transfers.bytes((long) n * r, t));
            this.t1 = ctx.allocate(Transfers.bytes((long) n * dIn, t));
        }
    }

    private void check(String name, DeviceTensor x, DType dtype, long rows, long cols) {
        backend.checkOwn(x);
        if (x.dtype() != dtype || x.dim(0) != rows || x.dim(1) != cols) {
            throw new IllegalArgumentException(name + " must be [" + rows + ", " + cols + "] " + dtype + ", got " + x);
        }
    }

    private void checkParams(LoraParams p) {
        if (p.n() != n || p.dIn() != dIn || p.dOut() != dOut || p.rank() != r) {
            throw new IllegalArgumentException("params " + p + " do not match the chain's n=" + n + " d_in=" + dIn
                    + " d_out=" + dOut + " r=" + r);
        }
    }

    private static LoraKernels.Dropout drop(LoraParams p) {
        return new LoraKernels.Dropout(p.mask(), p.seed(), p.step(), p.layer());
    }

    /**
     * Queues the forward (see the class comment).
     *
     * @param p the step (n, shapes, γ, dropout) matching this chain's sizes
     * @param x X [n, d_in], T
     * @param w W [d_out, d_in], T
     * @param a A [r, d_in], T
     * @param b B [d_out, r], T
     * @param y receives Y [n, d_out], T
     */
    public void forward(LoraParams p, DeviceTensor x, DeviceTensor w, DeviceTensor a, DeviceTensor b, DeviceTensor y) {
        checkParams(p);
        check("x", x, t, n, dIn);
        check("w", w, t, dOut, dIn);
        check("lora_A", a, t, r, dIn);
        check("lora_B", b, t, dOut, r);
        check("y", y, t, n, dOut);
        synchronized (backend) {
            backend.context().makeCurrent();
            // Y [n, d_out] = X [n, d_in] · W [d_out, d_in]ᵀ
            cublas.gemm(CublasGemm.baseForward(n, dIn, dOut), t, w.buffer(), x.buffer(), y.buffer());
            // Xd = D(X)
            backend.kernels().dropoutElementwise(t, false, x.buffer(), xd, n, dIn, drop(p));
            // U [n, r] = Xd [n, d_in] · A [r, d_in]ᵀ
            cublas.gemm(CublasGemm.rowMajor(false, true, n, r, dIn, dIn, dIn, r), t, a.buffer(), xd, u);
            // Y += γ · U [n, r] · B [d_out, r]ᵀ
            cublas.gemm(CublasGemm.rowMajor(false, true, n, dOut, r, r, r, dOut), t, t, b.buffer(), u, y.buffer(),
                    (float) p.gamma(), 1.0f);
        }
    }

    /**
     * Queues the backward of the last forward (same params); dA and dB are F32 [r, d_in], [d_out, r].
     *
     * @param p     the forward's params
     * @param dy    dY [n, d_out], T
     * @param w     W [d_out, d_in], T
     * @param a     A [r, d_in], T
     * @param b     B [d_out, r], T
     * @param dx    receives dX [n, d_in], T
     * @param gradA receives dA [r, d_in], F32 (assigned or accumulated per p.gradMode())
     * @param gradB receives dB [d_out, r], F32
     */
    public void backward(LoraParams p, DeviceTensor dy, DeviceTensor w, DeviceTensor a, DeviceTensor b, DeviceTensor dx,
                         DeviceTensor gradA, DeviceTensor gradB) {
        checkParams(p);
        check("grad_y", dy, t, n, dOut);
        check("w", w, t, dOut, dIn);
        check("lora_A", a, t, r, dIn);
        check("lora_B", b, t, dOut, r);
        check("grad_x", dx, t, n, dIn);
        check("grad_A", gradA, DType.F32, r, dIn);
        check("grad_B", gradB, DType.F32, dOut, r);
        float gamma = (float) p.gamma();
        float beta = p.gradMode() == GradMode.ACCUMULATE ? 1.0f : 0.0f;
        synchronized (backend) {
            backend.context().makeCurrent();
            // dX [n, d_in] = dY [n, d_out] · W [d_out, d_in]
            cublas.gemm(CublasGemm.baseBackwardData(n, dIn, dOut), t, w.buffer(), dy.buffer(), dx.buffer());
            // V [n, r] = dY [n, d_out] · B [d_out, r]
            cublas.gemm(CublasGemm.rowMajor(false, false, n, r, dOut, dOut, r, r), t, b.buffer(), dy.buffer(), v);
            // dB [d_out, r] (=|+=) γ · dY [n, d_out]ᵀ · U [n, r]
            cublas.gemm(CublasGemm.rowMajor(true, false, dOut, r, n, dOut, r, r), t, DType.F32, u, dy.buffer(),
                    gradB.buffer(), gamma, beta);
            // dA [r, d_in] (=|+=) γ · V [n, r]ᵀ · Xd [n, d_in]
            cublas.gemm(CublasGemm.rowMajor(true, false, r, dIn, n, r, dIn, dIn), t, DType.F32, xd, v,
                    gradA.buffer(), gamma, beta);
            // T1 [n, d_in] = γ · V [n, r] · A [r, d_in];  dX += D'(T1)
            cublas.gemm(CublasGemm.rowMajor(false, false, n, dIn, r, r, dIn, dIn), t, t, a.buffer(), v, t1, gamma, 0.0f);
            backend.kernels().dropoutElementwise(t, true, t1, dx.buffer(), n, dIn, drop(p));
        }
    }

    @Override
    public void close() {
        synchronized (backend) {
            if (!backend.isClosed()) {
                backend.context().makeCurrent();
            }
            for (DeviceBuffer buf : new DeviceBuffer[] {xd, u, v, t1}) {
                buf.close();
            }
            cublas.close();
        }
    }
}
