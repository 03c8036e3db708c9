package dev.rslora.bench.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** The GPU part of the results file: machine, targets, every figure, ours vs PEFT, cuda/dev kernels, scaling. */
final class GpuSection {
    /** A target on R at bf16, N = 8192, d = 4096, dropout 0.1, for the implementations it names. */
    record RTarget(String issue, List<String> impls, Map<Integer, Double> max) {
    }

    /** Issue 11 (fused families, whole step, graph replay) and issue 12 (the cuBLASLt split step). */
    static final List<RTarget> R_TARGETS = List.of(
            new RTarget("issue 11", List.of("cuda-graph", "cuda-graph-v3", "cuda-graph-v4"), Map.of(16, 1.10, 64, 1.12, 256, 1.25)),
            new RTarget("issue 12", List.of("cuda-split", "cuda-split-graph", "cuda-split-graph-events"),
                    Map.of(16, 1.20, 64, 1.22, 256, 1.35)));
    static final int TARGET_N = 8192;
    static final int TARGET_D = 4096;
    /** fwd+bwd at least this many times faster than PEFT with bf16 adapters (issue 11), at every r. */
    static final double PEFT_SPEEDUP = 1.4;
    /** Our GPU implementations through the Java API, in report order; the cuda/dev families follow (ours()). */
    static final List<String> JAVA_API = List.of("cuda-eager", "cuda-graph", "cuda-graph-events", "cuda-split", "cuda-split-graph",
            "cuda-split-graph-events", "cuda-graph-v2", "cuda-graph-v3", "cuda-graph-v4");

    /** JAVA_API, then one cuda/dev row per kernel family the bench lines hold (v1 at least), by family number. */
    static List<String> ours(Results res) {
        java.util.TreeMap<Integer, String> fams = new java.util.TreeMap<>();
        fams.put(1, "v1");
        for (GpuLines.Kernel k : res.kernels()) {
            fams.put(k.familyNumber(), k.family());
        }
        List<String> out = new ArrayList<>(JAVA_API);
        fams.values().forEach(f -> out.add("cuda-dev-" + f));
        return out;
    }

    private GpuSection() {
    }

    static String write(Results res) {
        StringBuilder sb = new StringBuilder("## GPU: bf16, dropout 0.1, fwd+bwd\n\n");
        List<Measurement> lora = res.of(Platform.GPU, Role.LORA);
        if (lora.isEmpty() && res.of(Platform.GPU, Role.BASE).isEmpty()) {
            sb.append("GPU results: **" + Fmt.NONE + "** (no GPU run imported: run `native-build/gpu-check.sh LOGDIR` on a "
                    + "GPU host, then `jmh/bench.sh gpu-import LOGDIR`).\n\n");
            if (!res.notes().isEmpty()) {
                sb.append("Notes from the last GPU files:\n\n");
                res.notes().forEach(n -> sb.append("- ").append(n).append("\n"));
                sb.append("\n");
            }
            return sb.toString();
        }
        sb.append(machine(res)).append("\n");
        sb.append("### Targets (issues 11 and 12; N = " + TARGET_N + ", d = " + TARGET_D + ")\n\n").append(targets(res)).append("\n");
        sb.append("### Every figure\n\nR: every row divides by the fastest frozen base (Y = X·Wᵀ, dX = dY·W) measured in this run ")
                .append("at its shape, whoever measured it (our cuBLAS or cuBLASLt binding through JMH, or torch's nn.Linear with ")
                .append("CUDA events); the \"R ÷\" column names it. JMH times are wall times of a synchronised step through the ")
                .append("Java API (host launch and synchronisation included); CUDA-event times are device time only, so a JMH ")
                .append("row divided by an event-timed base is a conservative R.\n\n").append(FigureTable.write(res, Platform.GPU))
                .append("\n");
        sb.append("### Against PEFT (speed-up = PEFT time ÷ ours; PEFT with bf16 adapters where measured, else its fp32 default) ")
                .append("and the JCuda launch cost (eager − graph)\n\n")
                .append(versusPeft(res)).append("\n");
        sb.append("### cuda/dev kernels (CUDA events, median of 20, one copy of the inputs)\n\n").append(kernels(res)).append("\n");
        String byRank = Scaling.byRank(lora);
        String byTokens = Scaling.byTokens(lora);
        sb.append("### Scaling\n\nTime vs r at fixed N, d:\n").append(byRank.isEmpty() ? "\n" + Fmt.NONE + "\n" : byRank)
                .append("\nTime vs N at fixed r, d:\n").append(byTokens.isEmpty() ? "\n" + Fmt.NONE + "\n" : byTokens).append("\n");
        if (!res.notes().isEmpty()) {
            sb.append("### Notes\n\n");
            res.notes().forEach(n -> sb.append("- ").append(n).append("\n"));
            sb.append("\n");
        }
        return sb.toString();
    }

