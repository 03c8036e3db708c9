package dev.rslora.bench.report;

import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What each raw result is: implementation id, label, platform, role, and which frozen base its R
 * divides by. JMH results are recognised by benchmark class and method (and OpenBLAS's {@code core}
 * parameter); unknown benchmarks are not guessed at (the report lists them apart).
 */
public final class Catalog {
    /**
     * @param ours  true for this project's implementations (the ratio tables compare them with the peers)
     * @param order sort key: ours first, then peers, then the oracle
     */
    public record Impl(String id, String label, Platform platform, Role role, String baseId, boolean ours, int order) {
    }

    private Catalog() {
    }

    /**
     * The base id of the GPU LoRA rows: their R divides by the fastest frozen base measured in the same
     * run at that shape (ours through cuBLAS or cuBLASLt, or torch's), whichever it is (issue 12 §2).
     */
    public static final String BEST_BASE = "best";

    private static final Map<String, Impl> FIXED = Map.ofEntries(
            entry(new Impl("cpu", "rslora cpu (Vector API)", Platform.CPU, Role.LORA, "cpu-base", true, 0)),
            entry(new Impl("cpu-base", "rslora cpu, frozen base", Platform.CPU, Role.BASE, null, true, 0)),
            entry(new Impl("reference", "rslora reference (scalar oracle)", Platform.CPU, Role.LORA, "reference-base", true, 90)),
            entry(new Impl("reference-base", "rslora reference, frozen base", Platform.CPU, Role.BASE, null, true, 90)),
            entry(new Impl("cuda-eager", "rslora cuda fused, eager (JMH)", Platform.GPU, Role.LORA, BEST_BASE, true, 0)),
            entry(new Impl("cuda-graph", "rslora cuda fused, CUDA graph (JMH)", Platform.GPU, Role.LORA, BEST_BASE, true, 1)),
            entry(new Impl("cuda-split", "rslora cuda split (cuBLASLt + LoRA kernels), eager (JMH)", Platform.GPU, Role.LORA,
                    BEST_BASE, true, 2)),
            entry(new Impl("cuda-split-graph", "rslora cuda split (cuBLASLt + LoRA kernels), CUDA graph (JMH)", Platform.GPU,
                    Role.LORA, BEST_BASE, true, 3)),
            entry(new Impl("cublas-chain", "unfused cuBLAS chain, PEFT's ops (JMH)", Platform.GPU, Role.LORA, BEST_BASE,
                    false, 10)),
            entry(new Impl("peft", "PyTorch PEFT, fp32 adapters (its default) (events)", Platform.GPU, Role.LORA, BEST_BASE,
                    false, 11)),
            entry(new Impl("peft-bf16", "PyTorch PEFT, bf16 adapters (events)", Platform.GPU, Role.LORA, BEST_BASE, false, 12)),
            entry(new Impl("torch-eager", "PyTorch eager formula x·Wᵀ + drop(x)·Aᵀ·Bᵀ·γ (events)", Platform.GPU, Role.LORA,
                    BEST_BASE, false, 13)),
            entry(new Impl("torch-compile", "torch.compile of that formula (events)", Platform.GPU, Role.LORA, BEST_BASE,
                    false, 14)),
            entry(new Impl("torch-addmm", "PyTorch addmm into Y, no dropout (Unsloth's shape) (events)", Platform.GPU,
                    Role.LORA, BEST_BASE, false, 15)),
            entry(new Impl("cublas-base", "cuBLAS frozen base, cublasGemmEx (JMH)", Platform.GPU, Role.BASE, null, true, 20)),
            entry(new Impl("cublaslt-base", "cuBLASLt frozen base, heuristic algorithm + workspace (JMH)", Platform.GPU,
                    Role.BASE, null, true, 21)),
            entry(new Impl("torch-base", "torch nn.Linear frozen base (events)", Platform.GPU, Role.BASE, null, false, 22)),
            entry(new Impl("cuda-graph-events", "rslora cuda fused, CUDA graph (events)", Platform.GPU, Role.LORA, BEST_BASE, true, 1)),
            entry(new Impl("cuda-split-graph-events", "rslora cuda split, CUDA graph (events)", Platform.GPU, Role.LORA, BEST_BASE,
                    true, 3)),
            entry(new Impl("cublas-base-events", "cuBLAS frozen base, cublasGemmEx (events)", Platform.GPU, Role.BASE, null, true, 20)),
            entry(new Impl("cublaslt-base-events", "cuBLASLt frozen base (events)", Platform.GPU, Role.BASE, null, true, 21)));

