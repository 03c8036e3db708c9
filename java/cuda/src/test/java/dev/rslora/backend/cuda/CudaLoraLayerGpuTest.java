package dev.rslora.backend.cuda;

import dev.rslora.backend.LoraParams;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
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
            GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, t, N, D_IN, D_OUT, R, rnd);
            double gamma = 8 / Math.sqrt(R);
            // the host-staged backend: the same kernels, so the same bits
            LoraParams p = new LoraParams(N, D_IN, D_OUT, R, gamma, 0.1f, SEED, STEP, 3, true, true, GradMode.ASSIGN);
            GpuSupport.StepResult backend = in.onBackend(arena, cuda, p);

            CudaLoraLayer layer = new CudaLoraLayer(cuda, in.w(), in.bias(), in.a(), in.b(), gamma, 0.1f, SEED, 3, N, GradMode.ASSIGN);
            DeviceTensor dX = cuda.upload(in.x());
            DeviceTensor dDy = cuda.upload(in.dy());
            DeviceTensor dY1 = cuda.allocate(t, N, D_OUT);
            DeviceTensor dDx1 = cuda.allocate(t, N, D_IN);
            layer.forward(dX, dY1, STEP, true);
            layer.backward(dX, dDy, dDx1, STEP, true);
            GpuSupport.StepResult eager = in.read(arena, layer, dY1, dDx1, true);
            String ctx = "seed " + SEED;
            eager.assertBitwise("layer vs backend", backend, ctx);

            DeviceTensor dY2 = cuda.allocate(t, N, D_OUT);
            DeviceTensor dDx2 = cuda.allocate(t, N, D_IN);
            CudaGraph graph = layer.captureStep(dX, dY2, dDy, dDx2, STEP);
            assertThrows(IllegalStateException.class, layer::close, "a captured graph pins the layer");
            assertThrows(IllegalStateException.class, dY2::close, "a captured graph pins its tensors");
            layer.zeroGradients();
            in.assertReplays(arena, graph, layer, dY2, dDx2, 3, eager, ctx);
            graph.close();
            layer.close();
            for (DeviceTensor d : new DeviceTensor[] {dX, dDy, dY1, dDx1, dY2, dDx2}) {
                d.close();
            }
        }
        assertEquals(baseline, cuda.memoryStats().bytesInUse(), "every device buffer returned");
    }

    /** A square layer (d_in = d_out), where X, Y, dY and dX have one shape: an aliased output is refused, not raced. */
    @Test
    void aliasedOutputsAreRefused() {
        CudaBackend cuda = GpuSupport.backend();
        try (Arena arena = Arena.ofShared()) {
            int d = 64;
            int n = 128;
            GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, DType.BF16, n, d, d, 8, new SplittableRandom(SEED));
            try (CudaLoraLayer layer = new CudaLoraLayer(cuda, in.w(), in.bias(), in.a(), in.b(), 2.0, 0.1f, SEED, 3, n, GradMode.ASSIGN);
                 DeviceTensor x = cuda.upload(in.x());
                 DeviceTensor dy = cuda.upload(in.dy())) {
                assertThrows(IllegalArgumentException.class, () -> layer.forward(x, x, STEP, true), "y = x");
                assertThrows(IllegalArgumentException.class, () -> layer.backward(x, dy, dy, STEP, true), "dx = dy");
                assertThrows(IllegalArgumentException.class, () -> layer.backward(x, dy, x, STEP, true), "dx = x");
                assertThrows(IllegalArgumentException.class, () -> layer.captureStep(x, dy, dy, null, STEP), "y = dy");
            }
        }
    }

    /**
     * Closing the backend frees a graph still open: the graph then refuses replays, its close is a
     * no-op, and the layer and tensors it pinned can be closed (before, the graph's close needed the
     * closed backend's context and threw, so they stayed pinned for good).
     */
    @Test
    void closingTheBackendFreesAnOpenGraphAndItsPins() {
        GpuSupport.backend();  // skips without a GPU
        CudaBackend own = (CudaBackend) new CudaBackendFactory().create();
        try (Arena arena = Arena.ofShared()) {
            int n = 64;
            GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, DType.F32, n, 32, 48, 4, new SplittableRandom(SEED));
            CudaLoraLayer layer = new CudaLoraLayer(own, in.w(), in.bias(), in.a(), in.b(), 2.0, 0f, SEED, 3, n, GradMode.ASSIGN);
            DeviceTensor x = own.upload(in.x());
            DeviceTensor dy = own.upload(in.dy());
            DeviceTensor y = own.allocate(DType.F32, n, 48);
            CudaGraph graph = layer.captureStep(x, y, dy, null, STEP);
            graph.replay();
            graph.synchronize();
            own.close();
            assertThrows(IllegalStateException.class, graph::replay, "the backend closed the graph");
            assertDoesNotThrow(graph::close);
            assertDoesNotThrow(layer::close);
            for (DeviceTensor d : new DeviceTensor[] {x, dy, y}) {
                assertDoesNotThrow(d::close);
            }
        } finally {
            own.close();
        }
    }
}