    static String machine(Results res) {
        Map<String, String> f = res.gpuFacts();
        StringBuilder sb = new StringBuilder("### Machine\n\n");
        sb.append("- GPU check: ").append(f.getOrDefault("check", "? (no summary.txt)")).append("\n");
        if (f.containsKey("bundle.commit")) {
            sb.append("- project commit packed into the bundle: ").append(f.get("bundle.commit"))
                    .append(" (the check line above shows the GPU host's own checkout)\n");
        }
        if (f.containsKey("clocks.sm_mhz")) {
            sb.append("- during the benchmarks (nvidia-smi, ").append(f.get("clocks.samples")).append(" samples): SM clock ")
                    .append(f.get("clocks.sm_mhz")).append(" MHz, power ").append(f.get("clocks.power_w"))
                    .append(" W (min / median / max)\n");
        }
        List<String> gpu = new ArrayList<>();
        f.forEach((k, v) -> {
            if (k.startsWith("gpu.")) {
                gpu.add(k.substring(4) + " " + v);
            }
        });
        sb.append("- card (nvidia-smi): ").append(gpu.isEmpty() ? "? (no gpu-info.csv)" : String.join(", ", gpu)).append("\n");
        if (f.containsKey("peft.torch")) {
            sb.append("- PEFT peer: ").append(f.getOrDefault("peft.device", "?")).append(", torch ").append(f.get("peft.torch"))
                    .append(" (CUDA ").append(f.getOrDefault("peft.torch_cuda", "?")).append("), peft ")
                    .append(f.getOrDefault("peft.peft", "?")).append(", Python ").append(f.getOrDefault("peft.python", "?"))
                    .append(f.containsKey("peft.impls") ? ", measured: " + f.get("peft.impls")
                            : ", adapter kept in fp32 (PEFT's default autocast): " + f.getOrDefault("peft.keep_adapter_fp32", "?"))
                    .append(", run ").append(f.getOrDefault("peft.date", "?")).append("\n");
        }
        if (f.containsKey("events.device")) {
            sb.append("- our steps timed with CUDA events (GpuEventBench, as the peer times its own): ").append(f.get("events.device"))
                    .append(", warm-up ").append(f.getOrDefault("events.warmup", "?")).append(", median of ")
                    .append(f.getOrDefault("events.reps", "?")).append(", run ").append(f.getOrDefault("events.date", "?")).append("\n");
        }
        List<String> devices = res.kernels().stream().map(GpuLines.Kernel::device).distinct().toList();
        devices.forEach(d -> sb.append("- cuda/dev device: ").append(d).append("\n"));
        if (devices.stream().filter(d -> !d.equals("?")).count() > 1) {  // a LOGDIR assembled from two machines' runs
            sb.append("- **warning:** the cuda/dev kernel timings come from ").append(devices.size()).append(" devices (")
                    .append(String.join(", ", devices)).append("), and each step's R divides by one base: compare only within"
                    + " one device's rows\n");
        }
        sb.append("- JVM (GPU JMH): ").append(res.gpuJvms().isEmpty() ? "?" : String.join("; ", res.gpuJvms())).append("\n");
        return sb.toString();
    }

    static String targets(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (RTarget t : R_TARGETS) {
            for (int r : List.of(16, 64, 256)) {
                double max = t.max().get(r);
                Shape s = new Shape(TARGET_N, TARGET_D, TARGET_D, r);
                for (String impl : t.impls()) {
                    Optional<Paired> p = res.find(impl, s).flatMap(m -> Paired.of(res, m));
                    if (p.isEmpty() && !impl.equals(t.impls().getFirst())) {
                        continue;  // families not in this run stay out; the first one always shows
                    }
                    rows.add(List.of(t.issue() + ": R ≤ " + Fmt.num(max, 2) + " at r=" + r, Catalog.byId(impl).label(),
                            p.map(x -> Fmt.ratio(x.r(), x.rError()) + " (÷ " + x.base().impl() + ")").orElse(Fmt.NONE),
                            p.map(x -> x.r() <= max ? "**met**" : "**not met**").orElse(Fmt.NONE)));
                }
            }
        }
        for (int r : List.of(16, 64, 256)) {
            Shape s = new Shape(TARGET_N, TARGET_D, TARGET_D, r);
            Optional<Measurement> peft = res.find("peft-bf16", s);
            for (String impl : List.of("cuda-graph", "cuda-split-graph")) {
                Optional<Measurement> ours = res.find(impl, s);
                String got = peft.isPresent() && ours.isPresent() ? Fmt.num(peft.get().ms() / ours.get().ms(), 3) + "×" : Fmt.NONE;
                String verdict = peft.isPresent() && ours.isPresent()
                        ? (peft.get().ms() / ours.get().ms() >= PEFT_SPEEDUP ? "**met**" : "**not met**") : Fmt.NONE;
                rows.add(List.of("issue 11: ≥ " + PEFT_SPEEDUP + "× faster than PEFT with bf16 adapters at r=" + r,
                        Catalog.byId(impl).label(), got, verdict));
            }
        }
        return Fmt.table(List.of("target", "implementation", "measured", "verdict"), rows);
    }

