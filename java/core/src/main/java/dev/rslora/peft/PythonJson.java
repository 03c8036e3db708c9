package dev.rslora.peft;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes JSON exactly as Python's {@code json.dumps(obj, indent=2, sort_keys=True)} does, which is
 * how PEFT writes {@code adapter_config.json}: keys sorted by code point at every level, two-space
 * indent, {@code ", "}-free separators ({@code ","} at line ends, {@code ": "} after keys), empty
 * containers as {@code {}} and {@code []}, non-ASCII escaped as {@code \\uXXXX}, floats as Python's
 * {@code repr} ({@code 0.0}, {@code 1e-05}), no trailing newline.
 *
 * <p>Values: null, Boolean, Integer/Long, Double/Float, String, List, Map with String keys.
 */
final class PythonJson {
    private PythonJson() {
    }

    static String dumps(Object value) {
        StringBuilder sb = new StringBuilder();
        write(sb, value, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, Object v, int depth) {
        switch (v) {
            case null -> sb.append("null");
            case Boolean b -> sb.append(b ? "true" : "false");
            case Integer i -> sb.append(i);
            case Long l -> sb.append(l);
            case Double d -> sb.append(pyFloat(d));
            case Float f -> sb.append(pyFloat(f));
            case String s -> string(sb, s);
            case List<?> list -> list(sb, list, depth);
            case Map<?, ?> map -> map(sb, map, depth);
            default -> throw new IllegalArgumentException("no JSON form for " + v.getClass().getName());
        }
    }

    private static void list(StringBuilder sb, List<?> list, int depth) {
        if (list.isEmpty()) {
            sb.append("[]");
            return;
        }
        sb.append('[');
        for (int i = 0; i < list.size(); i++) {
            sb.append(i == 0 ? "" : ",");
            newline(sb, depth + 1);
            write(sb, list.get(i), depth + 1);
        }
        newline(sb, depth);
        sb.append(']');
    }

    private static void map(StringBuilder sb, Map<?, ?> map, int depth) {
        if (map.isEmpty()) {
            sb.append("{}");
            return;
        }
        List<String> keys = new ArrayList<>();
        for (Object k : map.keySet()) {
            keys.add((String) k);
        }
        keys.sort(PythonJson::compareCodePoints);
        sb.append('{');
        for (int i = 0; i < keys.size(); i++) {
            sb.append(i == 0 ? "" : ",");
            newline(sb, depth + 1);
            string(sb, keys.get(i));
            sb.append(": ");
            write(sb, map.get(keys.get(i)), depth + 1);
        }
        newline(sb, depth);
        sb.append('}');
    }

    private static void newline(StringBuilder sb, int depth) {
        sb.append('\n').append("  ".repeat(depth));
    }

    /** Python's str ordering: by code point (Java's compareTo orders by UTF-16 unit). */
    static int compareCodePoints(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    }

    /** json.dumps with ensure_ascii=True: only printable ASCII stays literal. */
    private static void string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c >= 0x20 && c <= 0x7E) {
                        sb.append(c);
                    } else {
                        sb.append(String.format("\\u%04x", (int) c));
                    }
                }
            }
        }
        sb.append('"');
    }

    /** Python's float repr: shortest round-trip digits; scientific when the exponent is < -4 or >= 16. */
    static String pyFloat(double x) {
        if (Double.isNaN(x)) {
            return "NaN";
        }
        if (Double.isInfinite(x)) {
            return x > 0 ? "Infinity" : "-Infinity";
        }
        if (x == 0) {
            return 1 / x < 0 ? "-0.0" : "0.0";
        }
        String sign = x < 0 ? "-" : "";
        // Python's repr: the fewest significant digits that read back as x, the closest such
        // decimal when several have that length; rounding the exact value to n digits gives it
        BigDecimal exact = new BigDecimal(Math.abs(x));
        BigDecimal bd = exact;
        for (int n = 1; n <= 17; n++) {
            BigDecimal candidate = exact.round(new MathContext(n, RoundingMode.HALF_EVEN));
            if (candidate.doubleValue() == Math.abs(x)) {
                bd = candidate;
                break;
            }
        }
        bd = bd.stripTrailingZeros();
        String digits = bd.unscaledValue().toString();
        int exp = digits.length() - 1 - bd.scale(); // decimal exponent of the first digit
        if (exp < -4 || exp >= 16) {
            String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
            return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (Math.abs(exp) < 10 ? "0" : "") + Math.abs(exp);
        }
        if (exp >= digits.length() - 1) {
            return sign + digits + "0".repeat(exp - (digits.length() - 1)) + ".0";
        }
        if (exp >= 0) {
            return sign + digits.substring(0, exp + 1) + "." + digits.substring(exp + 1);
        }
        return sign + "0." + "0".repeat(-exp - 1) + digits;
    }
}
