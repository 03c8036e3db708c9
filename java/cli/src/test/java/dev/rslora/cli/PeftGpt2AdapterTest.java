package dev.rslora.cli;

import dev.rslora.io.SafetensorsWriter;
import dev.rslora.peft.AdapterModule;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.SharedData;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The real adapter Hugging Face PEFT saved for GPT-2 sequence classification (shared/data, never
 * copied into the repository): Conv1D layout (fan_in_fan_out), γ = 8/8 = 1, and a trained
 * classifier head saved as base_model.model.score.weight.
 */
class PeftGpt2AdapterTest {
    private static final int LAYERS = 12;
    private static final int D = 768;
    private static final int QKV = 3 * D;

    @TempDir
    Path dir;
    private Path adapter;

    @BeforeEach
    void locate() {
        adapter = SharedData.peftGpt2Adapter();
        Assumptions.assumeTrue(adapter != null, SharedData.whyAbsent());
    }

    @Test
    void loadsWithFanInFanOutGammaOneAndTheClassifierHead() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            AdapterSet set = AdapterSet.load(adapter, arena);
            PeftConfig c = set.config();
            assertTrue(c.fanInFanOut());
            assertEquals(false, c.useRslora());
            assertEquals("SEQ_CLS", c.taskType());
            assertEquals(List.of("c_attn"), c.targetModules().nameList());
            assertEquals(LAYERS, set.modules().size());
            for (int i = 0; i < LAYERS; i++) {
                AdapterModule m = set.module("transformer.h." + i + ".attn.c_attn");
                assertEquals(8, m.rank());
                assertEquals(1.0, m.gamma(), 0.0, "γ = α/r = 8/8");
                assertArrayEquals(new long[] {8, D}, m.loraA().shape());
                assertArrayEquals(new long[] {QKV, 8}, m.loraB().shape());
            }
            assertEquals(List.of("score.weight"), List.copyOf(set.extras().keySet()));
            assertArrayEquals(new long[] {6, D}, set.extras().get("score.weight").shape());
            assertEquals(List.of(DType.F32), set.dtypes());
        }
    }

    @Test
    void inspectDescribesIt() {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "inspect", adapter.toString());
        assertEquals(0, code, err.toString());
        String o = out.toString();
        for (String s : new String[] {"peft_type: LORA  task_type: SEQ_CLS  base_model: gpt2",
                "scaling: lora, γ = α/r (use_rslora: false)  fan_in_fan_out: true  lora_dropout: 0.0  bias: none",
                "dtype: F32", "modules: 12",
                "transformer.h.11.attn.c_attn     8         8             1  [8, 768]       [2304, 8]             24576",
                "score.weight", "[6, 768]", "parameters: 294912 in LoRA factors + 4608 in extra tensors = 299520"}) {
            assertTrue(o.contains(s), "'" + s + "' in:\n" + o);
        }
    }

    /** A GPT-2-shaped base: Conv1D c_attn weights [768, 2304] (stored [in, out]), their biases, ln_f, and score.weight. */
    private Path syntheticBase(Arena arena, long seed) throws Exception {
        SplittableRandom rng = new SplittableRandom(seed);
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        for (int i = 0; i < LAYERS; i++) {
            w.add("transformer.h." + i + ".attn.c_attn.weight", TestData.uniform(arena, DType.F32, rng, 0.2, D, QKV));
            w.add("transformer.h." + i + ".attn.c_attn.bias", TestData.uniform(arena, DType.F32, rng, 0.2, QKV));
        }
        w.add("transformer.ln_f.weight", TestData.uniform(arena, DType.F32, rng, 1, D));
        w.add("score.weight", TestData.uniform(arena, DType.F32, rng, 1, 6, D));
        Path p = dir.resolve("gpt2.safetensors");
        w.write(p);
        return p;
    }

    @Test
    void mergeAddsTheTransposedDeltaAndReplacesTheHead() throws Exception {
        long seed = 0x6_7e2L;
        Path out = dir.resolve("merged.safetensors");
        try (Arena arena = Arena.ofShared()) {
            Path basePath = syntheticBase(arena, seed);
            StringWriter err = new StringWriter();
            int code = Main.run(new PrintWriter(new StringWriter(), true), new PrintWriter(err, true), "merge", "--base", basePath.toString(),
                    "--adapter", adapter.toString(), "--output", out.toString());
            assertEquals(0, code, err.toString());
            BaseCheckpoint base = BaseCheckpoint.open(basePath, arena);
            BaseCheckpoint merged = BaseCheckpoint.open(out, arena);
            AdapterSet set = AdapterSet.load(adapter, arena);
            for (int i = 0; i < LAYERS; i += 5) {          // layers 0, 5, 10 element by element against a double oracle
                AdapterModule m = set.module("transformer.h." + i + ".attn.c_attn");
                Tensor w = base.tensor(m.weightName());
                Tensor got = merged.tensor(m.weightName());
                float[] a = m.loraA().toFloatArray();       // [8, 768]
                float[] b = m.loraB().toFloatArray();       // [2304, 8]
                int moved = 0;
                for (int in = 0; in < D; in++) {
                    for (int o = 0; o < QKV; o++) {
                        double s = 0;
                        for (int j = 0; j < 8; j++) {
                            s += (double) b[o * 8 + j] * a[j * D + in];
                        }
                        double delta = m.gamma() * s;         // (γ·B·A)ᵀ[in, o]
                        double ref = w.get(in, o) + delta;
                        double tol = 4 * Math.ulp((float) Math.max(Math.abs(w.get(in, o)), Math.abs(delta)));
                        float g = got.get(in, o);
                        assertTrue(Math.abs(g - ref) <= tol, "seed " + seed + " layer " + i + " [" + in + "," + o + "]: " + g + " vs " + ref);
                        moved += g != w.get(in, o) ? 1 : 0;
                    }
                }
                assertTrue(moved > D * QKV / 2, "layer " + i + ": the trained adapter changes most of W (" + moved + ")");
            }
            assertEquals(-1, set.extras().get("score.weight").segment().mismatch(merged.tensor("score.weight").segment()),
                    "score.weight replaced by the trained head");
            for (String n : List.of("transformer.h.3.attn.c_attn.bias", "transformer.ln_f.weight")) {
                assertEquals(-1, base.tensor(n).segment().mismatch(merged.tensor(n).segment()), n + " copied byte for byte");
            }
        }
    }
}
