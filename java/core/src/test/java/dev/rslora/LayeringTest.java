package dev.rslora;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Layers only point down. Reads every main source file of every module (java/core, java/cuda,
 * java/cli, jmh), takes the package each one names through an import or a fully qualified name in
 * code (comments and string literals do not count), and fails on a reference to a package in the
 * same or a higher layer, on a package cycle, on a package outside the declared order, on a
 * package split over modules, and on a package in another module than declared. The order is the
 * README's layout table; keep both in step. {@code module-info.java} (no package) is skipped: what
 * a module exports and requires is checked by the compiler.
 */
class LayeringTest {
    /** Layer order, lowest first: package (below dev.rslora) → the module it lives in. One row, one layer. */
    static final List<Map<String, String>> LAYERS = List.of(
            Map.of("tensor", "java/core", "simd", "java/core", "internal", "java/core"),
            Map.of("dropout", "java/core"),
            Map.of("optim", "java/core"),
            Map.of("backend", "java/core"),
            Map.of("backend.reference", "java/core", "backend.cpu", "java/core", "backend.cuda", "java/cuda"),
            Map.of("core", "java/core"),
            Map.of("io", "java/core"),
            Map.of("peft", "java/core"),
            Map.of("train", "java/core"),
            Map.of("model", "java/core"),
            Map.of("demo", "java/cli"),
            Map.of("cli", "java/cli", "bench", "jmh", "bench.report", "jmh"));

    static final List<String> MODULES = List.of("java/core", "java/cuda", "java/cli", "jmh");

    private static final String ROOT_PACKAGE = "dev.rslora";
    private static final Pattern PACKAGE = Pattern.compile("^\\s*package\\s+([\\w.]+)\\s*;", Pattern.MULTILINE);
    /** dev.rslora.a.b.Type (an import or a qualified name): group 1 is the package. */
    private static final Pattern REFERENCE = Pattern.compile("\\bdev\\.rslora((?:\\.[a-z_][a-z0-9_]*)*)\\.[A-Z*]");

    /** One source file: module folder, path (for messages), text. */
    record Source(String module, String path, String text) {
    }

    @Test
    void everyModulesMainSourcesRespectTheLayers() throws IOException {
        Path root = Path.of("../..").toAbsolutePath().normalize();
        assertTrue(Files.isRegularFile(root.resolve("pom.xml")) && Files.isDirectory(root.resolve("java/core")),
                "run from java/core: the repository root " + root + " has no pom.xml and java/core");
        List<Source> sources = new ArrayList<>();
        for (String module : MODULES) {
            Path dir = root.resolve(module).resolve("src/main/java");
            assertTrue(Files.isDirectory(dir), "missing source root " + dir);
            try (Stream<Path> files = Files.walk(dir)) {
                for (Path f : files.filter(p -> p.toString().endsWith(".java") && !p.endsWith("module-info.java")).sorted().toList()) {
                    sources.add(new Source(module, root.relativize(f).toString(), Files.readString(f)));
                }
            }
        }
        Map<String, Set<String>> modulesOf = new TreeMap<>();
        for (Source s : sources) {
            modulesOf.computeIfAbsent(packageOf(s), k -> new TreeSet<>()).add(s.module());
        }
        for (Map<String, String> row : LAYERS) {
            for (String p : row.keySet()) {
                assertTrue(modulesOf.containsKey(p), "declared package dev.rslora." + p + " has no main source: remove it from LAYERS");
            }
        }
        List<String> problems = check(sources);
        assertTrue(problems.isEmpty(), problems.size() + " layering problem(s):\n  " + String.join("\n  ", problems));
        System.out.println("LayeringTest: " + sources.size() + " files, " + modulesOf.size() + " packages in "
                + MODULES.size() + " modules, " + edges(sources).values().stream().mapToInt(Set::size).sum()
                + " package dependencies, all pointing down");
    }

