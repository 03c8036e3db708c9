package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

/**
 * The device copies of a prepared weight follow the host tensors: after the caller writes W and the
 * bias through their tensors, a step on the weight prepared before the writes equals, bit for bit,
 * a step on a weight prepared after them (same kernels, same inputs). Before, the device kept the
 * values of prepare. Also through a converted copy (F32 X with a BF16 W) and across a merge.
 */
@Tag("gpu")
class CudaFrozenWeightGpuTest {
    @Test
    void writesToTheHostWeightAndBiasReachTheDevice() {
        CudaBackend cuda = GpuSupport.backend();
        SplittableRandom rnd = new SplittableRandom(4242);
        try (Arena arena = Arena.ofShared()) {
            int n = 96;
            GpuSupport.LayerData in = GpuSupport.LayerData.random(arena, DType.BF16, n, 80, 72, 8, rnd);
            LoraParams p = new LoraParams(n, 80, 72, 8, 1.5, 0f, 7L, 1L, 0, true, true, GradMode.ASSIGN);
            try (FrozenWeight kept = cuda.prepare(in.w(), in.bias())) {
                step(arena, cuda, kept, p, in, in.x(), in.dy());   // the device copies in use
                in.w().set(3, 5, 2.5f);
                in.w().copyFrom(in.w().to(arena, DType.F32));       // every element rewritten (same values)
                in.bias().fill(-1f);
                GpuSupport.StepResult got = step(arena, cuda, kept, p, in, in.x(), in.dy());
                GpuSupport.StepResult want = in.onBackend(arena, cuda, p);
                got.assertBitwise("prepared before the writes vs after", want, "BF16 W");

                // an F32 X and dY make the backend use an F32 copy of the BF16 W: the write must reach it too
                Tensor x32 = in.x().to(arena, DType.F32);
                Tensor dy32 = in.dy().to(arena, DType.F32);
                step(arena, cuda, kept, p, in, x32, dy32);
                in.w().set(0, 0, -4f);
                GpuSupport.StepResult gotF32 = step(arena, cuda, kept, p, in, x32, dy32);
                try (FrozenWeight fresh = cuda.prepare(in.w(), in.bias())) {
                    step(arena, cuda, fresh, p, in, x32, dy32).assertBitwise("converted copy", gotF32, "F32 X, BF16 W");
                }

                // merge after a write merges into the written W, and leaves the copies current
                in.w().set(1, 1, 0.75f);
                cuda.merge(kept, in.a(), in.b(), 1.5, 1);
                GpuSupport.StepResult merged = step(arena, cuda, kept, p, in, in.x(), in.dy());
                try (FrozenWeight fresh = cuda.prepare(in.w(), in.bias())) {
                    step(arena, cuda, fresh, p, in, in.x(), in.dy()).assertBitwise("after merge", merged, "BF16 W merged");
                }
            }
        }
    }

    private static GpuSupport.StepResult step(Arena arena, CudaBackend cuda, FrozenWeight fw, LoraParams p,
                                              GpuSupport.LayerData in, Tensor x, Tensor dy) {
        DType t = x.dtype();
        GpuSupport.StepResult out = new GpuSupport.StepResult(Tensor.allocate(arena, t, p.n(), p.dOut()),
                Tensor.allocate(arena, DType.F32, p.n(), p.rank()), Tensor.allocate(arena, t, p.n(), p.dIn()),
                Tensor.allocate(arena, DType.F32, p.rank(), p.dIn()), Tensor.allocate(arena, DType.F32, p.dOut(), p.rank()));
        cuda.forward(p, fw, x, in.a(), in.b(), out.u(), out.y());
        cuda.backward(p, fw, x, in.a(), in.b(), out.u(), dy, out.dx(), out.gA(), out.gB());
        return out;
    }
}
