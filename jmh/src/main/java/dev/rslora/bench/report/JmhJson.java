package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads a JMH result file ({@code -rf json}): one element per (benchmark, parameters) with the
 * primary metric's score and its 99.9 % confidence half-width, in any time-per-op unit.
 */
public final class JmhJson {
    /** The parameter an unknown result gets when JMH ran it on more than one thread (-t): their number. */
    public static final String JMH_THREADS = "jmh.threads";

    /**
     * A result this reader does not map to an implementation (listed apart in the report, or used
     * by a section that knows it); {@code aux} holds its secondary metrics' scores (JMH aux counters: sums),
     * {@code iterationsMs} the primary metric per measurement iteration (every fork's, in order; empty
     * when the file has no raw data) and {@code auxIterations} each secondary metric's per iteration.
     */
    public record Unknown(String benchmark, Map<String, String> params, double ms, double errorMs, String source,
                          Map<String, Double> aux, List<Double> iterationsMs, Map<String, List<Double>> auxIterations) {
        public Unknown {
            iterationsMs = List.copyOf(iterationsMs);
            auxIterations = Map.copyOf(auxIterations);
        }
    }

    /** Everything one file held. */
    public record Content(List<Measurement> measurements, List<Unknown> unknown, List<String> jvms,
                          List<Interleaved> interleaved) {
    }

    private JmhJson() {
    }

    /** True when {@code root} looks like a JMH result array (empty arrays included). */
    public static boolean isJmh(JsonNode root) {
        return root.isArray() && (root.isEmpty() || root.get(0).has("benchmark") && root.get(0).has("primaryMetric"));
    }

    public static Content read(Path file) throws IOException {
        JsonNode root = Results.readJson(new ObjectMapper(), file);
        if (root == null || !isJmh(root)) {
            throw new IOException(file + " is not a JMH JSON result array");
        }
        return parse(root, file.getFileName().toString());
    }

    static Content parse(JsonNode root, String source) throws IOException {
        List<Measurement> out = new ArrayList<>();
        List<Unknown> unknown = new ArrayList<>();
        List<String> jvms = new ArrayList<>();
        List<Interleaved> interleaved = new ArrayList<>();
        for (int i = 0; i < root.size(); i++) {
            JsonNode run = root.get(i);
            String where = source + " element " + i;
            String benchmark = text(run, "benchmark", where);
            int dot = benchmark.lastIndexOf('.');
            int dot2 = benchmark.lastIndexOf('.', dot - 1);
            if (dot < 0) {
                throw new IOException(where + ": benchmark name '" + benchmark + "' has no method part");
            }
            String cls = benchmark.substring(dot2 + 1, dot);
            String method = benchmark.substring(dot + 1);
            Map<String, String> params = new LinkedHashMap<>();
            JsonNode p = run.get("params");
            if (p != null) {
                p.properties().forEach(e -> params.put(e.getKey(), e.getValue().asText()));
            }
            JsonNode metric = run.get("primaryMetric");
            if (metric == null) {
                throw new IOException(where + " (" + benchmark + "): no primaryMetric");
            }
            double scale = toMs(text(metric, "scoreUnit", where), where);
            double score = number(metric.get("score"), where + " score") * scale;
            double error = number(metric.get("scoreError"), where + " scoreError") * scale;
            if (!(score > 0 && Double.isFinite(score))) {  // every benchmark here reports a time per operation
                throw new IOException(where + " (" + benchmark + "): score " + score + " ms is not a finite time > 0");
            }
            String jvm = run.path("vmName").asText("?") + " " + run.path("vmVersion").asText(run.path("jdkVersion").asText("?"));
            if (!jvms.contains(jvm)) {
                jvms.add(jvm);
            }
            Interleaved.Kind pair = Interleaved.kindOf(cls, method);
            if (pair != null) {
                interleaved.add(Interleaved.parse(pair, run, shape(params, where), params, source, where));
                if (pair == Interleaved.Kind.BUSY_OURS) {
                    interleaved.add(Interleaved.parse(Interleaved.Kind.BUSY_PEER, run, shape(params, where), params, source, where));
                }
                if (pair == Interleaved.Kind.OURS_VS_OPENBLAS && "1".equals(params.get("threads"))
                        && run.path("secondaryMetrics").has("oursCpuNanos")) {
                    interleaved.add(Interleaved.parse(Interleaved.Kind.OURS_VS_OPENBLAS_CPU, run, shape(params, where), params,
                            source, where));
                }
                continue;
            }
            Catalog.Impl impl = Catalog.ofJmh(cls, method, params);
            if (impl == null) {
                Map<String, Double> aux = new LinkedHashMap<>();
                Map<String, List<Double>> auxIterations = new LinkedHashMap<>();
                for (Map.Entry<String, JsonNode> e : run.path("secondaryMetrics").properties()) {
                    aux.put(e.getKey(), e.getValue().path("score").asDouble(Double.NaN));
                    auxIterations.put(e.getKey(), iterations(e.getValue().path("rawData"), 1.0, where + " " + e.getKey()));
                }
                int jmhThreads = run.path("threads").asInt(1);
                if (jmhThreads > 1) {  // JMH's -t (no @Param of these benchmarks is called that)
                    params.put(JMH_THREADS, Integer.toString(jmhThreads));
                }
                List<Double> its = iterations(metric.path("rawData"), scale, where + " primaryMetric");
                for (int k = 0; k < its.size(); k++) {
                    if (!(its.get(k) > 0 && Double.isFinite(its.get(k)))) {
                        throw new IOException(where + " (" + benchmark + "): iteration " + k + " of the primary metric is "
                                + its.get(k) + " ms, not a finite time > 0");
                    }
                }
                unknown.add(new Unknown(cls + "." + method, params, score, error, source, aux, its, auxIterations));
                continue;
            }
            Shape shape = shape(params, where);
            String kind = run.path("measurementIterations").asInt(0) * run.path("forks").asInt(1) + " iterations, 99.9% CI";
            out.add(new Measurement(impl.id(), impl.role(), impl.platform(), shape, score, error, kind, source));
        }
        return new Content(out, unknown, jvms, interleaved);
    }

