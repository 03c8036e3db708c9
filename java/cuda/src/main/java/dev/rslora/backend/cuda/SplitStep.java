package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.util.ArrayList;
import java.util.List;

/**
 * The {@code split} layer step (issue 12): cuBLASLt for the two big GEMMs, our kernels for the LoRA
 * side. Same inputs, outputs and results contract as the fused step ({@link LoraKernels#forwardStep},
 * {@link LoraKernels#backwardStep}); shapes row-major, T = the GEMM dtype of X, W, Y, dY, dX:
 * <pre>
 *   forward   U = D(X)·Aᵀ [n, r] f32                       down kernel (X read once, mask in registers)
 *             Ut = T(U) [n, r], Bt = T(B) [d_out, r]         conversion kernels (T = F32: U, B themselves)
 *             Y  = γ·Ut·Btᵀ                                  cuBLASLt, K = r (writes Y once)
 *             Y  = X·Wᵀ + bias + 1·Y                         cuBLASLt, BIAS epilogue, beta = 1: the LoRA term
 *                                                            is read in the big GEMM's epilogue, Y rounded once more
 *   backward  V = dY·B [n, r] f32 and dB (=|+=) γ·dYᵀ·U     vdb kernel + fixed-order reduce (deterministic)
 *             dA (=|+=) γ·Vᵀ·D(X)                            da kernel + fixed-order reduce (mask regenerated)
 *             Vt = T(V), At = T(A) [r, d_in]                 conversion kernels (T = F32: V, A themselves)
 *             dX = γ·Vt·At, then dX = D'(dX) when p > 0      cuBLASLt (K = r), dropout kernel in place
 *             dX = dY·W + 1·dX                               cuBLASLt, beta = 1
 * </pre>
 * The LoRA term goes first so the big GEMM adds it in its epilogue: one extra write and one extra
 * read of Y (dX) instead of the write, read and write a second GEMM after it would cost (prediction
 * at N = 8192, d = 4096, bf16 on an H200: ~15 µs per pass saved of ~4.3 TB/s; not measured yet).
 * Every kernel here is a v1 kernel already validated on hardware; the dropout masks are those of
 * the fused step, bit for bit (same kernels, same (seed, step, layer, row, column) rule).
 * Precision: the LoRA term is rounded to T once more than in the fused step (Ut, Bt, Vt, At, and
 * the K = r product), within the v2-style bound 4·u_T·Σ|terms| the harness allows for T operands.
 * Nothing is allocated during a step: the caller passes the {@link Scratch} (a layer owns one).
 */
final class SplitStep {
    /** Conversions of the adapter side to T (all null when T = F32, which uses the f32 buffers). */
    record Scratch(DType t, DeviceBuffer ut, DeviceBuffer bt, DeviceBuffer vt, DeviceBuffer at) implements AutoCloseable {
        /** Allocates the T copies for (n, d_in, d_out, r) (none for F32 or r = 0). */
        static Scratch allocate(CudaContext ctx, DType t, int n, int dIn, int dOut, int r) {
            if (t == DType.F32 || r == 0) {
                return new Scratch(t, null, null, null, null);
            }
            List<DeviceBuffer> made = new ArrayList<>();
            try {
                DeviceBuffer ut = add(made, ctx.allocate(Transfers.bytes((long) n * r, t)));
                DeviceBuffer bt = add(made, ctx.allocate(Transfers.bytes((long) dOut * r, t)));
                DeviceBuffer vt = add(made, ctx.allocate(Transfers.bytes((long) n * r, t)));
                DeviceBuffer at = add(made, ctx.allocate(Transfers.bytes((long) r * dIn, t)));
                return new Scratch(t, ut, bt, vt, at);
            } catch (RuntimeException e) {
                made.forEach(DeviceBuffer::close);
                throw e;
            }
        }

