package dev.rslora.peft;

import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.Scaling;
import dev.rslora.internal.Args;

import java.math.BigInteger;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A PEFT LoRA adapter config ({@code adapter_config.json}, SPEC.md §8) restricted to what this
 * library implements: plain LoRA / rsLoRA on linear layers. Variants (DoRA, LoftQ, layer
 * replication, ...) cannot be represented; {@link PeftConfigReader} refuses them by name.
 *
 * <p>Per module path p (e.g. {@code model.layers.0.self_attn.q_proj}):
 * r(p) = {@code rankPattern} match or {@code r}; α(p) = {@code alphaPattern} match or
 * {@code loraAlpha}; γ(p) = α(p)/√r(p) when {@code useRslora}, else α(p)/r(p) — recomputed from
 * the config every time, never stored.
 *
 * @param r                   default rank (PEFT default 8)
 * @param loraAlpha           default α (PEFT default 8; may be fractional)
 * @param useRslora           γ = α/√r when true, α/r when false (PEFT default false)
 * @param loraDropout         dropout probability on the adapter input, in [0, 1)
 * @param targetModules       which modules carry an adapter, or null when the file does not say
 * @param excludeModules      modules never adapted, or null
 * @param layersToTransform   layer indices to adapt (list-form target_modules only: refused with a regex), or null
 * @param layersPattern       names of the layer lists for layersToTransform (refused with a regex), or null; each a
 *                            regex without capturing groups (PEFT reads the layer index as group 1)
 * @param rankPattern         per-module ranks (first matching key in file order)
 * @param alphaPattern        per-module alphas (first matching key in file order)
 * @param bias                "none", "all" or "lora_only" (trained base biases travel as extra tensors)
 * @param fanInFanOut         true for GPT-2 Conv1D weights stored [d_in, d_out]
 * @param initLoraWeights     PEFT's init_lora_weights: Boolean, or "gaussian", "eva", "orthogonal"
 * @param modulesToSave       modules saved whole next to the adapter (e.g. a classifier head), or null
 * @param taskType            e.g. "CAUSAL_LM", "SEQ_CLS", or null
 * @param baseModelNameOrPath the base model's name or path, or null
 */