    private static Map.Entry<String, Impl> entry(Impl i) {
        return Map.entry(i.id(), i);
    }

    /**
     * The implementation with this id, or null when unknown. Our cpu backend's ids carry the
     * register tile they ran with: "cpu@256" (LoRA) and "cpu-base@256" (its base); plain "cpu" is
     * the JIT's widest (results from before the tile parameter).
     */
    public static Impl byId(String id) {
        int at = id.indexOf('@');
        if (at > 0 && (id.startsWith("cpu@") || id.startsWith("cpu-base@"))) {
            Impl plain = FIXED.get(id.substring(0, at));
            String tile = tileName(id.substring(at + 1));
            return tile == null ? null : new Impl(id, plain.label() + ", " + tile, plain.platform(), plain.role(),
                    plain.baseId() == null ? null : plain.baseId() + id.substring(at), true, plain.order());
        }
        Impl fixed = FIXED.get(id);
        if (fixed != null) {
            return fixed;
        }
        if (id.startsWith("cuda-graph-v") && id.length() > "cuda-graph-v".length()) {
            String v = id.substring("cuda-graph-".length());
            return new Impl(id, "rslora cuda fused, kernels " + v + ", CUDA graph (JMH)", Platform.GPU, Role.LORA, BEST_BASE, true,
                    4 + Math.min(3, v.length()));
        }
        if (id.matches("cuda-dev-v\\d+")) {
            // a family of cuda/kernels.table, as the cuda/dev bench lines name it (v1, v2, v3, ...)
            String family = id.substring("cuda-dev-".length());
            return new Impl(id, "rslora kernels " + family + ", cuda/dev sum of kernels (events)", Platform.GPU, Role.LORA,
                    BEST_BASE, true, 8 + GpuLines.Kernel.familyNumber(family));
        }
        if (id.startsWith("openblas-")) {
            boolean base = id.endsWith("-base");
            String core = id.substring("openblas-".length(), base ? id.length() - "-base".length() : id.length());
            String name = core.isEmpty() ? "?" : Character.toUpperCase(core.charAt(0)) + core.substring(1);
            return base
                    ? new Impl(id, "OpenBLAS " + name + isa(core) + ", frozen base", Platform.CPU, Role.BASE, null, false, 50)
                    : new Impl(id, "OpenBLAS sgemm chain, " + name + " kernels" + isa(core), Platform.CPU, Role.LORA,
                            "openblas-" + core + "-base", false, 50);
        }
        return null;
    }

    /** " (AVX2, 256-bit)" or " (AVX-512)" for the kernel sets the suite measures, else "". */
    static String isa(String core) {
        return switch (core.toLowerCase(Locale.ROOT)) {
            case "haswell" -> " (AVX2, 256-bit)";
            case "skylakex", "cooperlake", "sapphirerapids" -> " (AVX-512)";
            default -> "";
        };
    }

    /** The implementation a JMH result belongs to, or null when the benchmark is not one of ours. */
    public static Impl ofJmh(String benchmarkClass, String method, Map<String, String> params) {
        if (method.equals("loraForwardBackward") && masked(params)
                || benchmarkClass.equals("CpuLayerBenchmark") && !f32(params)) {
            // the CPU figures are fp32 and dropout 0's (same ids, same shapes): a -p dropout=… LoRA step, or a
            // step in another dtype, is listed apart
            return null;
        }
        String id = switch (benchmarkClass + "." + method) {
            case "CpuLayerBenchmark.loraForwardBackward" -> "cpu" + tile(params);
            case "CpuLayerBenchmark.baseForwardBackward" -> "cpu-base" + tile(params);
            case "ReferenceLayerBenchmark.loraForwardBackward" -> "reference";
            case "ReferenceLayerBenchmark.baseForwardBackward" -> "reference-base";
            case "OpenBlasLoraBenchmark.loraForwardBackward" -> "openblas-" + core(params);
            case "OpenBlasLoraBenchmark.baseForwardBackward" -> "openblas-" + core(params) + "-base";
            case "CudaLayerBenchmark.fusedEager" -> params.getOrDefault("kernels", "v1").equalsIgnoreCase("v1") ? "cuda-eager" : null;
            case "CudaLayerBenchmark.fusedGraph" -> params.getOrDefault("kernels", "v1").equalsIgnoreCase("v1") ? "cuda-graph"
                    : "cuda-graph-" + params.get("kernels").toLowerCase(Locale.ROOT);
            case "CudaLayerBenchmark.unfusedChain" -> "cublas-chain";
            case "CudaLayerBenchmark.cublasBase" -> "cublas-base";
            case "CudaLayerBenchmark.cublasLtBase" -> "cublaslt-base";
            case "CudaLayerBenchmark.splitEager" -> "cuda-split";
            case "CudaLayerBenchmark.splitGraph" -> "cuda-split-graph";
            default -> null;
        };
        return id == null ? null : byId(id);
    }