    /**
     * A metric's {@code rawData} ([fork][iteration]) flattened, fork after fork, each value times
     * {@code scale}; empty when the metric has none. A value that is not a number is an error
     * ({@link #number}).
     */
    static List<Double> iterations(JsonNode rawData, double scale, String where) throws IOException {
        List<Double> out = new ArrayList<>();
        for (JsonNode fork : rawData) {
            for (JsonNode v : fork) {
                out.add(number(v, where) * scale);
            }
        }
        return out;
    }

    /** n, r and either d (square) or dIn and dOut. */
    static Shape shape(Map<String, String> params, String where) throws IOException {
        int n = intParam(params, "n", where);
        int r = params.containsKey("r") ? intParam(params, "r", where) : 0;
        if (params.containsKey("d")) {
            int d = intParam(params, "d", where);
            return new Shape(n, d, d, r);
        }
        return new Shape(n, intParam(params, "dIn", where), intParam(params, "dOut", where), r);
    }

    private static int intParam(Map<String, String> params, String key, String where) throws IOException {
        String v = params.get(key);
        if (v == null) {
            throw new IOException(where + ": parameter '" + key + "' missing (have " + params.keySet() + ")");
        }
        try {
            return Integer.parseInt(v.strip());
        } catch (NumberFormatException e) {
            throw new IOException(where + ": parameter " + key + "=" + v + " is not an integer");
        }
    }

    /** Milliseconds per unit of a JMH time-per-op unit. */
    static double toMs(String unit, String where) throws IOException {
        return switch (unit) {
            case "s/op" -> 1e3;
            case "ms/op" -> 1.0;
            case "us/op" -> 1e-3;
            case "ns/op" -> 1e-6;
            default -> throw new IOException(where + ": score unit '" + unit
                    + "' is not a time per operation (run the benchmarks in avgt or ss mode)");
        };
    }

    static String text(JsonNode node, String field, String where) throws IOException {
        JsonNode v = node.get(field);
        if (v == null || !v.isValueNode()) {
            throw new IOException(where + ": field '" + field + "' missing");
        }
        return v.asText();
    }

    /** A JSON number, or the strings "NaN"/"Infinity" JMH writes for undefined errors. */
    static double number(JsonNode v, String where) throws IOException {
        if (v == null) {
            throw new IOException(where + " missing");
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        try {
            return Double.parseDouble(v.asText());
        } catch (NumberFormatException e) {
            throw new IOException(where + " is '" + v.asText() + "', not a number");
        }
    }
}
