package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Tensors over heap arrays ({@code Tensor.wrap(MemorySegment.ofArray(...))}) take the backend's
 * scalar loops wherever a vector load or store would touch them ({@link Convert#vectorOk}: a heap
 * segment in a vector access slows every later one in the JVM), and those loops round the same
 * way: every output has the bits of the same call on native tensors. The cases cover the merged
 * route (N ≥ 2·d, no dropout, with its finiteness scans of U and V), the chunked segment route
 * with dropout, and the row path of small N, each with gradients assigned and accumulated, in
 * F32 (direct stores) and BF16 (stores through the rounding loop).
 */
class HeapTensorTest {
    private static CpuBackend cpu;

    @BeforeAll
    static void start() {
        cpu = new CpuBackend(2);
    }

    @AfterAll
    static void stop() {
        cpu.close();
    }

    @ParameterizedTest(name = "n={0} {1} p={2} {3}")
    @CsvSource({
            "1025, F32, 0, ACCUMULATE", "1025, BF16, 0, ASSIGN",
            "300, F32, 0.1, ASSIGN", "300, BF16, 0.1, ACCUMULATE",
            "5, F32, 0, ACCUMULATE", "5, BF16, 0.1, ASSIGN", "1, F32, 0, ASSIGN", "1, BF16, 0, ACCUMULATE"})
    void heapTensorsGiveTheBitsOfNativeOnes(int n, DType dtype, float p, GradMode mode) {
        long seed = 0x4EA9L * 31 + n * 7L + dtype.ordinal() + mode.ordinal() * 3L;
        try (LayerFixture f = new LayerFixture(n, 129, 200, 24, dtype, p, mode, true, seed)) {
            LayerFixture.Outputs want = f.run(cpu);
            Tensor x = heap(f.x);
            Tensor a = heap(f.a);
            Tensor b = heap(f.b);
            Tensor dy = heap(f.dy);
            Tensor u = heap(f.poisoned(DType.F32, n, f.r));
            Tensor y = heap(f.poisoned(dtype, n, f.dOut));
            Tensor dx = heap(f.poisoned(dtype, n, f.dIn));
            Tensor gA = heap(f.gradA0 != null ? f.gradA0 : f.poisoned(dtype, f.r, f.dIn));
            Tensor gB = heap(f.gradB0 != null ? f.gradB0 : f.poisoned(dtype, f.dOut, f.r));
            assertFalse(x.readOnlySegment().isNative(), "the copies are heap tensors");
            try (FrozenWeight fw = cpu.prepare(heap(f.w), heap(f.bias))) {
                cpu.forward(f.params, fw, x, a, b, u, y);
                cpu.backward(f.params, fw, x, a, b, u, dy, dx, gA, gB);
            }
            String ctx = f.describe() + ", heap tensors";
            Compare.bitEqual("Y", y, want.y(), ctx);
            Compare.bitEqual("U", u, want.u(), ctx);
            Compare.bitEqual("dX", dx, want.dx(), ctx);
            Compare.bitEqual("dA", gA, want.gradA(), ctx);
            Compare.bitEqual("dB", gB, want.gradB(), ctx);
        }
    }

    /** A copy of {@code t} over a heap array of its element width (float[] for F32, short[] for BF16/F16). */
    static Tensor heap(Tensor t) {
        long n = t.numel();
        MemorySegment seg = t.dtype() == DType.F32 ? MemorySegment.ofArray(new float[Math.toIntExact(n)])
                : MemorySegment.ofArray(new short[Math.toIntExact(n)]);
        MemorySegment.copy(t.readOnlySegment(), 0, seg, 0, seg.byteSize());
        return Tensor.wrap(seg, t.dtype(), t.shape());
    }
}
