package dev.rslora.bench.report;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.stream.Stream;

/**
 * Every raw result the report is made from:
 * <pre>
 *   RAW/*.json          JMH result arrays (CPU suite; any other JMH file works too), cpu-env.json (BenchEnv)
 *                       and cpu-loads.json (jmh/bench.sh: the load average before and after each JMH run, when
 *                       it ended, and since 2026-12-06 the CPUs other processes kept busy just before it)
 *   GPU/jmh-gpu*.json   JMH result arrays of GpuBench
 *   GPU/peft*.jsonl     jmh/peft_peer.py;  GPU/dev-bench-v*.jsonl  cuda/dev bench
 *   GPU/gpu-info.csv    nvidia-smi;        GPU/summary.txt         the gpu-check summary (date, commit)
 * </pre>
 * GPU is RAW/gpu unless another folder (a gpu-check log folder) is given.
 */
public final class Results {
    private final List<Measurement> measurements = new ArrayList<>();
    private final List<Interleaved> interleaved = new ArrayList<>();
    private final Map<String, String> loads = new LinkedHashMap<>();
    /** When the JMH run that wrote each CPU result ended (cpu-loads.json's "ended", recorded since 2026-12-05). */
    private final Map<String, Instant> ended = new LinkedHashMap<>();
    /**
     * How many CPUs other processes kept busy in the 2 s before each run (cpu-loads.json's
     * "busy_before", recorded since 2026-12-06; "?" where /proc/stat was unreadable: not kept).
     */
    private final Map<String, Double> busyBefore = new LinkedHashMap<>();
    private final List<JmhJson.Unknown> unknown = new ArrayList<>();
    private final List<GpuLines.Kernel> kernels = new ArrayList<>();
    private final List<String> cpuJvms = new ArrayList<>();
    private final List<String> gpuJvms = new ArrayList<>();
    private final List<String> notes = new ArrayList<>();
    private final List<String> cpuSources = new ArrayList<>();
    private final List<String> gpuSources = new ArrayList<>();
    /** The GPU folder given instead of RAW/gpu ({@code report LOGDIR}), or null. */
    private Path gpuFolder;
    private final Map<String, String> gpuFacts = new LinkedHashMap<>();
    private JsonNode cpuEnv;

    private Results() {
    }

    /** The GPU files of {@code gpu} alone (a gpu-check folder before it is imported): refuses what the report would. */
    static Results loadGpu(Path gpu) throws IOException {
        return load(null, gpu);
    }

    /** JSON from {@code f}; an IOException naming the file when it is not JSON. */
    static JsonNode readJson(ObjectMapper json, Path f) throws IOException {
        try {
            return json.readTree(f.toFile());
        } catch (JsonProcessingException e) {
            var at = e.getLocation();
            throw new IOException(f + " is not JSON: " + e.getOriginalMessage()
                    + (at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")"));
        }
    }

    /** A parser's work whose model refusal (a shape with n = 0, a time of 0) becomes an IOException naming {@code from}. */
    private interface Parse<T> {
        T run() throws IOException;
    }

    private static <T> T parsed(Path from, Parse<T> parse) throws IOException {
        try {
            return parse.run();
        } catch (IllegalArgumentException e) {
            throw new IOException(from + ": " + e.getMessage(), e);
        }
    }

