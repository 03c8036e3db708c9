package dev.rslora.model;

import dev.rslora.backend.Backends;
import dev.rslora.backend.GradMode;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.PeftConfig;
import dev.rslora.train.Adafactor;
import dev.rslora.train.AdamW;
import dev.rslora.train.LrSchedule;
import dev.rslora.train.Optimizer;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A trainer's run, written against the public API only, as a user would: a frozen 3-layer tanh network
 * (16 → 32 → 32 → 4, random W and bias) with an rsLoRA adapter on every layer (r 4, α 8, dropout 0.1) learns a teacher
 * whose weights differ by a rank-1 change; MSE, two micro-batches of 16 and 11 rows accumulated per step, gradient
 * clipping at 1, a linear schedule with warmup, AdamW or Adafactor. Checked: the loss falls; the same seed gives the
 * same run bit for bit; cpu and reference agree to fp32 rounding; an eval pass and a reference pass (adapters
 * disabled) between steps change nothing; a run stopped halfway and resumed from its files alone (the adapter
 * folder, the optimizer's state file and the model's dropout-steps file) in fresh objects ends bit for bit where the
 * uninterrupted run ends, a resume without the dropout steps does not, and the saved adapter loads back with the
 * same eval outputs.
 */
class TrainingJourneyTest {
    private static final String[] MODULES = {"net.0.fc", "net.1.fc", "net.2.fc"};
    private static final int[][] SHAPES = {{32, 16}, {32, 32}, {4, 32}};
    private static final int STEPS = 60;

    @TempDir
    Path dir;

    private static float[][] gaussian(SplittableRandom rng, int rows, int cols, double scale) {
        float[][] a = new float[rows][cols];
        for (float[] row : a) {
            for (int j = 0; j < cols; j++) {
                row[j] = (float) (scale * rng.nextGaussian());
            }
        }
        return a;
    }

    /** The frozen weights ("net.i.fc.weight", ".bias" as float[1][d_out]); with {@code teacher}, W plus a rank-1 change. */
    private static Map<String, float[][]> weights(boolean teacher) {
        SplittableRandom rng = new SplittableRandom(1);
        SplittableRandom change = new SplittableRandom(2);
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (int i = 0; i < MODULES.length; i++) {
            int dOut = SHAPES[i][0];
            int dIn = SHAPES[i][1];
            float[][] m = gaussian(rng, dOut, dIn, 1 / Math.sqrt(dIn));
            if (teacher) {
                float[][] u = gaussian(change, dOut, 1, 0.5);
                float[][] v = gaussian(change, 1, dIn, 1 / Math.sqrt(dIn));
                for (int o = 0; o < dOut; o++) {
                    for (int j = 0; j < dIn; j++) {
                        m[o][j] += u[o][0] * v[0][j];
                    }
                }
            }
            w.put(MODULES[i] + ".weight", m);
            w.put(MODULES[i] + ".bias", gaussian(rng, 1, dOut, 0.1));
        }
        return w;
    }

    private static final Map<String, float[][]> BASE = weights(false);
    private static final Map<String, float[][]> TEACHER = weights(true);

    private static float[][] teacher(float[][] x) {
        float[][] h = x;
        for (int i = 0; i < MODULES.length; i++) {
            float[][] w = TEACHER.get(MODULES[i] + ".weight");
            float[] b = TEACHER.get(MODULES[i] + ".bias")[0];
            float[][] y = new float[h.length][w.length];
            for (int n = 0; n < h.length; n++) {
                for (int o = 0; o < w.length; o++) {
                    double s = b[o];
                    for (int j = 0; j < w[o].length; j++) {
                        s += (double) h[n][j] * w[o][j];
                    }
                    y[n][o] = (float) (i < MODULES.length - 1 ? Math.tanh(s) : s);
                }
            }
            h = y;
        }
        return h;
    }

