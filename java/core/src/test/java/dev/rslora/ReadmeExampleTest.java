package dev.rslora;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.model.LoraModel;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.AdamW;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's usage examples, compiled and run; and a check that the README shows exactly this code. */
class ReadmeExampleTest {
    @TempDir
    Path tmp;

    @Test
    void readmeExampleRuns() {
        // README:begin
        try (Arena arena = Arena.ofShared()) {                       // owns X, W, Y, dY, dX
            int n = 8, dIn = 64, dOut = 32;
            Tensor w = Tensor.allocate(arena, DType.F32, dOut, dIn);  // frozen W [d_out, d_in]
            Tensor x = Tensor.allocate(arena, DType.F32, n, dIn);     // X [N, d_in]
            w.fill(0.01f);
            x.fill(1f);
            Backend backend = Backends.get("auto");                   // cuda > cpu > reference
            LoraConfig cfg = LoraConfig.rslora(16, 8).withDropout(0.1);  // γ = 8/√16 = 2
            try (LoraLinear layer = LoraLinear.create(w, null, cfg, backend)) {
                Tensor y = layer.forward(arena, x);                    // Y = X·Wᵀ + γ·(D(X)·Aᵀ)·Bᵀ
                Tensor dy = Tensor.allocate(arena, DType.F32, n, dOut);
                dy.fill(1f);
                Tensor dx = Tensor.allocate(arena, DType.F32, n, dIn);
                layer.backward(dy, dx);                                // dX, and dA/dB in layer.gradA()/gradB()
                // an optimizer now updates layer.loraA() / layer.loraB() from the gradients
        // README:end
                assertEquals(0.64f, y.get(0, 0), 1e-5f, "B = 0 at init: Y is the base output");
                assertEquals(0.32f, dx.get(0, 0), 1e-5f, "B = 0 at init: dX = dY·W");
                assertNotEquals(0f, layer.gradB().get(0, 0), "dB = γ·dYᵀ·U is non-zero at init");
                assertEquals(2.0, layer.gamma());
            }
        }
    }

    /** The "Adapting a whole model" example over a 2-layer q/k/v state dict of heap arrays. */
    @Test
    void readmeModelExampleRuns() throws IOException {
        Map<String, float[][]> weights = new LinkedHashMap<>();
        for (int layer = 0; layer < 2; layer++) {
            for (String m : List.of("q_proj", "k_proj", "v_proj")) {
                weights.put("model.layers." + layer + ".self_attn." + m + ".weight", filled(8, 8, 0.01f * (layer + 1)));
            }
        }
        float[][] x = filled(3, 8, 1f);
        float[][] dy = filled(3, 8, 1f);
        long seed = 7;
        Path dir = tmp.resolve("adapter");
        // README-model:begin
        PeftConfig config = PeftConfig.builder().targetModules("q_proj", "v_proj").r(16).loraAlpha(32)
                .useRslora(true).loraDropout(0.05).rankPattern(Map.of("layers\\.0\\..*", 64)).build();
        try (LoraModel model = LoraModel.wrapArrays(weights, config, Backends.get("auto"), seed);   // weights: name -> float[][]
             AdamW opt = new AdamW(model.parameters(), AdamWConfig.torchDefaults())) {
            float[][] y = model.forward("model.layers.0.self_attn.q_proj", x);                   // x float[N][d_in]
            model.backward("model.layers.0.self_attn.q_proj", dy);                               // dA, dB into the layer
            opt.step();
            try (var off = model.disableAdapters()) { /* the base model, e.g. DPO's reference pass */ }
            model.train(false);                       // eval mode: no dropout
            model.merge();                            // W += γ·B·A in every layer (or none), as PEFT's merge_adapter()
            model.unmerge();
            model.train(true);
            model.save(dir);                          // dir: a Path; a PEFT folder, refused before writing if it could not be loaded
            opt.save(dir.resolve("optimizer.safetensors"));                // a resume needs these two as well
            model.saveDropoutSteps(dir.resolve("dropout_steps.safetensors"));  // (PEFT reads only its own two files)
        }
        try (LoraModel again = LoraModel.loadArrays(dir, weights, Backends.get("auto"), seed);  // the run's seed
             AdamW opt = new AdamW(again.parameters(), AdamWConfig.torchDefaults())) {
            opt.load(dir.resolve("optimizer.safetensors"));
            again.loadDropoutSteps(dir.resolve("dropout_steps.safetensors"));  // trains on bit for bit as if never stopped
        }
        // README-model:end
        try (LoraModel again = LoraModel.loadArrays(dir, weights, Backends.get("auto"), seed)) {
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj",
                    "model.layers.1.self_attn.v_proj"), List.copyOf(again.layers().keySet()));
            assertEquals(64, again.layer("model.layers.0.self_attn.q_proj").config().rank(), "rank_pattern");
            assertEquals(16, again.layer("model.layers.1.self_attn.q_proj").config().rank());
            assertEquals(config, again.config());
            again.loadDropoutSteps(dir.resolve("dropout_steps.safetensors"));
            assertEquals(1L, again.dropoutSteps().get("model.layers.0.self_attn.q_proj"), "the one training forward");
            assertEquals(0L, again.dropoutSteps().get("model.layers.1.self_attn.q_proj"));
        }
    }

    private static float[][] filled(int rows, int cols, float v) {
        float[][] a = new float[rows][cols];
        for (float[] row : a) {
            java.util.Arrays.fill(row, v);
        }
        return a;
    }

    @Test
    void readmeShowsThisExample() throws IOException {
        assertReadmeShows("README");
        assertReadmeShows("README-model");
    }

    /** README.md contains the lines between {@code // MARKER:begin} and {@code // MARKER:end} of this file, unindented by 8. */
    private static void assertReadmeShows(String marker) throws IOException {
        Path readme = Path.of("../..", "README.md");
        Path self = Path.of("src", "test", "java", "dev", "rslora", "ReadmeExampleTest.java");
        List<String> code = Files.readAllLines(self);
        int begin = code.indexOf("        // " + marker + ":begin");
        int end = code.indexOf("        // " + marker + ":end");
        assertTrue(begin >= 0 && end > begin, marker + " markers in " + self);
        String snippet = String.join("\n", code.subList(begin + 1, end).stream().map(l -> l.length() >= 8 ? l.substring(8) : l.strip()).toList());
        String text = Files.readString(readme);
        assertTrue(text.contains(snippet), "README.md must contain the example exactly as in " + self + ":\n" + snippet);
    }
}
