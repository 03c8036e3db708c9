package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/** The cuBLAS base GEMMs (the R denominator) against the reference, per dtype, at awkward shapes. */
@Tag("gpu")
class BaseLinearBaselineGpuTest {

    @Test
    void cublasBaseGemmsMatchTheReference() {
        CudaBackend cuda = GpuSupport.backend();
        CublasBinding.Choice binding = CublasBinding.current();
        System.out.println("cuBLAS binding: " + binding.detail());
        Assumptions.assumeTrue(binding.available(), binding::detail);
        // every binding that loads here: JCublas and java.lang.foreign both where libcublas.so.12 is present
        for (CublasBinding.Choice each : CublasBinding.loadable()) {
            checkAgainstTheReference(cuda, each);
        }
    }

    private static void checkAgainstTheReference(CudaBackend cuda, CublasBinding.Choice binding) {
        ReferenceBackend ref = new ReferenceBackend();
        try (BaseLinearBaseline blas = new BaseLinearBaseline(cuda, binding); Arena arena = Arena.ofShared()) {
            System.out.println("cuBLAS baseline via " + blas.binding());
            for (DType t : DType.values()) {
                int n = 129;
                int dIn = 95;
                int dOut = 67;
                long seed = 700 + t.ordinal();
                SplittableRandom rnd = new SplittableRandom(seed);
                Tensor x = Tensor.allocate(arena, t, n, dIn);
                Tensor w = Tensor.allocate(arena, t, dOut, dIn);
                Tensor dy = Tensor.allocate(arena, t, n, dOut);
                for (Tensor tt : new Tensor[] {x, w, dy}) {
                    GpuSupport.fill(tt, rnd, -1, 1);
                }
                Tensor y = Tensor.allocate(arena, t, n, dOut);
                Tensor dx = Tensor.allocate(arena, t, n, dIn);
                try (DeviceTensor dX = cuda.upload(x); DeviceTensor dW = cuda.upload(w); DeviceTensor dDy = cuda.upload(dy);
                     DeviceTensor dY = cuda.allocate(t, n, dOut); DeviceTensor dDx = cuda.allocate(t, n, dIn)) {
                    blas.forward(dX, dW, dY);
                    blas.backwardData(dDy, dW, dDx);
                    dY.copyTo(y);
                    dDx.copyTo(dx);
                }
                LoraParams p = new LoraParams(n, dIn, dOut, 1, 1.0, 0f, 0, 0, 0, false, false, GradMode.ASSIGN);
                Tensor yRef = Tensor.allocate(arena, t, n, dOut);
                Tensor dxRef = Tensor.allocate(arena, t, n, dIn);
                try (FrozenWeight rw = ref.prepare(w, null)) {
                    ref.forward(p, rw, x, null, null, null, yRef);
                    ref.backward(p, rw, x, null, null, null, dy, dxRef, null, null);
                }
                // cuBLAS may use TF32 or split-K for f32; allow a little more than one output ulp
                double rtol = t == DType.F32 ? 1e-3 : GpuSupport.rtol(t);
                String ctx = t + " seed " + seed + " via " + blas.binding();
                GpuSupport.assertClose("cuBLAS Y", y, yRef, rtol, 1e-3, ctx);
                GpuSupport.assertClose("cuBLAS dX", dx, dxRef, rtol, 1e-3, ctx);
            }
        }
    }
}