    static String versusPeft(Results res) {
        List<String> ours = ours(res).stream().filter(i -> res.of(Platform.GPU, Role.LORA).stream().anyMatch(m -> m.impl().equals(i)))
                .toList();
        List<List<String>> rows = new ArrayList<>();
        for (Measurement p : Paired.sorted(res.of(Platform.GPU, Role.LORA))) {
            boolean bf16 = p.impl().equals("peft-bf16");
            if (!(bf16 || p.impl().equals("peft") && res.find("peft-bf16", p.shape()).isEmpty())) {
                continue;
            }
            List<String> row = new ArrayList<>(List.of(Integer.toString(p.shape().n()), p.shape().dLabel(),
                    Integer.toString(p.shape().r()), Fmt.num(p.ms(), Fmt.decimals(p.ms()))));
            for (String impl : ours) {
                row.add(res.find(impl, p.shape()).map(o -> Fmt.num(o.ms(), Fmt.decimals(o.ms())) + " ("
                        + Fmt.num(p.ms() / o.ms(), 2) + "×)").orElse("—"));
            }
            row.add(launchCost(res, p.shape()));
            rows.add(row);
        }
        // shapes our JMH measured but PEFT did not still show the launch cost
        for (Measurement e : Paired.sorted(res.of(Platform.GPU, Role.LORA))) {
            if (e.impl().equals("cuda-eager") && res.find("peft", e.shape()).isEmpty() && res.find("peft-bf16", e.shape()).isEmpty()) {
                List<String> row = new ArrayList<>(List.of(Integer.toString(e.shape().n()), e.shape().dLabel(),
                        Integer.toString(e.shape().r()), Fmt.NONE));
                for (String impl : ours) {
                    row.add(res.find(impl, e.shape()).map(o -> Fmt.num(o.ms(), Fmt.decimals(o.ms()))).orElse("—"));
                }
                row.add(launchCost(res, e.shape()));
                rows.add(row);
            }
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        List<String> header = new ArrayList<>(List.of("N", "d", "r", "PEFT ms"));
        ours.forEach(i -> header.add(Catalog.byId(i).label() + ", ms (speed-up)"));
        header.add("eager − graph, ms");
        return Fmt.table(header, rows);
    }

    private static String launchCost(Results res, Shape s) {
        Optional<Measurement> e = res.find("cuda-eager", s);
        Optional<Measurement> g = res.find("cuda-graph", s);
        if (e.isEmpty() || g.isEmpty()) {
            return "—";
        }
        double d = e.get().ms() - g.get().ms();
        return Fmt.num(d, 3) + " ± " + Fmt.num(Math.hypot(e.get().errorMs(), g.get().errorMs()), 3);
    }

    static String kernels(Results res) {
        if (res.kernels().isEmpty()) {
            return Fmt.NONE + "\n";
        }
        List<List<String>> rows = new ArrayList<>();
        for (GpuLines.Kernel k : res.kernels()) {
            rows.add(List.of(k.family(), Integer.toString(k.shape().n()), k.shape().dLabel(), Integer.toString(k.shape().r()),
                    k.kernel(), Fmt.num(k.ms(), 3), Fmt.num(k.flop() / (k.ms() * 1e9), 1),
                    Double.isNaN(k.floorMs()) ? "—" : Fmt.num(100 * k.floorMs() / k.ms(), 0) + " %"));
        }
        return Fmt.table(List.of("family", "N", "d", "r", "part", "ms", "TFLOP/s", "roofline floor / measured"), rows);
    }
}