    @Test
    void reportsAnUpwardImportACycleAnUnknownAndAMisplacedPackage() {
        List<Source> bad = List.of(
                new Source("java/core", "a/Tensor.java", "package dev.rslora.tensor;\nimport dev.rslora.core.LoraLinear;\nclass T {}"),
                new Source("java/core", "a/Lora.java", "package dev.rslora.core;\nimport dev.rslora.tensor.Tensor;\nclass L {}"),
                new Source("java/core", "a/Io.java", "package dev.rslora.io;\n// dev.rslora.cli.Main in a comment\n"
                        + "class I { String s = \"dev.rslora.demo.X\"; Object o = dev.rslora.peft.AdapterSet.class; }"),
                new Source("java/core", "a/Extra.java", "package dev.rslora.extra;\nclass E {}"),
                new Source("java/core", "a/Backends.java", "package dev.rslora.backend;\nclass P {}"),
                new Source("java/cli", "a/Backend.java", "package dev.rslora.backend;\nimport static dev.rslora.backend.cpu.X.y;\nclass B {}"),
                new Source("java/core", "a/Cpu.java", "package dev.rslora.backend.cpu;\nimport dev.rslora.backend.cuda.CudaBackend;\nclass C {}"));
        List<String> problems = check(bad);
        String all = String.join("\n", problems);
        assertTrue(all.contains("a/Tensor.java: dev.rslora.tensor (layer 1) uses dev.rslora.core (layer 6)"), all);
        assertTrue(all.contains("a/Io.java: dev.rslora.io (layer 7) uses dev.rslora.peft (layer 8)"), all);
        assertTrue(all.contains("a/Backend.java: dev.rslora.backend (layer 4) uses dev.rslora.backend.cpu (layer 5)"), all);
        assertTrue(all.contains("a/Cpu.java: dev.rslora.backend.cpu (layer 5) uses dev.rslora.backend.cuda (layer 5)"), all);
        assertTrue(all.contains("package cycle: dev.rslora.core -> dev.rslora.tensor -> dev.rslora.core"), all);
        assertTrue(all.contains("dev.rslora.extra is not in the declared layer order"), all);
        assertTrue(all.contains("dev.rslora.backend is split over modules [java/cli, java/core]"), all);
        assertTrue(all.contains("dev.rslora.backend is in java/cli, declared in java/core"), all);
        assertTrue(!all.contains("dev.rslora.cli") && !all.contains("dev.rslora.demo"), "comments and strings do not count:\n" + all);
        assertEquals(8, problems.size(), all);
    }

    /** Every problem in these sources, one line each. */
    static List<String> check(List<Source> sources) {
        Map<String, Integer> layer = new HashMap<>();
        Map<String, String> declaredModule = new HashMap<>();
        for (int i = 0; i < LAYERS.size(); i++) {
            for (Map.Entry<String, String> e : LAYERS.get(i).entrySet()) {
                layer.put(qualified(e.getKey()), i + 1);
                declaredModule.put(qualified(e.getKey()), e.getValue());
            }
        }
        List<String> problems = new ArrayList<>();
        Map<String, Set<String>> modulesOf = new TreeMap<>();
        for (Source s : sources) {
            String from = packageOf(s) == null ? null : qualified(packageOf(s));
            if (from == null) {
                problems.add(s.path() + ": no package " + ROOT_PACKAGE + ".*");
                continue;
            }
            modulesOf.computeIfAbsent(from, k -> new TreeSet<>()).add(s.module());
            for (String to : references(s.text())) {
                if (to.equals(from) || !layer.containsKey(from) || !layer.containsKey(to)) {
                    continue;  // unknown packages are reported once below
                }
                if (layer.get(to) >= layer.get(from)) {
                    problems.add(s.path() + ": " + from + " (layer " + layer.get(from) + ") uses " + to + " (layer "
                            + layer.get(to) + "): layers only point down" + (layer.get(to).equals(layer.get(from)) ? ", and packages of one layer are independent" : ""));
                }
            }
        }
        Set<String> unknown = new TreeSet<>();
        for (Source s : sources) {
            if (packageOf(s) != null) {
                unknown.add(qualified(packageOf(s)));
                unknown.addAll(references(s.text()));
            }
        }
        unknown.removeAll(layer.keySet());
        for (String p : unknown) {
            problems.add(p + " is not in the declared layer order: add it to LayeringTest.LAYERS and README's layout table");
        }
        for (Map.Entry<String, Set<String>> e : modulesOf.entrySet()) {
            if (e.getValue().size() > 1) {
                problems.add(e.getKey() + " is split over modules " + e.getValue());
            }
            String declared = declaredModule.get(e.getKey());
            for (String m : e.getValue()) {
                if (declared != null && !declared.equals(m)) {
                    problems.add(e.getKey() + " is in " + m + ", declared in " + declared);
                }
            }
        }
        problems.addAll(cycles(edges(sources)));
        return problems;
    }

    /** Package → the packages its files reference (self excluded). */
    static Map<String, Set<String>> edges(List<Source> sources) {
        Map<String, Set<String>> g = new TreeMap<>();
        for (Source s : sources) {
            if (packageOf(s) == null) {
                continue;
            }
            String from = qualified(packageOf(s));
            Set<String> out = g.computeIfAbsent(from, k -> new TreeSet<>());
            for (String to : references(s.text())) {
                if (!to.equals(from)) {
                    out.add(to);
                }
            }
        }
        return g;
    }

