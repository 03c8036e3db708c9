package dev.rslora.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Writes the facts of the machine a CPU benchmark run happens on, as JSON, for the results
 * report: date, OS, CPU model and ISA extensions (/proc/cpuinfo), logical CPUs, memory, load
 * average, the JDK and its Vector API width, the cpu backend's register tile, the OPENBLAS_* variables inherited from the
 * environment, and per requested OpenBLAS core type ("auto" = OPENBLAS_CORETYPE unset) the kernel
 * set OpenBLAS actually runs, its build config and thread count (each probed in a child JVM, since
 * OpenBLAS reads OPENBLAS_CORETYPE only when it loads).
 * <pre>
 *   java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp benchmarks.jar \
 *        dev.rslora.bench.BenchEnv --out bench/raw/cpu-env.json --openblas auto --openblas Haswell --openblas Cooperlake
 * </pre>
 */
public final class BenchEnv {
    /** The x86 extensions worth naming in a CPU benchmark report, as /proc/cpuinfo spells them. */
    static final List<String> ISA = List.of("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
            "avx_vnni", "amx_tile", "amx_bf16");

    private BenchEnv() {
    }

    public static void main(String[] args) throws IOException, InterruptedException {
        Path out = null;
        List<String> cores = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--out" -> out = Path.of(value(args, ++i, "--out"));
                case "--openblas" -> cores.add(value(args, ++i, "--openblas"));
                default -> {
                    System.err.println("BenchEnv: unknown argument '" + args[i] + "' (expected --out FILE, --openblas CORE)");
                    System.exit(2);
                }
            }
        }
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = json.createObjectNode();
        root.put("date", Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        root.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        Map<String, String> cpu = cpuInfo(read(Path.of("/proc/cpuinfo")));
        root.put("cpu_model", cpu.getOrDefault("model name", "unknown"));
        root.put("cpu_vendor", cpu.getOrDefault("vendor_id", "unknown"));
        root.put("cpu_family_model", cpu.getOrDefault("cpu family", "?") + "/" + cpu.getOrDefault("model", "?"));
        root.put("isa", isa(cpu.getOrDefault("flags", "")));
        root.put("logical_cpus", Runtime.getRuntime().availableProcessors());
        root.put("memory", firstLine(read(Path.of("/proc/meminfo")), "MemTotal:"));
        root.put("load_average", read(Path.of("/proc/loadavg")).strip());
        root.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"));
        root.put("vector_bits", vectorBits());
        root.put("cpu_tile", dev.rslora.backend.cpu.CpuBackend.tileShape());
        ObjectNode env = root.putObject("openblas_environment");
        System.getenv().entrySet().stream().filter(e -> e.getKey().startsWith("OPENBLAS_")).sorted(Map.Entry.comparingByKey())
                .forEach(e -> env.put(e.getKey(), e.getValue()));
        ArrayNode blas = root.putArray("openblas");
        for (String core : cores) {
            ObjectNode o = blas.addObject();
            o.put("requested", core);
            probeOpenBlas(core).forEach(o::put);
        }
        String text = json.writeValueAsString(root) + "\n";
        if (out == null) {
            System.out.print(text);
        } else {
            Files.createDirectories(out.toAbsolutePath().getParent());
            Files.writeString(out, text, StandardCharsets.UTF_8);
        }
    }

    private static String value(String[] args, int i, String option) {
        if (i >= args.length) {
            System.err.println("BenchEnv: " + option + " needs a value");
            System.exit(2);
        }
        return args[i];
    }

    private static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    /** The "key : value" lines of the first processor block of /proc/cpuinfo. */
    static Map<String, String> cpuInfo(String text) {
        Map<String, String> out = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank()) {
                if (!out.isEmpty()) {
                    break;
                }
                continue;
            }
            int colon = line.indexOf(':');
            if (colon > 0) {
                out.putIfAbsent(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
            }
        }
        return out;
    }

    /** The {@link #ISA} extensions present in a /proc/cpuinfo flags line, space-separated. */
    static String isa(String flags) {
        List<String> have = List.of(flags.split("\\s+"));
        List<String> out = new ArrayList<>();
        for (String f : ISA) {
            if (have.contains(f)) {
                out.add(f);
            }
        }
        return out.isEmpty() ? "none of " + ISA : String.join(" ", out);
    }

    private static String firstLine(String text, String prefix) {
        for (String line : text.split("\n")) {
            if (line.startsWith(prefix)) {
                return line.substring(prefix.length()).strip();
            }
        }
        return "unknown";
    }

    private static String vectorBits() {
        try {
            return jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit FloatVector";
        } catch (Throwable t) {
            return "Vector API unavailable (" + t.getClass().getSimpleName() + ")";
        }
    }

    /** Runs OpenBlasInfo in a child JVM with OPENBLAS_CORETYPE = core (unset for "auto"). */
    private static Map<String, String> probeOpenBlas(String core) throws IOException, InterruptedException {
        String javaBin = ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        ProcessBuilder pb = new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
                System.getProperty("java.class.path"), OpenBlasInfo.class.getName(), core).redirectErrorStream(true);
        pb.environment().remove("OPENBLAS_CORETYPE");
        Process p = pb.start();
        String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        Map<String, String> out = new LinkedHashMap<>();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            p.destroyForcibly();
            out.put("error", "OpenBlasInfo failed: " + text.strip());
            return out;
        }
        for (String line : text.split("\n")) {
            if (line.startsWith("openblas.")) {
                int eq = line.indexOf('=');
                out.put(line.substring("openblas.".length(), eq), line.substring(eq + 1).strip());
            }
        }
        return out;
    }
}
