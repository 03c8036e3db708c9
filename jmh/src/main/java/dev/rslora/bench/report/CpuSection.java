package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The CPU part of the results file: machine, targets, every figure, ours ÷ OpenBLAS, scaling. */
final class CpuSection {
    /** Issue 6's CPU targets: ours ≥ min × the OpenBLAS composition's throughput at N, d, r. */
    record Target(int n, int d, int r, double min) {
    }

    static final List<Target> TARGETS = List.of(new Target(2048, 1024, 64, 0.8), new Target(512, 1024, 64, 1.0));

    private CpuSection() {
    }

    static String write(Results res) {
        StringBuilder sb = new StringBuilder("## CPU: fp32, dropout 0, fwd+bwd\n\n");
        List<Measurement> lora = res.of(Platform.CPU, Role.LORA);
        if (lora.isEmpty() && res.of(Platform.CPU, Role.BASE).isEmpty()) {
            return sb.append("CPU results: **" + Fmt.NONE + "** (run `jmh/bench.sh cpu`).\n\n").toString();
        }
        sb.append(machine(res)).append("\n");
        sb.append("### Targets (issue 6)\n\n").append(targets(res)).append("\n");
        sb.append("### Every figure\n\nR divides each implementation's LoRA step by its own frozen base (same shape, same run). ")
                .append("The OpenBLAS rows are the sgemm chain a JVM user would write (8 calls; base: 2).\n\n")
                .append(FigureTable.write(res, Platform.CPU)).append("\n");
        sb.append("### Ours ÷ the OpenBLAS composition (throughput ratio, > 1 means ours is faster)\n\n")
                .append(versusOpenBlas(res)).append("\n");
        String byRank = Scaling.byRank(lora);
        String byTokens = Scaling.byTokens(lora);
        sb.append("### Scaling\n\nTime vs r at fixed N, d:\n").append(byRank.isEmpty() ? "\n" + Fmt.NONE + "\n" : byRank)
                .append("\nTime vs N at fixed r, d:\n").append(byTokens.isEmpty() ? "\n" + Fmt.NONE + "\n" : byTokens).append("\n");
        return sb.toString();
    }

    static String machine(Results res) {
        StringBuilder sb = new StringBuilder("### Machine\n\n");
        JsonNode env = res.cpuEnv();
        if (env == null) {
            sb.append("- machine facts: not recorded (no cpu-env.json from BenchEnv in bench/raw/)\n");
        } else {
            sb.append("- run started: ").append(env.path("date").asText("?")).append("\n");
            sb.append("- CPU: ").append(env.path("cpu_model").asText("?")).append(" (").append(env.path("cpu_vendor").asText("?"))
                    .append(", family/model ").append(env.path("cpu_family_model").asText("?")).append("), ")
                    .append(env.path("logical_cpus").asText("?")).append(" logical CPUs, memory ")
                    .append(env.path("memory").asText("?")).append("\n");
            sb.append("- ISA: ").append(env.path("isa").asText("?")).append("; JDK Vector API preferred width: ")
                    .append(env.path("vector_bits").asText("?")).append("\n");
            sb.append("- OS: ").append(env.path("os").asText("?")).append("; load average at the start: ")
                    .append(env.path("load_average").asText("?")).append(" (the machine is shared: compare ratios, not lone times)\n");
            List<String> envVars = new ArrayList<>();
            env.path("openblas_environment").properties().forEach(e -> envVars.add(e.getKey() + "=" + e.getValue().asText()));
            sb.append("- OpenBLAS environment inherited by the runs: ").append(envVars.isEmpty() ? "none" : String.join(", ", envVars))
                    .append("\n");
            for (JsonNode o : env.path("openblas")) {
                String req = o.path("requested").asText("?");
                sb.append("- OpenBLAS with ").append(req.equalsIgnoreCase("auto") ? "OPENBLAS_CORETYPE unset (its own detection)"
                        : "OPENBLAS_CORETYPE=" + req).append(": runs **").append(o.path("core").asText("?")).append("** kernels, ")
                        .append(o.path("threads").asText("?")).append(" threads; ").append(o.path("config").asText(o.path("error").asText("?")))
                        .append("\n");
            }
        }
        sb.append("- JDK (from the JMH files): ").append(res.cpuJvms().isEmpty() ? "?" : String.join("; ", res.cpuJvms())).append("\n");
        return sb.toString();
    }

    private static List<Measurement> openBlasAt(Results res, Shape s) {
        return res.of(Platform.CPU, Role.LORA).stream().filter(m -> m.impl().startsWith("openblas-") && m.shape().equals(s))
                .sorted(Paired.ORDER).toList();
    }

    static String targets(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Target t : TARGETS) {
            Shape s = new Shape(t.n(), t.d(), t.d(), t.r());
            String what = "ours ≥ " + Fmt.num(t.min(), 1) + "× OpenBLAS at N=" + t.n() + ", d=" + t.d() + ", r=" + t.r();
            Optional<Measurement> ours = res.find("cpu", s);
            List<Measurement> peers = openBlasAt(res, s);
            if (ours.isEmpty() || peers.isEmpty()) {
                rows.add(List.of(what, ours.map(m -> FigureTable.throughput(m, false)).orElse(Fmt.NONE),
                        peers.isEmpty() ? Fmt.NONE : String.join("<br>", peers.stream().map(p -> Catalog.byId(p.impl()).label() + ": "
                                + FigureTable.throughput(p, false) + " GFLOP/s").toList()),
                        Fmt.NONE));
                continue;
            }
            Measurement o = ours.get();
            List<String> cells = new ArrayList<>();
            Measurement best = peers.getFirst();
            for (Measurement p : peers) {
                cells.add(Catalog.byId(p.impl()).label() + ": " + FigureTable.throughput(p, false) + " GFLOP/s, ours ÷ it = "
                        + Fmt.ratio(p.ms() / o.ms(), Fmt.quotientError(p.ms(), p.errorMs(), o.ms(), o.errorMs())));
                if (p.ms() < best.ms()) {
                    best = p;
                }
            }
            double ratio = best.ms() / o.ms();
            rows.add(List.of(what, FigureTable.throughput(o, false) + " GFLOP/s", String.join("<br>", cells),
                    (ratio >= t.min() ? "**met**" : "**not met**") + ": " + Fmt.num(ratio, 3) + "× the faster OpenBLAS ("
                            + Catalog.byId(best.impl()).label() + ")"));
        }
        return Fmt.table(List.of("target", "ours", "OpenBLAS", "verdict"), rows);
    }

    static String versusOpenBlas(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Measurement o : Paired.sorted(res.of(Platform.CPU, Role.LORA))) {
            if (!o.impl().equals("cpu")) {
                continue;
            }
            List<Measurement> peers = openBlasAt(res, o.shape());
            List<String> cells = new ArrayList<>();
            for (Measurement p : peers) {
                cells.add(Catalog.byId(p.impl()).label() + " " + FigureTable.throughput(p, false) + " GFLOP/s → "
                        + Fmt.ratio(p.ms() / o.ms(), Fmt.quotientError(p.ms(), p.errorMs(), o.ms(), o.errorMs())));
            }
            rows.add(List.of(Integer.toString(o.shape().n()), o.shape().dLabel(), Integer.toString(o.shape().r()),
                    FigureTable.throughput(o, false), cells.isEmpty() ? Fmt.NONE : String.join("<br>", cells)));
        }
        if (rows.isEmpty()) {
            return "ours (rslora cpu): " + Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours GFLOP/s", "OpenBLAS GFLOP/s → ours ÷ it"), rows);
    }
}