    /** One line per strongly connected component of more than one package (Tarjan), with one cycle through it. */
    static List<String> cycles(Map<String, Set<String>> g) {
        Map<String, Integer> index = new HashMap<>();
        Map<String, Integer> low = new HashMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<String> out = new ArrayList<>();
        int[] counter = {0};
        for (String v : g.keySet()) {
            if (!index.containsKey(v)) {
                strongConnect(v, g, index, low, stack, onStack, counter, out);
            }
        }
        return out;
    }

    private static void strongConnect(String v, Map<String, Set<String>> g, Map<String, Integer> index, Map<String, Integer> low,
                                      Deque<String> stack, Set<String> onStack, int[] counter, List<String> out) {
        index.put(v, counter[0]);
        low.put(v, counter[0]++);
        stack.push(v);
        onStack.add(v);
        for (String w : g.getOrDefault(v, Set.of())) {
            if (!index.containsKey(w)) {
                strongConnect(w, g, index, low, stack, onStack, counter, out);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (onStack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            Set<String> component = new TreeSet<>();
            String w;
            do {
                w = stack.pop();
                onStack.remove(w);
                component.add(w);
            } while (!w.equals(v));
            if (component.size() > 1) {
                out.add("package cycle: " + String.join(" -> ", cycleThrough(component.iterator().next(), component, g)));
            }
        }
    }

    /** The shortest path from start back to start inside the component (breadth first). */
    private static List<String> cycleThrough(String start, Set<String> component, Map<String, Set<String>> g) {
        Map<String, String> parent = new LinkedHashMap<>();
        Deque<String> queue = new ArrayDeque<>(List.of(start));
        while (!queue.isEmpty()) {
            String v = queue.poll();
            for (String w : g.getOrDefault(v, Set.of())) {
                if (!component.contains(w)) {
                    continue;
                }
                if (w.equals(start)) {
                    List<String> path = new ArrayList<>(List.of(start));
                    for (String u = v; !u.equals(start); u = parent.get(u)) {
                        path.add(1, u);
                    }
                    path.add(start);
                    return path;
                }
                if (!parent.containsKey(w)) {
                    parent.put(w, v);
                    queue.add(w);
                }
            }
        }
        return List.of(start, "?", start);
    }

    /** The dev.rslora.* packages a source file names in code: imports and qualified names, not comments or strings. */
    static Set<String> references(String text) {
        Set<String> out = new TreeSet<>();
        Matcher m = REFERENCE.matcher(code(text));
        while (m.find()) {
            out.add(ROOT_PACKAGE + m.group(1));
        }
        out.remove(ROOT_PACKAGE);
        return out;
    }

    /** The package below dev.rslora ("backend.cpu"), or null. */
    static String packageOf(Source s) {
        Matcher m = PACKAGE.matcher(code(s.text()));
        if (!m.find()) {
            return null;
        }
        String p = m.group(1);
        return p.startsWith(ROOT_PACKAGE + ".") ? p.substring(ROOT_PACKAGE.length() + 1) : null;
    }

    private static String qualified(String sub) {
        return ROOT_PACKAGE + "." + sub;
    }

    /** The text with comments, string literals (text blocks too) and char literals blanked; line breaks kept. */
    static String code(String text) {
        StringBuilder sb = new StringBuilder(text.length());
        int i = 0;
        int n = text.length();
        while (i < n) {
            char c = text.charAt(i);
            if (text.startsWith("//", i)) {
                while (i < n && text.charAt(i) != '\n') {
                    i++;
                }
            } else if (text.startsWith("/*", i)) {
                int end = text.indexOf("*/", i + 2);
                i = blank(text, i, end < 0 ? n : end + 2, sb);
            } else if (text.startsWith("\"\"\"", i)) {
                int end = i + 3;
                while (end < n && !text.startsWith("\"\"\"", end)) {
                    end += text.charAt(end) == '\\' ? 2 : 1;
                }
                i = blank(text, i, Math.min(n, end + 3), sb);
            } else if (c == '"' || c == '\'') {
                int end = i + 1;
                while (end < n && text.charAt(end) != c && text.charAt(end) != '\n') {
                    end += text.charAt(end) == '\\' ? 2 : 1;
                }
                i = blank(text, i, Math.min(n, end + 1), sb);
            } else {
                sb.append(c);
                i++;
            }
        }
        return sb.toString();
    }

    private static int blank(String text, int from, int to, StringBuilder sb) {
        for (int k = from; k < to; k++) {
            sb.append(text.charAt(k) == '\n' ? '\n' : ' ');
        }
        return to;
    }
}
