package dev.rslora.peft;

import dev.rslora.internal.Args;

import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * PEFT's {@code target_modules} / {@code exclude_modules} value: a list of names or one regex.
 * <ul>
 *   <li>list: a module path matches when it equals a name or ends with {@code "." + name}
 *       (a suffix at a dot boundary: {@code q_proj} matches {@code model.layers.0.self_attn.q_proj},
 *       never {@code xq_proj});</li>
 *   <li>string: a regex that must match the whole path ({@code re.fullmatch}).</li>
 * </ul>
 * The string {@code "all-linear"} is PEFT's shorthand for every linear layer but the output
 * layer; PEFT replaces it by the concrete list when it builds a model, so a saved config rarely
 * holds it. {@link #isAllLinear()} reports it; {@link #matches} does not interpret it.
 */
public final class ModuleSelector {
    /** PEFT's INCLUDE_LINEAR_LAYERS_SHORTHAND. */
    public static final String ALL_LINEAR = "all-linear";

    private final List<String> names;
    private final String regex;
    private final Pattern pattern;

    private ModuleSelector(List<String> names, String regex, Pattern pattern) {
        this.names = names;
        this.regex = regex;
        this.pattern = pattern;
    }

    /**
     * A list of module names (suffix match at a dot boundary), in the given order.
     *
     * @param names module names, e.g. "q_proj" (none null)
     * @return the list selector
     */
    public static ModuleSelector names(List<String> names) {
        for (String n : Args.given("ModuleSelector.names", "names", names)) {
            Objects.requireNonNull(n, "module name");
        }
        return new ModuleSelector(List.copyOf(names), null, null);
    }

    /**
     * A regex that must match the whole module path.
     *
     * @param regex a Java regex; "all-linear" is PEFT's shorthand for every linear module but the output layer,
     *              which PEFT resolves from the model's layer classes ({@link #matches} does not interpret it)
     * @return the regex selector
     * @throws IllegalArgumentException when the regex does not compile (the message says why)
     */
    public static ModuleSelector regex(String regex) {
        try {
            return new ModuleSelector(null, regex, Pattern.compile(Args.given("ModuleSelector.regex", "regex", regex)));
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("invalid regex " + PeftConfigReader.quote(regex) + ": "
                    + e.getDescription() + " near index " + e.getIndex());
        }
    }

    /**
     * Whether this is the one-regex form.
     *
     * @return true for a regex, false for a list of names
     */
    public boolean isRegex() {
        return regex != null;
    }

    /**
     * The names of a list selector.
     *
     * @return the names in order (unmodifiable), empty for a regex
     */
    public List<String> nameList() {
        return names == null ? List.of() : names;
    }

    /**
     * The regex of a string selector.
     *
     * @return the regex as given, or null for a list
     */
    public String regexString() {
        return regex;
    }

    /**
     * Whether this is PEFT's "all-linear" shorthand.
     *
     * @return true for the regex "all-linear" (any case)
     */
    public boolean isAllLinear() {
        return regex != null && regex.equalsIgnoreCase(ALL_LINEAR);
    }

    /**
     * PEFT's match of module path {@code path} (see the class comment).
     *
     * @param path the module path, e.g. {@code model.layers.0.self_attn.q_proj}
     * @return true when the regex matches the whole path, or a name equals it or is its suffix after a dot
     */

    public boolean matches(String path) {
        Args.given("ModuleSelector.matches", "path", path);
        if (pattern != null) {
            return pattern.matcher(path).matches();
        }
        for (String n : names) {
            if (path.equals(n) || path.endsWith("." + n)) {
                return true;
            }
        }
        return false;
    }

    /** True when the list form matched by suffix rather than by the whole path (PEFT then applies layer filters). */
    boolean matchesBySuffixOnly(String path) {
        return pattern == null && !names.contains(path) && matches(path);
    }

    /** The JSON value: a list of strings or a string. */
    Object toJsonValue() {
        return regex != null ? regex : names;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ModuleSelector m && Objects.equals(names, m.names) && Objects.equals(regex, m.regex);
    }

    @Override
    public int hashCode() {
        return Objects.hash(names, regex);
    }

    @Override
    public String toString() {
        return regex != null ? PeftConfigReader.quote(regex) : names.toString();
    }
}