public record PeftConfig(int r, double loraAlpha, boolean useRslora, double loraDropout,
                         ModuleSelector targetModules, ModuleSelector excludeModules,
                         List<Integer> layersToTransform, List<String> layersPattern,
                         PatternMap<Integer> rankPattern, PatternMap<Double> alphaPattern,
                         String bias, boolean fanInFanOut, Object initLoraWeights,
                         List<String> modulesToSave, String taskType, String baseModelNameOrPath) {

    /** The values of {@code bias} PEFT accepts. */
    public static final Set<String> BIAS_VALUES = Set.of("none", "all", "lora_only");

    /** init_lora_weights strings that only initialise A and B (the base weights are untouched). */
    public static final Set<String> PLAIN_INITS = Set.of("gaussian", "eva", "orthogonal");

    /**
     * Checks the values (IllegalArgumentException naming the field) and fills PEFT's defaults for
     * nulls. As PEFT's LoraConfig, refuses layers_to_transform or layers_pattern with a regex
     * (string) target_modules, which they could not filter; refuses a layers_pattern with a capturing
     * group, where PEFT's int() of the layer index would fail later.
     */
    public PeftConfig {
        if (r < 1) {
            throw new IllegalArgumentException("r must be an integer >= 1, got r=" + r);
        }
        if (!Double.isFinite(loraAlpha)) {
            throw new IllegalArgumentException("lora_alpha must be a finite number, got lora_alpha=" + loraAlpha);
        }
        if (!(loraDropout >= 0 && loraDropout < 1)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got lora_dropout=" + loraDropout);
        }
        rankPattern = rankPattern == null ? PatternMap.empty() : rankPattern;
        alphaPattern = alphaPattern == null ? PatternMap.empty() : alphaPattern;
        for (var e : rankPattern.entries().entrySet()) {
            if (e.getValue() < 1) {
                throw new IllegalArgumentException("rank_pattern " + PeftConfigReader.quote(e.getKey()) + " gives rank "
                        + e.getValue() + "; ranks must be >= 1");
            }
        }
        for (var e : alphaPattern.entries().entrySet()) {
            if (!Double.isFinite(e.getValue())) {
                throw new IllegalArgumentException("alpha_pattern " + PeftConfigReader.quote(e.getKey()) + " gives alpha "
                        + e.getValue() + "; alphas must be finite");
            }
        }
        bias = bias == null ? "none" : bias;
        if (!BIAS_VALUES.contains(bias)) {
            throw new IllegalArgumentException("bias must be \"none\", \"all\" or \"lora_only\", got bias=" + PeftConfigReader.quote(bias));
        }
        initLoraWeights = initLoraWeights == null ? Boolean.TRUE : initLoraWeights;
        if (!(initLoraWeights instanceof Boolean) && !(initLoraWeights instanceof String s && PLAIN_INITS.contains(s))) {
            throw new IllegalArgumentException("init_lora_weights must be true, false, \"gaussian\", \"eva\" or \"orthogonal\", got "
                    + initLoraWeights);
        }
        layersToTransform = layersToTransform == null ? null : List.copyOf(layersToTransform);
        layersPattern = layersPattern == null ? null : List.copyOf(layersPattern);
        if (targetModules != null && targetModules.isRegex() && (layersToTransform != null || layersPattern != null)) {
            // PEFT's LoraConfig raises the same ValueError: a regex would silently ignore the layer filter
            throw new IllegalArgumentException((layersToTransform != null ? "layers_to_transform=" + layersToTransform
                    : "layers_pattern=" + layersPattern) + " cannot be used when target_modules is a string (the regex "
                    + targetModules + " selects modules by itself); put the layer indices in the regex or make target_modules a list");
        }
        for (String p : layersPattern == null ? List.<String>of() : layersPattern) {
            Pattern layer;
            try {
                layer = Pattern.compile(layerRegex(p));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("layers_pattern " + PeftConfigReader.quote(p) + " is not a valid regex: "
                        + e.getDescription());
            }
            if (layer.matcher("").groupCount() != 1) {
                // PEFT reads the index as group(1) of .*\.<pattern>\.(\d+)\.: a group of the pattern's own comes
                // first, and PEFT's int() of it fails (int("layers")); refused here when the config is made
                throw new IllegalArgumentException("layers_pattern " + PeftConfigReader.quote(p) + " has a capturing group:"
                        + " the layer index is the first group of .*\\.<pattern>\\.(\\d+)\\., so it would be the"
                        + " pattern's own group (PEFT's int() of it fails the same way); use a non-capturing group (?:...)");
            }
        }
        modulesToSave = modulesToSave == null ? null : List.copyOf(modulesToSave);
    }

    /**
     * A config for a new adapter on the modules matching {@code targetModules} (list form),
     * with rank r, α, the given scaling and init, and PEFT's defaults elsewhere.
     *
     * @param targetModules module names; a module matches a name exactly or as a suffix at a dot
     * @param r             the rank of every module, ≥ 1
     * @param alpha         α of every module, &gt; 0
     * @param scaling       RSLORA writes use_rslora true, LORA false
     * @param init          GAUSSIAN writes init_lora_weights "gaussian", DEFAULT true
     * @return the config
     * @throws IllegalArgumentException if r or α is out of range, or targetModules or one of its names is null
     */
    public static PeftConfig create(List<String> targetModules, int r, double alpha, Scaling scaling, Init init) {
        Builder.requireNames("target_modules", targetModules == null ? null : targetModules.toArray(new String[0]));
        return new PeftConfig(r, alpha, scaling == Scaling.RSLORA, 0.0, ModuleSelector.names(targetModules), null, null, null,
                PatternMap.empty(), PatternMap.empty(), "none", false, init == Init.GAUSSIAN ? "gaussian" : Boolean.TRUE,
                null, null, null);
    }

    /**
     * A builder with PEFT's {@code LoraConfig} defaults (r 8, lora_alpha 8, use_rslora false,
     * lora_dropout 0, init_lora_weights true, bias "none"), as a PEFT user writes
     * {@code LoraConfig(target_modules=[...], r=16, lora_alpha=32, use_rslora=True, ...)}.
     *
     * @return a new builder; target_modules must be set before {@link Builder#build()}
     */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds a {@link PeftConfig} field by field; {@link #build()} checks the values (IllegalArgumentException naming the field). */
    public static final class Builder {
        private int r = 8;
        private double loraAlpha = 8;
        private boolean useRslora;
        private double loraDropout;
        private ModuleSelector targetModules;
        private ModuleSelector excludeModules;
        private Map<String, Integer> rankPattern = new LinkedHashMap<>();
        private Map<String, Double> alphaPattern = new LinkedHashMap<>();
        private Object initLoraWeights = Boolean.TRUE;
        private String bias = "none";
        private List<String> modulesToSave;
        private String taskType;
        private String baseModelNameOrPath;

        private Builder() {
        }

        /**
         * target_modules as a list: a module matches a name exactly or as a suffix at a dot ({@link ModuleSelector#names}).
         * The single name "all-linear" is PEFT's shorthand for every linear module but the output layer and is kept as
         * the string {@code "all-linear"} (PEFT only expands the string form; in a list it would be
         * a module name): PEFT resolves it against the model when it loads the adapter, so
         * {@link AdapterSet#of} and {@link AdapterSet#load} accept any module, while
         * {@link AdapterSet#init}, which sees only a checkpoint, cannot resolve it.
         *
         * @param names module names, e.g. "q_proj", "v_proj"; or just "all-linear" (kept as PEFT's string shorthand, which
         *              {@code LoraModel} and {@code AdapterSet.init} do not resolve: they need the modules listed)
         * @return this builder
         * @throws IllegalArgumentException if names or one of them is null (naming its position)
         */
        public Builder targetModules(String... names) {
            requireNames("target_modules", names);
            this.targetModules = names.length == 1 && ModuleSelector.ALL_LINEAR.equalsIgnoreCase(names[0])
                    ? ModuleSelector.regex(names[0]) : ModuleSelector.names(List.of(names));
            return this;
        }

        /**
         * target_modules as one regex over the whole module path ({@link ModuleSelector#regex}).
         *
         * @param regex a Java regex that must match the whole path (PEFT's {@code re.fullmatch})
         * @return this builder
         */
        public Builder targetModulesRegex(String regex) {
            this.targetModules = ModuleSelector.regex(Args.given("targetModulesRegex", "regex", regex));
            return this;
        }

        /**
         * exclude_modules as a list of names.
         *
         * @param names module names never adapted, matched as target_modules' list form
         * @return this builder
         * @throws IllegalArgumentException if names or one of them is null (naming its position)
         */
        public Builder excludeModules(String... names) {
            requireNames("exclude_modules", names);
            this.excludeModules = ModuleSelector.names(List.of(names));
            return this;
        }

        /** Refuses a null list or a null name in it (List.of would throw a bare NullPointerException). */
        private static void requireNames(String field, String[] names) {
            if (names == null) {
                throw new IllegalArgumentException(field + " is null (expected module names)");
            }
            for (int i = 0; i < names.length; i++) {
                if (names[i] == null) {
                    throw new IllegalArgumentException(field + "[" + i + "] is null (expected a module name)");
                }
            }
        }

        /**
         * The default rank r (≥ 1).
         *
         * @param rank r for modules that rank_pattern does not name
         * @return this builder
         */
        public Builder r(int rank) {
            this.r = rank;
            return this;
        }

        /**
         * The default α.
         *
         * @param alpha lora_alpha (&gt; 0) for modules that alpha_pattern does not name
         * @return this builder
         */
        public Builder loraAlpha(double alpha) {
            this.loraAlpha = alpha;
            return this;
        }

        /**
         * γ = α/√r when true (rsLoRA), α/r when false.
         *
         * @param on use_rslora
         * @return this builder
         */
        public Builder useRslora(boolean on) {
            this.useRslora = on;
            return this;
        }

        /**
         * Dropout probability on the adapter input, in [0, 1).
         *
         * @param p lora_dropout; 0 for none
         * @return this builder
         */
        public Builder loraDropout(double p) {
            this.loraDropout = p;
            return this;
        }

        /**
         * Per-module ranks: regex key → r, first matching key in insertion order ({@link PatternMap}).
         *
         * @param ranks rank_pattern (copied; iterate in the intended order, e.g. a LinkedHashMap)
         * @return this builder
         */
        public Builder rankPattern(Map<String, Integer> ranks) {
            this.rankPattern = new LinkedHashMap<>(Args.given("rankPattern", "ranks", ranks));
            return this;
        }

        /**
         * Per-module alphas: regex key → α, first matching key in insertion order.
         *
         * @param alphas alpha_pattern (copied, in iteration order)
         * @return this builder
         */
        public Builder alphaPattern(Map<String, Double> alphas) {
            this.alphaPattern = new LinkedHashMap<>(Args.given("alphaPattern", "alphas", alphas));
            return this;
        }

        /**
         * init_lora_weights: true (uniform A), or "gaussian".
         *
         * @param init Boolean.TRUE, Boolean.FALSE, or one of PEFT's strings ("gaussian", …), checked by build()
         * @return this builder
         */
        public Builder initLoraWeights(Object init) {
            this.initLoraWeights = init;
            return this;
        }

        /**
         * PEFT's bias setting.
         *
         * @param b "none", "all" or "lora_only"
         * @return this builder
         */
        public Builder bias(String b) {
            this.bias = b;
            return this;
        }

        /**
         * modules_to_save (saved whole next to the adapter by {@link AdapterSet}).
         *
         * @param names module names whose weights are trained and saved in full
         * @return this builder
         * @throws IllegalArgumentException if names or one of them is null (naming its position)
         */
        public Builder modulesToSave(String... names) {
            requireNames("modules_to_save", names);
            this.modulesToSave = List.of(names);
            return this;
        }

        /**
         * task_type, e.g. "CAUSAL_LM".
         *
         * @param type PEFT's task type, written to adapter_config.json; null for none
         * @return this builder
         */
        public Builder taskType(String type) {
            this.taskType = type;
            return this;
        }

        /**
         * base_model_name_or_path, recorded in the file.
         *
         * @param nameOrPath a Hugging Face model id or a local path; null for none
         * @return this builder
         */
        public Builder baseModel(String nameOrPath) {
            this.baseModelNameOrPath = nameOrPath;
            return this;
        }

        /**
         * The config.
         *
         * @return a validated config
         * @throws IllegalArgumentException naming the field when a value is out of range or
         *                                  target_modules is not set
         */
        public PeftConfig build() {
            if (targetModules == null) {
                throw new IllegalArgumentException("target_modules is not set: name the modules to adapt, e.g. targetModules(\"q_proj\", \"v_proj\")");
            }
            return new PeftConfig(r, loraAlpha, useRslora, loraDropout, targetModules, excludeModules, null, null,
                    PatternMap.of(rankPattern), PatternMap.of(alphaPattern), bias, false, initLoraWeights, modulesToSave, taskType,
                    baseModelNameOrPath);
        }
    }

    /**
     * This config with rank_pattern {@code ranks} and alpha_pattern {@code alphas}.
     *
     * @param ranks  the new rank_pattern
     * @param alphas the new alpha_pattern
     * @return a copy with both patterns replaced
     */
    public PeftConfig withPatterns(PatternMap<Integer> ranks, PatternMap<Double> alphas) {
        return new PeftConfig(r, loraAlpha, useRslora, loraDropout, targetModules, excludeModules, layersToTransform,
                layersPattern, ranks, alphas, bias, fanInFanOut, initLoraWeights, modulesToSave, taskType, baseModelNameOrPath);
    }

    /**
     * This config with base_model_name_or_path {@code nameOrPath}.
     *
     * @param nameOrPath a model id or path; null for none
     * @return a copy with the new base model
     */
    public PeftConfig withBaseModel(String nameOrPath) {
        return new PeftConfig(r, loraAlpha, useRslora, loraDropout, targetModules, excludeModules, layersToTransform,
                layersPattern, rankPattern, alphaPattern, bias, fanInFanOut, initLoraWeights, modulesToSave, taskType, nameOrPath);
    }

    /**
     * This config with fan_in_fan_out {@code on}.
     *
     * @param on true when the base weights are stored [d_in, d_out] (GPT-2 Conv1D)
     * @return a copy with the new setting
     */
    public PeftConfig withFanInFanOut(boolean on) {
        return new PeftConfig(r, loraAlpha, useRslora, loraDropout, targetModules, excludeModules, layersToTransform,
                layersPattern, rankPattern, alphaPattern, bias, on, initLoraWeights, modulesToSave, taskType, baseModelNameOrPath);
    }

    /**
     * This config with use_rslora {@code on}.
     *
     * @param on true for γ = α/√r, false for α/r
     * @return a copy with the new scaling
     */
    public PeftConfig withUseRslora(boolean on) {
        return new PeftConfig(r, loraAlpha, on, loraDropout, targetModules, excludeModules, layersToTransform,
                layersPattern, rankPattern, alphaPattern, bias, fanInFanOut, initLoraWeights, modulesToSave, taskType, baseModelNameOrPath);
    }

    /**
     * This config with lora_dropout {@code p}.
     *
     * @param p in [0, 1)
     * @return a copy with the new dropout
     * @throws IllegalArgumentException if p is outside [0, 1)
     */
    public PeftConfig withDropout(double p) {
        return new PeftConfig(r, loraAlpha, useRslora, p, targetModules, excludeModules, layersToTransform,
                layersPattern, rankPattern, alphaPattern, bias, fanInFanOut, initLoraWeights, modulesToSave, taskType, baseModelNameOrPath);
    }

    /**
     * The scaling rule of every module.
     *
     * @return RSLORA when {@code use_rslora} is true, else LORA
     */
    public Scaling scaling() {
        return useRslora ? Scaling.RSLORA : Scaling.LORA;
    }

    /**
     * r of module {@code path}: the first matching rank_pattern key in file order, else {@code r}.
     *
     * @param path the module path, e.g. {@code model.layers.0.self_attn.q_proj}
     * @return the module's rank
     */
    public int rankOf(String path) {
        return rankPattern.lookup(path, r);
    }

    /**
     * α of module {@code path}: the first matching alpha_pattern key in file order, else {@code lora_alpha}.
     *
     * @param path the module path
     * @return the module's α
     */
    public double alphaOf(String path) {
        return alphaPattern.lookup(path, loraAlpha);
    }

    /**
     * γ of module {@code path}: α/√r (use_rslora) or α/r, from {@link Scaling#gamma}.
     *
     * @param path the module path
     * @return the module's γ
     */
    public double gammaOf(String path) {
        return scaling().gamma(alphaOf(path), rankOf(path));
    }

    /**
     * The core config of module {@code path} (its r, α, this scaling and dropout).
     *
     * @param path the module path
     * @param init the initialisation of A
     * @param seed seeds the initialisation and dropout
     * @return the layer config
     */
    public LoraConfig loraConfig(String path, Init init, long seed) {
        return new LoraConfig(rankOf(path), alphaOf(path), scaling(), loraDropout, init, seed);
    }

    /**
     * The core init matching init_lora_weights.
     *
     * @return GAUSSIAN for "gaussian", else DEFAULT
     */
    public Init init() {
        return "gaussian".equals(initLoraWeights) ? Init.GAUSSIAN : Init.DEFAULT;
    }

    /**
     * The core init for adapter weights made new ({@link AdapterSet#init}, a {@code LoraModel} wrapped
     * without an adapter): init_lora_weights true or "gaussian" (SPEC §5). PEFT's false (A and B
     * both left at nn.Linear's random init, so the new adapter is not a no-op), "eva" and
     * "orthogonal" are initialisations this library does not implement, so they are refused here
     * rather than replaced by the default. A loaded adapter may record any of them: its weights
     * come from its file.
     *
     * @return GAUSSIAN for "gaussian", DEFAULT for true
     * @throws IllegalArgumentException for init_lora_weights false, "eva" or "orthogonal" (naming it)
     */
    public Init initForNewWeights() {
        if (Boolean.TRUE.equals(initLoraWeights) || "gaussian".equals(initLoraWeights)) {
            return init();
        }
        throw new IllegalArgumentException("init_lora_weights " + (initLoraWeights instanceof String v ? "\"" + v + "\"" : initLoraWeights)
                + " is not implemented for new adapter weights: use true (uniform A, B = 0) or \"gaussian\"");
    }

    /**
     * Whether PEFT would put an adapter on module {@code path} (peft check_target_module_exists):
     * not excluded, not inside a modules_to_save module, matched by target_modules, and, for the
     * list form with layers_to_transform, in one of those layers (the index compared as a number of any size, as
     * Python's int: a layer 99999999999 is in none of them). False when target_modules is null.
     *
     * @param path the module path
     * @return true when PEFT would adapt it
     */
    public boolean targets(String path) {
        Args.given("PeftConfig.targets", "path", path);
        if (excludeModules != null && excludeModules.matches(path)) {
            return false;
        }
        if (modulesToSave != null) {
            for (String m : modulesToSave) {
                if (Pattern.compile("(^|.*\\.)" + Pattern.quote(m) + "($|\\..*)").matcher(path).lookingAt()) {
                    return false;
                }
            }
        }
        if (targetModules == null || !targetModules.matches(path)) {
            return false;
        }
        if (targetModules.isRegex() || !targetModules.matchesBySuffixOnly(path)
                || layersToTransform == null || layersToTransform.isEmpty()) {
            return true;
        }
        String layer = layerIndex(path);
        return layer != null && inLayersToTransform(layer);
    }

    /**
     * Whether the layer index {@code digits} is one of layers_to_transform, compared as numbers (as PEFT's
     * {@code int(...) in layers_to_transform}): "007" is 7, and an index past int's range is in none.
     */
    private boolean inLayersToTransform(String digits) {
        BigInteger index = new BigInteger(digits);
        return index.bitLength() < Integer.SIZE && layersToTransform.contains(index.intValue());
    }

    /**
     * Whether an adapter on module {@code path} is accepted with this config, by
     * {@link AdapterSet#load} and so at save time too: {@link #targets} it, or target_modules is
     * null or "all-linear" (which only the model can resolve, so any module is accepted).
     *
     * @param path the module path
     * @return true when an adapter on it may be saved and loaded with this config
     */

    public boolean admits(String path) {
        Args.given("PeftConfig.admits", "path", path);
        return targetModules == null || targetModules.isAllLinear() || targets(path);
    }

    /**
     * The digits of the layer index PEFT reads from a path: {@code .*\.<pattern>\.(\d+)\.} (any list name when
     * layers_pattern is empty), or null; of any length (Python's int has no range).
     */
    private String layerIndex(String path) {
        List<String> patterns = layersPattern == null || layersPattern.isEmpty() ? List.of("[^.]*") : layersPattern;
        for (String p : patterns) {
            Matcher m = Pattern.compile(layerRegex(p)).matcher(path);
            if (m.lookingAt()) {
                return m.group(1);  // the constructor refused a pattern with a group of its own
            }
        }
        return null;
    }

    /** PEFT's regex for the layer index under list name {@code pattern}. */
    private static String layerRegex(String pattern) {
        return ".*\\." + pattern + "\\.(\\d+)\\.";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PeftConfig c && r == c.r && Double.compare(loraAlpha, c.loraAlpha) == 0 && useRslora == c.useRslora
                && Double.compare(loraDropout, c.loraDropout) == 0 && Objects.equals(targetModules, c.targetModules)
                && Objects.equals(excludeModules, c.excludeModules) && Objects.equals(layersToTransform, c.layersToTransform)
                && Objects.equals(layersPattern, c.layersPattern) && rankPattern.equals(c.rankPattern)
                && alphaPattern.equals(c.alphaPattern) && bias.equals(c.bias) && fanInFanOut == c.fanInFanOut
                && initLoraWeights.equals(c.initLoraWeights) && Objects.equals(modulesToSave, c.modulesToSave)
                && Objects.equals(taskType, c.taskType) && Objects.equals(baseModelNameOrPath, c.baseModelNameOrPath);
    }

    @Override
    public int hashCode() {
        return Objects.hash(r, loraAlpha, useRslora, targetModules, rankPattern, alphaPattern);
    }
}
