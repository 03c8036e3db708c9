package dev.rslora.peft;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT's {@code rank_pattern} / {@code alpha_pattern}: regex keys in file order mapped to values.
 * For module path p the value of the first key k (in file order) for which
 * {@code re.match("(.*\\.)?(k)$", p)} succeeds applies ({@code peft.utils.other.get_pattern_key}):
 * k matches a suffix of p at a dot boundary, or the whole path, and is a regex itself. A key
 * starting with {@code ^} can only match at the start of the path, so it must match the whole
 * path. {@code re.match} is anchored at the start, as {@link java.util.regex.Matcher#lookingAt}.
 *
 * <p>PEFT writes the config with sorted keys, which sorts these maps too; the order that counts
 * is that of the file being read.
 *
 * @param <V> Integer (ranks) or Double (alphas)
 */
public final class PatternMap<V> {
    private final Map<String, V> entries;
    private final Map<String, Pattern> compiled;

    private PatternMap(Map<String, V> entries, Map<String, Pattern> compiled) {
        this.entries = entries;
        this.compiled = compiled;
    }

    private static final PatternMap<Object> EMPTY = new PatternMap<>(Map.of(), Map.of());

    /**
     * The map without patterns.
     *
     * @param <V> the value type (Integer for ranks, Double for alphas)
     * @return the shared empty map
     */
    @SuppressWarnings("unchecked")
    public static <V> PatternMap<V> empty() {
        return (PatternMap<V>) EMPTY;
    }

    /**
     * The patterns of {@code entries}, in its iteration order.
     *
     * @param <V>     the value type
     * @param entries regex key → value (none null), copied in iteration order
     * @return the pattern map
     * @throws IllegalArgumentException naming the key when a key is not a valid regex
     */
    public static <V> PatternMap<V> of(Map<String, V> entries) {
        Map<String, V> copy = new LinkedHashMap<>();
        Map<String, Pattern> compiled = new LinkedHashMap<>();
        for (Map.Entry<String, V> e : entries.entrySet()) {
            String key = Objects.requireNonNull(e.getKey(), "pattern key");
            copy.put(key, Objects.requireNonNull(e.getValue(), "pattern value"));
            try {
                compiled.put(key, Pattern.compile("(.*\\.)?(" + key + ")$"));
            } catch (PatternSyntaxException ex) {
                throw new IllegalArgumentException("pattern key " + PeftConfigReader.quote(key) + " is not a valid regex: "
                        + ex.getDescription());
            }
        }
        return new PatternMap<>(Collections.unmodifiableMap(copy), Collections.unmodifiableMap(compiled));
    }

    /**
     * The value of the first key that matches {@code path}, or {@code fallback}.
     *
     * @param path     the module path
     * @param fallback the value when no key matches (the config's r or lora_alpha)
     * @return the first matching key's value, or fallback
     */
    public V lookup(String path, V fallback) {
        String key = matchingKey(path);
        return key == null ? fallback : entries.get(key);
    }

    /**
     * The first key (in order) whose pattern matches {@code path}.
     *
     * @param path the module path; a key matches its end at a dot boundary
     * @return the key, or null when none matches
     */
    public String matchingKey(String path) {
        for (Map.Entry<String, Pattern> e : compiled.entrySet()) {
            if (e.getValue().matcher(path).lookingAt()) {
                return e.getKey();
            }
        }
        return null;
    }

    /**
     * Key → value in order (unmodifiable).
     *
     * @return the entries
     */
    public Map<String, V> entries() {
        return entries;
    }

    /**
     * Whether there are no patterns.
     *
     * @return true when empty
     */

    public boolean isEmpty() {
        return entries.isEmpty();
    }

    /** Equal keys and values in the same order (the order decides which key wins). */
    @Override
    public boolean equals(Object o) {
        return o instanceof PatternMap<?> p && entries.equals(p.entries)
                && java.util.List.copyOf(entries.keySet()).equals(java.util.List.copyOf(p.entries.keySet()));
    }

    @Override
    public int hashCode() {
        return entries.hashCode();
    }

    @Override
    public String toString() {
        return entries.toString();
    }
}
