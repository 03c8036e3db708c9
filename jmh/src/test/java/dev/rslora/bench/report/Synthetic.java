package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Writes small raw files in the formats the producers write (JMH -rf json, peft_peer.py, cuda/dev bench, nvidia-smi). */
final class Synthetic {
    static final ObjectMapper JSON = new ObjectMapper();

    private Synthetic() {
    }

    /** One JMH result element: benchmark FQN, params as "k=v" pairs, score ± error in unit. */
    static ObjectNode jmh(String benchmark, double score, double error, String unit, String... params) {
        ObjectNode o = JSON.createObjectNode();
        o.put("jmhVersion", "1.37");
        o.put("benchmark", benchmark);
        o.put("mode", "avgt");
        o.put("forks", 1);
        o.put("jdkVersion", "25.0.3");
        o.put("vmName", "OpenJDK 64-Bit Server VM");
        o.put("vmVersion", "25.0.3+9-LTS");
        o.put("measurementIterations", 5);
        ObjectNode p = o.putObject("params");
        for (String kv : params) {
            int eq = kv.indexOf('=');
            p.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        ObjectNode m = o.putObject("primaryMetric");
        m.put("score", score);
        if (Double.isNaN(error)) {
            m.put("scoreError", "NaN");
        } else {
            m.put("scoreError", error);
        }
        m.put("scoreUnit", unit);
        o.putObject("secondaryMetrics");
        return o;
    }

    static void write(Path file, List<ObjectNode> elements) throws IOException {
        ArrayNode a = JSON.createArrayNode();
        elements.forEach(a::add);
        Files.createDirectories(file.getParent());
        Files.writeString(file, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(a), StandardCharsets.UTF_8);
    }

    static void lines(Path file, String... lines) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, String.join("\n", lines) + "\n", StandardCharsets.UTF_8);
    }

    static final String B = "dev.rslora.bench.";

    /**
     * The CPU suite at N=512 and 2048, d=1024, r=16 and 64: ours 10 % faster than Haswell, 10 % slower
     * than Cooperlake; bases per implementation; the reference at the smallest shape only; one
     * unknown benchmark; a cpu-env.json.
     */
    static void cpu(Path raw) throws IOException {
        List<ObjectNode> ours = new java.util.ArrayList<>();
        List<ObjectNode> blas = new java.util.ArrayList<>();
        for (int n : new int[] {512, 2048}) {
            double base = n / 100.0; // 5.12 ms and 20.48 ms
            for (int r : new int[] {16, 64}) {
                double lora = base * (1 + r / 160.0); // R = 1.1 at r=16, 1.4 at r=64
                ours.add(jmh(B + "CpuLayerBenchmark.loraForwardBackward", lora, lora / 100, "ms/op",
                        "n=" + n, "dIn=1024", "dOut=1024", "r=" + r, "dropout=0", "tile=512"));
                blas.add(jmh(B + "OpenBlasLoraBenchmark.loraForwardBackward", lora * 1.1, 0.01, "ms/op",
                        "core=Haswell", "d=1024", "n=" + n, "r=" + r));
                blas.add(jmh(B + "OpenBlasLoraBenchmark.loraForwardBackward", lora / 1.1, 0.01, "ms/op",
                        "core=Cooperlake", "d=1024", "n=" + n, "r=" + r));
            }
            ours.add(jmh(B + "CpuLayerBenchmark.baseForwardBackward", base, base / 100, "ms/op",
                    "n=" + n, "dIn=1024", "dOut=1024", "r=16", "dropout=0", "tile=512"));
            blas.add(jmh(B + "OpenBlasLoraBenchmark.baseForwardBackward", base, 0.01, "ms/op", "core=Haswell", "d=1024",
                    "n=" + n, "r=16"));
            blas.add(jmh(B + "OpenBlasLoraBenchmark.baseForwardBackward", base, 0.01, "ms/op", "core=Cooperlake", "d=1024",
                    "n=" + n, "r=16"));
        }
        write(raw.resolve("cpu-ours-d1024.json"), ours);
        write(raw.resolve("cpu-openblas-d1024.json"), blas);
        write(raw.resolve("cpu-reference.json"), List.of(
                jmh(B + "ReferenceLayerBenchmark.loraForwardBackward", 5.5, Double.NaN, "s/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=16", "dropout=0"),
                jmh(B + "ReferenceLayerBenchmark.baseForwardBackward", 2.75, Double.NaN, "s/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=16", "dropout=0"),
                jmh("org.example.SomethingElse.run", 1.0, 0.1, "us/op", "x=1")));
        lines(raw.resolve("cpu-env.json"), "{\"date\": \"2026-01-02T03:04:05Z\", \"cpu_model\": \"Test CPU 9000\", "
                + "\"cpu_vendor\": \"AuthenticAMD\", \"cpu_family_model\": \"26/2\", \"logical_cpus\": 2, \"isa\": \"avx2 fma avx512f\", "
                + "\"memory\": \"1 kB\", \"load_average\": \"0.1\", \"os\": \"Linux 6.1 amd64\", \"vector_bits\": \"512-bit FloatVector\", "
                + "\"openblas_environment\": {\"OPENBLAS_CORETYPE\": \"Haswell\"}, \"openblas\": [{\"requested\": \"auto\", "
                + "\"core\": \"Cooperlake\", \"config\": \"OpenBLAS 0.3.31 DYNAMIC_ARCH\", \"threads\": \"2\"}], "
                + "\"cpu_tile\": \"512-bit vectors, 8×32 tile\"}");
    }

    /** A JMH element with aux counters: name → per-iteration values (one fork). */
    static ObjectNode aux(String benchmark, double score, String[] params, String[] names, double[][] values) {
        ObjectNode o = jmh(benchmark, score, 0.1, "ms/op", params);
        ArrayNode fork = o.with("primaryMetric").putArray("rawData").addArray();
        for (int i = 0; i < values[0].length; i++) {
            fork.add(score);
        }
        ObjectNode sm = o.putObject("secondaryMetrics");
        for (int c = 0; c < names.length; c++) {
            ObjectNode m = sm.putObject(names[c]);
            m.put("score", java.util.Arrays.stream(values[c]).sum());
            m.put("scoreUnit", "#");
            ArrayNode f = m.putArray("rawData").addArray();
            for (double v : values[c]) {
                f.add(v);
            }
        }
        return o;
    }

    /**
     * Ours vs OpenBLAS Cooperlake at N=2048 over two forks (JVMs): ours 40 ms per 8 steps throughout;
     * OpenBLAS 40 and 44 ms in the first (ratios 1.0, 1.1), 52 and 48 in the second (1.3, 1.2).
     */
    static void twoForks(Path raw) throws IOException {
        ObjectNode o = aux(B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 900, new String[] {"n=2048", "d=1024", "r=64",
                "core=Cooperlake", "tile=512", "busy=0"}, new String[] {"oursNanos", "oursSteps", "peerNanos", "peerSteps"},
                new double[][] {{40e6, 40e6}, {8, 8}, {40e6, 44e6}, {8, 8}});
        double[][] second = {{40e6, 40e6}, {8, 8}, {52e6, 48e6}, {8, 8}};
        String[] names = {"oursNanos", "oursSteps", "peerNanos", "peerSteps"};
        ArrayNode primary = o.with("primaryMetric").withArray("rawData").addArray();
        for (int c = 0; c < names.length; c++) {
            ArrayNode f = o.with("secondaryMetrics").with(names[c]).withArray("rawData").addArray();
            for (double v : second[c]) {
                f.add(v);
            }
        }
        primary.add(900).add(900);
        write(raw.resolve("cpu-vs-forks.json"), List.of(o));
    }

    /**
     * The side-by-side runs: ours vs OpenBLAS Cooperlake at N=512 (ours 5 ms/step; OpenBLAS 6.5,
     * 6.0 and 5.5 ms over three iterations: ratios 1.3, 1.2, 1.1), the same with one busy thread
     * (ours 7.5, OpenBLAS 65: ratio 8.667); R at r=256 (LoRA 8 ms, base 4.5: R 1.778) and at N=1
     * (0.1 ms vs 0.08: 1.25); an old-format loraThenBase (no steps counter) at r=64 (1.2 ms + 1.0
     * ms per pair, R 1.2); the FMA ceiling; the loads.
     */
    static void sideBySide(Path raw) throws IOException {
        String[] c = {"oursNanos", "oursSteps", "peerNanos", "peerSteps"};
        String[] p = {"n=512", "d=1024", "r=64", "core=Cooperlake", "tile=512", "busy=0"};
        String[] pb = {"n=512", "d=1024", "r=64", "core=Cooperlake", "tile=512", "busy=1"};
        write(raw.resolve("cpu-vs-openblas.json"), List.of(
                aux(B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 500, p, c,
                        new double[][] {{40e6, 40e6, 40e6}, {8, 8, 8}, {52e6, 48e6, 44e6}, {8, 8, 8}}),
                aux(B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 900, pb, c,
                        new double[][] {{60e6, 60e6}, {8, 8}, {520e6, 520e6}, {8, 8}}),
                // one thread each: CPU time 80 ms vs 100 ms per 8 steps (ratio 1.25); wall diluted
                aux(B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 900, new String[] {"n=2048", "d=1024", "r=64",
                        "core=Cooperlake", "tile=512", "busy=0", "threads=1"}, new String[] {"oursNanos", "oursSteps", "peerNanos",
                        "peerSteps", "oursCpuNanos", "peerCpuNanos"}, new double[][] {{200e6}, {8}, {200e6}, {8}, {80e6}, {100e6}}),
                // one thread each, 256-bit tile vs Haswell: CPU time 200 ms vs 190 ms per 8 steps (ratio 0.95)
                aux(B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 900, new String[] {"n=512", "d=1024", "r=64",
                        "core=Haswell", "tile=256", "busy=0", "threads=1"}, new String[] {"oursNanos", "oursSteps", "peerNanos",
                        "peerSteps", "oursCpuNanos", "peerCpuNanos"}, new double[][] {{400e6}, {8}, {400e6}, {8}, {200e6}, {190e6}}),
                // a busy core: ours 40 → 60 ms per 8 steps (×1.5), OpenBLAS 52 → 520 (×10)
                aux(B + "CpuVsOpenBlasBenchmark.busyEffect", 900, p, new String[] {"oursNanos", "oursBusyNanos", "peerNanos",
                        "peerBusyNanos", "steps"}, new double[][] {{40e6, 40e6}, {60e6, 60e6}, {52e6, 52e6}, {520e6, 520e6}, {8, 8}})));
        String[] l = {"loraNanos", "baseNanos", "steps"};
        write(raw.resolve("cpu-r.json"), List.of(
                aux(B + "CpuLayerBenchmark.loraThenBase", 12.5, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=256",
                        "dropout=0", "tile=512", "busy=0"}, l, new double[][] {{800e6, 800e6}, {450e6, 450e6}, {100, 100}}),
                aux(B + "CpuLayerBenchmark.loraThenBase", 0.18, new String[] {"n=1", "dIn=1024", "dOut=1024", "r=64",
                        "dropout=0", "tile=512", "busy=0"}, l, new double[][] {{1e6, 1e6, 1e6}, {0.8e6, 0.8e6, 0.8e6}, {10, 10, 10}})));
        write(raw.resolve("cpu-r-old.json"), List.of(
                aux(B + "CpuLayerBenchmark.loraThenBase", 2.2, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=64",
                        "dropout=0"}, new String[] {"loraNanos", "baseNanos"}, new double[][] {{1.2e9, 1.2e9}, {1e9, 1e9}})));
        write(raw.resolve("cpu-fma.json"), List.of(
                aux(B + "FmaPeakBenchmark.fma512", 0.139e-6, new String[0], new String[] {"cpuNanos", "fmas"},
                        new double[][] {{1e9}, {8e9}}),
                // two iterations of 0.5 CPU-s: 0.139 ns per FMA and 3.5e9 FMAs (112 GFLOP/s per CPU-second), then
                // 0.2 ns and 2.8e9 (a slow stretch); the mean, 0.1695 ns and 100.8 GFLOP/s, is not the ceiling
                iterations(aux(B + "FmaPeakBenchmark.fma256", 0.1695e-6, new String[0], new String[] {"cpuNanos", "fmas"},
                        new double[][] {{0.5e9, 0.5e9}, {3.5e9, 2.8e9}}), 0.139e-6, 0.2e-6),
                // with one thread per core (JMH -t 2 on the synthetic 2-CPU machine): 0.2 ns per FMA per thread,
                // 160 GFLOP/s per thread, 320 all together
                threads(aux(B + "FmaPeakBenchmark.fma512", 0.2e-6, new String[0], new String[] {"cpuNanos", "fmas"},
                        new double[][] {{2e9}, {10e9}}), 2),
                jmh(B + "FmaPeakBenchmark.fmaScalar", 0.139, 0.001, "ns/op")));
        // one thread in CPU time, 256-bit tile under -XX:UseAVX=2: LoRA 24 CPU-ms, base 20 CPU-ms per step
        ObjectNode cpu = aux(B + "CpuLayerBenchmark.loraThenBaseCpu", 30, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=64",
                "dropout=0", "tile=256", "busy=0", "threads=1"}, new String[] {"loraCpuNanos", "baseCpuNanos", "steps"},
                new double[][] {{2.4e9, 2.4e9}, {2.0e9, 2.0e9}, {100, 100}});
        cpu.putArray("jvmArgs").add("--add-modules").add("-XX:UseAVX=2");
        write(raw.resolve("cpu-cputime.json"), List.of(cpu));
        lines(raw.resolve("cpu-loads.json"), "{\"loads\": {\"cpu-vs-openblas.json\": {\"before\": \"0.50 0.40 0.30\", "
                + "\"after\": \"1.10 0.60 0.35\", \"busy_before\": \"0.04\"}, \"cpu-r.json\": {\"before\": \"3.00 2.00 1.00\", "
                + "\"after\": \"3.50 2.10 1.00\", \"busy_before\": \"1.60\"}}}");
    }

    /** {@code run} as JMH writes it for -t {@code n}. */
    /** {@code run} with its primary metric's raw data replaced by one fork of these iterations. */
    static ObjectNode iterations(ObjectNode run, double... scores) {
        ArrayNode fork = run.with("primaryMetric").putArray("rawData").addArray();
        for (double v : scores) {
            fork.add(v);
        }
        return run;
    }

    static ObjectNode threads(ObjectNode run, int n) {
        run.put("threads", n);
        return run;
    }

    /**
     * Decoding, forward only ({@code forwardThenBase}, cpu-decode.json): N=1, d=1024, r=64, 512-bit
     * tile, the base forward 10 µs per step and the LoRA forward {@code ratios[i]}× that in iteration
     * i (100 steps each); N=8, r=16: LoRA 30 µs, base 25 µs (1.2) in both of two iterations.
     */
    static void decode(Path raw, double... ratios) throws IOException {
        String[] l = {"loraNanos", "baseNanos", "steps"};
        double[] lora = new double[ratios.length];
        double[] base = new double[ratios.length];
        double[] steps = new double[ratios.length];
        for (int i = 0; i < ratios.length; i++) {
            base[i] = 100 * 10e3;
            lora[i] = base[i] * ratios[i];
            steps[i] = 100;
        }
        write(raw.resolve("cpu-decode.json"), List.of(
                aux(B + "CpuLayerBenchmark.forwardThenBase", 0.02, new String[] {"n=1", "dIn=1024", "dOut=1024", "r=64",
                        "dropout=0", "tile=512", "busy=0"}, l, new double[][] {lora, base, steps}),
                aux(B + "CpuLayerBenchmark.forwardThenBase", 0.055, new String[] {"n=8", "dIn=1024", "dOut=1024", "r=16",
                        "dropout=0", "tile=512", "busy=0"}, l, new double[][] {{3e6, 3e6}, {2.5e6, 2.5e6}, {100, 100}})));
    }

    /**
     * The N = 1 pairs in blocks of 32 steps a side (cpu-decode-blocks.json, 512-bit tile, r=64):
     * the step, LoRA 140 µs against base 100 µs (R 1.4) in both of two iterations; the forward,
     * LoRA 11 µs against base 10 µs (1.1).
     */
    static void decodeBlocks(Path raw) throws IOException {
        String[] l = {"loraNanos", "baseNanos", "steps"};
        String[] p = {"n=1", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512", "busy=0", "block=32"};
        write(raw.resolve("cpu-decode-blocks.json"), List.of(
                aux(B + "CpuLayerBenchmark.loraThenBase", 7.68, p, l, new double[][] {{4.48e6, 4.48e6}, {3.2e6, 3.2e6}, {32, 32}}),
                aux(B + "CpuLayerBenchmark.forwardThenBase", 0.672, p, l, new double[][] {{0.352e6, 0.352e6}, {0.32e6, 0.32e6},
                        {32, 32}})));
    }

    /**
     * The traffic floor at N = 1, d = 1024, r = 64 in blocks of 32 (cpu-traffic.json): the step's bytes
     * alone, LoRA 120 and 125 µs against base 100 µs (R 1.2, 1.25); the forward's, 55 against 50 µs (1.1).
     */
    static void traffic(Path raw) throws IOException {
        String[] l = {"loraNanos", "baseNanos", "steps"};
        String[] p = {"n=1", "dIn=1024", "dOut=1024", "r=64", "block=32", "threads=0"};
        write(raw.resolve("cpu-traffic.json"), List.of(
                aux(B + "TrafficFloorBenchmark.loraThenBase", 7.04, p, l, new double[][] {{3.84e6, 4.0e6}, {3.2e6, 3.2e6}, {32, 32}}),
                aux(B + "TrafficFloorBenchmark.forwardThenBase", 3.36, p, l, new double[][] {{1.76e6, 1.76e6}, {1.6e6, 1.6e6},
                        {32, 32}})));
    }

    /**
     * A GPU check folder at N=8192, d=4096, r=16: cuBLAS base 1.0 ms, fused eager 1.2 ms (R 1.2), graph
     * 1.05 ms (R 1.05), chain 1.5 ms; PEFT 1.47 ms over torch's base 1.0 ms; cuda/dev v1 kernels
     * summing to 1.09 ms.
     */
    /**
     * A GPU check folder: our JMH steps and bases (cuBLAS 1.0 ms, cuBLASLt 0.9 ms), torch's base 0.8 ms
     * (the fastest, so every GPU R divides by it), PEFT fp32 1.47 and bf16 1.30, addmm 1.10, the
     * cuda/dev kernels, nvidia-smi card and clock samples, the bundle's commit.
     */
    static void gpu(Path dir) throws IOException {
        String[] p = {"n=8192", "d=4096", "r=16", "dropout=0.1"};
        write(dir.resolve("jmh-gpu-r16.json"), List.of(
                jmh(B + "CudaLayerBenchmark.cublasBase", 1.0, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.cublasLtBase", 0.9, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.fusedEager", 1.2, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.fusedGraph", 0.85, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.splitEager", 1.0, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.splitGraph", 0.95, 0.01, "ms/op", p),
                jmh(B + "CudaLayerBenchmark.unfusedChain", 1500.0, 10.0, "us/op", p)));
        lines(dir.resolve("peft.jsonl"),
                "{\"kind\": \"meta\", \"device\": \"NVIDIA H200\", \"torch\": \"2.11.0\", \"torch_cuda\": \"13.0\", \"peft\": \"0.18.0\", "
                        + "\"impls\": \"base,peft,peft_bf16,addmm\"}",
                "{\"kind\": \"timing\", \"impl\": \"torch_base\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 0, "
                        + "\"dropout\": 0.0, \"sets\": 2, \"median_ms\": 0.8, \"p10_ms\": 0.78, \"p90_ms\": 0.82, \"min_ms\": 0.77, \"reps\": 50}",
                "{\"kind\": \"timing\", \"impl\": \"peft\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 16, "
                        + "\"dropout\": 0.1, \"sets\": 2, \"adapter_dtype\": \"float32\", \"gamma\": 4.0, \"median_ms\": 1.47, "
                        + "\"p10_ms\": 1.45, \"p90_ms\": 1.49, \"min_ms\": 1.44, \"reps\": 50}",
                "{\"kind\": \"ratio\", \"impl\": \"peft\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 16, \"R\": 1.47}",
                "{\"kind\": \"timing\", \"impl\": \"peft_bf16\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 16, "
                        + "\"dropout\": 0.1, \"sets\": 2, \"median_ms\": 1.30, \"p10_ms\": 1.29, \"p90_ms\": 1.31, \"min_ms\": 1.28, \"reps\": 50}",
                "{\"kind\": \"timing\", \"impl\": \"addmm\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 16, "
                        + "\"dropout\": 0.0, \"sets\": 2, \"median_ms\": 1.10, \"p10_ms\": 1.09, \"p90_ms\": 1.11, \"min_ms\": 1.08, \"reps\": 50}",
                "{\"kind\": \"skipped\", \"impl\": \"compile\", \"reason\": \"torch.compile failed: no Triton\"}");
        lines(dir.resolve("java-events.jsonl"),
                "{\"kind\": \"meta\", \"date\": \"2026-02-03T04:06:00Z\", \"device\": \"NVIDIA H200 (sm_90)\", \"warmup\": 10, \"reps\": 50}",
                "{\"kind\": \"timing\", \"impl\": \"java_cublaslt_base\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 0, "
                        + "\"dropout\": 0.0, \"sets\": 2, \"median_ms\": 0.85, \"p10_ms\": 0.84, \"p90_ms\": 0.86, \"min_ms\": 0.83, "
                        + "\"reps\": 50, \"detail\": \"cuBLASLt\"}",
                "{\"kind\": \"timing\", \"impl\": \"java_split_graph\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 16, "
                        + "\"dropout\": 0.1, \"sets\": 2, \"median_ms\": 0.90, \"p10_ms\": 0.89, \"p90_ms\": 0.91, \"min_ms\": 0.88, "
                        + "\"reps\": 50, \"detail\": \"split (...)\"}");
        StringBuilder dev = new StringBuilder();
        String[] kernels = {"down", "forward", "vdb", "da", "dx"};
        double[] ms = {0.05, 0.45, 0.05, 0.05, 0.49};
        for (int i = 0; i < kernels.length; i++) {
            dev.append(String.format(java.util.Locale.ROOT, "{\"kind\": \"kernel\", \"device\": \"NVIDIA H200\", \"sm\": \"90\", "
                    + "\"version\": 1, \"kernel\": \"%s\", \"dtype\": \"bf16\", \"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, "
                    + "\"r\": 16, \"dropout\": 0.1, \"reps\": 20, \"median_ms\": %.6f, \"flop\": %.0f}%n", kernels[i], ms[i], 1e12 * ms[i]));
        }
        lines(dir.resolve("dev-bench-v1.jsonl"), dev.toString().strip());
        lines(dir.resolve("gpu-info.csv"), "name, driver_version, memory.total [MiB]", "NVIDIA H200, 580.65, 143771 MiB");
        lines(dir.resolve("summary.txt"), "rslora gpu-check 2026-02-03T04:05:06Z, commit abc1234, 300 s", "step state");
        lines(dir.resolve("BUNDLE.txt"), "rslora GPU bundle", "commit: 0123456789abcdef", "size: 38 MB");
        lines(dir.resolve("gpu-clocks.csv"), "timestamp, clocks.current.sm [MHz], power.draw [W], temperature.gpu",
                "2026/02/03 04:05:06.000, 1980, 350.5, 40", "2026/02/03 04:05:06.250, 1755, 699.0, 55",
                "2026/02/03 04:05:06.500, 1830, 690.2, 56", "2026/02/03 04:05:06.750, [N/A], [N/A], 56");
        lines(dir.resolve("gpu-tests.log"), "not imported");
    }
}