    /**
     * Loads RAW (JMH JSON and cpu-env.json; null: no CPU files) and GPU (null: RAW/gpu; absent folders hold
     * nothing).
     */
    public static Results load(Path raw, Path gpu) throws IOException {
        Results r = new Results();
        ObjectMapper json = new ObjectMapper();
        // tiles are named for the machine the CPU results ran on, before any result is read (Catalog.Machine)
        Path env = raw == null ? null : raw.resolve("cpu-env.json");
        Catalog.machine(env != null && Files.isRegularFile(env) ? Catalog.Machine.of(readJson(json, env)) : Catalog.Machine.THIS_JVM);
        for (Path f : raw == null ? List.<Path>of() : files(raw, ".json")) {
            JsonNode root = readJson(json, f);
            if (root != null && JmhJson.isJmh(root)) {
                r.addJmh(parsed(f, () -> JmhJson.parse(root, f.getFileName().toString())), r.cpuSources, r.cpuJvms);
            } else if (root != null && root.isObject() && root.has("openblas")) {
                r.cpuEnv = root;
                r.cpuSources.add(f.getFileName().toString());
            } else if (root != null && root.isObject() && root.has("loads")) {
                for (var e : root.path("loads").properties()) {
                    r.loads.put(e.getKey(), e.getValue().path("before").asText("?") + " → " + e.getValue().path("after").asText("?"));
                    String ended = e.getValue().path("ended").asText("");
                    if (!ended.isEmpty()) {
                        try {
                            r.ended.put(e.getKey(), Instant.parse(ended));
                        } catch (DateTimeParseException bad) {
                            throw new IOException(f + ": " + e.getKey() + " has \"ended\": \"" + ended
                                    + "\", not a UTC time like 2026-12-05T06:53:03Z");
                        }
                    }
                    String busy = e.getValue().path("busy_before").asText("?").strip();
                    if (!busy.equals("?")) {
                        double cpus = busy.matches("\\d+(\\.\\d+)?") ? Double.parseDouble(busy) : -1;
                        if (cpus < 0) {
                            throw new IOException(f + ": " + e.getKey() + " has \"busy_before\": \"" + busy
                                    + "\", not a number of CPUs like 0.05 (or ? when unknown)");
                        }
                        r.busyBefore.put(e.getKey(), cpus);
                    }
                }
                r.cpuSources.add(f.getFileName().toString());
            } else {
                throw new IOException(f + " is neither a JMH result array nor a BenchEnv file (cpu-env.json) nor a "
                        + "load record (cpu-loads.json)");
            }
        }
        Path g = gpu != null ? gpu : raw.resolve("gpu");
        r.gpuFolder = gpu;
        for (Path f : files(g, ".json")) {
            if (f.getFileName().toString().startsWith("jmh-gpu")) {
                if (Files.size(f) == 0) {
                    r.notes.add(f.getFileName() + ": empty (the JMH run did not finish)");
                    continue;
                }
                r.addJmh(parsed(f, () -> JmhJson.read(f)), r.gpuSources, r.gpuJvms);
            }
        }
        List<Path> lines = files(g, ".jsonl").stream().filter(f -> f.getFileName().toString().startsWith("peft")
                || f.getFileName().toString().startsWith("dev-bench") || f.getFileName().toString().startsWith("java-events")).toList();
        GpuLines.Content gl = parsed(g, () -> GpuLines.read(lines));
        r.measurements.addAll(gl.measurements());
        r.kernels.addAll(gl.kernels());
        r.gpuFacts.putAll(gl.facts());
        r.notes.addAll(gl.notes());
        lines.forEach(f -> r.gpuSources.add(f.getFileName().toString()));
        Path info = g.resolve("gpu-info.csv");
        if (Files.isRegularFile(info)) {
            r.gpuFacts.putAll(nvidiaSmi(Files.readAllLines(info, StandardCharsets.UTF_8)));
            r.gpuSources.add("gpu-info.csv");
        }
        Path bundle = g.resolve("BUNDLE.txt");
        if (Files.isRegularFile(bundle)) {
            Files.readAllLines(bundle, StandardCharsets.UTF_8).stream().filter(l -> l.startsWith("commit:")).findFirst()
                    .ifPresent(l -> r.gpuFacts.put("bundle.commit", l.substring("commit:".length()).strip() + " (BUNDLE.txt)"));
            r.gpuSources.add("BUNDLE.txt");
        }
        Path commit = g.resolve(GpuImport.COMMIT_FILE);
        if (Files.isRegularFile(commit) && !r.gpuFacts.containsKey("bundle.commit")) {
            List<String> cl = Files.readAllLines(commit, StandardCharsets.UTF_8);
            String c = cl.stream().filter(l -> l.startsWith("commit:")).map(l -> l.substring(7).strip()).findFirst().orElse("?");
            String src = cl.stream().filter(l -> l.startsWith("source:")).map(l -> l.substring(7).strip()).findFirst().orElse("?");
            r.gpuFacts.put("bundle.commit", c + " (" + src + ")");
            r.gpuSources.add(GpuImport.COMMIT_FILE);
        }
        Path clocks = g.resolve("gpu-clocks.csv");
        if (Files.isRegularFile(clocks)) {
            r.gpuFacts.putAll(clockSummary(Files.readAllLines(clocks, StandardCharsets.UTF_8)));
            r.gpuSources.add("gpu-clocks.csv");
        }
        Path summary = g.resolve("summary.txt");
        if (Files.isRegularFile(summary)) {
            Files.readAllLines(summary, StandardCharsets.UTF_8).stream().filter(l -> l.startsWith("rslora gpu-check")).findFirst()
                    .ifPresent(l -> r.gpuFacts.put("check", l.strip()));
            r.gpuSources.add("summary.txt");
        }
        return r;
    }

