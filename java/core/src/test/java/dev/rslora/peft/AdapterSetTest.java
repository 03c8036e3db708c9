package dev.rslora.peft;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.Init;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Adapter folders: PEFT-layout load (F32/BF16/F16), init → save → load identity, init distributions, refusals. */
class AdapterSetTest {
    @TempDir
    Path dir;

    @Test
    void aBaseCheckpointThatIsAFifoIsRefusedAsNotARegularFileNotAsMissing() throws Exception {
        Path fifo = dev.rslora.testing.Fifo.create(dir.resolve("model.safetensors"));
        try (Arena arena = Arena.ofConfined()) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> BaseCheckpoint.open(fifo, arena));
            assertTrue(e.getMessage().contains(fifo.toString()) && e.getMessage().contains("not a regular file"), e.getMessage());
        } finally {
            dev.rslora.testing.Fifo.release(fifo);
        }
    }

    @Test
    void anAdapterWeightsFileThatIsAFifoIsRefusedAsNotARegularFileNotAsMissing() throws Exception {
        Path adapter = Files.createDirectory(dir.resolve("adapter"));
        Files.writeString(adapter.resolve(AdapterSet.CONFIG_FILE), "{\"peft_type\": \"LORA\", \"target_modules\": [\"q_proj\"]}");
        Path fifo = dev.rslora.testing.Fifo.create(adapter.resolve(AdapterSet.WEIGHTS_FILE));
        try (Arena arena = Arena.ofConfined()) {
            java.io.IOException e = assertThrows(java.io.IOException.class, () -> AdapterSet.load(adapter, arena));
            assertTrue(e.getMessage().contains(fifo.toString()) && e.getMessage().contains("not a regular file"), e.getMessage());
        } finally {
            dev.rslora.testing.Fifo.release(fifo);
        }
    }

    @Test
    void goldenAdaptersLoadInEveryDtypeWithTheSameValues() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            AdapterSet f32 = AdapterSet.load(Golden.path("adapter-rslora"), arena);
            assertEquals(List.of("model.layers.0.mlp.down_proj", "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                    "model.layers.1.mlp.down_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"),
                    List.copyOf(f32.modules().keySet()));
            assertEquals(List.of("lm_head.weight"), List.copyOf(f32.extras().keySet()));
            assertEquals(List.of(DType.F32), f32.dtypes());
            AdapterModule q1 = f32.module("model.layers.1.self_attn.q_proj");
            assertEquals(8, q1.rank());
            assertEquals(8 / Math.sqrt(8), q1.gamma(), 0.0);
            assertTrue(q1.loraA().segment().isMapped(), "zero-copy view of the mapped file");
            assertEquals(736, f32.loraParameterCount());
            assertEquals(512, f32.extraParameterCount());
            for (String variant : new String[] {"adapter-rslora-bf16", "adapter-rslora-f16"}) {
                AdapterSet other = AdapterSet.load(Golden.path(variant), arena);
                assertEquals(f32.config(), other.config(), variant);
                assertEquals(List.of(variant.endsWith("bf16") ? DType.BF16 : DType.F16), other.dtypes());
                for (AdapterModule m : f32.modules().values()) {
                    AdapterModule o = other.module(m.path());
                    assertArrayEquals(m.loraA().toFloatArray(), o.loraA().toFloatArray(), variant + " " + m.path());
                    assertArrayEquals(m.loraB().toFloatArray(), o.loraB().toFloatArray(), variant + " " + m.path());
                    assertEquals(m.gamma(), o.gamma());
                }
            }
        }
    }

    /**
     * init allocated A and B of any rank and filled A: `rslora init --rank 100000` on a GPT-2 ran for minutes
     * towards 15 GB on a 24 GB machine. An adapter needing more than the memory available is refused up
     * front, naming the total and the largest module; exactly the available bytes pass; an unknown amount
     * (−1: no /proc/meminfo) checks nothing. This machine reports what it has.
     */
    @Test
    void anAdapterBeyondTheAvailableMemoryIsRefusedBeforeAllocating() throws Exception {
        PeftConfig config = PeftConfig.create(List.of("q_proj", "v_proj"), 4, 16, Scaling.RSLORA, Init.DEFAULT);
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint base = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            long need = 0;
            for (String path : base.linearModules()) {
                if (config.targets(path)) {
                    long[] w = base.entry(path + ".weight").shape();
                    need += 4L * 4 * (w[0] + w[1]);
                }
            }
            long total = need;
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AdapterSet.refuseBeyondMemory(base, config, total - 1));
            assertTrue(e.getMessage().contains("need " + total + " bytes in F32") && e.getMessage().contains("r=4")
                    && e.getMessage().contains("than the " + (total - 1) + " bytes this machine has available"), e.getMessage());
            AdapterSet.refuseBeyondMemory(base, config, total);
            AdapterSet.refuseBeyondMemory(base, config, -1);
            if (Files.exists(Path.of("/proc/meminfo"))) {
                assertTrue(AdapterSet.availableMemoryBytes() > 0, "MemAvailable read");
            }
        }
    }

    @Test
    void initSaveLoadIsIdenticalAndSavingAgainReproducesTheFilesByteForByte() throws Exception {
        PeftConfig config = PeftConfig.create(List.of("q_proj", "v_proj"), 4, 16, Scaling.RSLORA, Init.DEFAULT).withBaseModel("tiny");
        Path a = dir.resolve("a");
        Path b = dir.resolve("b");
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint base = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            AdapterSet fresh = AdapterSet.init(base, config, 7, arena);
            assertEquals(4, fresh.modules().size());
            fresh.save(a, DType.F32);
            AdapterSet loaded = AdapterSet.load(a, arena);
            assertEquals(config, loaded.config());
            assertEquals(List.copyOf(fresh.modules().keySet()), List.copyOf(loaded.modules().keySet()));
            for (AdapterModule m : fresh.modules().values()) {
                AdapterModule l = loaded.module(m.path());
                assertEquals(-1, m.loraA().segment().mismatch(l.loraA().segment()), m.path());
                assertEquals(-1, m.loraB().segment().mismatch(l.loraB().segment()), m.path());
                assertEquals(0.0, Arrays.stream(toDoubles(l.loraB())).map(Math::abs).max().orElseThrow(), "B = 0");
                assertEquals(m.config(), l.config());
                assertEquals(8.0, l.gamma(), "16/√4");
            }
            loaded.save(b, DType.F32);
            for (String f : new String[] {AdapterSet.CONFIG_FILE, AdapterSet.WEIGHTS_FILE}) {
                assertEquals(-1, Files.mismatch(a.resolve(f), b.resolve(f)), f);
            }
            SafetensorsFile file = SafetensorsFile.open(a.resolve(AdapterSet.WEIGHTS_FILE), arena);
            assertEquals(Map.of("format", "pt"), file.metadata());
            assertTrue(file.contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
            assertArrayEquals(new long[] {8, 4}, file.entry("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").shape());

            Path half = dir.resolve("bf16");
            loaded.save(half, DType.BF16);
            AdapterSet h = AdapterSet.load(half, arena);
            assertEquals(List.of(DType.BF16), h.dtypes());
            for (AdapterModule m : fresh.modules().values()) {
                float[] want = m.loraA().to(arena, DType.BF16).toFloatArray();
                assertArrayEquals(want, h.module(m.path()).loraA().toFloatArray(), m.path());
            }
            AdapterSet other = AdapterSet.init(base, config, 8, arena);
            assertNotEquals(-1, other.module("model.layers.0.self_attn.q_proj").loraA().segment()
                    .mismatch(fresh.module("model.layers.0.self_attn.q_proj").loraA().segment()), "another seed, another A");
            AdapterSet again = AdapterSet.init(base, config, 7, arena);
            assertEquals(-1, again.module("model.layers.1.self_attn.v_proj").loraA().segment()
                    .mismatch(fresh.module("model.layers.1.self_attn.v_proj").loraA().segment()), "the same seed, the same A");
        }
    }

    private static double[] toDoubles(Tensor t) {
        float[] f = t.toFloatArray();
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    /** Kolmogorov–Smirnov statistic of {@code xs} against {@code cdf}. */
    private static double ks(double[] xs, java.util.function.DoubleUnaryOperator cdf) {
        double[] s = xs.clone();
        Arrays.sort(s);
        double d = 0;
        for (int i = 0; i < s.length; i++) {
            double f = cdf.applyAsDouble(s[i]);
            d = Math.max(d, Math.max((i + 1.0) / s.length - f, f - (double) i / s.length));
        }
        return d;
    }

    /** Φ(x) via erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
    private static double normalCdf(double x) {
        double z = Math.abs(x) / Math.sqrt(2);
        double t = 1 / (1 + 0.3275911 * z);
        double erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-z * z);
        return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
    }

    @Test
    void initialisationsFollowSpecDistributions() throws Exception {
        Path basePath = dir.resolve("wide.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            new SafetensorsWriter().add("blk.proj.weight", Tensor.allocate(arena, DType.BF16, 48, 1024)).write(basePath);
            BaseCheckpoint base = BaseCheckpoint.open(basePath, arena);
            int r = 16;
            double critical = 1.95 / Math.sqrt(r * 1024);       // KS at significance 0.001
            for (Init init : Init.values()) {
                PeftConfig c = PeftConfig.create(List.of("proj"), r, 16, Scaling.RSLORA, init);
                for (long seed : new long[] {1, 2}) {
                    double[] a = toDoubles(AdapterSet.init(base, c, seed, arena).module("blk.proj").loraA());
                    double d = init == Init.DEFAULT
                            ? ks(a, x -> Math.min(1, Math.max(0, (x + 1 / 32.0) * 16)))   // U(-1/√1024, 1/√1024)
                            : ks(a, x -> normalCdf(x * r));                               // N(0, (1/r)²)
                    assertTrue(d < critical, init + " seed " + seed + ": KS D = " + d + " >= " + critical);
                    double wrong = init == Init.DEFAULT ? ks(a, x -> normalCdf(x * 32 * Math.sqrt(3))) : ks(a, x -> normalCdf(x * r / 2));
                    assertTrue(wrong > critical, init + ": the test can tell distributions apart (D = " + wrong + ")");
                }
            }
        }
    }

    @Test
    void layersBuiltFromTheSetStartAsTheBaseLayerAndTrainedLayersSaveAndLoad() throws Exception {
        long seed = 0x5eed_a1L;
        SplittableRandom rng = new SplittableRandom(seed);
        Backend ref = new ReferenceBackend();
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint base = BaseCheckpoint.open(Golden.path("base-f32.safetensors"), arena);
            PeftConfig config = PeftConfig.create(List.of("q_proj"), 4, 8, Scaling.RSLORA, Init.DEFAULT);
            AdapterSet set = AdapterSet.init(base, config, 3, arena);
            Map<String, LoraLinear> layers = new LinkedHashMap<>();
            int id = 0;
            for (String path : set.modules().keySet()) {
                layers.put(path, set.layer(path, base.tensor(path + ".weight"), null, ref, id++, 11));
            }
            Tensor x = TestData.uniform(arena, DType.F32, rng, 1, 3, 16);
            LoraLinear q0 = layers.get("model.layers.0.self_attn.q_proj");
            q0.train(false);
            Tensor y = q0.forward(arena, x);
            Tensor w = base.tensor("model.layers.0.self_attn.q_proj.weight");
            for (int n = 0; n < 3; n++) {
                for (int o = 0; o < 16; o++) {
                    double s = 0;
                    for (int i = 0; i < 16; i++) {
                        s += (double) x.get(n, i) * w.get(o, i);
                    }
                    assertEquals(s, y.get(n, o), 1e-5, "seed " + seed + " B = 0: the base output");
                }
            }
            for (LoraLinear l : layers.values()) {
                for (long k = 0; k < l.loraB().numel(); k++) {
                    l.loraB().set(k, (float) rng.nextDouble(-1, 1));        // "training"
                }
            }
            AdapterSet.of(config, layers).save(dir.resolve("trained"), DType.F32);
            AdapterSet back = AdapterSet.load(dir.resolve("trained"), arena);
            for (Map.Entry<String, LoraLinear> e : layers.entrySet()) {
                assertArrayEquals(e.getValue().loraA().toFloatArray(), back.module(e.getKey()).loraA().toFloatArray());
                assertArrayEquals(e.getValue().loraB().toFloatArray(), back.module(e.getKey()).loraB().toFloatArray());
                e.getValue().close();
            }
            PeftConfig wrongRank = PeftConfig.create(List.of("q_proj"), 8, 8, Scaling.RSLORA, Init.DEFAULT);
            assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(wrongRank, layers));
        }
    }

    // ------------------------------------------------------------------ refusals

    private static final String CONFIG = "{\"peft_type\":\"LORA\",\"r\":2,\"lora_alpha\":4,\"target_modules\":[\"q_proj\"]%s}";

    /** An adapter folder with {@code config} (extra fields spliced in) and the named tensors. */
    private Path adapter(String name, String extraConfig, Map<String, long[]> tensors) throws Exception {
        Path d = Files.createDirectory(dir.resolve(name));
        Files.writeString(d.resolve(AdapterSet.CONFIG_FILE), CONFIG.formatted(extraConfig));
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
        try (Arena arena = Arena.ofConfined()) {
            SplittableRandom rng = new SplittableRandom(5);
            for (Map.Entry<String, long[]> e : tensors.entrySet()) {
                w.add(e.getKey(), TestData.uniform(arena, DType.F32, rng, 1, e.getValue()));
            }
            w.write(d.resolve(AdapterSet.WEIGHTS_FILE));
        }
        return d;
    }

    private static Map<String, long[]> pair(String path, int r, int dIn, int dOut) {
        Map<String, long[]> m = new LinkedHashMap<>();
        m.put("base_model.model." + path + ".lora_A.weight", new long[] {r, dIn});
        m.put("base_model.model." + path + ".lora_B.weight", new long[] {dOut, r});
        return m;
    }

    private String refused(Path adapterDir) {
        try (Arena arena = Arena.ofConfined()) {
            return assertThrows(PeftFormatException.class, () -> AdapterSet.load(adapterDir, arena)).getMessage();
        }
    }

    private static void assertMentions(String msg, String... parts) {
        for (String p : parts) {
            assertTrue(msg.contains(p), "'" + p + "' in: " + msg);
        }
        assertTrue(!msg.contains("\n"), msg);
    }

    @Test
    void unsupportedOrInconsistentAdaptersAreRefusedNamingWhatIsWrong() throws Exception {
        Map<String, long[]> ok = pair("m.q_proj", 2, 6, 5);
        assertMentions(refused(adapter("dora", ",\"use_dora\":true", ok)), "use_dora");
        Map<String, long[]> magnitude = new LinkedHashMap<>(ok);
        magnitude.put("base_model.model.m.q_proj.lora_magnitude_vector", new long[] {5});
        assertMentions(refused(adapter("magnitude", "", magnitude)), "lora_magnitude_vector", "DoRA");
        assertMentions(refused(adapter("rank", "", pair("m.q_proj", 3, 6, 5))), "m.q_proj", "[3, 6]", "r = 2");
        assertMentions(refused(adapter("rankpattern", ",\"rank_pattern\":{\"q_proj\":4}", ok)), "m.q_proj", "rank_pattern \"q_proj\" -> 4");
        assertMentions(refused(adapter("untargeted", "", pair("m.k_proj", 2, 6, 5))), "m.k_proj", "does not target", "q_proj");
        Map<String, long[]> half = new LinkedHashMap<>();
        half.put("base_model.model.m.q_proj.lora_A.weight", new long[] {2, 6});
        assertMentions(refused(adapter("half", "", half)), "m.q_proj", "no base_model.model.m.q_proj.lora_B.weight");
        Map<String, long[]> mismatched = new LinkedHashMap<>();
        mismatched.put("base_model.model.m.q_proj.lora_A.weight", new long[] {2, 6});
        mismatched.put("base_model.model.m.q_proj.lora_B.weight", new long[] {5, 3});
        assertMentions(refused(adapter("mismatched", "", mismatched)), "m.q_proj", "[2, 6]", "[5, 3]");
        Map<String, long[]> foreign = new LinkedHashMap<>(ok);
        foreign.put("model.q_proj.lora_A.weight", new long[] {2, 6});
        assertMentions(refused(adapter("foreign", "", foreign)), "model.q_proj.lora_A.weight", "base_model.model.");
        Map<String, long[]> embedding = new LinkedHashMap<>(ok);
        embedding.put("base_model.model.embed.lora_embedding_A", new long[] {2, 10});
        assertMentions(refused(adapter("embedding", "", embedding)), "lora_embedding_A", "not supported");
        // keys of model.state_dict() keep the adapter name; the message said "not a lora_A.weight / lora_B.weight"
        Map<String, long[]> named = new LinkedHashMap<>();
        named.put("base_model.model.m.q_proj.lora_A.default.weight", new long[] {2, 6});
        named.put("base_model.model.m.q_proj.lora_B.default.weight", new long[] {5, 2});
        assertMentions(refused(adapter("named", "", named)), "lora_A.default.weight", "adapter name \"default\"", "save_pretrained");
        Map<String, long[]> bias = new LinkedHashMap<>(ok);
        bias.put("base_model.model.m.q_proj.lora_B.bias", new long[] {5});
        assertMentions(refused(adapter("bias", ",\"lora_bias\":true", bias)), "lora_B.bias", "lora_bias");
        assertMentions(refused(adapter("nopath", "", pair("", 2, 6, 5))), "base_model.model..lora_A.weight", "does not name a module");
        assertMentions(refused(adapter("emptypart", "", pair("m..q_proj", 2, 6, 5))), "m..q_proj", "does not name a module");
        Path noWeights = Files.createDirectory(dir.resolve("empty"));
        Files.writeString(noWeights.resolve("adapter_model.bin"), "pickle");
        assertMentions(refused(noWeights), "adapter_model.safetensors", "adapter_model.bin");
    }

    @Test
    void aZeroLoraBiasIsAcceptedAsPlainLora() throws Exception {
        Path d = adapter("zerobias", ",\"lora_bias\":true", pair("m.q_proj", 2, 6, 5));
        // rewrite with an all-zero bias next to the pair
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(d.resolve(AdapterSet.WEIGHTS_FILE), arena);
            SafetensorsWriter w = new SafetensorsWriter().metadata(f.metadata());
            for (String n : f.names()) {
                w.copy(f, n);
            }
            w.add("base_model.model.m.q_proj.lora_B.bias", Tensor.allocate(arena, DType.F32, 5));
            w.write(d.resolve(AdapterSet.WEIGHTS_FILE));
            AdapterSet set = AdapterSet.load(d, arena);
            assertEquals(List.of("m.q_proj"), List.copyOf(set.modules().keySet()));
            assertEquals(2.0, set.module("m.q_proj").gamma(), "use_rslora missing: γ = α/r = 4/2");
        }
    }

    /**
     * The file entry points of the peft package threw raw JDK NullPointerExceptions for a null path, arena or
     * dtype (Files.provider, SafetensorsDtype.of); each names its argument, before anything is read or written.
     */
    @Test
    void theFileEntryPointsNameANullArgument() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            AdapterSet set = new AdapterSet(PeftConfig.create(List.of("q"), 1, 1, Scaling.RSLORA, Init.DEFAULT), Map.of(), Map.of());
            record Case(String message, org.junit.jupiter.api.function.Executable call) {
            }
            List<Case> cases = List.of(
                    new Case("AdapterSet.load: dir is null", () -> AdapterSet.load(null, arena)),
                    new Case("AdapterSet.load: arena is null", () -> AdapterSet.load(dir, null)),
                    new Case("AdapterSet.save: dir is null", () -> set.save(null, DType.F32)),
                    new Case("AdapterSet.save: dtype is null", () -> set.save(dir.resolve("out"), null)),
                    new Case("BaseCheckpoint.open: path is null", () -> BaseCheckpoint.open(null, arena)),
                    new Case("BaseCheckpoint.open: arena is null", () -> BaseCheckpoint.open(dir, null)),
                    new Case("PeftConfigReader.read: file is null", () -> PeftConfigReader.read(null)));
            for (Case c : cases) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c.call(), c.message());
                assertEquals(c.message(), e.getMessage());
            }
            assertTrue(Files.notExists(dir.resolve("out")), "nothing written");
        }
    }

    @Test
    void theOtherEntryPointsNameANullArgument() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q"), 1, 1, Scaling.RSLORA, Init.DEFAULT);
            AdapterSet set = new AdapterSet(config, Map.of(), Map.of());
            Map<String, AdapterModule> nullModule = new java.util.HashMap<>();
            nullModule.put("q", null);
            Map<String, dev.rslora.core.LoraLinear> nullLayer = new java.util.HashMap<>();
            nullLayer.put("q", null);
            record Case(String message, org.junit.jupiter.api.function.Executable call) {
            }
            List<Case> cases = List.of(
                    new Case("AdapterSet: config is null", () -> new AdapterSet(null, Map.of(), Map.of())),
                    new Case("AdapterSet: modules is null", () -> new AdapterSet(config, null, Map.of())),
                    new Case("AdapterSet: extras is null", () -> new AdapterSet(config, Map.of(), null)),
                    new Case("AdapterSet: module q is null", () -> new AdapterSet(config, nullModule, Map.of())),
                    new Case("AdapterSet.withExtras: more is null", () -> set.withExtras(null)),
                    new Case("AdapterSet.of: config is null", () -> AdapterSet.of(null, Map.of())),
                    new Case("AdapterSet.of: layers is null", () -> AdapterSet.of(config, null)),
                    new Case("AdapterSet.of: layer q is null", () -> AdapterSet.of(config, nullLayer)),
                    new Case("AdapterSet.init: base is null", () -> AdapterSet.init(null, config, 1, arena)),
                    new Case("CheckpointMerge: base is null", () -> new CheckpointMerge(null, set, false)),
                    new Case("PeftConfigWriter.toJson: config is null", () -> PeftConfigWriter.toJson(null)),
                    new Case("PeftConfig.targets: path is null", () -> config.targets(null)),
                    new Case("PeftConfig.admits: path is null", () -> config.admits(null)),
                    new Case("targetModulesRegex: regex is null", () -> PeftConfig.builder().targetModulesRegex(null)),
                    new Case("rankPattern: ranks is null", () -> PeftConfig.builder().rankPattern(null)),
                    new Case("alphaPattern: alphas is null", () -> PeftConfig.builder().alphaPattern(null)),
                    new Case("ModuleSelector.names: names is null", () -> ModuleSelector.names(null)),
                    new Case("ModuleSelector.regex: regex is null", () -> ModuleSelector.regex(null)),
                    new Case("ModuleSelector.matches: path is null", () -> ModuleSelector.regex("q").matches(null)));
            for (Case c : cases) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c.call(), c.message());
                assertEquals(c.message(), e.getMessage());
            }
        }
    }
}