        private static DeviceBuffer add(List<DeviceBuffer> made, DeviceBuffer b) {
            made.add(b);
            return b;
        }

        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {ut, bt, vt, at}) {
                if (b != null) {
                    b.close();
                }
            }
        }
    }

    private final LoraKernels kernels;
    private final LtGemm lt;

    SplitStep(LoraKernels kernels, LtGemm lt) {
        this.kernels = kernels;
        this.lt = lt;
    }

    LtGemm gemm() {
        return lt;
    }

    /** Y = γ·(T(U)·T(B)ᵀ): Y [n, d_out], U [n, r], B [d_out, r] (row-major C = A·Bᵀ). */
    static CublasGemm loraUp(int n, int dOut, int r) {
        return CublasGemm.rowMajor(false, true, n, dOut, r, r, r, dOut);
    }

    /** dX = γ·(T(V)·T(A)): dX [n, d_in], V [n, r], A [r, d_in]. */
    static CublasGemm loraDx(int n, int dIn, int r) {
        return CublasGemm.rowMajor(false, false, n, dIn, r, r, dIn, dIn);
    }

    /**
     * The forward (see the class comment). r = 0 (a, b, u null): Y = X·Wᵀ + bias alone. When
     * {@code u} is null with r > 0 the caller does not want U back, but the down kernel still needs
     * somewhere to write it: pass a buffer.
     */
    void forward(DType t, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u,
                 DeviceBuffer y, int n, int dIn, int dOut, int r, float gamma, LoraKernels.Dropout d, Scratch s) {
        float beta = 0.0f;
        if (r > 0) {
            kernels.down(t, x, a, u, n, dIn, r, d);
            DeviceBuffer ut = u;
            DeviceBuffer bt = b;
            if (t != DType.F32) {
                kernels.convert(DType.F32, t, u, s.ut(), (long) n * r);
                kernels.convert(DType.F32, t, b, s.bt(), (long) dOut * r);
                ut = s.ut();
                bt = s.bt();
            }
            // Y [n, d_out] = γ · Ut [n, r] · Bt [d_out, r]ᵀ
            lt.matmul(loraUp(n, dOut, r), t, t, bt, ut, y, null, gamma, 0.0f);
            beta = 1.0f;
        }
        // Y [n, d_out] = X [n, d_in] · W [d_out, d_in]ᵀ + bias + beta·Y
        lt.matmul(CublasGemm.baseForward(n, dIn, dOut), t, t, w, x, y, bias, 1.0f, beta);
    }

    /**
     * The backward (r > 0; see the class comment): V and dB, dA, then dX when dx is not null. ws
     * holds {@link LoraKernels#workspaceBytes} for (n, d_in, d_out, r, wsCap), as in the fused step.
     */
    void backward(DType t, DeviceBuffer x, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u,
                  DeviceBuffer v, DeviceBuffer ws, DeviceBuffer gradA, DeviceBuffer gradB, DeviceBuffer dx, int n, int dIn, int dOut,
                  int r, float gamma, LoraKernels.Dropout d, boolean accumulate, long wsCap, Scratch s) {
        long dbCount = (long) dOut * r;
        long daCount = (long) r * dIn;
        int rpgB = LaunchGeometry.rowsPerGroup(n, dbCount, wsCap);
        int rpgA = LaunchGeometry.rowsPerGroup(n, daCount, wsCap);
        if (ws.bytes() < LoraKernels.workspaceBytes(n, dIn, dOut, r, wsCap)) {
            throw new IllegalArgumentException("workspace of " + ws.bytes() + " bytes < "
                    + LoraKernels.workspaceBytes(n, dIn, dOut, r, wsCap));
        }
        kernels.backwardVdb(t, dy, b, u, v, ws, n, dOut, r, rpgB);
        kernels.reduceGroups(ws, gradB, dbCount, LaunchGeometry.groups(n, rpgB), gamma, accumulate);
        kernels.backwardDa(t, v, x, ws, n, dIn, r, rpgA, d);
        kernels.reduceGroups(ws, gradA, daCount, LaunchGeometry.groups(n, rpgA), gamma, accumulate);
        if (dx != null) {
            backwardDx(t, dy, w, a, v, dx, n, dIn, dOut, r, gamma, d, s);
        }
    }

    /** dX = dY·W + γ·D'(V·A) (r > 0), or dX = dY·W (r = 0; v, a unused). */
    void backwardDx(DType t, DeviceBuffer dy, DeviceBuffer w, DeviceBuffer a, DeviceBuffer v, DeviceBuffer dx, int n, int dIn,
                    int dOut, int r, float gamma, LoraKernels.Dropout d, Scratch s) {
        float beta = 0.0f;
        if (r > 0) {
            DeviceBuffer vt = v;
            DeviceBuffer at = a;
            if (t != DType.F32) {
                kernels.convert(DType.F32, t, v, s.vt(), (long) n * r);
                kernels.convert(DType.F32, t, a, s.at(), (long) r * dIn);
                vt = s.vt();
                at = s.at();
            }
            // dX [n, d_in] = γ · Vt [n, r] · At [r, d_in]
            lt.matmul(loraDx(n, dIn, r), t, t, at, vt, dx, null, gamma, 0.0f);
            if (d.mask() != null) {
                kernels.dropoutElementwise(t, false, dx, dx, n, dIn, d);  // dX = D'(dX) in place (elementwise)
            }
            beta = 1.0f;
        }
        // dX [n, d_in] = dY [n, d_out] · W [d_out, d_in] + beta·dX
        lt.matmul(CublasGemm.baseBackwardData(n, dIn, dOut), t, t, w, dy, dx, null, 1.0f, beta);
    }

    /** Makes every cuBLASLt plan of a forward + backward with these buffers (before a graph capture). */
    void preparePlans(DType t, DeviceBuffer x, DeviceBuffer w, DeviceBuffer bias, DeviceBuffer a, DeviceBuffer b, DeviceBuffer u,
                      DeviceBuffer y, DeviceBuffer dy, DeviceBuffer v, DeviceBuffer dx, int n, int dIn, int dOut, int r, Scratch s) {
        if (r > 0) {
            lt.prepare(loraUp(n, dOut, r), t, t, t == DType.F32 ? b : s.bt(), t == DType.F32 ? u : s.ut(), y, null);
        }
        lt.prepare(CublasGemm.baseForward(n, dIn, dOut), t, t, w, x, y, bias);
        if (dx != null) {
            if (r > 0) {
                lt.prepare(loraDx(n, dIn, r), t, t, t == DType.F32 ? a : s.at(), t == DType.F32 ? v : s.vt(), dx, null);
            }
            lt.prepare(CublasGemm.baseBackwardData(n, dIn, dOut), t, t, w, dy, dx, null);
        }
    }

    /** The kernels a step launches at dtype t, in launch order (to load them before a capture). */
    List<String> kernelNames(DType t, boolean dropout) {
        List<String> names = new ArrayList<>(List.of(LoraKernels.kernelName("lora_down", t)));
        if (t != DType.F32) {
            names.add(LoraKernels.convertName(DType.F32, t));
        }
        names.addAll(List.of(LoraKernels.kernelName("lora_backward_vdb", t), "rslora_reduce_groups_v1",
                LoraKernels.kernelName("lora_backward_da", t)));
        if (dropout) {
            names.add(LoraKernels.kernelName("dropout_apply", t));
        }
        return names;
    }
}
