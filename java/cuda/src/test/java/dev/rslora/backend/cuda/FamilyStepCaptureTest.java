package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * {@link FamilyStep#resolveAll} looks every kernel of a step up the way the step then launches it, so
 * that no lookup (which loads the kernel's code under lazy module loading) happens inside a graph
 * capture. {@link CudaContext} keeps two lookups: {@code launch} (no dynamic shared memory) finds its
 * function through {@code resolve(kernel)}, {@code launchEx} through {@code resolve(kernel, image)} /
 * {@code prepare}, which also raises the shared memory limit. The launcher here keeps them apart the
 * same way and reports every launch whose lookup was not made before the "capture". The real table,
 * v3 and v4 at bf16, at a shape their GEMMs take and at one they refuse (d_in not a multiple of 8:
 * v1's forward and dX run instead).
 */
class FamilyStepCaptureTest {
    /** CudaContext's two lookups, apart; launches after {@link #capture} must find theirs made. */
    static final class TwoLookups implements KernelLauncher {
        final Set<String> plain = new HashSet<>();
        final Set<String> ex = new HashSet<>();
        final Map<String, Integer> smem = new HashMap<>();
        final List<String> lookedUpInCapture = new ArrayList<>();
        final List<String> launched = new ArrayList<>();
        final TensorMapCacheTest.Counting encoder = new TensorMapCacheTest.Counting();
        boolean capture;

        @Override
        public void resolve(String kernel) {
            plain.add(kernel);
        }

        @Override
        public void resolve(String kernel, String image) {
            ex.add(image + ":" + kernel);
        }

        @Override
        public void prepare(String kernel, String image, int smemBytes) {
            resolve(kernel, image);
            smem.merge(image + ":" + kernel, smemBytes, Math::max);
        }

        @Override
        public void launch(String kernel, LaunchGeometry.Grid grid, int threads, byte[] params) {
            launched.add(kernel);
            if (plain.add(kernel) && capture) {
                lookedUpInCapture.add(kernel);
            }
        }

        @Override
        public void launchEx(String kernel, String image, LaunchGeometry.Grid grid, int threads, int smemBytes, DriverFfm.Cluster cluster,
                             byte[] params, List<DriverFfm.TensorMap> maps) {
            String key = image + ":" + kernel;
            launched.add(key);
            if ((ex.add(key) || smem.getOrDefault(key, 0) < smemBytes) && capture) {
                lookedUpInCapture.add(key + " (" + smemBytes + " B)");
            }
            smem.merge(key, smemBytes, Math::max);
        }

        @Override
        public int multiprocessors() {
            return 132;
        }

        @Override
        public TensorMapCache.Encoder tensorMaps() {
            return encoder;
        }
    }

    private final CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());

    private DeviceBuffer buf(long bytes) {
        return memory.allocate(Math.max(1, bytes));
    }

    @Test
    void resolveAllMakesEveryLookupTheStepsLaunchesUse() throws IOException {
        KernelTable table = KernelTable.read(Path.of("../../cuda/kernels.table"));
        for (String family : List.of("v3", "v4")) {
            for (int dIn : new int[] {256, 196}) {
                int n = 300;
                int dOut = 192;
                int r = 16;
                TwoLookups launcher = new TwoLookups();
                FamilyStep fs = new FamilyStep(launcher, table, family, DType.BF16, n, dIn, dOut, r, 1L << 30);
                FamilyStep.Sizes z = fs.plan();
                FamilyStep.Buffers f = new FamilyStep.Buffers(buf(z.at()), buf(z.bt()), buf(z.ug()), buf(z.vg()), buf(z.wsV()),
                        buf(z.wsDb()), buf(z.wsDa()));
                DeviceBuffer x = buf(2L * n * dIn);
                DeviceBuffer w = buf(2L * dOut * dIn);
                DeviceBuffer bias = buf(2L * dOut);
                DeviceBuffer a = buf(4L * r * dIn);
                DeviceBuffer b = buf(4L * dOut * r);
                DeviceBuffer u = buf(4L * n * r);
                DeviceBuffer y = buf(2L * n * dOut);
                DeviceBuffer dy = buf(2L * n * dOut);
                DeviceBuffer v = buf(4L * n * r);
                DeviceBuffer gA = buf(4L * r * dIn);
                DeviceBuffer gB = buf(4L * dOut * r);
                DeviceBuffer dx = buf(2L * n * dIn);
                fs.resolveAll();
                launcher.capture = true;
                fs.forward(x, w, bias, a, b, u, y, 2f, LoraKernels.Dropout.NONE, f);
                fs.backward(x, dy, w, a, b, u, v, gA, gB, dx, 2f, LoraKernels.Dropout.NONE, false, f);
                assertFalse(launcher.launched.isEmpty());
                assertEquals(List.of(), launcher.lookedUpInCapture, family + " d_in=" + dIn + ": kernels first looked up inside the"
                        + " capture (launched: " + launcher.launched + ")");
            }
        }
    }
}
