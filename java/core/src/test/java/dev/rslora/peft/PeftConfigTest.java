package dev.rslora.peft;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.core.Init;
import dev.rslora.core.Scaling;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** adapter_config.json: PEFT's defaults, matching rules, refusals, and the writer's exact format. */
class PeftConfigTest {

    private static PeftConfig parse(String json) throws Exception {
        return PeftConfigReader.parse(json, "adapter_config.json");
    }

    private static String refusal(String json) {
        return assertThrows(PeftFormatException.class, () -> parse(json)).getMessage();
    }

    @Test
    void perModuleRankAlphaAndGammaAgreeWithPythonsReMatch() throws Exception {
        for (String name : new String[] {"rslora", "lora"}) {
            PeftConfig c = PeftConfigReader.read(Golden.path("adapter-" + name + "/adapter_config.json"));
            JsonNode expected = new ObjectMapper().readTree(Files.readString(Golden.path("expected/modules-" + name + ".json")));
            assertEquals(6, expected.size());
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String path = e.getKey();
                assertTrue(c.targets(path), path);
                assertEquals(e.getValue().get("r").intValue(), c.rankOf(path), name + " r of " + path);
                assertEquals(e.getValue().get("alpha").doubleValue(), c.alphaOf(path), name + " alpha of " + path);
                assertEquals(e.getValue().get("gamma").doubleValue(), c.gammaOf(path), 1e-15, name + " gamma of " + path);
            }
            assertFalse(c.targets("model.layers.0.self_attn.k_proj"));
            assertFalse(c.targets("lm_head"), "modules_to_save / untargeted");
        }
    }

    @Test
    void patternKeysMatchAtADotBoundaryFirstInFileOrderAndCaretAnchors() throws Exception {
        PeftConfig c = parse("""
                {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"],
                 "rank_pattern": {"q_proj": 4, "layers.1.self_attn.q_proj": 2, "^layers.2.self_attn.q_proj": 6,
                                  "^model.layers.3.self_attn.q_proj": 12, "layers\\\\.[5-7]\\\\..*": 3},
                 "alpha_pattern": {"layers.1.self_attn.q_proj": 7.5}}
                """);
        assertEquals(4, c.rankOf("model.layers.1.self_attn.q_proj"), "the first key in file order wins, not the longest");
        assertEquals(4, c.rankOf("model.layers.3.self_attn.q_proj"), "q_proj comes first");
        assertEquals(8, c.rankOf("model.layers.3.self_attn.xq_proj"), "no match inside a name: only at a dot boundary");
        assertEquals(2, parse("{\"peft_type\":\"LORA\",\"rank_pattern\":{\"layers.1.self_attn.q_proj\":2}}").rankOf("model.layers.1.self_attn.q_proj"));
        assertEquals(8, parse("{\"peft_type\":\"LORA\",\"rank_pattern\":{\"^layers.2.self_attn.q_proj\":6}}").rankOf("model.layers.2.self_attn.q_proj"),
                "^ anchors the key at the start of the path");
        assertEquals(12, parse("{\"peft_type\":\"LORA\",\"rank_pattern\":{\"^model.layers.3.self_attn.q_proj\":12}}").rankOf("model.layers.3.self_attn.q_proj"));
        assertEquals(3, parse("{\"peft_type\":\"LORA\",\"rank_pattern\":{\"layers\\\\.[5-7]\\\\..*\":3}}").rankOf("model.layers.6.mlp.up_proj"),
                "keys are regexes");
        assertEquals(7.5, c.alphaOf("model.layers.1.self_attn.q_proj"));
        assertEquals(16, c.alphaOf("model.layers.0.self_attn.q_proj"));
        assertEquals(7.5 / Math.sqrt(4), c.withUseRslora(true).gammaOf("model.layers.1.self_attn.q_proj"), 0.0);
        assertEquals(7.5 / 4, c.gammaOf("model.layers.1.self_attn.q_proj"), 0.0);
    }

    @Test
    void targetModulesListIsASuffixAtADotBoundaryAndAStringIsAFullMatch() throws Exception {
        PeftConfig list = parse("{\"peft_type\":\"LORA\",\"target_modules\":[\"v_proj\",\"self_attn.q_proj\",\"lm_head\"]}");
        assertTrue(list.targets("model.layers.0.self_attn.v_proj"));
        assertTrue(list.targets("model.layers.0.self_attn.q_proj"));
        assertTrue(list.targets("lm_head"), "an exact path matches");
        assertFalse(list.targets("model.layers.0.self_attn.xv_proj"));
        assertFalse(list.targets("model.layers.0.cross_attn_q_proj"));
        assertFalse(list.targets("model.layers.0.self_attn.v_proj.extra"));
        PeftConfig regex = parse("{\"peft_type\":\"LORA\",\"target_modules\":\".*\\\\.(q|v)_proj\"}");
        assertTrue(regex.targets("model.layers.0.self_attn.q_proj"));
        assertFalse(regex.targets("model.layers.0.self_attn.k_proj"));
        assertFalse(regex.targets("q_proj"), "full match: the regex needs a dot before");
        assertFalse(parse("{\"peft_type\":\"LORA\",\"target_modules\":\"q_proj\"}").targets("model.q_proj"), "a string is not a suffix");
    }

    @Test
    void excludeModulesLayerFiltersAndModulesToSaveRemoveTargets() throws Exception {
        PeftConfig c = parse("""
                {"peft_type": "LORA", "target_modules": ["q_proj", "model.layers.9.self_attn.k_proj"],
                 "exclude_modules": ["layers.2.self_attn.q_proj"], "layers_to_transform": [0, 2, 9], "layers_pattern": "layers",
                 "modules_to_save": ["lm_head"]}
                """);
        assertTrue(c.targets("model.layers.0.self_attn.q_proj"));
        assertFalse(c.targets("model.layers.1.self_attn.q_proj"), "layer 1 not transformed");
        assertFalse(c.targets("model.layers.2.self_attn.q_proj"), "excluded");
        assertTrue(c.targets("model.layers.9.self_attn.k_proj"), "an exact path ignores the layer filter");
        assertFalse(c.targets("model.h.0.self_attn.q_proj"), "layers_pattern names the list");
        PeftConfig single = parse("{\"peft_type\":\"LORA\",\"target_modules\":[\"c_attn\"],\"layers_to_transform\":3}");
        assertTrue(single.targets("transformer.h.3.attn.c_attn"), "without layers_pattern any list name counts");
        assertFalse(single.targets("transformer.h.4.attn.c_attn"));
        PeftConfig save = parse("{\"peft_type\":\"LORA\",\"target_modules\":[\"dense\"],\"modules_to_save\":[\"classifier\"]}");
        assertTrue(save.targets("encoder.layer.0.dense"));
        assertFalse(save.targets("classifier.dense"), "never inside a modules_to_save module");
        // modules_to_save holds module names (PEFT compares them as text), not regexes: "[" is no syntax error, "." no wildcard
        PeftConfig literal = parse("{\"peft_type\":\"LORA\",\"target_modules\":[\"dense\"],\"modules_to_save\":[\"head[0]\",\"cls.out\"]}");
        assertFalse(literal.targets("head[0].dense"));
        assertTrue(literal.targets("head0.dense"));
        assertTrue(literal.targets("clsXout.dense"));
        assertFalse(literal.targets("cls.out.dense"));
    }

    @Test
    void missingKeysTakePeftDefaultsAndUnknownKeysAreIgnored() throws Exception {
        PeftConfig c = parse("{\"peft_type\": \"LORA\", \"some_future_field\": {\"x\": [1, 2]}, \"loftq_config\": {}, \"megatron_config\": null}");
        assertEquals(8, c.r());
        assertEquals(8.0, c.loraAlpha());
        assertFalse(c.useRslora(), "missing use_rslora means false");
        assertEquals(Scaling.LORA, c.scaling());
        assertEquals(1.0, c.gammaOf("any.module"), "γ = α/r = 8/8");
        assertEquals(0.0, c.loraDropout());
        assertEquals("none", c.bias());
        assertFalse(c.fanInFanOut());
        assertEquals(Boolean.TRUE, c.initLoraWeights());
        assertNull(c.targetModules());
        assertFalse(c.targets("model.q_proj"));
        assertEquals(Init.GAUSSIAN, parse("{\"peft_type\":\"LORA\",\"init_lora_weights\":\"gaussian\"}").init());
    }

    @Test
    void unsupportedVariantsAndMalformedFieldsAreRefusedNamingTheField() {
        String[][] cases = {
                {"{\"peft_type\":\"LORA\",\"use_dora\":true}", "\"use_dora\"", "DoRA"},
                {"{\"peft_type\":\"LORA\",\"use_qalora\":true}", "\"use_qalora\""},
                {"{\"peft_type\":\"LORA\",\"loftq_config\":{\"loftq_bits\":4}}", "\"loftq_config\""},
                {"{\"peft_type\":\"LORA\",\"layer_replication\":[[0,4],[2,5]]}", "\"layer_replication\""},
                {"{\"peft_type\":\"LORA\",\"megatron_config\":{\"tp\":2}}", "\"megatron_config\""},
                {"{\"peft_type\":\"LORA\",\"trainable_token_indices\":[1,2]}", "\"trainable_token_indices\""},
                {"{\"peft_type\":\"LORA\",\"init_lora_weights\":\"pissa_niter_4\"}", "\"init_lora_weights\"", "base weights"},
                {"{\"peft_type\":\"LORA\",\"init_lora_weights\":\"olora\"}", "\"init_lora_weights\""},
                {"{\"peft_type\":\"LORA\",\"init_lora_weights\":\"magic\"}", "\"init_lora_weights\"", "magic"},
                {"{\"peft_type\":\"PREFIX_TUNING\"}", "\"peft_type\"", "PREFIX_TUNING"},
                {"{\"r\":8}", "\"peft_type\"", "missing"},
                {"{\"peft_type\":\"LORA\",\"r\":\"8\"}", "\"r\"", "integer"},
                {"{\"peft_type\":\"LORA\",\"r\":0}", "r=0"},
                {"{\"peft_type\":\"LORA\",\"lora_alpha\":[8]}", "\"lora_alpha\""},
                {"{\"peft_type\":\"LORA\",\"use_rslora\":\"yes\"}", "\"use_rslora\""},
                {"{\"peft_type\":\"LORA\",\"rank_pattern\":{\"q_proj(\":4}}", "\"rank_pattern\"", "q_proj("},
                {"{\"peft_type\":\"LORA\",\"alpha_pattern\":{\"q_proj\":\"x\"}}", "\"alpha_pattern\"", "q_proj"},
                {"{\"peft_type\":\"LORA\",\"target_modules\":[\"q\",3]}", "\"target_modules\""},
                {"{\"peft_type\":\"LORA\",\"bias\":\"some\"}", "bias"},
                {"{\"peft_type\":\"LORA\",\"lora_dropout\":1.0}", "lora_dropout"},
                {"{\"peft_type\":\"LORA\",\"layers_pattern\":\"lay(ers\",\"layers_to_transform\":[0]}", "layers_pattern", "lay(ers"},
                {"{\"peft_type\":\"LORA\",\"layers_pattern\":[\"h\",\"[x\"]}", "layers_pattern", "[x", "not a valid regex"},
                // PEFT fails on None in these (None <= 0, alpha / None): no default is right for them
                {"{\"peft_type\":\"LORA\",\"r\":4,\"lora_alpha\":null,\"use_rslora\":true}", "\"lora_alpha\"", "null"},
                {"{\"peft_type\":\"LORA\",\"r\":null,\"lora_alpha\":16}", "\"r\"", "null"},
                {"{\"peft_type\":\"LORA\",\"lora_dropout\":null}", "\"lora_dropout\"", "null"},
                // PEFT's LoraConfig raises ValueError: a regex target cannot be filtered by layer
                {"{\"peft_type\":\"LORA\",\"target_modules\":\".*q_proj\",\"layers_to_transform\":[0]}", "layers_to_transform=[0]",
                        "target_modules is a string"},
                {"{\"peft_type\":\"LORA\",\"target_modules\":\".*q_proj\",\"layers_to_transform\":[]}", "layers_to_transform=[]"},
                {"{\"peft_type\":\"LORA\",\"target_modules\":\".*q_proj\",\"layers_pattern\":\"layers\"}", "layers_pattern=[layers]",
                        "target_modules is a string"},
                {"{\"peft_type\":\"LORA\",", "not valid JSON"},
                {"[1]", "JSON object"},
        };
        for (String[] c : cases) {
            String msg = refusal(c[0]);
            assertTrue(msg.startsWith("adapter_config.json: "), msg);
            for (int i = 1; i < c.length; i++) {
                assertTrue(msg.contains(c[i]), "'" + c[i] + "' in: " + msg);
            }
            assertFalse(msg.contains("\n"), "one line: " + msg);
        }
    }

    @Test
    void aConfigFileThatIsAFolderNotUtf8OrFollowedByMoreJsonIsRefusedNamingTheFile(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path folder = Files.createDirectory(dir.resolve("folder.json"));
        String m = assertThrows(PeftFormatException.class, () -> PeftConfigReader.read(folder)).getMessage();
        assertTrue(m.startsWith(folder + ": ") && m.contains("folder"), m);
        java.nio.file.Path latin1 = Files.write(dir.resolve("latin1.json"),
                "{\"peft_type\": \"LORA\", \"task_type\": \"caus\u00e9\"}".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        m = assertThrows(PeftFormatException.class, () -> PeftConfigReader.read(latin1)).getMessage();
        assertTrue(m.startsWith(latin1 + ": ") && m.contains("not valid UTF-8") && m.contains("0xe9") && m.contains("offset 40"), m);
        java.nio.file.Path twice = Files.writeString(dir.resolve("twice.json"), "{\"peft_type\": \"LORA\", \"r\": 4} {\"r\": 8}");
        m = assertThrows(PeftFormatException.class, () -> PeftConfigReader.read(twice)).getMessage();
        assertTrue(m.startsWith(twice + ": not valid JSON"), m);
    }

    /** Python's json (which PEFT reads and writes configs with) accepts NaN, Infinity and -Infinity. */
    @Test
    void nonFiniteNumbersParseAsPythonDoesAndAreRefusedByTheFieldThatHoldsThem() throws Exception {
        PeftConfig c = parse("{\"peft_type\": \"LORA\", \"r\": 4, \"target_modules\": [\"q_proj\"],"
                + " \"some_future_field\": {\"threshold\": Infinity, \"floor\": -Infinity, \"x\": NaN}}");
        assertEquals(4, c.r(), "an ignored field may hold them");
        String m = refusal("{\"peft_type\": \"LORA\", \"lora_alpha\": Infinity}");
        assertTrue(m.contains("lora_alpha") && m.contains("Infinity") && !m.contains("JsonReadFeature"), m);
        m = refusal("{\"peft_type\": \"LORA\", \"lora_dropout\": NaN}");
        assertTrue(m.contains("lora_dropout") && m.contains("NaN"), m);
        m = refusal("{\"peft_type\": \"LORA\", \"r\": NaN}");
        assertTrue(m.contains("\"r\"") && m.contains("NaN"), m);
        m = refusal("{\"peft_type\": \"LORA\", \"alpha_pattern\": {\"q_proj\": -Infinity}}");
        assertTrue(m.contains("alpha_pattern") && m.contains("Infinity"), m);
    }

    @Test
    void aConfigFileThatIsAFifoIsRefusedInsteadOfWaitingForAWriter(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws Exception {
        java.nio.file.Path fifo = dev.rslora.testing.Fifo.create(dir.resolve("adapter_config.json"));
        try {
            String m = org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10),
                    () -> assertThrows(PeftFormatException.class, () -> PeftConfigReader.read(fifo)).getMessage());
            assertTrue(m.startsWith(fifo + ": ") && m.contains("not a regular file"), m);
        } finally {
            dev.rslora.testing.Fifo.release(fifo);
        }
    }

    @Test
    void theWriterProducesPeftsFormatAndReadsBackEqual() throws Exception {
        Map<String, Integer> ranks = new LinkedHashMap<>();
        ranks.put("v_proj", 2);
        ranks.put("^model.layers.0.self_attn.q_proj", 16);
        Map<String, Double> alphas = new LinkedHashMap<>();
        alphas.put("q_proj", 12.5);
        PeftConfig c = PeftConfig.create(List.of("q_proj", "v_proj"), 8, 16, Scaling.RSLORA, Init.GAUSSIAN)
                .withPatterns(PatternMap.of(ranks), PatternMap.of(alphas)).withBaseModel("meta-llama/Llama-3.2-1B").withDropout(0.05);
        String json = PeftConfigWriter.toJson(c);
        // the text json.dumps(..., indent=2, sort_keys=True) gives for the same dict (checked with CPython 3.11)
        String expected = String.join("\n",
                "{",
                "  \"alpha_pattern\": {",
                "    \"q_proj\": 12.5",
                "  },",
                "  \"base_model_name_or_path\": \"meta-llama/Llama-3.2-1B\",",
                "  \"bias\": \"none\",",
                "  \"fan_in_fan_out\": false,",
                "  \"inference_mode\": true,",
                "  \"init_lora_weights\": \"gaussian\",",
                "  \"lora_alpha\": 16,",
                "  \"lora_bias\": false,",
                "  \"lora_dropout\": 0.05,",
                "  \"modules_to_save\": null,",
                "  \"peft_type\": \"LORA\",",
                "  \"r\": 8,",
                "  \"rank_pattern\": {",
                "    \"^model.layers.0.self_attn.q_proj\": 16,",
                "    \"v_proj\": 2",
                "  },",
                "  \"target_modules\": [",
                "    \"q_proj\",",
                "    \"v_proj\"",
                "  ],",
                "  \"task_type\": null,",
                "  \"use_dora\": false,",
                "  \"use_rslora\": true",
                "}");
        assertEquals(expected, json);
        PeftConfig back = parse(json);
        // sorting the keys sorted rank_pattern: the file order (which decides matches) is the sorted one
        Map<String, Integer> sortedRanks = new LinkedHashMap<>();
        sortedRanks.put("^model.layers.0.self_attn.q_proj", 16);
        sortedRanks.put("v_proj", 2);
        assertEquals(c.withPatterns(PatternMap.of(sortedRanks), c.alphaPattern()), back);
        assertEquals(json, PeftConfigWriter.toJson(back));
    }

    /**
     * init_lora_weights false, "eva" and "orthogonal" were accepted and silently replaced by the
     * default for new weights (false: PEFT leaves B random, so the adapter is not a no-op). New
     * weights refuse them, naming the value; the plain config (a loaded adapter's) keeps them.
     */
    @Test
    void newWeightsRefuseTheInitialisationsThisLibraryDoesNotImplement() {
        assertEquals(Init.DEFAULT, PeftConfig.builder().targetModules("q").build().initForNewWeights());
        assertEquals(Init.GAUSSIAN, PeftConfig.builder().targetModules("q").initLoraWeights("gaussian").build().initForNewWeights());
        for (Object init : List.of(Boolean.FALSE, "eva", "orthogonal")) {
            PeftConfig c = PeftConfig.builder().targetModules("q").initLoraWeights(init).build();
            assertEquals(Init.DEFAULT, c.init(), "a loaded adapter's config keeps its value: " + init);
            String msg = assertThrows(IllegalArgumentException.class, c::initForNewWeights).getMessage();
            String shown = init instanceof String v ? "\"" + v + "\"" : init.toString();
            assertEquals("init_lora_weights " + shown + " is not implemented for new adapter weights: use true (uniform A,"
                    + " B = 0) or \"gaussian\"", msg);
        }
    }

    /** A null name in target_modules or exclude_modules was a bare NullPointerException from List.of. */
    @Test
    void nullModuleNamesAreRefusedNamingTheirPosition() {
        String msg = assertThrows(IllegalArgumentException.class, () -> PeftConfig.builder().targetModules("q", null)).getMessage();
        assertEquals("target_modules[1] is null (expected a module name)", msg);
        msg = assertThrows(IllegalArgumentException.class, () -> PeftConfig.builder().excludeModules((String) null)).getMessage();
        assertEquals("exclude_modules[0] is null (expected a module name)", msg);
        msg = assertThrows(IllegalArgumentException.class, () -> PeftConfig.builder().targetModules((String[]) null)).getMessage();
        assertEquals("target_modules is null (expected module names)", msg);
    }
}