    /** Whether a run's tensors are fp32: its {@code dtype} parameter F32, or absent (runs from before it). */
    static boolean f32(Map<String, String> params) {
        return params.getOrDefault("dtype", "F32").strip().equalsIgnoreCase("F32");
    }

    /** Whether a run's {@code dropout} parameter is above 0 (absent: 0). */
    private static boolean masked(Map<String, String> params) {
        try {
            return Double.parseDouble(params.getOrDefault("dropout", "0").strip()) > 0;
        } catch (NumberFormatException e) {
            return true;
        }
    }

    /** "@bits" for a benchmark run with an explicit tile parameter, "" for "auto" or none. */
    static String tile(Map<String, String> params) {
        String t = params.getOrDefault("tile", "auto");
        return t.equals("auto") ? "" : "@" + t;
    }

    private static final java.util.regex.Pattern USE_AVX = java.util.regex.Pattern.compile("-XX:UseAVX=(\\d+)");

    /**
     * What decides a tile's shape on the machine the CPU results ran on: FMA instructions, the JIT's vector
     * registers, and its architecture (for -XX:UseAVX). Taken from its cpu-env.json ({@link Results#load}), so
     * that the report names the same tiles wherever it is regenerated; this JVM's own where no such file is.
     */
    record Machine(boolean fma, int registers, String arch) {
        static final Machine THIS_JVM = new Machine(dev.rslora.backend.cpu.CpuBackend.fusedMultiplyAdd(),
                dev.rslora.backend.cpu.CpuBackend.vectorRegisters(), System.getProperty("os.arch", ""));

        /** From a BenchEnv record: "isa" (fma, avx512f) and "os" (its last word is os.arch); this JVM's where absent. */
        static Machine of(com.fasterxml.jackson.databind.JsonNode env) {
            if (env == null || !env.has("isa") || !env.has("os")) {
                return THIS_JVM;
            }
            List<String> isa = List.of(env.path("isa").asText("").split("\\s+"));
            String[] os = env.path("os").asText("").strip().split("\\s+");
            String arch = os.length > 1 ? os[os.length - 1] : THIS_JVM.arch();
            int registers = dev.rslora.simd.VectorRegisters.count(arch, isa.contains("avx512f") ? 3 : 2);
            boolean x86 = arch.equals("amd64") || arch.equals("x86_64");
            return new Machine(x86 ? isa.contains("fma") : THIS_JVM.fma(), registers, arch);
        }
    }

    private static volatile Machine machine = Machine.THIS_JVM;

    /** Names tiles for this machine from now on ({@link Results#load} sets the one its cpu-env.json records). */
    static void machine(Machine m) {
        machine = m;
    }

    /** "512-bit vectors, 8×32 tile" for "512", …; null for a value that is no tile width. */
    static String tileName(String bits) {
        return tileName(bits, "");
    }

    /**
     * The tile a benchmark JVM with these -XX flags chose for a width: -XX:-UseFMA means no FMA
     * instructions, -XX:UseAVX=0…2 an x86 JIT with 16 vector registers; otherwise the recorded machine's
     * ({@link Machine}). Null for a value that is no tile width.
     */
    static String tileName(String bits, String jvmFlags) {
        Machine m = machine;
        boolean fused = jvmFlags.contains("-XX:-UseFMA") ? false : jvmFlags.contains("-XX:+UseFMA") || m.fma();
        java.util.regex.Matcher avx = USE_AVX.matcher(jvmFlags);
        int registers = avx.find() ? dev.rslora.simd.VectorRegisters.count(m.arch(), Integer.valueOf(avx.group(1))) : m.registers();
        try {
            return dev.rslora.backend.cpu.CpuBackend.tileShape(Integer.parseInt(bits), fused, registers);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    private static String core(Map<String, String> params) {
        // results from before the core parameter ran with whatever OPENBLAS_CORETYPE said
        return params.getOrDefault("core", "env").toLowerCase(Locale.ROOT);
    }
}
