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
 * same way) and {@code dev-bench-<family>.jsonl} (cuda/dev bench: one
 * "kernel" line per part of the step and rank, with the family of cuda/kernels.table; "launch" lines
 * time single kernels and are not summed). A cuda/dev step is the sum of its parts' medians (the five
 * of every family, plus prep where the family has one); families are whatever the files name, so a new
 * family of the kernel table needs no change here.
 */
public final class GpuLines {
    /** One cuda/dev timing of a part of the step; {@code floorMs} NaN when the line has none. */
    public record Kernel(String family, String kernel, Shape shape, double ms, double flop, double floorMs, String device, String source) {
        /** The family's number (v3 → 3), for ordering. */
        public int familyNumber() {
            return familyNumber(family);
        }

        static int familyNumber(String family) {
            try {
                return Integer.parseInt(family.substring(1));
            } catch (RuntimeException e) {
                return Integer.MAX_VALUE;
            }
        }
    }

    /** Everything the files held: measurements, kernel rows, facts (meta) and notes (skips, failures). */
    public record Content(List<Measurement> measurements, List<Kernel> kernels, Map<String, String> facts, List<String> notes) {
    }

    /** The cuda/dev parts every family's training step has; the sum also takes these optional ones. */
    static final List<String> STEP_KERNELS = List.of("down", "forward", "vdb", "da", "dx");
    static final List<String> OPTIONAL_STEP_KERNELS = List.of("prep");

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
                    case "launch" -> {
                        // one kernel alone: the finer view of the log, not part of the step sums
                    }
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
        String family = o.has("family") ? o.get("family").asText() : "v" + integer(o, "version", where);
        if (!family.matches("v\\d+")) {
            throw new IOException(where + ": family '" + family + "' is not v<N>");
        }
        double ms = number(o, "median_ms", where);
        if (!(ms > 0 && Double.isFinite(ms))) {
            throw new IOException(where + ": median_ms " + ms + " is not a finite time > 0");
        }
        return new Kernel(family, o.path("kernel").asText("?"), s, ms, number(o, "flop", where),
                o.path("floor_ms").asDouble(Double.NaN), o.path("device").asText("?"), source);
    }

    /** One "cuda-dev-<family>" step per (family, shape) whose five parts are all present. */
    static List<Measurement> devSteps(List<Kernel> kernels) {
        Map<String, List<Kernel>> groups = new LinkedHashMap<>();
        for (Kernel k : kernels) {
            groups.computeIfAbsent(k.family() + " " + k.shape(), x -> new ArrayList<>()).add(k);
        }
        List<Measurement> out = new ArrayList<>();
        for (List<Kernel> g : groups.values()) {
            List<String> names = g.stream().map(Kernel::kernel).toList();
            if (!names.containsAll(STEP_KERNELS)) {
                continue;
            }
            List<Kernel> parts = g.stream()
                    .filter(k -> STEP_KERNELS.contains(k.kernel()) || OPTIONAL_STEP_KERNELS.contains(k.kernel())).toList();
            double ms = parts.stream().mapToDouble(Kernel::ms).sum();
            Kernel first = g.getFirst();
            String id = "cuda-dev-" + first.family();
            Catalog.Impl impl = Catalog.byId(id);
            if (impl != null) {
                out.add(new Measurement(id, Role.LORA, Platform.GPU, first.shape(), ms, Double.NaN,
                        "sum of " + parts.size() + " part medians", first.source()));
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
