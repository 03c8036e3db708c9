package dev.rslora.peft;

import dev.rslora.internal.Args;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes a {@link PeftConfig} as PEFT writes {@code adapter_config.json}: sorted keys, 2-space
 * indent (see {@link PythonJson}), every field SPEC.md §8 lists, {@code "peft_type": "LORA"},
 * {@code "inference_mode": true}, {@code "use_dora": false}, {@code "lora_bias": false}. The
 * optional selectors (exclude_modules, layers_to_transform, layers_pattern) are written only
 * when set. α is written as an integer when it is one (as PEFT users pass it), else as a float.
 *
 * <p>Like PEFT, sorting the keys also sorts rank_pattern and alpha_pattern, and that sorted order
 * is the "file order" a reader resolves patterns in.
 */
public final class PeftConfigWriter {
    private PeftConfigWriter() {
    }

    /**
     * The JSON text (no trailing newline, as PEFT).
     *
     * @param c the config
     * @return adapter_config.json's text, which {@link PeftConfigReader#parse} reads back as
     *         {@link #asWritten asWritten(c)}: equal to c when its pattern keys are already sorted
     */

    public static String toJson(PeftConfig c) {
        Args.given("PeftConfigWriter.toJson", "config", c);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("peft_type", "LORA");
        m.put("r", c.r());
        m.put("lora_alpha", number(c.loraAlpha()));
        m.put("use_rslora", c.useRslora());
        m.put("lora_dropout", c.loraDropout());
        m.put("target_modules", c.targetModules() == null ? null : c.targetModules().toJsonValue());
        Map<String, Object> ranks = new LinkedHashMap<>(c.rankPattern().entries());
        m.put("rank_pattern", ranks);
        Map<String, Object> alphas = new LinkedHashMap<>();
        c.alphaPattern().entries().forEach((k, v) -> alphas.put(k, number(v)));
        m.put("alpha_pattern", alphas);
        m.put("bias", c.bias());
        m.put("fan_in_fan_out", c.fanInFanOut());
        m.put("use_dora", false);
        m.put("lora_bias", false);
        m.put("init_lora_weights", c.initLoraWeights());
        m.put("modules_to_save", c.modulesToSave());
        m.put("task_type", c.taskType());
        m.put("base_model_name_or_path", c.baseModelNameOrPath());
        m.put("inference_mode", true);
        if (c.excludeModules() != null) {
            m.put("exclude_modules", c.excludeModules().toJsonValue());
        }
        if (c.layersToTransform() != null) {
            m.put("layers_to_transform", c.layersToTransform());
        }
        if (c.layersPattern() != null) {
            m.put("layers_pattern", c.layersPattern());
        }
        return PythonJson.dumps(m);
    }

    /**
     * The config a reader of {@link #toJson toJson(c)} gets: c with its rank_pattern and alpha_pattern
     * keys in sorted (code point) order, as PEFT's {@code sort_keys=True} writes them. When the
     * first matching key of a module depends on the order, this config can give a module another r
     * or α than c.
     *
     * @param c the config
     * @return c with both pattern maps sorted by key
     */
    static PeftConfig asWritten(PeftConfig c) {
        return c.withPatterns(sorted(c.rankPattern()), sorted(c.alphaPattern()));
    }

    private static <V> PatternMap<V> sorted(PatternMap<V> p) {
        Map<String, V> m = new java.util.TreeMap<>(PythonJson::compareCodePoints);
        m.putAll(p.entries());
        return PatternMap.of(m);
    }

    /** An integral value as an int (8, not 8.0), else the double. */
    private static Object number(double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) {
            return (long) v;
        }
        return v;
    }
}