    /** Forward and backward of one micro-batch through the model; returns its MSE (dY scaled by 1/micros). */
    private static double microBatch(LoraModel model, float[][] x, int micros) {
        List<float[][]> hidden = new ArrayList<>();
        float[][] h = x;
        for (int i = 0; i < MODULES.length; i++) {
            h = model.forward(MODULES[i], h);
            if (i < MODULES.length - 1) {
                for (float[] row : h) {
                    for (int j = 0; j < row.length; j++) {
                        row[j] = (float) Math.tanh(row[j]);
                    }
                }
            }
            hidden.add(h);
        }
        float[][] target = teacher(x);
        int n = x.length;
        int d = h[0].length;
        double loss = 0;
        float[][] dy = new float[n][d];
        for (int a = 0; a < n; a++) {
            for (int o = 0; o < d; o++) {
                double e = h[a][o] - target[a][o];
                loss += e * e / (n * d);
                dy[a][o] = (float) (2 * e / (n * d) / micros);
            }
        }
        for (int i = MODULES.length - 1; i >= 0; i--) {
            float[][] dx = model.backward(MODULES[i], dy);
            if (i > 0) {
                float[][] t = hidden.get(i - 1);
                for (int a = 0; a < n; a++) {
                    for (int j = 0; j < dx[a].length; j++) {
                        dx[a][j] *= 1 - t[a][j] * t[a][j];
                    }
                }
            }
            dy = dx;
        }
        return loss;
    }

    /** The fixed data: micro-batches of 16 and 11 rows per step. */
    private static final float[][][] BATCHES = batches();

    private static float[][][] batches() {
        SplittableRandom rng = new SplittableRandom(5);
        float[][][] b = new float[2 * STEPS][][];
        for (int i = 0; i < b.length; i++) {
            b[i] = gaussian(rng, i % 2 == 0 ? 16 : 11, 16, 1);
        }
        return b;
    }

    private static final float[][] PROBE = gaussian(new SplittableRandom(9), 7, 16, 1);

    /** The training state of a run in progress. */
    private record Trainer(LoraModel model, Optimizer opt) implements AutoCloseable {
        @Override
        public void close() {
            opt.close();
            model.close();
        }
    }

    private static Optimizer optimizer(String kind, LoraModel model) {
        return kind.equals("adamw") ? new AdamW(model.parameters(), AdamWConfig.torchDefaults())
                : new Adafactor(model.parameters(), AdafactorConfig.trainer(1e-2).withBeta1(0.9));
    }

    private static Trainer start(String kind, String backend) {
        PeftConfig config = PeftConfig.builder().targetModules("fc").r(4).loraAlpha(8).useRslora(true).loraDropout(0.1).build();
        LoraModel model = LoraModel.wrapArrays(BASE, config, Backends.get(backend), 3);
        model.setGradMode(GradMode.ACCUMULATE);
        return new Trainer(model, optimizer(kind, model));
    }

    private static final LrSchedule SCHEDULE = LrSchedule.linear(1e-2, 6, STEPS);

    /** Steps [from, to): returns each step's loss; with {@code detours}, an eval pass and a reference pass before every third step. */
    private static double[] train(Trainer t, int from, int to, boolean detours) {
        double[] losses = new double[to - from];
        for (int s = from; s < to; s++) {
            if (detours && s % 3 == 0) {
                t.model.train(false);
                microBatch(t.model, PROBE, 1);
                t.model.train(true);
                try (var off = t.model.disableAdapters()) {
                    microBatch(t.model, BATCHES[2 * s], 1);
                }
            }
            t.model.zeroGrad();
            double loss = microBatch(t.model, BATCHES[2 * s], 2) / 2 + microBatch(t.model, BATCHES[2 * s + 1], 2) / 2;
            t.opt.clipGradNorm(1.0);
            SCHEDULE.apply(t.opt);
            t.opt.step();
            losses[s - from] = loss;
        }
        return losses;
    }

