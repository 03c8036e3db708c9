package dev.rslora.backend.cpu;

import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.DType;

/**
 * A deliberately naive same-precision layer, as an eager framework computes it in bf16/fp16:
 * every matmul accumulates in fp32 and rounds its result to the dtype, and so does every
 * elementwise step (dropout, ·γ, the sums of the base and LoRA paths, the gradient accumulation).
 * <pre>
 *   Xd = rnd(D(X));  U = rnd(Xd·Aᵀ);  L = rnd(rnd(U·Bᵀ)·γ);  Y = rnd(rnd(X·Wᵀ + b) + L)
 *   G = rnd(dY·γ);   V = rnd(G·B);    dB = rnd(Gᵀ·U);  dA = rnd(Vᵀ·Xd)
 *   dX = rnd(rnd(dY·W) + rnd(D'(rnd(V·A))));   accumulate: rnd(old + new)
 * </pre>
 * SPEC.md §7: the cpu backend's max error against the oracle must be at most twice this one's.
 */
final class NaiveLayer {
    final float[] y;
    final float[] dx;
    final float[] gradA;
    final float[] gradB;

    NaiveLayer(LayerFixture f) {
        DType t = f.dtype;
        int n = f.n;
        int dIn = f.dIn;
        int dOut = f.dOut;
        int r = f.r;
        float gamma = (float) f.params.gamma();
        float[] x = f.x.toFloatArray();
        float[] w = f.w.toFloatArray();
        float[] bias = f.bias == null ? new float[dOut] : f.bias.toFloatArray();
        float[] a = f.a.toFloatArray();
        float[] b = f.b.toFloatArray();
        float[] dy = f.dy.toFloatArray();
        DropoutMask mask = f.params.mask();

        float[] xd = new float[n * dIn];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < dIn; k++) {
                float v = x[i * dIn + k];
                xd[i * dIn + k] = mask == null ? v : (mask.keep(i, k) ? t.round(v * mask.scale()) : 0f);
            }
        }
        float[] u = new float[n * r];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r; j++) {
                float s = 0;
                for (int k = 0; k < dIn; k++) {
                    s += xd[i * dIn + k] * a[j * dIn + k];
                }
                u[i * r + j] = t.round(s);
            }
        }
        y = new float[n * dOut];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < dOut; o++) {
                float base = 0;
                for (int k = 0; k < dIn; k++) {
                    base += x[i * dIn + k] * w[o * dIn + k];
                }
                base = t.round(base + bias[o]);
                float l = 0;
                for (int j = 0; j < r; j++) {
                    l += u[i * r + j] * b[o * r + j];
                }
                l = t.round(t.round(l) * gamma);
                y[i * dOut + o] = t.round(base + l);
            }
        }
        float[] g = new float[n * dOut];
        for (int i = 0; i < n * dOut; i++) {
            g[i] = t.round(dy[i] * gamma);
        }
        float[] v = new float[n * r];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r; j++) {
                float s = 0;
                for (int o = 0; o < dOut; o++) {
                    s += g[i * dOut + o] * b[o * r + j];
                }
                v[i * r + j] = t.round(s);
            }
        }
        boolean acc = f.params.gradMode() == GradMode.ACCUMULATE;
        float[] oldB = acc ? f.gradB0.toFloatArray() : null;
        float[] oldA = acc ? f.gradA0.toFloatArray() : null;
        gradB = new float[dOut * r];
        for (int o = 0; o < dOut; o++) {
            for (int j = 0; j < r; j++) {
                float s = 0;
                for (int i = 0; i < n; i++) {
                    s += g[i * dOut + o] * u[i * r + j];
                }
                s = t.round(s);
                gradB[o * r + j] = acc ? t.round(oldB[o * r + j] + s) : s;
            }
        }
        gradA = new float[r * dIn];
        for (int j = 0; j < r; j++) {
            for (int k = 0; k < dIn; k++) {
                float s = 0;
                for (int i = 0; i < n; i++) {
                    s += v[i * r + j] * xd[i * dIn + k];
                }
                s = t.round(s);
                gradA[j * dIn + k] = acc ? t.round(oldA[j * dIn + k] + s) : s;
            }
        }
        dx = new float[n * dIn];
        for (int i = 0; i < n; i++) {
            for (int k = 0; k < dIn; k++) {
                float base = 0;
                for (int o = 0; o < dOut; o++) {
                    base += dy[i * dOut + o] * w[o * dIn + k];
                }
                float l = 0;
                for (int j = 0; j < r; j++) {
                    l += v[i * r + j] * a[j * dIn + k];
                }
                l = t.round(l);
                if (mask != null) {
                    l = mask.keep(i, k) ? t.round(l * mask.scale()) : 0f;
                }
                dx[i * dIn + k] = t.round(t.round(base) + l);
            }
        }
    }
}