    private void addJmh(JmhJson.Content c, List<String> sources, List<String> jvms) {
        measurements.addAll(c.measurements());
        interleaved.addAll(c.interleaved());
        c.interleaved().stream().map(Interleaved::source).findFirst().filter(x -> c.measurements().isEmpty())
                .ifPresent(sources::add);
        unknown.addAll(c.unknown());
        c.jvms().stream().filter(j -> !jvms.contains(j)).forEach(jvms::add);
        c.measurements().stream().map(Measurement::source).findFirst().ifPresent(sources::add);
        if (c.measurements().isEmpty() && c.interleaved().isEmpty()) {
            c.unknown().stream().map(JmhJson.Unknown::source).findFirst().ifPresent(sources::add);
        }
    }

    /** The regular files of {@code dir} ending in {@code suffix}, by name; none when dir is absent. */
    static List<Path> files(Path dir, String suffix) throws IOException {
        if (!Files.isDirectory(dir)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(Files::isRegularFile).filter(f -> f.getFileName().toString().endsWith(suffix))
                    .sorted(Comparator.comparing(f -> f.getFileName().toString())).toList();
        }
    }

    /** "name, driver_version, ..." header and the first GPU's row of nvidia-smi --format=csv, as gpu.* facts. */
    static Map<String, String> nvidiaSmi(List<String> lines) {
        Map<String, String> out = new LinkedHashMap<>();
        if (lines.size() < 2) {
            return out;
        }
        String[] keys = lines.get(0).split(",");
        String[] values = lines.get(1).split(",");
        for (int i = 0; i < Math.min(keys.length, values.length); i++) {
            out.put("gpu." + keys[i].strip(), values[i].strip());
        }
        return out;
    }

    /**
     * nvidia-smi samples taken while the benchmarks ran ({@code --query-gpu=timestamp,clocks.sm,power.draw,
     * temperature.gpu --format=csv,noheader,nounits -lms 250}, first line a header): the SM clock's and the
     * power draw's min / median / max, as clocks.* facts. Lines that do not parse are ignored.
     */
    static Map<String, String> clockSummary(List<String> lines) {
        List<Double> sm = new ArrayList<>();
        List<Double> power = new ArrayList<>();
        for (String l : lines) {
            String[] f = l.split(",");
            if (f.length < 3) {
                continue;
            }
            try {
                sm.add(Double.parseDouble(f[1].replaceAll("[^0-9.]", "")));
                power.add(Double.parseDouble(f[2].replaceAll("[^0-9.]", "")));
            } catch (NumberFormatException e) {
                // the header, or a sample nvidia-smi could not read ("[N/A]")
            }
        }
        Map<String, String> out = new LinkedHashMap<>();
        if (!sm.isEmpty()) {
            out.put("clocks.samples", Integer.toString(sm.size()));
            out.put("clocks.sm_mhz", spread(sm));
            out.put("clocks.power_w", spread(power));
        }
        return out;
    }

    private static String spread(List<Double> v) {
        List<Double> s = v.stream().sorted().toList();
        return Fmt.num(s.getFirst(), 0) + " / " + Fmt.num(s.get(s.size() / 2), 0) + " / " + Fmt.num(s.getLast(), 0);
    }

    public List<Measurement> measurements() {
        return measurements;
    }

    public List<Measurement> of(Platform p, Role role) {
        return measurements.stream().filter(m -> m.platform() == p && m.role() == role).toList();
    }

    /** The first measurement of {@code impl} at exactly {@code shape} (rank included). */
    public Optional<Measurement> find(String impl, Shape shape) {
        return measurements.stream().filter(m -> m.impl().equals(impl) && m.shape().equals(shape)).findFirst();
    }

