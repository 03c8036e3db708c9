package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The device-resident layer: eager equals the host-staged backend, graph replay equals eager, bit for bit. */
@Tag("gpu")
class CudaLoraLayerGpuTest {
    static final int N = 300;
    static final int D_IN = 200;
    static final int D_OUT = 150;
    static final int R = 16;
    static final long SEED = 31337;
    static final long STEP = 5;

    @Test
    void eagerMatchesTheBackendAndGraphReplayMatchesEagerBitForBit() {
        CudaBackend cuda = GpuSupport.backend();
        long baseline = cuda.memoryStats().bytesInUse();
        SplittableRandom rnd = new SplittableRandom(SEED);
        try (Arena arena = Arena.ofShared()) {
            DType t = DType.BF16;
            Tensor w = Tensor.allocate(arena, t, D_OUT, D_IN);
            Tensor bias = Tensor.allocate(arena, t, D_OUT);
            Tensor a = Tensor.allocate(arena, DType.F32, R, D_IN);
            Tensor b = Tensor.allocate(arena, DType.F32, D_OUT, R);
            Tensor x = Tensor.allocate(arena, t, N, D_IN);
            Tensor dy = Tensor.allocate(arena, t, N, D_OUT);
            for (Tensor tt : new Tensor[] {w, bias, a, b, x, dy}) {
                GpuSupport.fill(tt, rnd, -1, 1);
            }
            double gamma = 8 / Math.sqrt(R);
            // the host-staged backend: the same kernels, so the same bits
            LoraParams p = new LoraParams(N, D_IN, D_OUT, R, gamma, 0.1f, SEED, STEP, 3, true, true, GradMode.ASSIGN);
            Tensor yB = Tensor.allocate(arena, t, N, D_OUT);
            Tensor uB = Tensor.allocate(arena, DType.F32, N, R);
            Tensor dxB = Tensor.allocate(arena, t, N, D_IN);
            Tensor gAB = Tensor.allocate(arena, DType.F32, R, D_IN);
            Tensor gBB = Tensor.allocate(arena, DType.F32, D_OUT, R);
            try (FrozenWeight fw = cuda.prepare(w, bias)) {
                cuda.forward(p, fw, x, a, b, uB, yB);
                cuda.backward(p, fw, x, a, b, uB, dy, dxB, gAB, gBB);
            }

            CudaLoraLayer layer = new CudaLoraLayer(cuda, w, bias, a, b, gamma, 0.1f, SEED, 3, N, GradMode.ASSIGN);
            DeviceTensor dX = cuda.upload(x);
            DeviceTensor dDy = cuda.upload(dy);
            DeviceTensor dY1 = cuda.allocate(t, N, D_OUT);
            DeviceTensor dDx1 = cuda.allocate(t, N, D_IN);
            layer.forward(dX, dY1, STEP, true);
            layer.backward(dX, dDy, dDx1, STEP, true);
            Tensor y1 = Tensor.allocate(arena, t, N, D_OUT);
            Tensor dx1 = Tensor.allocate(arena, t, N, D_IN);
            Tensor u1 = Tensor.allocate(arena, DType.F32, N, R);
            Tensor gA1 = Tensor.allocate(arena, DType.F32, R, D_IN);
            Tensor gB1 = Tensor.allocate(arena, DType.F32, D_OUT, R);
            dY1.copyTo(y1);
            dDx1.copyTo(dx1);
            layer.copyUTo(u1);
            layer.copyGradientsTo(gA1, gB1);
            String ctx = "seed " + SEED;
            GpuSupport.assertBitwise("Y layer vs backend", y1, yB, ctx);
            GpuSupport.assertBitwise("U layer vs backend", u1, uB, ctx);
            GpuSupport.assertBitwise("dX layer vs backend", dx1, dxB, ctx);
            GpuSupport.assertBitwise("dA layer vs backend", gA1, gAB, ctx);
            GpuSupport.assertBitwise("dB layer vs backend", gB1, gBB, ctx);

            DeviceTensor dY2 = cuda.allocate(t, N, D_OUT);
            DeviceTensor dDx2 = cuda.allocate(t, N, D_IN);
            CudaGraph graph = layer.captureStep(dX, dY2, dDy, dDx2, STEP);
            assertThrows(IllegalStateException.class, layer::close, "a captured graph pins the layer");
            assertThrows(IllegalStateException.class, dY2::close, "a captured graph pins its tensors");
            layer.zeroGradients();
            for (int rep = 0; rep < 3; rep++) {
                graph.replay();
                graph.synchronize();
                Tensor y2 = Tensor.allocate(arena, t, N, D_OUT);
                Tensor dx2 = Tensor.allocate(arena, t, N, D_IN);
                Tensor gA2 = Tensor.allocate(arena, DType.F32, R, D_IN);
                Tensor gB2 = Tensor.allocate(arena, DType.F32, D_OUT, R);
                dY2.copyTo(y2);
                dDx2.copyTo(dx2);
                layer.copyGradientsTo(gA2, gB2);
                GpuSupport.assertBitwise("Y replay " + rep, y2, y1, ctx);
                GpuSupport.assertBitwise("dX replay " + rep, dx2, dx1, ctx);
                GpuSupport.assertBitwise("dA replay " + rep, gA2, gA1, ctx);
                GpuSupport.assertBitwise("dB replay " + rep, gB2, gB1, ctx);
            }
            graph.close();
            layer.close();
            for (DeviceTensor d : new DeviceTensor[] {dX, dDy, dY1, dDx1, dY2, dDx2}) {
                d.close();
            }
        }
        assertEquals(baseline, cuda.memoryStats().bytesInUse(), "every device buffer returned");
    }
}
