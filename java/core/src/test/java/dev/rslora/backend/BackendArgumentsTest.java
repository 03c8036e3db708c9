package dev.rslora.backend;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad arguments to the {@link Backend} contract, called directly (not through LoraLinear): every
 * host backend refuses them before any work with an IllegalArgumentException naming the argument,
 * instead of reading past a row, throwing an IndexOutOfBoundsException from deep inside, or
 * silently computing with an output that aliases an input.
 */
class BackendArgumentsTest {
    static final int N = 3;
    static final int D_IN = 4;
    static final int D_OUT = 6;
    static final int R = 2;

    static Stream<String> backends() {
        return Stream.of("reference", "cpu");
    }

    private static Backend backend(String name) {
        var a = Backends.probeAll().get(name);
        Assumptions.assumeTrue(a.available(), () -> "backend " + name + " unavailable: " + a.detail());
        return Backends.get(name);
    }

    private static LoraParams params(int n, int dIn, int dOut, int r) {
        return new LoraParams(n, dIn, dOut, r, 1.0, 0f, 0, 0, 0, true, true, GradMode.ASSIGN);
    }

    private static Tensor t(Arena arena, long... shape) {
        Tensor x = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < x.numel(); i++) {
            x.set(i, 0.1f * (i % 7) - 0.2f);
        }
        return x;
    }

    private static void refused(String fragment, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(fragment), () -> "message '" + e.getMessage() + "' lacks '" + fragment + "'");
    }

    @ParameterizedTest
    @MethodSource("backends")
    void prepareRefusesABadWeightOrBias(String name) {
        Backend be = backend(name);
        try (Arena arena = Arena.ofShared()) {
            refused("weight must be 2-D", () -> be.prepare(null, null));
            refused("got [4]", () -> be.prepare(t(arena, 4), null));
            refused("got [0, 4]", () -> be.prepare(t(arena, 0, 4), null));
            refused("bias shape [5]", () -> be.prepare(t(arena, D_OUT, D_IN), t(arena, 5)));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void forwardRefusesTensorsOfTheWrongShape(String name) {
        Backend be = backend(name);
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = be.prepare(t(arena, D_OUT, D_IN), null)) {
            LoraParams p = params(N, D_IN, D_OUT, R);
            Tensor x = t(arena, N, D_IN);
            Tensor a = t(arena, R, D_IN);
            Tensor b = t(arena, D_OUT, R);
            Tensor u = t(arena, N, R);
            Tensor y = t(arena, N, D_OUT);
            refused("x shape [3, 5] must be [3, 4]", () -> be.forward(p, fw, t(arena, N, 5), a, b, u, y));
            refused("x shape [2, 4] must be [3, 4]", () -> be.forward(p, fw, t(arena, 2, D_IN), a, b, u, y));
            refused("y shape [2, 6] must be [3, 6]", () -> be.forward(p, fw, x, a, b, u, t(arena, 2, D_OUT)));
            refused("y shape [4, 6] must be [3, 6]", () -> be.forward(p, fw, x, a, b, u, t(arena, 4, D_OUT)));
            refused("a shape [3, 4] must be [2, 4]", () -> be.forward(p, fw, x, t(arena, 3, D_IN), b, u, y));
            refused("b shape null", () -> be.forward(p, fw, x, a, null, u, y));
            refused("u must be F32", () -> be.forward(p, fw, x, a, b, Tensor.allocate(arena, DType.BF16, N, R), y));
            refused("params say d_out=6, d_in=5",
                    () -> be.forward(params(N, 5, D_OUT, R), fw, t(arena, N, 5), t(arena, R, 5), b, u, y));
            refused("params are null", () -> be.forward(null, fw, x, a, b, u, y));
            refused("prepared weight is null", () -> be.forward(p, null, x, a, b, u, y));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void backwardRefusesTensorsOfTheWrongShape(String name) {
        Backend be = backend(name);
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = be.prepare(t(arena, D_OUT, D_IN), null)) {
            LoraParams p = params(N, D_IN, D_OUT, R);
            Tensor x = t(arena, N, D_IN);
            Tensor a = t(arena, R, D_IN);
            Tensor b = t(arena, D_OUT, R);
            Tensor u = t(arena, N, R);
            Tensor dy = t(arena, N, D_OUT);
            Tensor dx = t(arena, N, D_IN);
            Tensor gA = t(arena, R, D_IN);
            Tensor gB = t(arena, D_OUT, R);
            refused("dy shape [3, 5] must be [3, 6]", () -> be.backward(p, fw, x, a, b, u, t(arena, N, 5), dx, gA, gB));
            refused("dx shape [2, 4] must be [3, 4]", () -> be.backward(p, fw, x, a, b, u, dy, t(arena, 2, D_IN), gA, gB));
            refused("gradA shape [2, 3] must be [2, 4]", () -> be.backward(p, fw, x, a, b, u, dy, dx, t(arena, R, 3), gB));
            refused("gradB shape null", () -> be.backward(p, fw, x, a, b, u, dy, dx, gA, null));
            refused("x shape null", () -> be.backward(p, fw, null, a, b, u, dy, dx, gA, gB));
        }
    }

    @ParameterizedTest
    @MethodSource("backends")
    void mergeRefusesBadShapesSignAndGamma(String name) {
        Backend be = backend(name);
        try (Arena arena = Arena.ofShared()) {
            Tensor w = t(arena, D_OUT, D_IN);
            float[] before = w.toFloatArray();
            try (FrozenWeight fw = be.prepare(w, null)) {
                Tensor a = t(arena, R, D_IN);
                Tensor b = t(arena, D_OUT, R);
                refused("sign must be +1 (merge) or -1 (unmerge), got 2", () -> be.merge(fw, a, b, 1.0, 2));
                refused("got 0", () -> be.merge(fw, a, b, 1.0, 0));
                refused("a must be [r, 4], got [2, 3]", () -> be.merge(fw, t(arena, R, 3), b, 1.0, 1));
                refused("b shape [6, 3] must be [6, 2]", () -> be.merge(fw, a, t(arena, D_OUT, 3), 1.0, 1));
                refused("gamma=NaN", () -> be.merge(fw, a, b, Double.NaN, 1));
                refused("gamma=Infinity", () -> be.merge(fw, a, b, Double.POSITIVE_INFINITY, 1));
                refused("gamma=1.0E39", () -> be.merge(fw, a, b, 1e39, 1));
                refused("weight [6, 4] shares memory with a", () -> be.merge(fw, Tensor.wrap(w.segment().asSlice(0, (long) R * D_IN * 4),
                        DType.F32, R, D_IN), b, 1.0, 1));
            }
            assertArrayEquals(before, w.toFloatArray(), "a refused merge leaves W alone");
        }
    }

    @Test
    void paramsRefuseAGammaOutsideFp32() {
        refused("gamma=NaN", () -> new LoraParams(1, 1, 1, 1, Double.NaN, 0f, 0, 0, 0, true, true, GradMode.ASSIGN));
        refused("gamma=-Infinity",
                () -> new LoraParams(1, 1, 1, 1, Double.NEGATIVE_INFINITY, 0f, 0, 0, 0, true, true, GradMode.ASSIGN));
        refused("gamma=1.0E39", () -> new LoraParams(1, 1, 1, 1, 1e39, 0f, 0, 0, 0, true, true, GradMode.ASSIGN));
    }

    /** d_in = d_out so that X, Y, dY and dX all have one shape: aliases would otherwise pass the shape checks. */
    @ParameterizedTest
    @MethodSource("backends")
    void outputsThatAliasAnInputOrAnotherOutputAreRefused(String name) {
        Backend be = backend(name);
        int d = 4;
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = be.prepare(t(arena, d, d), null)) {
            LoraParams p = params(R, d, d, R);  // n = r, so dX [n, d] has A's and dA's shape too
            Tensor x = t(arena, R, d);
            Tensor a = t(arena, R, d);
            Tensor b = t(arena, d, R);
            Tensor u = t(arena, R, R);
            Tensor y = t(arena, R, d);
            Tensor dy = t(arena, R, d);
            Tensor dx = t(arena, R, d);
            Tensor gA = t(arena, R, d);
            Tensor gB = t(arena, d, R);
            float[] xBefore = x.toFloatArray();
            refused("y [2, 4] shares memory with x [2, 4]", () -> be.forward(p, fw, x, a, b, u, x));
            Tensor xView = Tensor.wrap(x.segment(), DType.F32, R, d);  // another tensor over X's memory
            refused("y [2, 4] shares memory with x", () -> be.forward(p, fw, x, a, b, u, xView));
            refused("y [2, 4] shares memory with a", () -> be.forward(p, fw, x, a, b, u, a));
            refused("u [2, 2] shares memory with b", () -> be.forward(p, fw, x, a, b,
                    Tensor.wrap(b.segment().asSlice(0, (long) R * R * 4), DType.F32, R, R), y));
            assertArrayEquals(xBefore, x.toFloatArray(), "a refused forward leaves X alone");
            refused("dx [2, 4] shares memory with dy", () -> be.backward(p, fw, x, a, b, u, dy, dy, gA, gB));
            refused("dx [2, 4] shares memory with x", () -> be.backward(p, fw, x, a, b, u, dy, x, gA, gB));
            refused("dx [2, 4] shares memory with gradA", () -> be.backward(p, fw, x, a, b, u, dy, gA, gA, gB));
            refused("gradA [2, 4] shares memory with a", () -> be.backward(p, fw, x, a, b, u, dy, dx, a, gB));
            refused("gradA [2, 4] shares memory with x", () -> be.backward(p, fw, x, a, b, u, dy, dx, x, gB));
            refused("gradB [4, 2] shares memory with b", () -> be.backward(p, fw, x, a, b, u, dy, dx, gA, b));
            // the base path alone (adapter inactive) is checked too
            LoraParams base = new LoraParams(R, d, d, R, 1.0, 0f, 0, 0, 0, true, false, GradMode.ASSIGN);
            refused("y [2, 4] shares memory with x", () -> be.forward(base, fw, x, null, null, null, x));
            refused("dx [2, 4] shares memory with dy", () -> be.backward(base, fw, x, null, null, null, dy, dy, null, null));
            // inputs may share memory with each other: X = A is read-only use
            be.forward(p, fw, a, a, b, u, y);
            be.backward(p, fw, x, a, b, u, dy, dx, gA, gB);
        }
    }
    /**
     * An output over read-only memory (a memory-mapped safetensors tensor, a {@code wrap} of a
     * read-only segment) is refused up front, naming it. Before, the write failed deep inside the
     * call with the JDK's "Attempt to write a read-only segment", naming nothing, after other
     * outputs were written: the cpu backward had already accumulated dA (and written dX) when its
     * read-only dB refused the first store, so a retry with a writable dB counted dA twice.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void outputsOverReadOnlyMemoryAreRefusedBeforeAnyWork(String name) {
        Backend be = backend(name);
        int n = 40;  // the cpu backend's row path: dX, then dA, then dB
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = be.prepare(t(arena, D_OUT, D_IN), null)) {
            LoraParams p = new LoraParams(n, D_IN, D_OUT, R, 1.0, 0f, 0, 0, 0, true, true, GradMode.ACCUMULATE);
            Tensor x = t(arena, n, D_IN);
            Tensor a = t(arena, R, D_IN);
            Tensor b = t(arena, D_OUT, R);
            Tensor u = t(arena, n, R);
            Tensor y = t(arena, n, D_OUT);
            Tensor dy = t(arena, n, D_OUT);
            Tensor dx = t(arena, n, D_IN);
            Tensor gA = t(arena, R, D_IN);
            Tensor gB = t(arena, D_OUT, R);
            float[] uBefore = u.toFloatArray();
            refused("y [40, 6] is read-only", () -> be.forward(p, fw, x, a, b, u, readOnly(y)));
            assertArrayEquals(uBefore, u.toFloatArray(), "a refused forward leaves U alone");
            refused("u [40, 2] is read-only", () -> be.forward(p, fw, x, a, b, readOnly(u), y));
            float[] dxBefore = dx.toFloatArray();
            float[] gABefore = gA.toFloatArray();
            float[] gBBefore = gB.toFloatArray();
            refused("gradB [6, 2] is read-only", () -> be.backward(p, fw, x, a, b, u, dy, dx, gA, readOnly(gB)));
            refused("gradA [2, 4] is read-only", () -> be.backward(p, fw, x, a, b, u, dy, dx, readOnly(gA), gB));
            refused("dx [40, 4] is read-only", () -> be.backward(p, fw, x, a, b, u, dy, readOnly(dx), gA, gB));
            assertArrayEquals(dxBefore, dx.toFloatArray(), "a refused backward leaves dX alone");
            assertArrayEquals(gABefore, gA.toFloatArray(), "a refused backward leaves dA alone (accumulate)");
            assertArrayEquals(gBBefore, gB.toFloatArray(), "a refused backward leaves dB alone (accumulate)");
            try (FrozenWeight ro = be.prepare(readOnly(t(arena, D_OUT, D_IN)), null)) {
                refused("weight [6, 4] is read-only", () -> be.merge(ro, a, b, 1.0, 1));
                // the weight is only read by forward and backward: a read-only W is fine there
                be.forward(p, ro, x, a, b, u, y);
                be.backward(p, ro, x, a, b, u, dy, dx, gA, gB);
            }
        }
    }

    /**
     * A tensor whose arena is closed, or confined to another thread, is refused up front, naming
     * it. Before, the first access failed inside the call ("Already closed", "Attempted access
     * outside owning thread", naming nothing) after other outputs were written: the cpu backward
     * with such a dB had written dX and accumulated dA, so each retry added dA again.
     */
    @ParameterizedTest
    @MethodSource("backends")
    void tensorsOfAClosedOrAnotherThreadsArenaAreRefusedBeforeAnyWork(String name) throws Exception {
        Backend be = backend(name);
        int n = 40;
        try (Arena arena = Arena.ofShared(); FrozenWeight fw = be.prepare(t(arena, D_OUT, D_IN), null)) {
            LoraParams p = new LoraParams(n, D_IN, D_OUT, R, 1.0, 0f, 0, 0, 0, true, true, GradMode.ACCUMULATE);
            Tensor x = t(arena, n, D_IN);
            Tensor a = t(arena, R, D_IN);
            Tensor b = t(arena, D_OUT, R);
            Tensor u = t(arena, n, R);
            Tensor y = t(arena, n, D_OUT);
            Tensor dy = t(arena, n, D_OUT);
            Tensor dx = t(arena, n, D_IN);
            Tensor gA = t(arena, R, D_IN);
            Tensor gB = t(arena, D_OUT, R);
            Arena gone = Arena.ofShared();
            Tensor closed = Tensor.allocate(gone, DType.F32, D_OUT, R);
            Tensor closedX = Tensor.allocate(gone, DType.F32, n, D_IN);
            gone.close();
            Tensor[] foreign = new Tensor[1];
            Thread owner = new Thread(() -> foreign[0] = Tensor.allocate(Arena.ofConfined(), DType.F32, D_OUT, R));
            owner.start();
            owner.join();
            float[] dxBefore = dx.toFloatArray();
            float[] gABefore = gA.toFloatArray();
            refused("gradB [6, 2]: its arena is closed", () -> be.backward(p, fw, x, a, b, u, dy, dx, gA, closed));
            refused("gradB [6, 2]: its memory is confined to another thread",
                    () -> be.backward(p, fw, x, a, b, u, dy, dx, gA, foreign[0]));
            refused("x [40, 4]: its arena is closed", () -> be.backward(p, fw, closedX, a, b, u, dy, dx, gA, gB));
            assertArrayEquals(dxBefore, dx.toFloatArray(), "a refused backward leaves dX alone");
            assertArrayEquals(gABefore, gA.toFloatArray(), "a refused backward leaves dA alone (accumulate)");
            refused("b [6, 2]: its arena is closed", () -> be.forward(p, fw, x, a, closed, u, y));
            refused("b [6, 2]: its arena is closed", () -> be.merge(fw, a, closed, 1.0, 1));
            refused("weight [6, 2]: its arena is closed", () -> be.prepare(closed, null));
        }
    }

    /** Another tensor over the same memory, read-only (as a memory-mapped file's tensors are). */
    private static Tensor readOnly(Tensor t) {
        return Tensor.wrap(t.readOnlySegment(), t.dtype(), t.shape());
    }
}
