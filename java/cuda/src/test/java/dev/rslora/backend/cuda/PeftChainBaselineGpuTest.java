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

/**
 * The unfused cuBLAS chain against the reference. It keeps Xd, U, V, T1 in the storage dtype as
 * PEFT does, so its bf16/f16 results are compared at the naive-16-bit level (2^-5 relative, 2 % of
 * the largest value); f32 at 1e-3 (cuBLAS may use TF32-free split-K orders). The dropout masks are
 * the same as the fused kernels' (same Philox stream).
 */
@Tag("gpu")
class PeftChainBaselineGpuTest {

    @Test
    void unfusedChainMatchesTheReference() {
        CudaBackend cuda = GpuSupport.backend();
        CublasBinding.Choice binding = CublasBinding.current();
        System.out.println("cuBLAS binding: " + binding.detail());
        Assumptions.assumeTrue(binding.available(), binding::detail);
        ReferenceBackend ref = new ReferenceBackend();
        for (DType t : DType.values()) {
            for (GradMode mode : GradMode.values()) {
                int n = 130;
                int dIn = 97;
                int dOut = 66;
                int r = 16;
                long seed = 900 + t.ordinal() * 2L + mode.ordinal();
                SplittableRandom rnd = new SplittableRandom(seed);
                try (Arena arena = Arena.ofShared();
                     PeftChainBaseline chain = new PeftChainBaseline(cuda, t, n, dIn, dOut, r)) {
                    Tensor x = Tensor.allocate(arena, t, n, dIn);
                    Tensor w = Tensor.allocate(arena, t, dOut, dIn);
                    Tensor a = Tensor.allocate(arena, t, r, dIn);
                    Tensor b = Tensor.allocate(arena, t, dOut, r);
                    Tensor dy = Tensor.allocate(arena, t, n, dOut);
                    Tensor gA = Tensor.allocate(arena, DType.F32, r, dIn);
                    Tensor gB = Tensor.allocate(arena, DType.F32, dOut, r);
                    for (Tensor tt : new Tensor[] {x, w, a, b, dy, gA, gB}) {
                        GpuSupport.fill(tt, rnd, -1, 1);
                    }
                    Tensor gARef = gA.to(arena, DType.F32);
                    Tensor gBRef = gB.to(arena, DType.F32);
                    LoraParams p = new LoraParams(n, dIn, dOut, r, 4.0 / Math.sqrt(r), 0.1f, seed, 3, 1, true, true, mode);
                    Tensor y = Tensor.allocate(arena, t, n, dOut);
                    Tensor dx = Tensor.allocate(arena, t, n, dIn);
                    try (DeviceTensor dX = cuda.upload(x); DeviceTensor dW = cuda.upload(w); DeviceTensor dA = cuda.upload(a);
                         DeviceTensor dB = cuda.upload(b); DeviceTensor dDy = cuda.upload(dy);
                         DeviceTensor dY = cuda.allocate(t, n, dOut); DeviceTensor dDx = cuda.allocate(t, n, dIn);
                         DeviceTensor dGA = cuda.upload(gA); DeviceTensor dGB = cuda.upload(gB)) {
                        chain.forward(p, dX, dW, dA, dB, dY);
                        chain.backward(p, dDy, dW, dA, dB, dDx, dGA, dGB);
                        dY.copyTo(y);
                        dDx.copyTo(dx);
                        dGA.copyTo(gA);
                        dGB.copyTo(gB);
                    }
                    Tensor yRef = Tensor.allocate(arena, t, n, dOut);
                    Tensor uRef = Tensor.allocate(arena, DType.F32, n, r);
                    Tensor dxRef = Tensor.allocate(arena, t, n, dIn);
                    try (FrozenWeight rw = ref.prepare(w, null)) {
                        ref.forward(p, rw, x, a, b, uRef, yRef);
                        ref.backward(p, rw, x, a, b, uRef, dy, dxRef, gARef, gBRef);
                    }
                    double rtol = t == DType.F32 ? 1e-3 : 0x1p-5;
                    double atol = t == DType.F32 ? 1e-3 : 2e-2;
                    String ctx = t + " " + mode + " seed " + seed;
                    GpuSupport.assertClose("chain Y", y, yRef, rtol, atol, ctx);
                    GpuSupport.assertClose("chain dX", dx, dxRef, rtol, atol, ctx);
                    GpuSupport.assertClose("chain dA", gA, gARef, rtol, atol, ctx);
                    GpuSupport.assertClose("chain dB", gB, gBRef, rtol, atol, ctx);
                }
            }
        }
    }
}
