package dev.rslora.peft;

import dev.rslora.backend.Backend;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Save-time validation: an adapter that {@link AdapterSet#load} would refuse (a module that
 * target_modules does not admit) or read back differently (another r, α, scaling or dropout than
 * the config gives) is refused before anything is written, and lora_dropout round-trips.
 */
class AdapterSaveChecksTest {
    @TempDir
    Path dir;

    private final Backend ref = new ReferenceBackend();

    /** Layers over random frozen weights [8, 6] for {@code paths}, each with the config's hyper-parameters for its path. */
    private Map<String, LoraLinear> layers(Arena arena, PeftConfig config, List<String> paths, SplittableRandom rng) {
        Map<String, LoraLinear> out = new LinkedHashMap<>();
        int id = 0;
        for (String p : paths) {
            Tensor w = TestData.uniform(arena, DType.F32, rng, 1, 8, 6);
            LoraConfig lc = new LoraConfig(config.rankOf(p), config.alphaOf(p), config.scaling(), config.loraDropout(), Init.DEFAULT, 5);
            LoraLinear layer = LoraLinear.create(w, null, lc, DType.F32, ref, id++);
            for (long k = 0; k < layer.loraB().numel(); k++) {
                layer.loraB().set(k, (float) rng.nextDouble(-1, 1));
            }
            out.put(p, layer);
        }
        return out;
    }

    private static void closeAll(Map<String, LoraLinear> layers) {
        layers.values().forEach(LoraLinear::close);
    }

    @Test
    void aModuleThatTargetModulesDoesNotAdmitIsRefusedAtSaveTimeAndNothingIsWritten() {
        long seed = 0xa11L;
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q_proj"), 4, 8, Scaling.RSLORA, Init.DEFAULT);
            Map<String, LoraLinear> ls = layers(arena, config, List.of("model.layers.0.q_proj", "model.layers.0.k_proj"),
                    new SplittableRandom(seed));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(config, ls));
            assertTrue(e.getMessage().contains("model.layers.0.k_proj") && e.getMessage().contains("[q_proj]"), e.getMessage());

