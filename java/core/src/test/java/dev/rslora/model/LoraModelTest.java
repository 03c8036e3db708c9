package dev.rslora.model;

import dev.rslora.backend.Backend;
import dev.rslora.backend.ForwardingBackend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.RefusingRows;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.AdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The model-level adapter API over heap arrays and tensors, on the reference backend (the oracle). */
class LoraModelTest {
    @TempDir
    Path dir;

    private final Backend ref = new ReferenceBackend();

    /** A 2-layer attention-like state dict: q/k/v weights [d, d] with biases [1, d]. */
    private static Map<String, float[][]> weights(SplittableRandom rng, int d) {
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (int layer = 0; layer < 2; layer++) {
            for (String m : List.of("q_proj", "k_proj", "v_proj")) {
                String p = "model.layers." + layer + ".self_attn." + m;
                w.put(p + ".weight", random(rng, d, d, 1 / Math.sqrt(d)));
                w.put(p + ".bias", random(rng, 1, d, 0.1));
            }
        }
        return w;
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

    private static PeftConfig config(double dropout) {
        return PeftConfig.builder().targetModules("q_proj", "v_proj").r(8).loraAlpha(16).useRslora(true).loraDropout(dropout)
                .rankPattern(Map.of("layers\\.1\\.self_attn\\.v_proj", 4)).alphaPattern(Map.of("v_proj", 4.0)).build();
    }

    /** X·Wᵀ + b in double, the base model. */
    private static double[][] base(float[][] x, float[][] w, float[] b) {
        double[][] y = new double[x.length][w.length];
        for (int n = 0; n < x.length; n++) {
            for (int o = 0; o < w.length; o++) {
                double s = b[o];
                for (int i = 0; i < x[n].length; i++) {
                    s += (double) x[n][i] * w[o][i];
                }
                y[n][o] = s;
            }
        }
        return y;
    }

    @Test
    void wrapAdaptsTheTargetedModulesWithPerModuleRankAlphaGammaAndDropoutByPeftRules() {
        long seed = 0x10ad1L;
        try (LoraModel model = LoraModel.wrapArrays(weights(new SplittableRandom(seed), 12), config(0.1), ref, seed)) {
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                    "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"), List.copyOf(model.layers().keySet()));
            assertEquals(List.of("model.layers.0.self_attn.k_proj", "model.layers.1.self_attn.k_proj"), model.untargetedModules());
            LoraLinear q0 = model.layer("model.layers.0.self_attn.q_proj");
            LoraLinear v0 = model.layer("model.layers.0.self_attn.v_proj");
            LoraLinear v1 = model.layer("model.layers.1.self_attn.v_proj");
            assertEquals(8, q0.config().rank());
            assertEquals(16 / Math.sqrt(8), q0.gamma(), 1e-15, "rsLoRA γ = α/√r");
            assertEquals(8, v0.config().rank());
            assertEquals(4 / Math.sqrt(8), v0.gamma(), 1e-15, "alpha_pattern v_proj -> 4");
            assertEquals(4, v1.config().rank(), "rank_pattern layers.1 v_proj -> 4");
            assertEquals(4 / Math.sqrt(4), v1.gamma(), 1e-15);
            for (LoraLinear l : model.layers().values()) {
                assertEquals(0.1, l.config().dropout());
                assertEquals(Scaling.RSLORA, l.config().scaling());
                assertTrue(l.bias() != null, "the <path>.bias weight is the layer's bias");
            }
            assertEquals(2L * 8 * (12 + 12) + 8 * (12 + 12) + 4 * (12 + 12), model.trainableParameterCount());
            assertEquals(8, model.parameters().size());
            assertEquals("model.layers.0.self_attn.q_proj.lora_A.weight", model.parameters().get(0).name());
            String msg = assertThrows(IllegalArgumentException.class, () -> model.layer("model.layers.0.self_attn.k_proj")).getMessage();
            assertTrue(msg.contains("does not target"), msg);
        }
    }

    @Test
    void startsAsTheBaseModelAndDisablingTheAdaptersGivesTheBasePathExactly() {
        long seed = 0xd15aL;
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[][]> w = weights(rng, 10);
        String q = "model.layers.0.self_attn.q_proj";
        float[][] x = random(rng, 5, 10, 1);
        try (LoraModel model = LoraModel.wrapArrays(w, config(0.0), ref, seed)) {
            float[][] y0 = model.forward(q, x);
            double[][] expect = base(x, w.get(q + ".weight"), w.get(q + ".bias")[0]);
            for (int n = 0; n < 5; n++) {
                for (int o = 0; o < 10; o++) {
                    assertEquals(expect[n][o], y0[n][o], 1e-5, "seed " + seed + ": B = 0 at start, the base model");
                }
            }
            LoraLinear l = model.layer(q);
            l.loraB().copyFrom(random(rng, 10, 8, 1));            // "trained"
            float[][] adapted = model.forward(q, x);
            assertNotEquals(y0[0][0], adapted[0][0]);
            try (var off = model.disableAdapters()) {
                assertFalse(model.adaptersEnabled());
                float[][] yOff = model.forward(q, x);
                for (int n = 0; n < 5; n++) {
                    assertArrayEquals(y0[n], yOff[n], "seed " + seed + ": disabled = the base path, bit for bit");
                }
                model.zeroGrad();
                l.gradA().fill(7f);
                float[][] dx = model.backward(q, random(rng, 5, 10, 1));
                assertEquals(10, dx[0].length);
                assertArrayEquals(new float[l.gradA().toFloatArray().length], l.gradA().toFloatArray(), "no gradient for a disabled adapter");
            }
            assertTrue(model.adaptersEnabled(), "closing the scope restores the adapters");
            float[][] again = model.forward(q, x);
            for (int n = 0; n < 5; n++) {
                assertArrayEquals(adapted[n], again[n]);
            }
            model.setAdaptersEnabled(false);
            assertArrayEquals(y0[2], model.forward(q, x)[2]);
            model.setAdaptersEnabled(true);
        }
    }

    /** Mean squared error of every adapted module's output against a teacher whose q/v weights differ by a low-rank ΔW. */
    private static double step(LoraModel model, Map<String, float[][]> teacherW, Map<String, float[][]> biases, float[][] x, boolean update,
                               AdamW opt) {
        double loss = 0;
        model.zeroGrad();
        for (String p : model.layers().keySet()) {
            float[][] y = model.forward(p, x);
            double[][] t = base(x, teacherW.get(p), biases.get(p)[0]);
            float[][] dy = new float[y.length][y[0].length];
            double scale = 1.0 / (y.length * y[0].length);
            for (int n = 0; n < y.length; n++) {
                for (int o = 0; o < y[0].length; o++) {
                    double e = y[n][o] - t[n][o];
                    loss += e * e * scale;
                    dy[n][o] = (float) (2 * e * scale);
                }
            }
            model.backward(p, dy);
        }
        if (update) {
            opt.step();
        }
        return loss / model.layers().size();
    }

    @Test
    void trainsSavesAndLoadsBackExactlyWhatItHolds() throws Exception {
        long seed = 0x7a1dL;
        SplittableRandom rng = new SplittableRandom(seed);
        int d = 16;
        Map<String, float[][]> w = weights(rng, d);
        Map<String, float[][]> teacher = new LinkedHashMap<>();
        Map<String, float[][]> biases = new LinkedHashMap<>();
        float[][] u = random(rng, d, 2, 0.5);
        float[][] v = random(rng, 2, d, 0.5);
        for (String key : w.keySet()) {
            if (key.endsWith("_proj.weight")) {
                String p = key.substring(0, key.length() - ".weight".length());
                float[][] t = new float[d][d];
                for (int o = 0; o < d; o++) {
                    for (int i = 0; i < d; i++) {
                        t[o][i] = w.get(key)[o][i] + u[o][0] * v[0][i] + u[o][1] * v[1][i];
                    }
                }
                teacher.put(p, t);
                biases.put(p, w.get(p + ".bias"));
            }
        }
        PeftConfig cfg = config(0.05);
        float[][] x = random(rng, 32, d, 1);
        float[][] probe = random(rng, 3, d, 1);
        Map<String, float[][]> outputs = new LinkedHashMap<>();
        try (LoraModel model = LoraModel.wrapArrays(w, cfg, ref, seed);
             AdamW opt = new AdamW(model.parameters(), AdamWConfig.torchDefaults().withLr(1e-2).withWeightDecay(0))) {
            double first = step(model, teacher, biases, x, true, opt);
            double last = first;
            for (int s = 1; s < 50; s++) {
                last = step(model, teacher, biases, x, true, opt);
            }
            assertTrue(last < 0.5 * first, "seed " + seed + ": loss " + first + " -> " + last + " in 50 AdamW steps");
            model.train(false);
            for (String p : model.layers().keySet()) {
                outputs.put(p, model.forward(p, probe));
            }
            model.save(dir.resolve("adapter"));
            String json = Files.readString(dir.resolve("adapter").resolve(AdapterSet.CONFIG_FILE));
            assertTrue(json.contains("\"lora_dropout\": 0.05") && json.contains("\"use_rslora\": true"), json);

            try (LoraModel back = LoraModel.loadArrays(dir.resolve("adapter"), w, ref, seed)) {
                assertEquals(cfg, back.config());
                assertEquals(model.layers().keySet(), back.layers().keySet());
                back.train(false);
                for (String p : model.layers().keySet()) {
                    LoraLinear a = model.layer(p);
                    LoraLinear b = back.layer(p);
                    assertArrayEquals(a.loraA().toFloatArray(), b.loraA().toFloatArray(), p);
                    assertArrayEquals(a.loraB().toFloatArray(), b.loraB().toFloatArray(), p);
                    assertEquals(a.config(), b.config().withSeed(a.config().seed()), p);
                    float[][] y = back.forward(p, probe);
                    for (int n = 0; n < probe.length; n++) {
                        assertArrayEquals(outputs.get(p)[n], y[n], p + " row " + n);
                    }
                }
            }
        }
    }

    @Test
    void tensorWeightsLoadRefusesWhatTheModelCannotHoldAndHeapCallsNameTheModule() throws Exception {
        long seed = 0x5afeL;
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[][]> w = weights(rng, 8);
        try (Arena arena = Arena.ofShared()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            w.forEach((k, a) -> tensors.put(k, k.endsWith(".bias") ? Tensor.of(arena, DType.F32, a[0], a[0].length)
                    : Tensor.fromMatrix(arena, DType.F32, a)));
            tensors.put("model.norm.weight", Tensor.allocate(arena, DType.F32, 8));     // 1-D: not a linear module
            try (LoraModel model = LoraModel.wrap(tensors, config(0), ref, seed)) {
                assertEquals(List.of("model.layers.0.self_attn.k_proj", "model.layers.1.self_attn.k_proj"), model.untargetedModules());
                model.save(dir.resolve("a"));
                String q = "model.layers.0.self_attn.q_proj";
                String msg = assertThrows(IllegalArgumentException.class, () -> model.forward(q, new float[2][7])).getMessage();
                assertTrue(msg.contains(q) && msg.contains("float[N][8]"), msg);
                msg = assertThrows(IllegalStateException.class, () -> model.backward("model.layers.1.self_attn.q_proj", new float[2][8]))
                        .getMessage();
                assertTrue(msg.contains("forward"), msg);
            }
            Map<String, Tensor> fewer = new LinkedHashMap<>(tensors);
            fewer.remove("model.layers.1.self_attn.v_proj.weight");
            String msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.load(dir.resolve("a"), fewer, ref, seed)).getMessage();
            assertTrue(msg.contains("model.layers.1.self_attn.v_proj"), msg);

            Map<String, Tensor> more = new LinkedHashMap<>(tensors);
            more.put("model.layers.2.self_attn.q_proj.weight", Tensor.allocate(arena, DType.F32, 8, 8));
            msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.load(dir.resolve("a"), more, ref, seed)).getMessage();
            assertTrue(msg.contains("model.layers.2.self_attn.q_proj") && msg.contains("no lora_A/lora_B"), msg);

            PeftConfig none = PeftConfig.builder().targetModules("o_proj").build();
            msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.wrap(tensors, none, ref, seed)).getMessage();
            assertTrue(msg.contains("[o_proj]") && msg.contains("matches none"), msg);
            msg = assertThrows(IllegalArgumentException.class, () -> PeftConfig.builder().r(0).targetModules("q").build()).getMessage();
            assertTrue(msg.contains("r=0"), msg);
        }
    }

    @Test
    void heapArrayConversionsRoundAndRefuseRaggedRows() {
        try (Arena arena = Arena.ofConfined()) {
            float[][] rows = {{1f, 2.5f, -3f}, {1.00390625f, 0f, 7f}};
            Tensor f32 = Tensor.fromMatrix(arena, DType.F32, rows);
            assertArrayEquals(rows[1], f32.toMatrix()[1]);
            assertArrayEquals(new float[] {1f, 2.5f, -3f, 1.00390625f, 0f, 7f}, f32.toFloatArray());
            Tensor bf16 = Tensor.fromMatrix(arena, DType.BF16, rows);
            assertEquals(1f, bf16.toMatrix()[1][0], "1 + 2^-8 rounds to nearest even in bf16");
            f32.copyFrom(new float[] {6, 5, 4, 3, 2, 1});
            assertEquals(4f, f32.get(0, 2));
            String msg = assertThrows(IllegalArgumentException.class,
                    () -> Tensor.fromMatrix(arena, DType.F32, new float[][] {{1, 2}, {3}})).getMessage();
            assertTrue(msg.contains("row 1") && msg.contains("row 0 has 2"), msg);
            msg = assertThrows(IllegalArgumentException.class, () -> f32.copyFrom(new float[5])).getMessage();
            assertTrue(msg.contains("5 values"), msg);
        }
    }

    @Test
    void aRefusedHeapForwardLeavesTheModelAsItWasAndANullPathIsNamed() {
        SplittableRandom rng = new SplittableRandom(11);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), ref, 11)) {
            String q = "model.layers.0.self_attn.q_proj";
            float[][] x = random(rng, 2, 8, 1);
            model.forward(q, x);
            model.layer(q).loraB().fill(0.25f);
            float[][] dy = random(rng, 2, 8, 1);
            model.zeroGrad();
            float[][] dx = model.backward(q, dy);
            float[] gradA = model.layer(q).gradA().toFloatArray();
            // a forward of a new N with the wrong width is refused ...
            String msg = assertThrows(IllegalArgumentException.class, () -> model.forward(q, new float[3][7])).getMessage();
            assertTrue(msg.contains(q) && msg.contains("float[N][8]"), msg);
            // ... and the last forward (2 rows) is still the one a backward differentiates, through either API
            model.zeroGrad();
            assertArrayEquals(dx[1], model.backward(q, dy)[1]);
            assertArrayEquals(gradA, model.layer(q).gradA().toFloatArray());
            try (Arena arena = Arena.ofConfined()) {
                Tensor dyT = Tensor.fromMatrix(arena, DType.F32, dy);
                Tensor dxT = Tensor.allocate(arena, DType.F32, 2, 8);
                model.zeroGrad();
                model.layer(q).backward(dyT, dxT);
                assertArrayEquals(dx[0], dxT.toMatrix()[0]);
                assertArrayEquals(gradA, model.layer(q).gradA().toFloatArray());
            }
            assertEquals(3, model.forward(q, random(rng, 3, 8, 1)).length, "a valid new N still works");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.layer(null));
            assertTrue(e.getMessage().startsWith("module path is null"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> model.forward(null, x));
        }
    }

    @Test
    void aHeapBackwardRefusesWhenAnotherForwardOfItsLayerRanInBetween() {
        SplittableRandom rng = new SplittableRandom(12);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), ref, 12); Arena arena = Arena.ofConfined()) {
            String q = "model.layers.0.self_attn.q_proj";
            float[][] x = new float[2][8];
            x[0][1] = 1f;
            model.forward(q, x);
            assertEquals(2, model.backward(q, new float[2][8]).length, "backward of its own forward");
            model.forward(q, x);
            Tensor other = Tensor.allocate(arena, DType.F32, 2, 8);
            model.layer(q).forward(other, Tensor.allocate(arena, DType.F32, 2, 8));
            String msg = assertThrows(IllegalStateException.class, () -> model.backward(q, new float[2][8])).getMessage();
            assertTrue(msg.contains(q) && msg.contains("another forward of this layer"), msg);
            model.forward(q, x);
            assertEquals(2, model.backward(q, new float[2][8]).length, "a new heap forward makes backward valid again");
        }
    }

    /**
     * A heap forward of a new N that the backend refuses (as the cpu backend refuses a batch whose
     * backward scratch would not fit an array) used to have swapped in that N's buffers and closed
     * the old ones: the model's backward then asked for a forward of 3 rows, and the layer's last
     * forward read buffers that were closed.
     */
    @Test
    void aHeapForwardTheBackendRefusesLeavesTheModelAsItWas() {
        SplittableRandom rng = new SplittableRandom(12);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), new RefusingRows(ref, 3), 12)) {
            String q = "model.layers.0.self_attn.q_proj";
            model.forward(q, random(rng, 2, 8, 1));
            model.layer(q).loraB().fill(0.25f);
            float[][] dy = random(rng, 2, 8, 1);
            model.zeroGrad();
            float[][] dx = model.backward(q, dy);
            float[] gradA = model.layer(q).gradA().toFloatArray();
            String msg = assertThrows(IllegalArgumentException.class, () -> model.forward(q, random(rng, 3, 8, 1))).getMessage();
            assertEquals("n=3 refused", msg);
            model.zeroGrad();
            assertArrayEquals(dx[1], model.backward(q, dy)[1]);
            assertArrayEquals(gradA, model.layer(q).gradA().toFloatArray());
            try (Arena arena = Arena.ofConfined()) {
                Tensor dxT = Tensor.allocate(arena, DType.F32, 2, 8);
                model.zeroGrad();
                model.layer(q).backward(Tensor.fromMatrix(arena, DType.F32, dy), dxT);
                assertArrayEquals(dx[0], dxT.toMatrix()[0]);
            }
            assertEquals(4, model.forward(q, random(rng, 4, 8, 1)).length, "a new N the backend takes still works");
        }
    }
    /**
     * A loaded model used to hold its layers in the adapter file's order (tensor names sorted), not in
     * weight order as wrap does and layers()/parameters() promise: a Llama-style q, v, o came back as
     * o, q, v with other layer ids (other dropout masks), and an AdamW state saved with the wrapped
     * model's parameters could not be restored onto the loaded model's.
     */
    @Test
    void aLoadedModelKeepsWeightOrderAndLayerIdsSoAnOptimizerStateCanBeRestored() throws Exception {
        long seed = 0x07de7L;
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[][]> w = new LinkedHashMap<>();
        for (int layer : new int[] {2, 10}) {
            for (String m : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
                w.put("model.layers." + layer + ".self_attn." + m + ".weight", random(rng, 8, 8, 0.3));
            }
        }
        PeftConfig cfg = PeftConfig.builder().targetModules("q_proj", "v_proj", "o_proj").r(4).loraAlpha(8).loraDropout(0.1).build();
        Path adapter = dir.resolve("adapter");
        Path state = dir.resolve("adamw.state");
        try (LoraModel model = LoraModel.wrapArrays(w, cfg, ref, seed);
             AdamW opt = new AdamW(model.parameters(), AdamWConfig.torchDefaults().withLr(1e-2))) {
            List<String> order = List.copyOf(model.layers().keySet());
            assertEquals("model.layers.2.self_attn.q_proj", order.get(0));
            assertEquals("model.layers.2.self_attn.o_proj", order.get(2));
            for (String p : order) {
                model.forward(p, random(rng, 3, 8, 1));
                model.backward(p, random(rng, 3, 8, 1));
            }
            opt.step();
            model.save(adapter);
            opt.save(state);
            try (LoraModel back = LoraModel.loadArrays(adapter, w, ref, seed);
                 AdamW resumed = new AdamW(back.parameters(), AdamWConfig.torchDefaults().withLr(1e-2))) {
                assertEquals(order, List.copyOf(back.layers().keySet()), "weight order, as wrap");
                for (String p : order) {
                    assertEquals(model.layer(p).layerId(), back.layer(p).layerId(), p + ": the dropout id");
                }
                resumed.load(state);
                assertEquals(1, resumed.stepCount());
            }
        }
    }
    /**
     * save(dir) wrote F32 whatever the layers held: a BF16 adapter loaded, trained and saved that way came back
     * as F32 layers, and the resumed run trained in F32 (all of lora_B differed from the uninterrupted run after
     * five steps, silently). It now saves the layers' own dtype; a new adapter is F32 as before.
     */
    @Test
    void saveKeepsTheAdaptersDtypeSoAResumedRunTrainsInIt() throws Exception {
        SplittableRandom rng = new SplittableRandom(41);
        Map<String, float[][]> w = weights(rng, 8);
        try (LoraModel fresh = LoraModel.wrapArrays(w, config(0), ref, 3)) {
            fresh.save(dir.resolve("f32"));
            assertEquals(List.of(DType.F32), AdapterSet.load(dir.resolve("f32"), Arena.ofAuto()).dtypes());
            fresh.save(dir.resolve("bf16"), DType.BF16);
        }
        try (LoraModel half = LoraModel.loadArrays(dir.resolve("bf16"), w, ref, 3)) {
            for (var l : half.layers().values()) {
                assertEquals(DType.BF16, l.loraA().dtype());
            }
            half.save(dir.resolve("again"));
            assertEquals(List.of(DType.BF16), AdapterSet.load(dir.resolve("again"), Arena.ofAuto()).dtypes());
            try (LoraModel back = LoraModel.loadArrays(dir.resolve("again"), w, ref, 3)) {
                for (var l : back.layers().values()) {
                    assertEquals(DType.BF16, l.loraB().dtype(), "resumed in the dtype it was trained in");
                }
            }
        }
    }

    /**
     * Disabling the adapters with one layer merged is refused; it used to have disabled every layer
     * before the merged one first, so a caller that caught the refusal went on with a model whose
     * first layers silently computed the base path only.
     */
    @Test
    void disablingWithAMergedLayerIsRefusedWithoutDisablingTheOthers() {
        SplittableRandom rng = new SplittableRandom(13);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), ref, 13)) {
            String v1 = "model.layers.1.self_attn.v_proj";
            model.layer(v1).merge();
            String msg = assertThrows(IllegalStateException.class, model::disableAdapters).getMessage();
            assertTrue(msg.contains(v1), msg);
            msg = assertThrows(IllegalStateException.class, () -> model.setAdaptersEnabled(false)).getMessage();
            assertTrue(msg.contains(v1), msg);
            for (Map.Entry<String, LoraLinear> e : model.layers().entrySet()) {
                assertTrue(e.getValue().isAdapterEnabled(), e.getKey() + " is still enabled");
            }
            assertTrue(model.adaptersEnabled());
            model.layer(v1).unmerge();
            try (var off = model.disableAdapters()) {
                assertFalse(model.adaptersEnabled());
            }
            assertTrue(model.adaptersEnabled());
        }
    }

    /** A bias that does not fit its weight is refused naming the module, not only the two shapes. */
    @Test
    void aBiasThatDoesNotFitItsWeightIsRefusedNamingTheModule() {
        SplittableRandom rng = new SplittableRandom(14);
        Map<String, float[][]> w = weights(rng, 8);
        w.put("model.layers.1.self_attn.v_proj.bias", new float[1][7]);
        String msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.wrapArrays(w, config(0), ref, 14)).getMessage();
        assertTrue(msg.contains("model.layers.1.self_attn.v_proj") && msg.contains("[7]"), msg);
        Map<String, float[][]> good = weights(new SplittableRandom(14), 8);
        try (LoraModel model = LoraModel.wrapArrays(good, config(0), ref, 14)) {
            model.save(dir.resolve("adapter"));
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
        msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.loadArrays(dir.resolve("adapter"), w, ref, 14)).getMessage();
        assertTrue(msg.contains("model.layers.1.self_attn.v_proj") && msg.contains("[7]"), msg);
    }
    /** A null x or dy is refused like any other wrong shape, naming the module, not with a bare NullPointerException. */
    @Test
    void aNullHeapInputIsRefusedNamingTheModule() {
        SplittableRandom rng = new SplittableRandom(15);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), ref, 15)) {
            String q = "model.layers.0.self_attn.q_proj";
            String msg = assertThrows(IllegalArgumentException.class, () -> model.forward(q, null)).getMessage();
            assertTrue(msg.contains(q), msg);
            model.forward(q, random(rng, 2, 8, 1));
            msg = assertThrows(IllegalArgumentException.class, () -> model.backward(q, null)).getMessage();
            assertTrue(msg.contains(q) && msg.contains("dy"), msg);
            assertEquals(2, model.backward(q, random(rng, 2, 8, 1)).length, "the forward is still there");
        }
    }
    /** A heap backward after merge()/unmerge() of its layer is refused saying so, not blaming another forward. */
    @Test
    void aHeapBackwardAfterAMergeSaysTheMergeInvalidatedTheForward() {
        SplittableRandom rng = new SplittableRandom(16);
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), ref, 16)) {
            String q = "model.layers.0.self_attn.q_proj";
            model.forward(q, random(rng, 2, 8, 1));
            model.layer(q).merge();
            String msg = assertThrows(IllegalStateException.class, () -> model.backward(q, new float[2][8])).getMessage();
            assertTrue(msg.contains(q) && msg.contains("merged"), msg);
            model.layer(q).unmerge();
            msg = assertThrows(IllegalStateException.class, () -> model.backward(q, new float[2][8])).getMessage();
            assertTrue(msg.contains(q) && msg.contains("unmerge()"), msg);
            model.forward(q, random(rng, 2, 8, 1));
            assertEquals(2, model.backward(q, new float[2][8]).length);
        }
    }
    /**
     * A heap forward the backend refuses at the same N has already copied its x over the X of the
     * layer's last forward: the next backward(float[][]) used to differentiate that forward with the
     * new X against the old U, silently. Now it is refused, and a new forward works.
     */
    @Test
    void aRefusedForwardOfTheSameNDropsTheLastOne() {
        SplittableRandom rng = new SplittableRandom(19);
        int[] forwards = {0};
        Backend refusesSecond = new ForwardingBackend() {
            @Override
            public Backend inner() {
                return ref;
            }

            @Override
            public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
                if (++forwards[0] == 2) {
                    throw new IllegalArgumentException("second forward refused");
                }
                ref.forward(p, w, x, a, b, u, y);
            }
        };
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), refusesSecond, 19)) {
            String q = "model.layers.0.self_attn.q_proj";
            model.forward(q, random(rng, 2, 8, 1));
            assertThrows(IllegalArgumentException.class, () -> model.forward(q, random(rng, 2, 8, 1)));
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.backward(q, random(rng, 2, 8, 1)));
            assertTrue(e.getMessage().contains("needs a forward(float[][])"), e.getMessage());
            model.forward(q, random(rng, 2, 8, 1));
            assertEquals(2, model.backward(q, random(rng, 2, 8, 1)).length);
        }
    }

    /**
     * A heap forward of a new N whose backend call fails with an Error (an off-heap scratch allocation
     * the machine cannot serve: OutOfMemoryError) used to leave that N's new buffers allocated and
     * unreachable until the JVM exits; a RuntimeException freed them.
     */
    @Test
    void aHeapForwardFailingWithAnErrorFreesItsNewBuffers() {
        SplittableRandom rng = new SplittableRandom(17);
        List<Tensor> seen = new java.util.ArrayList<>();
        Backend oom = new ForwardingBackend() {
            @Override
            public Backend inner() {
                return ref;
            }

            @Override
            public String name() {
                return "oom";
            }

            @Override
            public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
                seen.add(x);
                if (p.n() == 3) {
                    throw new OutOfMemoryError("no scratch for n=3");
                }
                ref.forward(p, w, x, a, b, u, y);
            }
        };
        try (LoraModel model = LoraModel.wrapArrays(weights(rng, 8), config(0), oom, 17)) {
            String q = "model.layers.0.self_attn.q_proj";
            model.forward(q, random(rng, 2, 8, 1));
            assertThrows(OutOfMemoryError.class, () -> model.forward(q, random(rng, 3, 8, 1)));
            Tensor refusedX = seen.get(seen.size() - 1);
            assertEquals(3, refusedX.dim(0));
            assertFalse(refusedX.readOnlySegment().scope().isAlive(), "the refused N's buffers are freed");
            assertTrue(seen.get(0).readOnlySegment().scope().isAlive(), "the last forward's buffers are kept");
            assertEquals(2, model.backward(q, random(rng, 2, 8, 1)).length);
        }
    }
    /**
     * A layer whose creation fails with an Error (a backend that cannot allocate a prepared weight:
     * OutOfMemoryError) used to leave the layers built before it, their prepared weights and the
     * copied heap weights allocated; a RuntimeException freed them.
     */
    @Test
    void aWrapFailingWithAnErrorFreesWhatItBuilt() {
        List<FrozenWeight> prepared = new java.util.ArrayList<>();
        List<Boolean> closed = new java.util.ArrayList<>();
        Backend failsSecond = new ForwardingBackend() {
            @Override
            public Backend inner() {
                return ref;
            }

            @Override
            public String name() {
                return "fails-second";
            }

            @Override
            public FrozenWeight prepare(Tensor weight, Tensor bias) {
                if (!prepared.isEmpty()) {
                    throw new OutOfMemoryError("no memory for a second weight");
                }
                FrozenWeight inner = ref.prepare(weight, bias);
                FrozenWeight w = new FrozenWeight() {
                    @Override
                    public Tensor weight() {
                        return inner.weight();
                    }

                    @Override
                    public Tensor bias() {
                        return inner.bias();
                    }

                    @Override
                    public void close() {
                        closed.add(true);
                        inner.close();
                    }
                };
                prepared.add(w);
                return w;
            }
        };
        assertThrows(OutOfMemoryError.class, () -> LoraModel.wrapArrays(weights(new SplittableRandom(18), 8), config(0), failsSecond, 18));
        assertEquals(1, prepared.size());
        assertEquals(List.of(true), closed, "the first layer is closed");
        assertFalse(prepared.get(0).weight().segment().scope().isAlive(), "the copied heap weights are freed");
    }

    /**
     * Two threads on one model: the second heap forward of a module is refused before it copies its x over the buffer
     * the first one's forward is reading. It was refused only by the layer, after the copy, and then freed that buffer:
     * the first thread failed with the JDK's "Already closed", or returned a Y computed from the other thread's rows.
     */
    @Test
    void aSecondThreadIsRefusedBeforeItTouchesTheFirstOnesBuffers() throws Exception {
        AtomicReference<CountDownLatch[]> gate = new AtomicReference<>(new CountDownLatch[] {new CountDownLatch(1), new CountDownLatch(0)});
        Backend slow = new ForwardingBackend() {
            @Override
            public Backend inner() {
                return ref;
            }

            @Override
            public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
                gate.get()[0].countDown();
                try {
                    gate.get()[1].await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                ref.forward(p, w, x, a, b, u, y);
            }
        };
        SplittableRandom rng = new SplittableRandom(21);
        Map<String, float[][]> weights = weights(rng, 8);
        String q = "model.layers.0.self_attn.q_proj";
        float[][] x1 = random(rng, 3, 8, 1);
        float[][] x2 = random(rng, 3, 8, 1);
        float[][] expected;
        try (LoraModel model = LoraModel.wrapArrays(weights, config(0), ref, 5)) {
            expected = model.forward(q, x1);
        }
        try (LoraModel model = LoraModel.wrapArrays(weights, config(0), slow, 5)) {
            model.forward(q, x2);  // the module's buffers for 3 rows now exist: both threads' forwards use them
            CountDownLatch inside = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            gate.set(new CountDownLatch[] {inside, release});
            AtomicReference<Object> first = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    first.set(model.forward(q, x1));
                } catch (Throwable e) {
                    first.set(e);
                }
            });
            t.start();
            inside.await();
            IllegalStateException e = null;
            IllegalStateException closing = null;
            try {
                model.forward(q, x2);
            } catch (IllegalStateException refused) {
                e = refused;
            }
            try {
                model.close();  // freed the buffers under the first thread's forward (second review)
            } catch (IllegalStateException refused) {
                closing = refused;
            } finally {
                release.countDown();
                t.join();
            }
            assertTrue(e != null && e.getMessage().contains("LoraModel used by two threads"), String.valueOf(e));
            assertTrue(closing != null && closing.getMessage().contains("LoraModel used by two threads"), String.valueOf(closing));
            assertInstanceOf(float[][].class, first.get(), "the first thread's forward: " + first.get());
            assertArrayEquals(expected, (float[][]) first.get());
            float[][] dy = random(rng, 3, 8, 1);
            model.backward(q, dy);  // the first forward is still the module's last
        }
    }

    /**
     * PEFT's "all-linear" shorthand (the builder's javadoc offered it as a list name) is resolved by PEFT from the model's
     * layer classes and output layer, which a model of named weights cannot see: refused with a message that says so and
     * what to do, not only that it "matches none" of the weights.
     */
    @Test
    void theAllLinearShorthandIsRefusedWithWhatToDoInstead() {
        Map<String, float[][]> weights = weights(new SplittableRandom(3), 8);
        for (PeftConfig c : List.of(PeftConfig.builder().targetModules("all-linear").build(),
                PeftConfig.builder().targetModulesRegex("all-linear").build(),
                PeftConfig.builder().targetModulesRegex("ALL-LINEAR").build())) {
            String msg = assertThrows(IllegalArgumentException.class, () -> LoraModel.wrapArrays(weights, c, ref, 1)).getMessage();
            assertTrue(msg.contains("shorthand") && msg.contains("list the modules") && msg.contains("model.layers.0.self_attn.q_proj"),
                    msg);
        }
    }

    /**
     * A layer closed on its own (through layer(path)) made save fail mid-write with the JDK's
     * "Already closed", naming no module: refused first, naming it, with nothing written. New
     * weights also refuse an init_lora_weights this library does not implement, naming it.
     */
    @Test
    void saveAfterALayerWasClosedNamesItAndWritesNothing() throws Exception {
        try (LoraModel model = LoraModel.wrapArrays(weights(new SplittableRandom(31), 8), config(0), ref, 31)) {
            String path = "model.layers.0.self_attn.v_proj";
            model.layer(path).close();
            Path out = dir.resolve("after-close");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> model.save(out));
            assertEquals("module " + path + ": its layer was closed (through layer(\"" + path + "\")); nothing was saved",
                    e.getMessage());
            assertFalse(Files.exists(out), "nothing written");
            e = assertThrows(IllegalStateException.class, () -> model.module(path));
            assertEquals("module " + path + ": its layer was closed (through layer(\"" + path + "\"))", e.getMessage());
        }
        PeftConfig random = PeftConfig.builder().targetModules("q_proj").initLoraWeights(false).build();
        Map<String, float[][]> w = weights(new SplittableRandom(32), 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraModel.wrapArrays(w, random, ref, 32));
        assertEquals("init_lora_weights false is not implemented for new adapter weights: use true (uniform A, B = 0) or"
                + " \"gaussian\"", e.getMessage());
        // an adapter whose config records init_lora_weights false (trained elsewhere) still loads: its weights come from the file
        Path saved = dir.resolve("init-false");
        try (LoraModel model = LoraModel.wrapArrays(w, PeftConfig.builder().targetModules("q_proj").build(), ref, 32)) {
            AdapterSet.of(random, model.layers()).save(saved, DType.F32);
        }
        try (LoraModel back = LoraModel.loadArrays(saved, w, ref, 32)) {
            assertEquals(Boolean.FALSE, back.config().initLoraWeights());
            assertEquals(2, back.layers().size());
        }
    }

    /**
     * A null weight map, checkpoint or adapter folder was a bare NullPointerException from inside (TreeMap.putAll,
     * Files.provider); each factory names its argument before anything is read or allocated.
     */
    @Test
    void theFactoriesNameANullArgument() {
        PeftConfig config = PeftConfig.builder().targetModules("q").r(1).build();
        Backend backend = new ReferenceBackend();
        Map<String, Tensor> weights = Map.of();
        Path dir = Path.of("adapter");
        record Case(String message, org.junit.jupiter.api.function.Executable call) {
        }
        List<Case> cases = List.of(
                new Case("LoraModel.wrap: weights is null", () -> LoraModel.wrap((Map<String, Tensor>) null, config, backend, 0)),
                new Case("LoraModel.wrap: base is null",
                        () -> LoraModel.wrap((dev.rslora.peft.BaseCheckpoint) null, config, backend, 0)),
                new Case("LoraModel.wrapArrays: weights is null", () -> LoraModel.wrapArrays(null, config, backend, 0)),
                new Case("LoraModel.load: dir is null", () -> LoraModel.load(null, weights, backend, 0)),
                new Case("LoraModel.load: weights is null", () -> LoraModel.load(dir, null, backend, 0)),
                new Case("LoraModel.loadArrays: dir is null", () -> LoraModel.loadArrays(null, Map.of(), backend, 0)),
                new Case("LoraModel.loadArrays: weights is null", () -> LoraModel.loadArrays(dir, null, backend, 0)));
        for (Case c : cases) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c.call(), c.message());
            assertEquals(c.message(), e.getMessage());
        }
    }
}