    private static Map<String, float[]> parameters(Trainer t) {
        Map<String, float[]> p = new LinkedHashMap<>();
        t.opt.parameters().forEach(q -> p.put(q.name(), q.value().toFloatArray()));
        return p;
    }

    private static double mean(double[] a, int from, int to) {
        double s = 0;
        for (int i = from; i < to; i++) {
            s += a[i];
        }
        return s / (to - from);
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw", "adafactor"})
    void aRunLearnsIsReproducibleAgreesAcrossBackendsAndResumesExactly(String kind) throws Exception {
        double[] losses;
        Map<String, float[]> params;
        try (Trainer t = start(kind, "cpu")) {
            losses = train(t, 0, STEPS, false);
            params = parameters(t);
        }
        assertTrue(mean(losses, STEPS - 10, STEPS) < 0.7 * mean(losses, 0, 10),
                "loss " + mean(losses, 0, 10) + " -> " + mean(losses, STEPS - 10, STEPS));

        try (Trainer t = start(kind, "cpu")) {
            assertArrayEquals(losses, train(t, 0, STEPS, true), "same seed and data, with eval and reference passes between steps");
            parameters(t).forEach((name, v) -> assertArrayEquals(params.get(name), v, name));
        }

        try (Trainer t = start(kind, "reference")) {
            double[] ref = train(t, 0, STEPS, false);
            for (int s = 0; s < STEPS; s++) {
                assertEquals(ref[s], losses[s], 1e-5 * ref[s], "step " + s);
            }
            parameters(t).forEach((name, v) -> assertArrayEquals(v, params.get(name), 1e-5f, name));
        }

        Path adapter = dir.resolve("adapter");
        Map<String, float[][]> eval = new LinkedHashMap<>();
        try (Trainer t = start(kind, "cpu")) {
            train(t, 0, STEPS / 2, false);
            t.model.save(adapter);
            t.model.saveDropoutSteps(adapter.resolve("dropout_steps.safetensors"));  // inside the folder: PEFT ignores it
            if (t.opt instanceof AdamW a) {
                a.save(dir.resolve("optimizer"));
            } else {
                ((Adafactor) t.opt).save(dir.resolve("optimizer"));
            }
            t.model.train(false);
            eval.put(MODULES[0], t.model.forward(MODULES[0], PROBE));
        }
        for (boolean restoreDropout : new boolean[] {true, false}) {
            try (Trainer t = resume(kind, adapter, restoreDropout)) {
                t.model.train(false);
                assertArrayEquals(eval.get(MODULES[0]), t.model.forward(MODULES[0], PROBE), "the saved adapter loads back exactly");
                t.model.train(true);
                double[] resumed = train(t, STEPS / 2, STEPS, false);
                if (restoreDropout) {
                    for (int s = STEPS / 2; s < STEPS; s++) {
                        assertEquals(losses[s], resumed[s - STEPS / 2], "resumed step " + s);
                    }
                    parameters(t).forEach((name, v) -> assertArrayEquals(params.get(name), v, name));
                } else {
                    assertNotEquals(losses[STEPS / 2], resumed[0], "without the dropout steps, step 0's masks are drawn again");
                }
            }
        }
    }

    /** A run resumed in fresh objects from the files alone: the adapter folder (with the dropout steps) and the optimizer's file. */
    private Trainer resume(String kind, Path adapter, boolean restoreDropout) throws Exception {
        LoraModel model = LoraModel.loadArrays(adapter, BASE, Backends.get("cpu"), 3);
        Trainer t = new Trainer(model, optimizer(kind, model));
        try {
            model.setGradMode(GradMode.ACCUMULATE);
            if (restoreDropout) {
                model.loadDropoutSteps(adapter.resolve("dropout_steps.safetensors"));
            }
            if (t.opt instanceof AdamW a) {
                a.load(dir.resolve("optimizer"));
            } else {
                ((Adafactor) t.opt).load(dir.resolve("optimizer"));
            }
            return t;
        } catch (Exception | Error e) {
            t.close();
            throw e;
        }
    }
}
