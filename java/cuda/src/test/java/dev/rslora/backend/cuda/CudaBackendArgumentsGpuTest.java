package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad arguments to {@link CudaBackend} called directly (not through LoraLinear, which refuses
 * aliased outputs itself): it runs {@code BackendChecks} as the reference and cpu backends do
 * (core's BackendArgumentsTest), so it refuses what they refuse, with their messages, before any
 * upload. It used to check shapes only: two outputs sharing memory were downloaded over each other
 * (silently wrong numbers), a BF16 U was rounded, a NaN γ merged into W, a null params threw a
 * NullPointerException. Skipped with the probe's reason where CUDA is unavailable.
 */
@Tag("gpu")
class CudaBackendArgumentsGpuTest {
    static final int R = 2;
    static final int D = 4;

    /** N = r and d_in = d_out = d: X, A, dX and dA share one shape, Y and dY too, so aliases pass the shape checks. */
    private static LoraParams params(boolean adapter) {
        return new LoraParams(R, D, D, R, 1.0, 0f, 0, 0, 0, true, adapter, GradMode.ASSIGN);
    }

    private static Tensor t(Arena arena, long... shape) {
        Tensor x = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < x.numel(); i++) {
            x.set(i, 0.1f * (i % 7) - 0.2f);
        }
        return x;
    }

    /** Another tensor over the first rows·cols floats of {@code t}'s memory. */
    private static Tensor view(Tensor t, long rows, long cols) {
        return Tensor.wrap(t.segment().asSlice(0, rows * cols * 4), DType.F32, rows, cols);
    }

    private static void refused(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @Test
    void prepareRefusesAnEmptyOrMisshapenWeight() {
        CudaBackend cuda = GpuSupport.backend();
        try (Arena arena = Arena.ofShared()) {
            refused("weight must be 2-D [d_out, d_in] with dims >= 1, got null", () -> cuda.prepare(null, null));
            refused("got [4]", () -> cuda.prepare(t(arena, 4), null));
            refused("got [0, 4]", () -> cuda.prepare(Tensor.allocate(arena, DType.F32, 0, 4), null));
            refused("bias shape [5] does not match weight [4, 4]", () -> cuda.prepare(t(arena, D, D), t(arena, 5)));
        }
    }

    /**
     * n past the kernels' row limit (65,535 tiles of 64 rows along gridDim.y): the host path uploaded X, A, B and
     * dY and failed at the launch, naming the grid; CudaLoraLayer already refused it at construction.
     */
    @Test
    void rowsPastTheGridLimitAreRefusedBeforeAnyUpload() {
        CudaBackend cuda = GpuSupport.backend();
        int n = LaunchGeometry.MAX_ROWS + 1;
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = cuda.prepare(t(arena, 1, 1), null)) {
            LoraParams p = new LoraParams(n, 1, 1, 1, 1.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
            Tensor x = Tensor.allocate(arena, DType.F32, n, 1);
            Tensor y = Tensor.allocate(arena, DType.F32, n, 1);
            Tensor u = Tensor.allocate(arena, DType.F32, n, 1);
            Tensor dy = Tensor.allocate(arena, DType.F32, n, 1);
            Tensor dx = Tensor.allocate(arena, DType.F32, n, 1);
            Tensor a = t(arena, 1, 1);
            Tensor b = t(arena, 1, 1);
            String limit = "n = " + n + " rows is more than the CUDA kernels take";
            refused(limit, () -> cuda.forward(p, fw, x, a, b, u, y));
            refused(limit, () -> cuda.backward(p, fw, x, a, b, u, dy, dx, t(arena, 1, 1), t(arena, 1, 1)));
        }
    }

    @Test
    void forwardAndBackwardRefuseWhatTheContractRefuses() {
        CudaBackend cuda = GpuSupport.backend();
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = cuda.prepare(t(arena, D, D), null)) {
            LoraParams p = params(true);
            Tensor x = t(arena, R, D);
            Tensor a = t(arena, R, D);
            Tensor b = t(arena, D, R);
            Tensor u = t(arena, R, R);
            Tensor y = t(arena, R, D);
            Tensor dy = t(arena, R, D);
            Tensor dx = t(arena, R, D);
            Tensor gA = t(arena, R, D);
            Tensor gB = t(arena, D, R);
            refused("x shape [2, 5] must be [2, 4]", () -> cuda.forward(p, fw, t(arena, R, 5), a, b, u, y));
            refused("u must be F32 [2, 2], got BF16", () -> cuda.forward(p, fw, x, a, b, Tensor.allocate(arena, DType.BF16, R, R), y));
            refused("u must be F32 [2, 2], got F16",
                    () -> cuda.backward(p, fw, x, a, b, Tensor.allocate(arena, DType.F16, R, R), dy, dx, gA, gB));
            refused("u (the U = D(X)·Aᵀ saved by forward) is required", () -> cuda.backward(p, fw, x, a, b, null, dy, dx, gA, gB));
            refused("params are null", () -> cuda.forward(null, fw, x, a, b, u, y));
            refused("params are null", () -> cuda.backward(null, fw, x, a, b, u, dy, dx, gA, gB));
            refused("params say d_out=4, d_in=5",
                    () -> cuda.forward(new LoraParams(R, 5, D, R, 1.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN), fw,
                            t(arena, R, 5), t(arena, R, 5), b, u, y));
        }
    }

    /** The silent case: two outputs over one buffer, each download overwriting the other's. */
    @Test
    void outputsThatShareMemoryAreRefusedBeforeAnyWork() {
        CudaBackend cuda = GpuSupport.backend();
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = cuda.prepare(t(arena, D, D), null)) {
            LoraParams p = params(true);
            Tensor x = t(arena, R, D);
            Tensor a = t(arena, R, D);
            Tensor b = t(arena, D, R);
            Tensor u = t(arena, R, R);
            Tensor y = t(arena, R, D);
            Tensor dy = t(arena, R, D);
            Tensor dx = t(arena, R, D);
            Tensor gA = t(arena, R, D);
            Tensor gB = t(arena, D, R);
            float[] yBefore = y.toFloatArray();
            refused("y [2, 4] shares memory with u [2, 2]", () -> cuda.forward(p, fw, x, a, b, view(y, R, R), y));
            assertArrayEquals(yBefore, y.toFloatArray(), "a refused forward leaves Y alone");
            float[] gABefore = gA.toFloatArray();
            refused("dx [2, 4] shares memory with gradA [2, 4]", () -> cuda.backward(p, fw, x, a, b, u, dy, gA, gA, gB));
            refused("gradA [2, 4] shares memory with gradB [4, 2]", () -> cuda.backward(p, fw, x, a, b, u, dy, dx, gA, view(gA, D, R)));
            assertArrayEquals(gABefore, gA.toFloatArray(), "a refused backward leaves dA alone");
            // an output over an input is refused as by the other backends, although staging would survive it
            refused("y [2, 4] shares memory with x [2, 4]", () -> cuda.forward(p, fw, x, a, b, u, x));
            refused("gradA [2, 4] shares memory with a [2, 4]", () -> cuda.backward(p, fw, x, a, b, u, dy, dx, a, gB));
            refused("dx [2, 4] shares memory with dy [2, 4]", () -> cuda.backward(p, fw, x, a, b, u, dy, dy, gA, gB));
            // the base path alone (adapter inactive) is checked too
            LoraParams base = params(false);
            refused("y [2, 4] shares memory with x", () -> cuda.forward(base, fw, x, null, null, null, x));
            refused("dx [2, 4] shares memory with dy", () -> cuda.backward(base, fw, x, null, null, null, dy, dy, null, null));
            // inputs may share memory with each other: X = A is read-only use
            cuda.forward(p, fw, a, a, b, u, y);
            cuda.backward(p, fw, a, a, b, u, dy, dx, gA, gB);
        }
    }

    @Test
    void mergeRefusesANonFiniteGammaAndAnAdapterOverW() {
        CudaBackend cuda = GpuSupport.backend();
        try (Arena arena = Arena.ofShared()) {
            Tensor w = t(arena, D, D);
            float[] before = w.toFloatArray();
            try (FrozenWeight fw = cuda.prepare(w, null)) {
                Tensor a = t(arena, R, D);
                Tensor b = t(arena, D, R);
                refused("sign must be +1 (merge) or -1 (unmerge), got 0", () -> cuda.merge(fw, a, b, 1.0, 0));
                refused("gamma=NaN", () -> cuda.merge(fw, a, b, Double.NaN, 1));
                refused("gamma=1.0E39", () -> cuda.merge(fw, a, b, 1e39, 1));
                refused("a must be [r, 4], got [2, 3]", () -> cuda.merge(fw, t(arena, R, 3), b, 1.0, 1));
                refused("b shape [4, 3] must be [4, 2]", () -> cuda.merge(fw, a, t(arena, D, 3), 1.0, 1));
                refused("weight [4, 4] shares memory with a [2, 4]", () -> cuda.merge(fw, view(w, R, D), b, 1.0, 1));
            }
            assertArrayEquals(before, w.toFloatArray(), "a refused merge leaves W alone");
        }
    }
}
