package dev.rslora.peft;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads {@code adapter_config.json} as PEFT does: missing keys take PEFT's defaults (r 8,
 * lora_alpha 8, use_rslora false, ...), unknown keys are ignored, the order of
 * rank_pattern / alpha_pattern keys is the file's. What this library does not implement is
 * refused with an error that names the field, never ignored:
 * <ul>
 *   <li>{@code peft_type} other than "LORA"; {@code use_dora: true}; {@code use_qalora: true};</li>
 *   <li>a non-null, non-empty {@code loftq_config}, {@code corda_config}, {@code megatron_config},
 *       {@code layer_replication}, {@code trainable_token_indices}, {@code alora_invocation_tokens},
 *       {@code arrow_config}, {@code target_parameters} or {@code lora_ga_config};</li>
 *   <li>{@code init_lora_weights} "pissa…", "olora", "corda" or "loftq": they rewrite the base
 *       weights, so the adapter only fits the modified base (PEFT can convert such an adapter to
 *       plain LoRA when saving it).</li>
 *   <li>an explicit {@code null} in {@code r}, {@code lora_alpha} or {@code lora_dropout} (PEFT
 *       fails on it; a missing key takes the default);</li>
 *   <li>{@code layers_to_transform} or {@code layers_pattern} with a string (regex)
 *       {@code target_modules}, as PEFT's LoraConfig refuses them.</li>
 * </ul>
 * {@code lora_bias: true} is accepted here; {@link AdapterSet#load} refuses its bias tensors when
 * any is non-zero. {@code eva_config} (an initialisation recipe) is accepted.
 */
public final class PeftConfigReader {
    /**
     * Reads JSON as Python's json.load does: trailing content after the top-level value is refused
     * ("Extra data"), and NaN, Infinity and -Infinity are numbers (json.dump writes them), left to
     * the field that holds one to refuse it by name.
     */
    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .build();

    /** Fields holding a sub-config of a variant this library does not implement. */
    private static final List<String> VARIANT_CONFIGS = List.of("loftq_config", "corda_config", "megatron_config",
            "layer_replication", "trainable_token_indices", "alora_invocation_tokens", "arrow_config", "target_parameters",
            "lora_ga_config");

    private final JsonNode root;
    private final String source;

    private PeftConfigReader(JsonNode root, String source) {
        this.root = root;
        this.source = source;
    }

    /**
     * Reads and checks {@code file}; errors start with the file name and name the field.
     *
     * @param file an adapter_config.json
     * @return the config
     * @throws PeftFormatException when the JSON is invalid or a field is missing, out of range or unsupported
     * @throws IOException if the file cannot be read
     * @throws IllegalArgumentException if file is null
     */
    public static PeftConfig read(Path file) throws IOException {
        if (file == null) {
            throw new IllegalArgumentException("PeftConfigReader.read: file is null");
        }
        return parse(readText(file), file.toString());
    }

    /**
     * The text of a JSON file, refusing a folder and bytes that are not UTF-8 with an error naming the file.
     *
     * @param file a .json file
     * @return its text
     * @throws PeftFormatException when {@code file} is a folder, a device or pipe, or not UTF-8
     * @throws IOException         if the file cannot be read
     */
    static String readText(Path file) throws IOException {
        if (Files.isDirectory(file)) {
            throw new PeftFormatException(file + ": is a folder, not a JSON file");
        }
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            // reading a named pipe would block until some process writes to it
            throw new PeftFormatException(file + ": is not a regular file (a device, pipe or socket), not a JSON file");
        }
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(in).toString();
        } catch (CharacterCodingException e) {
            int at = in.position();
            throw new PeftFormatException(file + ": not valid UTF-8 (byte 0x" + String.format("%02x", bytes[at] & 0xff)
                    + " at offset " + at + "); JSON files must be UTF-8");
        }
    }

    /**
     * Parses JSON text strictly (nothing may follow the top-level value); {@code source} names it in errors.
     *
     * @param json   the text
     * @param source a name for the text in error messages
     * @return the tree (null for empty text)
     * @throws PeftFormatException when the text is not valid JSON
     */
    static JsonNode readTree(String json, String source) throws PeftFormatException {
        try {
            return JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new PeftFormatException(source + ": not valid JSON: " + e.getOriginalMessage()
                    + (e.getLocation() == null ? "" : " (line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr() + ")"));
        }
    }

    /**
     * Parses the text of an adapter_config.json; {@code source} names it in errors.
     *
     * @param json   the file's text
     * @param source a name for the text in error messages
     * @return the config
     * @throws PeftFormatException when the JSON is invalid or a field is missing, out of range or unsupported
     * @throws IOException only as PeftFormatException
     */

    public static PeftConfig parse(String json, String source) throws IOException {
        JsonNode root = readTree(json, source);
        if (root == null || !root.isObject()) {
            throw new PeftFormatException(source + ": the config must be a JSON object");
        }
        return new PeftConfigReader(root, source).config();
    }

    private PeftConfig config() throws PeftFormatException {
        JsonNode type = root.get("peft_type");
        if (type == null || type.isNull()) {
            throw error("peft_type", "is missing; a LoRA adapter has \"peft_type\": \"LORA\"");
        }
        if (!type.isTextual() || !type.asText().equals("LORA")) {
            throw error("peft_type", "is " + type + "; only \"LORA\" adapters are supported");
        }
        refuseVariants();
        refuseNull("r");
        refuseNull("lora_alpha");
        refuseNull("lora_dropout");
        int r = integer("r", 8);
        double alpha = number("lora_alpha", 8);
        boolean rslora = bool("use_rslora", false);
        double dropout = number("lora_dropout", 0.0);
        ModuleSelector targets = selector("target_modules");
        ModuleSelector excludes = selector("exclude_modules");
        List<Integer> layers = intList("layers_to_transform");
        List<String> layersPattern = stringOrList("layers_pattern");
        PatternMap<Integer> ranks = PatternMap.of(patterns("rank_pattern", true, Integer.class));
        PatternMap<Double> alphas = PatternMap.of(patterns("alpha_pattern", false, Double.class));
        String bias = text("bias", "none");
        boolean fanInFanOut = bool("fan_in_fan_out", false);
        Object init = initWeights();
        List<String> modulesToSave = stringOrList("modules_to_save");
        String taskType = text("task_type", null);
        String base = text("base_model_name_or_path", null);
        try {
            return new PeftConfig(r, alpha, rslora, dropout, targets, excludes, layers, layersPattern, ranks, alphas, bias,
                    fanInFanOut, init, modulesToSave, taskType, base);
        } catch (IllegalArgumentException e) {
            throw new PeftFormatException(source + ": " + e.getMessage());
        }
    }

    private void refuseVariants() throws PeftFormatException {
        if (bool("use_dora", false)) {
            throw error("use_dora", "is true: DoRA adapters are not supported (only plain LoRA / rsLoRA)");
        }
        if (bool("use_qalora", false)) {
            throw error("use_qalora", "is true: QA-LoRA adapters are not supported (only plain LoRA / rsLoRA)");
        }
        for (String field : VARIANT_CONFIGS) {
            JsonNode v = root.get(field);
            if (v != null && !v.isNull() && !(v.isContainerNode() && v.isEmpty()) && !(v.isTextual() && v.asText().isEmpty())) {
                throw error(field, "is set (" + abbreviate(v.toString()) + "): this LoRA variant is not supported");
            }
        }
    }

    private Object initWeights() throws PeftFormatException {
        JsonNode v = root.get("init_lora_weights");
        if (v == null || v.isNull()) {
            return Boolean.TRUE;
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (!v.isTextual()) {
            throw error("init_lora_weights", "must be a boolean or a string, got " + v);
        }
        String s = v.asText();
        if (PeftConfig.PLAIN_INITS.contains(s)) {
            return s;
        }
        if (s.startsWith("pissa") || s.equals("olora") || s.equals("corda") || s.equals("loftq")) {
            throw error("init_lora_weights", "is " + quote(s) + ": that initialisation rewrites the base weights, so the adapter "
                    + "only fits the modified base; convert it to a plain LoRA adapter first (PEFT: save_pretrained with "
                    + "path_initial_model_for_weight_conversion)");
        }
        throw error("init_lora_weights", "is " + quote(s) + ", which is not a known initialisation");
    }

    /**
     * Refuses an explicit null in a field PEFT computes with: PEFT fails on it (None ≤ 0, α / None),
     * so no γ or dropout is right for it, and taking the default would be a guess.
     */
    private void refuseNull(String field) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v != null && v.isNull()) {
            throw error(field, "is null; PEFT cannot build a layer from it (leave the key out to get PEFT's default)");
        }
    }

    private int integer(String field, int dflt) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isIntegralNumber()) {
            throw error(field, "must be an integer, got " + v);
        }
        if (!v.canConvertToInt()) {
            throw error(field, "must be an integer of at most " + Integer.MAX_VALUE + " (a Java int), got " + v);
        }
        return v.intValue();
    }

    private double number(String field, double dflt) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isNumber()) {
            throw error(field, "must be a number, got " + v);
        }
        return v.doubleValue();
    }

    private boolean bool(String field, boolean dflt) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isBoolean()) {
            throw error(field, "must be true or false, got " + v);
        }
        return v.asBoolean();
    }

    private String text(String field, String dflt) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return dflt;
        }
        if (!v.isTextual()) {
            throw error(field, "must be a string, got " + v);
        }
        return v.asText();
    }

    private ModuleSelector selector(String field) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        try {
            if (v.isTextual()) {
                return ModuleSelector.regex(v.asText());
            }
            return ModuleSelector.names(strings(field, v));
        } catch (IllegalArgumentException e) {
            throw error(field, e.getMessage());
        }
    }

    private List<String> stringOrList(String field) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        return v.isTextual() ? List.of(v.asText()) : strings(field, v);
    }

    private List<String> strings(String field, JsonNode v) throws PeftFormatException {
        if (!v.isArray()) {
            throw error(field, "must be a string or a list of strings, got " + abbreviate(v.toString()));
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) {
                throw error(field, "must hold strings only, found " + e);
            }
            out.add(e.asText());
        }
        return out;
    }

    private List<Integer> intList(String field) throws PeftFormatException {
        JsonNode v = root.get(field);
        if (v == null || v.isNull()) {
            return null;
        }
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            return List.of(v.intValue());
        }
        if (!v.isArray()) {
            throw error(field, "must be an integer or a list of integers, got " + abbreviate(v.toString()));
        }
        List<Integer> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isIntegralNumber() || !e.canConvertToInt()) {
                throw error(field, "must hold integers only, found " + e);
            }
            out.add(e.intValue());
        }
        return out;
    }

    private <V> Map<String, V> patterns(String field, boolean integers, Class<V> type) throws PeftFormatException {
        JsonNode v = root.get(field);
        Map<String, V> out = new LinkedHashMap<>();
        if (v == null || v.isNull()) {
            return out;
        }
        if (v.getNodeType() != JsonNodeType.OBJECT) {
            throw error(field, "must be an object of pattern -> " + (integers ? "rank" : "alpha") + ", got " + abbreviate(v.toString()));
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode value = e.getValue();
            if (integers ? !(value.isIntegralNumber() && value.canConvertToInt()) : !value.isNumber()) {
                throw error(field, "value of " + quote(e.getKey()) + " must be " + (integers ? "an integer" : "a number")
                        + ", got " + value);
            }
            Object boxed = integers ? (Object) value.intValue() : (Object) value.doubleValue();
            out.put(e.getKey(), type.cast(boxed));
        }
        try {
            PatternMap.of(out);
        } catch (IllegalArgumentException ex) {
            throw error(field, ex.getMessage());
        }
        return out;
    }

    private PeftFormatException error(String field, String problem) {
        return new PeftFormatException(source + ": \"" + field + "\" " + problem);
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    /** {@code "text"} with quotes and backslashes escaped, for messages. */
    static String quote(String s) {
        return s == null ? "null" : "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
    }
}
