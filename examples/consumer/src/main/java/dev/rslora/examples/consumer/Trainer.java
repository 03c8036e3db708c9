package dev.rslora.examples.consumer;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.model.LoraModel;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.PeftConfig;
import dev.rslora.train.AdamW;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A 50-step rsLoRA fine-tune written against the public API only, with heap arrays: a frozen
 * 2-module model (q_proj, v_proj [64, 64]) learns a teacher whose weights differ by a rank-4 ΔW;
 * the adapter is saved as a PEFT folder, loaded back over the same weights, and must give the
 * same outputs. Exit status 0 only when the loss fell and the reload matches bit for bit.
 * Usage: Trainer OUTPUT_DIR
 */
public final class Trainer {
    private static final int D = 64;
    private static final int N = 128;

    private Trainer() {
    }

    public static void main(String[] args) throws Exception {
        Path out = Path.of(args.length > 0 ? args[0] : "adapter");
        SplittableRandom rng = new SplittableRandom(42);
        Map<String, float[][]> weights = new LinkedHashMap<>();
        Map<String, float[][]> teacher = new LinkedHashMap<>();
        for (String m : new String[] {"model.q_proj", "model.v_proj"}) {
            float[][] w = random(rng, D, D, 1 / Math.sqrt(D));
            float[][] u = random(rng, D, 4, 0.5);
            float[][] v = random(rng, 4, D, 0.5);
            float[][] t = new float[D][D];
            for (int o = 0; o < D; o++) {
                for (int i = 0; i < D; i++) {
                    double s = w[o][i];
                    for (int k = 0; k < 4; k++) {
                        s += u[o][k] * v[k][i];
                    }
                    t[o][i] = (float) s;
                }
            }
            weights.put(m + ".weight", w);
            teacher.put(m, t);
        }
        PeftConfig config = PeftConfig.builder().targetModules("q_proj", "v_proj").r(8).loraAlpha(16).useRslora(true)
                .loraDropout(0.05).build();
        Backend backend = Backends.get("auto");
        float[][] x = random(rng, N, D, 1);
        float[][] probe = random(rng, 4, D, 1);
        double first;
        double last = 0;
        Map<String, float[][]> expected = new LinkedHashMap<>();
        try (LoraModel model = LoraModel.wrapArrays(weights, config, backend, 7);
             AdamW opt = new AdamW(model.parameters(), AdamWConfig.torchDefaults().withLr(2e-2).withWeightDecay(0))) {
            first = step(model, teacher, x);
            opt.step();
            for (int s = 1; s < 50; s++) {
                last = step(model, teacher, x);
                opt.step();
            }
            model.train(false);
            for (String m : model.layers().keySet()) {
                expected.put(m, model.forward(m, probe));
            }
            model.save(out);
        }
        boolean same = true;
        try (LoraModel back = LoraModel.loadArrays(out, weights, backend, 7)) {
            back.train(false);
            for (String m : back.layers().keySet()) {
                float[][] y = back.forward(m, probe);
                for (int n = 0; n < y.length; n++) {
                    same &= Arrays.equals(expected.get(m)[n], y[n]);
                }
            }
            same &= back.config().equals(config);
        }
        boolean learned = last < 0.5 * first;
        String where = Trainer.class.getModule().isNamed() ? "module path (" + Trainer.class.getModule().getName() + ")" : "class path";
        System.out.printf("consumer [%s, backend %s]: loss %.5f -> %.5f in 50 AdamW steps; adapter saved to %s and reloaded: %s%n",
                where, backend.name(), first, last, out, same ? "identical outputs" : "OUTPUTS DIFFER");
        if (!learned || !same) {
            System.out.println("consumer: FAILED (" + (learned ? "" : "loss did not halve; ") + (same ? "" : "reload differs") + ")");
            System.exit(1);
        }
    }

    /** One forward/backward of both modules on MSE against the teacher; returns the mean loss. */
    private static double step(LoraModel model, Map<String, float[][]> teacher, float[][] x) {
        model.zeroGrad();
        double loss = 0;
        for (String m : model.layers().keySet()) {
            float[][] y = model.forward(m, x);
            float[][] t = teacher.get(m);
            float[][] dy = new float[N][D];
            for (int n = 0; n < N; n++) {
                for (int o = 0; o < D; o++) {
                    double target = 0;
                    for (int i = 0; i < D; i++) {
                        target += (double) x[n][i] * t[o][i];
                    }
                    double e = y[n][o] - target;
                    loss += e * e / (N * D);
                    dy[n][o] = (float) (2 * e / (N * D));
                }
            }
            model.backward(m, dy);
        }
        return loss / model.layers().size();
    }

    private static float[][] random(SplittableRandom rng, int rows, int cols, double scale) {
        float[][] a = new float[rows][cols];
        for (float[] row : a) {
            for (int i = 0; i < cols; i++) {
                row[i] = (float) (scale * rng.nextDouble(-1, 1));
            }
        }
        return a;
    }
}