            // the public constructor does not check; save does, before writing anything
            Map<String, AdapterModule> mods = new LinkedHashMap<>();
            ls.forEach((p, l) -> mods.put(p, new AdapterModule(p, l.config(), l.loraA(), l.loraB())));
            AdapterSet unchecked = new AdapterSet(config, mods, Map.of());
            Path out = dir.resolve("never");
            e = assertThrows(IllegalArgumentException.class, () -> unchecked.save(out, DType.F32));
            assertTrue(e.getMessage().contains("model.layers.0.k_proj"), e.getMessage());
            assertFalse(Files.exists(out), "nothing written for a refused adapter");
            closeAll(ls);
        }
    }

    @Test
    void excludeModulesRegexTargetsAndLayerFiltersAreTheRulesLoadApplies() throws Exception {
        long seed = 0xb22L;
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rng = new SplittableRandom(seed);
            PeftConfig base = PeftConfig.create(List.of("q_proj"), 2, 4, Scaling.RSLORA, Init.DEFAULT);
            PeftConfig excluding = new PeftConfig(2, 4, true, 0, ModuleSelector.names(List.of("q_proj")),
                    ModuleSelector.names(List.of("layers.1.q_proj")), null, null, null, null, "none", false, true, null, null, null);
            Map<String, LoraLinear> two = layers(arena, base, List.of("model.layers.0.q_proj", "model.layers.1.q_proj"), rng);
            String msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(excluding, two)).getMessage();
            assertTrue(msg.contains("model.layers.1.q_proj") && msg.contains("exclude_modules"), msg);

            PeftConfig layer0Only = new PeftConfig(2, 4, true, 0, ModuleSelector.names(List.of("q_proj")), null, List.of(0), null,
                    null, null, "none", false, true, null, null, null);
            msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(layer0Only, two)).getMessage();
            assertTrue(msg.contains("model.layers.1.q_proj"), msg);

            PeftConfig regex = new PeftConfig(2, 4, true, 0, ModuleSelector.regex("model\\.layers\\.[01]\\.q_proj"), null, null, null,
                    null, null, "none", false, true, null, null, null);
            AdapterSet ok = AdapterSet.of(regex, two);
            ok.save(dir.resolve("regex"), DType.F32);
            AdapterSet back = AdapterSet.load(dir.resolve("regex"), arena);
            assertEquals(two.keySet(), back.modules().keySet());
            closeAll(two);
        }
    }

    @Test
    void anotherRankAlphaScalingOrDropoutThanTheConfigGivesIsRefused() {
        long seed = 0xc33L;
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q_proj"), 4, 8, Scaling.RSLORA, Init.DEFAULT).withDropout(0.1);
            Map<String, LoraLinear> ls = layers(arena, config, List.of("m.q_proj"), new SplittableRandom(seed));
            AdapterSet.of(config, ls);   // agrees
            String msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(config.withDropout(0.0), ls)).getMessage();
            assertTrue(msg.contains("dropout 0.1") && msg.contains("lora_dropout=0.0") && msg.contains("withDropout(0.1)"), msg);
            msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(config.withUseRslora(false), ls)).getMessage();
            assertTrue(msg.contains("RSLORA") && msg.contains("LORA"), msg);
            PeftConfig rank8 = config.withPatterns(PatternMap.of(Map.of("q_proj", 8)), PatternMap.empty());
            msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(rank8, ls)).getMessage();
            assertTrue(msg.contains("r=4") && msg.contains("r=8"), msg);
            PeftConfig alpha16 = config.withPatterns(PatternMap.empty(), PatternMap.of(Map.of("q_proj", 16.0)));
            msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(alpha16, ls)).getMessage();
            assertTrue(msg.contains("alpha=8.0") && msg.contains("alpha=16.0"), msg);
            closeAll(ls);
        }
    }

    /**
     * F16 holds up to ±65504: a larger finite value was saved as Infinity, which load accepted and a
     * forward turned into NaN. Refused naming the module, tensor, value and element; nothing written.
     * BF16 holds it, F16 its largest value, and a NaN already there is saved as it is.
     */
    @Test
    void aFiniteValueBeyondTheSavedDtypesRangeIsRefusedNotSavedAsInfinity() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q_proj"), 4, 8, Scaling.RSLORA, Init.DEFAULT);
            Map<String, LoraLinear> ls = layers(arena, config, List.of("l.0.q_proj"), new SplittableRandom(0xe55L));
            LoraLinear layer = ls.get("l.0.q_proj");
            layer.loraB().set(5, 1e6f);
            AdapterSet set = AdapterSet.of(config, ls);
            Path f16 = dir.resolve("f16");
            String msg = assertThrows(IllegalArgumentException.class, () -> set.save(f16, DType.F16)).getMessage();
            assertEquals("module l.0.q_proj: lora_B holds 1000000.0 (element 5), beyond F16's range (±65504): it would be saved as"
                    + " Infinity; save as F32 or BF16, or fix the weights; nothing was written", msg);
            assertFalse(Files.exists(f16), "nothing written");
            set.save(dir.resolve("bf16"), DType.BF16);
            assertEquals(DType.BF16.round(1e6f), AdapterSet.load(dir.resolve("bf16"), arena).module("l.0.q_proj").loraB().get(5));
            layer.loraB().set(5, 65504f);
            layer.loraA().set(0, Float.NaN);
            set.save(f16, DType.F16);
            AdapterModule back = AdapterSet.load(f16, arena).module("l.0.q_proj");
            assertEquals(65504f, back.loraB().get(5));
            assertTrue(Float.isNaN(back.loraA().get(0)));
            closeAll(ls);
        }
    }

    @Test
    void loraDropoutIsWrittenWithItsRealValueAndReadBack() throws Exception {
        long seed = 0xd44L;
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q_proj", "v_proj"), 4, 8, Scaling.RSLORA, Init.DEFAULT).withDropout(0.05);
            Map<String, LoraLinear> ls = layers(arena, config, List.of("l.0.q_proj", "l.0.v_proj"), new SplittableRandom(seed));
            Path out = dir.resolve("dropout");
            AdapterSet.of(config, ls).save(out, DType.F32);
            String json = Files.readString(out.resolve(AdapterSet.CONFIG_FILE));
            assertTrue(json.contains("\"lora_dropout\": 0.05"), json);
            AdapterSet back = AdapterSet.load(out, arena);
            assertEquals(0.05, back.config().loraDropout());
            assertEquals(config, back.config());
            for (Map.Entry<String, LoraLinear> e : ls.entrySet()) {
                AdapterModule m = back.module(e.getKey());
                assertEquals(0.05, m.config().dropout(), e.getKey());
                assertArrayEquals(e.getValue().loraA().toFloatArray(), m.loraA().toFloatArray(), e.getKey());
                assertArrayEquals(e.getValue().loraB().toFloatArray(), m.loraB().toFloatArray(), e.getKey());
            }
            closeAll(ls);
        }
    }

    /**
     * adapter_config.json stores rank_pattern / alpha_pattern with sorted keys (as PEFT does) and a
     * reader takes the first matching key in file order: a config whose in-memory order decides
     * another r or α than the sorted order would save an adapter that load refuses (rank) or reads
     * back with another γ (alpha, silently), so save refuses it.
     */
    @Test
    void patternKeysWhoseSortedOrderGivesAnotherRankOrAlphaAreRefusedAtSaveTime() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            List<String> paths = List.of("model.layers.0.q_proj", "model.layers.1.q_proj");
            Map<String, Double> alphas = new LinkedHashMap<>();
            alphas.put("q_proj", 16.0);            // first in memory: every q_proj has α 16
            alphas.put("layers.0.q_proj", 32.0);   // first once sorted ("l" < "q"): layer 0 would read α 32
            PeftConfig byAlpha = PeftConfig.builder().targetModules("q_proj").r(4).loraAlpha(8).useRslora(true)
                    .alphaPattern(alphas).build();
            Map<String, LoraLinear> ls = layers(arena, byAlpha, paths, new SplittableRandom(0xe55L));
            assertEquals(16.0, ls.get("model.layers.0.q_proj").config().alpha());
            String msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(byAlpha, ls)).getMessage();
            assertTrue(msg.contains("model.layers.0.q_proj") && msg.contains("alpha=16.0") && msg.contains("\"layers.0.q_proj\" -> 32.0")
                    && msg.contains("sorted"), msg);
            Map<String, AdapterModule> mods = new LinkedHashMap<>();
            ls.forEach((p, l) -> mods.put(p, new AdapterModule(p, l.config(), l.loraA(), l.loraB())));
            Path out = dir.resolve("alpha");
            msg = assertThrows(IllegalArgumentException.class, () -> new AdapterSet(byAlpha, mods, Map.of()).save(out, DType.F32))
                    .getMessage();
            assertTrue(msg.contains("model.layers.0.q_proj"), msg);
            assertFalse(Files.exists(out), "nothing written");
            closeAll(ls);

            Map<String, Integer> ranks = new LinkedHashMap<>();
            ranks.put("q_proj", 4);
            ranks.put("layers.0.q_proj", 2);
            PeftConfig byRank = PeftConfig.builder().targetModules("q_proj").r(8).loraAlpha(8).useRslora(true).rankPattern(ranks).build();
            Map<String, LoraLinear> lr = layers(arena, byRank, paths, new SplittableRandom(0xe56L));
            msg = assertThrows(IllegalArgumentException.class, () -> AdapterSet.of(byRank, lr)).getMessage();
            assertTrue(msg.contains("model.layers.0.q_proj") && msg.contains("r=4") && msg.contains("\"layers.0.q_proj\" -> 2"), msg);
            closeAll(lr);

            // keys whose order does not matter save and load back with the same r and α
            Map<String, Double> exclusive = new LinkedHashMap<>();
            exclusive.put("layers\\.1\\.q_proj", 16.0);
            exclusive.put("layers.0.q_proj", 32.0);
            PeftConfig ok = byAlpha.withPatterns(PatternMap.empty(), PatternMap.of(exclusive));
            Map<String, LoraLinear> lo = layers(arena, ok, paths, new SplittableRandom(0xe57L));
            AdapterSet.of(ok, lo).save(dir.resolve("ok"), DType.F32);
            AdapterSet back = AdapterSet.load(dir.resolve("ok"), arena);
            for (String p : paths) {
                assertEquals(lo.get(p).config().gamma(), back.module(p).gamma(), p);
            }
            closeAll(lo);
        }
    }

    /** The builder's "all-linear" is PEFT's string shorthand (a list holding it would name a module "all-linear"). */
    @Test
    void theBuildersAllLinearIsPeftsShorthandAndSavesAndLoads() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.builder().targetModules("all-linear").r(2).loraAlpha(4).useRslora(true).build();
            assertTrue(config.targetModules().isAllLinear(), config.targetModules().toString());
            Map<String, LoraLinear> ls = layers(arena, config, List.of("model.layers.0.q_proj", "model.layers.0.mlp.down_proj"),
                    new SplittableRandom(0xf66L));
            Path out = dir.resolve("all-linear");
            AdapterSet.of(config, ls).save(out, DType.F32);
            assertTrue(Files.readString(out.resolve(AdapterSet.CONFIG_FILE)).contains("\"target_modules\": \"all-linear\""));
            assertEquals(ls.keySet(), AdapterSet.load(out, arena).modules().keySet());
            closeAll(ls);
            // a checkpoint does not say which 2-D weights are linear layers: init says so instead of "matches nothing"
            Path ckpt = dir.resolve("base.safetensors");
            new dev.rslora.io.SafetensorsWriter().add("model.layers.0.q_proj.weight", Tensor.allocate(arena, DType.F32, 8, 6)).write(ckpt);
            String msg = assertThrows(PeftFormatException.class,
                    () -> AdapterSet.init(BaseCheckpoint.open(ckpt, arena), config, 1, arena)).getMessage();
            assertTrue(msg.contains("all-linear") && msg.contains("list the module names") && msg.contains("model.layers.0.q_proj"), msg);
        }
    }

    /** An absurd rank failed with the JDK's bare OutOfMemoryError; it names the module, r and the bytes now. */
    @Test
    void initWithARankNoMachineCanAllocateNamesTheModule() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path ckpt = dir.resolve("wide.safetensors");
            new dev.rslora.io.SafetensorsWriter().add("m.q_proj.weight", Tensor.allocate(arena, DType.F32, 1, 1 << 20)).write(ckpt);
            PeftConfig config = PeftConfig.builder().targetModules("q_proj").r(Integer.MAX_VALUE).loraAlpha(8).useRslora(true).build();
            // lora_A alone: (2^31 − 1)·2^20·4 bytes ≈ 8 PB: more than MemAvailable (refused before allocating), and
            // refused by malloc on any machine where that cannot be read, before any page is touched
            String msg = assertThrows(IllegalArgumentException.class,
                    () -> AdapterSet.init(BaseCheckpoint.open(ckpt, arena), config, 1, arena)).getMessage();
            assertTrue(msg.contains("m.q_proj") && msg.contains("r=2147483647") && msg.contains("this machine"), msg);
        }
    }

    @Test
    void anExtraTensorNamedLikeALoraTensorIsRefused() {
        try (Arena arena = Arena.ofShared()) {
            PeftConfig config = PeftConfig.create(List.of("q_proj"), 2, 4, Scaling.RSLORA, Init.DEFAULT);
            Map<String, LoraLinear> ls = layers(arena, config, List.of("m.q_proj"), new SplittableRandom(7));
            AdapterSet set = AdapterSet.of(config, ls).withExtras(Map.of("m.k_proj.lora_A.weight", Tensor.allocate(arena, DType.F32, 2, 6)));
            String msg = assertThrows(IllegalArgumentException.class, () -> set.save(dir.resolve("x"), DType.F32)).getMessage();
            assertTrue(msg.contains("m.k_proj.lora_A.weight"), msg);
            assertFalse(Files.exists(dir.resolve("x")));
            closeAll(ls);
        }
    }
}
