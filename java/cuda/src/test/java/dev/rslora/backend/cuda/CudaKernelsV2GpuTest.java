package dev.rslora.backend.cuda;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * The opt-in version-2 (tensor-core) forward and dX kernels against the reference. v2 stages the
 * f32 LoRA operands (γ·U, B, V, A) as bf16/fp16, so its bound adds 4·u_T·γ·Σ_j |U_ij·B_oj| (Y) and
 * 4·u_T·γ·scale·Σ_j |V_ij·A_jc| (dX) to the v1 tolerance; dA and dB come from the v1 kernels.
 */
@Tag("gpu")
class CudaKernelsV2GpuTest {
    private static CudaBackend v2;

    static synchronized CudaBackend v2() {
        CudaBackend base = GpuSupport.backend();
        if (v2 == null) {
            v2 = new CudaBackend(base.context(), 256L << 20, 2);
            v2.setPoison(true);
        }
        return v2;
    }

    record Case(int n, int dIn, int dOut, int r, DType t, float p) {
        long seed() {
            return (((long) n * 131 + dIn) * 131 + dOut) * 131 + r + t.ordinal() * 17L + (p > 0 ? 1 : 0);
        }
    }

    static List<Case> cases() {
        List<Case> out = new ArrayList<>();
        int[][] shapes = {{1, 64, 96, 1}, {7, 33, 17, 8}, {127, 96, 64, 16}, {130, 200, 70, 64}, {65, 100, 1000, 3},
            {300, 64, 128, 256}};
        for (int[] s : shapes) {
            for (DType t : new DType[] {DType.BF16, DType.F16}) {
                for (float p : new float[] {0f, 0.1f}) {
                    out.add(new Case(s[0], s[1], s[2], s[3], t, p));
                }
            }
        }
        return out;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void tensorCoreGemmsMatchTheReference(Case c) {
        CudaBackend cuda = v2();
        ReferenceBackend ref = new ReferenceBackend();
        long seed = c.seed();
        SplittableRandom rnd = new SplittableRandom(seed);
        try (Arena arena = Arena.ofShared()) {
            Tensor x = Tensor.allocate(arena, c.t(), c.n(), c.dIn());
            Tensor w = Tensor.allocate(arena, c.t(), c.dOut(), c.dIn());
            Tensor bias = Tensor.allocate(arena, c.t(), c.dOut());
            Tensor a = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor b = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            Tensor dy = Tensor.allocate(arena, c.t(), c.n(), c.dOut());
            for (Tensor tt : new Tensor[] {x, w, bias, a, b, dy}) {
                GpuSupport.fill(tt, rnd, -1, 1);
            }
            double gamma = 16 / Math.sqrt(c.r());
            LoraParams p = new LoraParams(c.n(), c.dIn(), c.dOut(), c.r(), gamma, c.p(), seed, 2, 1, true, true, GradMode.ASSIGN);
            Tensor u = Tensor.allocate(arena, DType.F32, c.n(), c.r());
            Tensor y = Tensor.allocate(arena, c.t(), c.n(), c.dOut());
            Tensor dx = Tensor.allocate(arena, c.t(), c.n(), c.dIn());
            Tensor uRef = Tensor.allocate(arena, DType.F32, c.n(), c.r());
            Tensor yRef = Tensor.allocate(arena, c.t(), c.n(), c.dOut());
            Tensor dxRef = Tensor.allocate(arena, c.t(), c.n(), c.dIn());
            Tensor gA = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor gB = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            Tensor gARef = Tensor.allocate(arena, DType.F32, c.r(), c.dIn());
            Tensor gBRef = Tensor.allocate(arena, DType.F32, c.dOut(), c.r());
            y.fill(Float.NaN);
            dx.fill(Float.NaN);
            try (FrozenWeight fw = cuda.prepare(w, bias); FrozenWeight rw = ref.prepare(w, bias)) {
                cuda.forward(p, fw, x, a, b, u, y);
                ref.forward(p, rw, x, a, b, uRef, yRef);
                cuda.backward(p, fw, x, a, b, u, dy, dx, gA, gB);
                ref.backward(p, rw, x, a, b, uRef, dy, dxRef, gARef, gBRef);
            }
            double unit = c.t() == DType.BF16 ? 0x1p-8 : 0x1p-11;
            DropoutMask mask = p.mask();
            double[] yBound = new double[c.n() * c.dOut()];
            double[] dxBound = new double[c.n() * c.dIn()];
            for (int i = 0; i < c.n(); i++) {
                double[] v = new double[c.r()];
                for (int j = 0; j < c.r(); j++) {
                    double s = 0;
                    for (int o = 0; o < c.dOut(); o++) {
                        s += (double) dy.get(i, o) * b.get(o, j);
                    }
                    v[j] = s;
                }
                for (int o = 0; o < c.dOut(); o++) {
                    double s = 0;
                    for (int j = 0; j < c.r(); j++) {
                        s += Math.abs(uRef.get(i, j) * (double) b.get(o, j));
                    }
                    yBound[i * c.dOut() + o] = 4 * unit * gamma * s;
                }
                for (int k = 0; k < c.dIn(); k++) {
                    double s = 0;
                    for (int j = 0; j < c.r(); j++) {
                        s += Math.abs(v[j] * a.get(j, k));
                    }
                    dxBound[i * c.dIn() + k] = 4 * unit * gamma * (mask == null ? 1 : mask.scale()) * s;
                }
            }
            String ctx = c + " seed " + seed;
            check("Y", y, yRef, yBound, GpuSupport.rtol(c.t()), ctx);
            check("dX", dx, dxRef, dxBound, GpuSupport.rtol(c.t()), ctx);
            GpuSupport.assertClose("dA", gA, gARef, 1e-5, 1e-4, ctx);
            GpuSupport.assertClose("dB", gB, gBRef, 1e-5, 1e-4, ctx);
        }
    }

    private static void check(String what, Tensor got, Tensor ref, double[] extra, double rtol, String ctx) {
        double atol = 1e-5 * Math.max(GpuSupport.maxAbs(ref), 1e-30);
        for (int i = 0; i < extra.length; i++) {
            double g = got.get(i);
            double r = ref.get(i);
            double lim = atol + rtol * Math.abs(r) + extra[i];
            if (!(Math.abs(g - r) <= lim)) {
                fail(what + "[" + i + "]: got " + g + " ref " + r + " (bound " + lim + "), " + ctx);
            }
        }
    }
}
