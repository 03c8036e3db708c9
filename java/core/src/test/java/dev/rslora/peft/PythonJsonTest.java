package dev.rslora.peft;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** PythonJson reproduces json.dumps(indent=2, sort_keys=True); expected strings were produced by CPython 3.11. */
class PythonJsonTest {

    @Test
    void floatsAreWrittenAsPythonRepr() {
        String[][] cases = {
                {"0.0", "0.0"}, {"-0.0", "-0.0"}, {"1e-05", "1.0E-5"}, {"0.0001", "1.0E-4"}, {"0.05", "0.05"},
                {"1e+16", "1.0E16"}, {"1234567890123456.0", "1.234567890123456E15"}, {"3.5", "3.5"},
                {"-2.5e-07", "-2.5E-7"}, {"0.1", "0.1"}, {"100.0", "100.0"}, {"2.8284271247461903", "2.8284271247461903"},
                {"1.7976931348623157e+308", "1.7976931348623157E308"}, {"5e-324", "4.9E-324"},
        };
        for (String[] c : cases) {
            assertEquals(c[0], PythonJson.pyFloat(Double.parseDouble(c[1])), c[1]);
        }
    }

    @Test
    void nestedValuesAreIndentedAndSorted() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("z", List.of("b", "a"));
        m.put("a", Map.of());
        m.put("m", new ArrayList<>());
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("y", 1);
        inner.put("x", null);
        m.put("k", inner);
        m.put("t", true);
        m.put("é\"\n", 0.5);
        // json.dumps({"z": ["b", "a"], "a": {}, "m": [], "k": {"y": 1, "x": None}, "t": True, "é\"\n": 0.5}, indent=2, sort_keys=True)
        String expected = String.join("\n",
                "{",
                "  \"a\": {},",
                "  \"k\": {",
                "    \"x\": null,",
                "    \"y\": 1",
                "  },",
                "  \"m\": [],",
                "  \"t\": true,",
                "  \"z\": [",
                "    \"b\",",
                "    \"a\"",
                "  ],",
                "  \"\\u00e9\\\"\\n\": 0.5",
                "}");
        assertEquals(expected, PythonJson.dumps(m));
    }

    @Test
    void keysSortByCodePointNotByUtf16Unit() {
        // U+1F600 (a surrogate pair in UTF-16) sorts after U+FF5E in Python, before it by Java's compareTo
        List<String> keys = new ArrayList<>(Arrays.asList("\uD83D\uDE00", "\uFF5E"));
        keys.sort(PythonJson::compareCodePoints);
        assertEquals(List.of("\uFF5E", "\uD83D\uDE00"), keys);
    }
}