    /** The frozen base {@code baseId} at shape's N, d_in, d_out: the one run with the same r if any, else the first. */
    public Optional<Measurement> base(String baseId, Shape shape) {
        List<Measurement> same = measurements.stream().filter(m -> m.impl().equals(baseId)
                && m.shape().base().equals(shape.base())).toList();
        return same.stream().filter(m -> m.shape().r() == shape.r()).findFirst().or(() -> same.stream().findFirst());
    }

    /** The fastest frozen base of platform {@code p} at shape's N, d_in, d_out (any implementation, any r of its run). */
    public Optional<Measurement> bestBase(Platform p, Shape shape) {
        return measurements.stream().filter(m -> m.platform() == p && m.role() == Role.BASE && m.shape().base().equals(shape.base()))
                .min(Comparator.comparingDouble(Measurement::ms));
    }

    /** Interleaved pairs (LoRA vs base, ours vs OpenBLAS) measured in one JVM. */
    public List<Interleaved> interleaved() {
        return interleaved;
    }

    /**
     * When the CPU results' runs ended, for a header: "2026-12-05 04:48–06:53 UTC" (one day) or
     * "2026-12-04 22:44 UTC – 2026-12-05 06:53 UTC", with "; N runs without a recorded time" when
     * some load records have no end time; null when none has (results from before the times were kept).
     */
    public String cpuRunsEnded() {
        if (ended.isEmpty()) {
            return null;
        }
        Instant first = ended.values().stream().min(Instant::compareTo).orElseThrow();
        Instant last = ended.values().stream().max(Instant::compareTo).orElseThrow();
        DateTimeFormatter day = DateTimeFormatter.ofPattern("yyyy-MM-dd").withZone(ZoneOffset.UTC);
        DateTimeFormatter time = DateTimeFormatter.ofPattern("HH:mm").withZone(ZoneOffset.UTC);
        String span = day.format(first).equals(day.format(last))
                ? day.format(first) + " " + time.format(first) + (time.format(first).equals(time.format(last)) ? "" : "–" + time.format(last)) + " UTC"
                : day.format(first) + " " + time.format(first) + " UTC – " + day.format(last) + " " + time.format(last) + " UTC";
        long untimed = loads.keySet().stream().filter(k -> !ended.containsKey(k)).count();
        return untimed == 0 ? span : span + "; " + untimed + (untimed == 1 ? " run" : " runs") + " without a recorded time";
    }

    /**
     * How many CPUs other processes kept busy in the 2 s before the JMH run that wrote {@code source}
     * (jmh/bench.sh's busy_now), or empty when not recorded.
     */
    public OptionalDouble busyBefore(String source) {
        Double cpus = busyBefore.get(source);
        return cpus == null ? OptionalDouble.empty() : OptionalDouble.of(cpus);
    }

    /** "before → after" 1-, 5-, 15-minute load averages of the JMH run that wrote {@code source}, or "not recorded". */
    public String load(String source) {
        return loads.getOrDefault(source, "not recorded");
    }

    public List<JmhJson.Unknown> unknown() {
        return unknown;
    }

    public List<GpuLines.Kernel> kernels() {
        return kernels;
    }

    /** The JVMs (name and version) the CPU-side JMH files report. */
    public List<String> cpuJvms() {
        return cpuJvms;
    }

    /** The JVMs the GPU-side JMH files report. */
    public List<String> gpuJvms() {
        return gpuJvms;
    }

    public List<String> notes() {
        return notes;
    }

    public List<String> cpuSources() {
        return cpuSources;
    }

    /**
     * The GPU folder read instead of RAW/gpu ({@code jmh/bench.sh report LOGDIR}).
     *
     * @return that folder, or null when the GPU part came from RAW/gpu
     */
    public Path gpuFolder() {
        return gpuFolder;
    }

    /**
     * The GPU part's files.
     *
     * @return their names
     */
    public List<String> gpuSources() {
        return gpuSources;
    }

    public Map<String, String> gpuFacts() {
        return gpuFacts;
    }

    /** BenchEnv's JSON, or null. */
    public JsonNode cpuEnv() {
        return cpuEnv;
    }
}
