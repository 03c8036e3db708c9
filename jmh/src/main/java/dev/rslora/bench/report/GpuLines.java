package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads the JSON-lines files of a GPU check: {@code peft.jsonl} (jmh/peft_peer.py: "meta", "timing",
 * "ratio", "skipped", "check_failed" lines), {@code java-events.jsonl} (GpuEventBench: ours timed the
 * same way) and {@code dev-bench-v*.jsonl} (cuda/dev bench: one
 * "kernel" line per kernel and rank). A cuda/dev step is the sum of its five kernels' medians.
 */
public final class GpuLines {
    /** One cuda/dev kernel timing. */
    public record Kernel(int version, String kernel, Shape shape, double ms, double flop, String device, String source) {
    }

    /** Everything the files held: measurements, kernel rows, facts (meta) and notes (skips, failures). */
    public record Content(List<Measurement> measurements, List<Kernel> kernels, Map<String, String> facts, List<String> notes) {
    }

    /** The cuda/dev kernels that together make one training step. */
    static final List<String> STEP_KERNELS = List.of("down", "forward", "vdb", "da", "dx");

    private GpuLines() {
    }

    public static Content read(List<Path> files) throws IOException {
        List<Measurement> out = new ArrayList<>();
        List<Kernel> kernels = new ArrayList<>();
        Map<String, String> facts = new LinkedHashMap<>();
        List<String> notes = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (Path f : files) {
            String source = f.getFileName().toString();
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            int last = lines.size() - 1;
            while (last >= 0 && lines.get(last).isBlank()) {
                last--;
            }
            for (int i = 0; i <= last; i++) {
                String line = lines.get(i).strip();
                if (line.isEmpty()) {
                    continue;
                }
                String where = source + " line " + (i + 1);
                JsonNode o;
                try {
                    o = json.readTree(line);
                } catch (IOException e) {
                    if (i == last) {
                        // a run killed by its timeout may leave half a line: the complete ones still count
                        notes.add(where + ": incomplete last line ignored (was the run cut short?)");
                        continue;
                    }
                    throw new IOException(where + " is not JSON: " + e.getMessage());
                }
                switch (o.path("kind").asText("")) {
                    case "meta" -> o.properties().forEach(e -> {
                        if (!e.getKey().equals("kind")) {
                            facts.put((source.startsWith("java-events") ? "events." : "peft.") + e.getKey(), e.getValue().asText());
                        }
                    });
                    case "timing" -> out.add(timing(o, where, source));
                    case "kernel" -> kernels.add(kernel(o, where, source));
                    case "skipped" -> notes.add(source + ": skipped" + (o.has("impl") ? " " + o.path("impl").asText()
                            + (o.has("r") ? " r=" + o.path("r").asText() : "") : "") + ": " + o.path("reason").asText("?"));
                    case "check_failed" -> notes.add(source + ": CHECK FAILED: " + o.path("reason").asText("?"));
                    case "ratio" -> {
                        // recomputed from the timings
                    }
                    default -> throw new IOException(where + ": unknown kind '" + o.path("kind").asText("") + "'");
                }
            }
        }
        out.addAll(devSteps(kernels));
        return new Content(out, kernels, facts, notes);
    }

    private static Measurement timing(JsonNode o, String where, String source) throws IOException {
        String impl = switch (o.path("impl").asText("")) {
            // "peft" lines before 2026-12 carried the adapter dtype of --keep-adapter-fp32 (true by default)
            case "peft" -> o.path("adapter_dtype").asText("float32").equals("bfloat16") ? "peft-bf16" : "peft";
            case "peft_bf16" -> "peft-bf16";
            case "eager" -> "torch-eager";
            case "compile" -> "torch-compile";
            case "addmm" -> "torch-addmm";
            case "torch_base" -> "torch-base";
            // GpuEventBench: ours, timed with CUDA events like the peer
            case "java_cublas_base" -> "cublas-base-events";
            case "java_cublaslt_base" -> "cublaslt-base-events";
            case "java_split_graph" -> "cuda-split-graph-events";
            case "java_fused_graph" -> "cuda-graph-events";
            default -> throw new IOException(where + ": unknown impl '" + o.path("impl").asText("") + "'");
        };
        Catalog.Impl i = Catalog.byId(impl);
        Shape s = new Shape(integer(o, "n", where), integer(o, "d_in", where), integer(o, "d_out", where),
                o.path("r").asInt(0));
        double p10 = o.path("p10_ms").asDouble(Double.NaN);
        double p90 = o.path("p90_ms").asDouble(Double.NaN);
        return new Measurement(impl, i.role(), i.platform(), s, number(o, "median_ms", where), (p90 - p10) / 2,
                "median of " + o.path("reps").asInt(0) + ", ± (p90−p10)/2", source);
    }

    private static Kernel kernel(JsonNode o, String where, String source) throws IOException {
        Shape s = new Shape(integer(o, "n", where), integer(o, "d_in", where), integer(o, "d_out", where), integer(o, "r", where));
        return new Kernel(integer(o, "version", where), o.path("kernel").asText("?"), s, number(o, "median_ms", where),
                number(o, "flop", where), o.path("device").asText("?"), source);
    }

    /** One "cuda-dev-v<version>" step per (version, shape) whose five kernels are all present. */
    static List<Measurement> devSteps(List<Kernel> kernels) {
        Map<String, List<Kernel>> groups = new LinkedHashMap<>();
        for (Kernel k : kernels) {
            groups.computeIfAbsent(k.version() + " " + k.shape(), x -> new ArrayList<>()).add(k);
        }
        List<Measurement> out = new ArrayList<>();
        for (List<Kernel> g : groups.values()) {
            List<String> names = g.stream().map(Kernel::kernel).toList();
            if (!names.containsAll(STEP_KERNELS)) {
                continue;
            }
            double ms = g.stream().filter(k -> STEP_KERNELS.contains(k.kernel())).mapToDouble(Kernel::ms).sum();
            Kernel first = g.getFirst();
            String id = "cuda-dev-v" + first.version();
            Catalog.Impl impl = Catalog.byId(id);
            if (impl != null) {
                out.add(new Measurement(id, Role.LORA, Platform.GPU, first.shape(), ms, Double.NaN,
                        "sum of 5 kernel medians", first.source()));
            }
        }
        return out;
    }

    private static int integer(JsonNode o, String field, String where) throws IOException {
        JsonNode v = o.get(field);
        if (v == null || !v.canConvertToInt()) {
            throw new IOException(where + ": integer field '" + field + "' missing or not an integer");
        }
        return v.asInt();
    }

    private static double number(JsonNode o, String field, String where) throws IOException {
        JsonNode v = o.get(field);
        if (v == null || !v.isNumber()) {
            throw new IOException(where + ": number field '" + field + "' missing");
        }
        return v.asDouble();
    }
}
