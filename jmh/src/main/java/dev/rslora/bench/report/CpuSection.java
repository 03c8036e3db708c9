package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;

/**
 * The CPU part of the results file: machine, the side-by-side figures and issue 14's targets
 * ({@link CpuSideBySide}), then every figure of the separate runs, ours ÷ OpenBLAS from them, scaling.
 */
final class CpuSection {
    private CpuSection() {
    }

    static String write(Results res) {
        StringBuilder sb = new StringBuilder("## CPU: fp32, dropout 0 unless a row says otherwise, fwd+bwd\n\n");
        List<Measurement> lora = res.of(Platform.CPU, Role.LORA);
        if (lora.isEmpty() && res.of(Platform.CPU, Role.BASE).isEmpty() && res.interleaved().isEmpty()) {
            return sb.append("CPU results: **" + Fmt.NONE + "** (run `jmh/bench.sh cpu`).\n\n").toString();
        }
        sb.append(machine(res)).append("\n");
        sb.append(CpuSideBySide.write(res));
        sb.append("### Every figure (separate runs)\n\nEach implementation and shape in its own JMH run, shape group by shape ")
                .append("group; on a shared machine the load differs between runs, so quote the interleaved ratios above. ")
                .append("R divides each implementation's LoRA step by its own frozen base (same shape). ")
                .append("The OpenBLAS rows are the sgemm chain a JVM user would write (8 calls; base: 2).\n\n")
                .append(FigureTable.write(res, Platform.CPU)).append("\n");
        sb.append("### Ours ÷ the OpenBLAS composition, separate runs (throughput ratio, > 1 means ours is faster)\n\n")
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
            sb.append("- machine facts recorded: ").append(env.path("date").asText("?"))
                    .append(" (at the start of the last `jmh/bench.sh cpu` run, which may have re-run only some results)\n");
            String ended = res.cpuRunsEnded();
            sb.append("- the results' runs ended: ").append(ended != null ? ended : "not recorded (older load records)").append("\n");
            sb.append("- CPU: ").append(env.path("cpu_model").asText("?")).append(" (").append(env.path("cpu_vendor").asText("?"))
                    .append(", family/model ").append(env.path("cpu_family_model").asText("?")).append("), ")
                    .append(env.path("logical_cpus").asText("?")).append(" logical CPUs, memory ")
                    .append(env.path("memory").asText("?")).append("\n");
            sb.append("- ISA: ").append(env.path("isa").asText("?")).append("; JDK Vector API preferred width: ")
                    .append(env.path("vector_bits").asText("?")).append("; our register tile by default: ")
                    .append(env.path("cpu_tile").asText("not recorded")).append("\n");
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

    static String versusOpenBlas(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Measurement o : Paired.sorted(res.of(Platform.CPU, Role.LORA))) {
            if (!o.impl().startsWith("cpu")) {
                continue;
            }
            List<Measurement> peers = openBlasAt(res, o.shape());
            List<String> cells = new ArrayList<>();
            for (Measurement p : peers) {
                cells.add(Catalog.byId(p.impl()).label() + " " + FigureTable.throughput(p, false) + " GFLOP/s → "
                        + Fmt.ratio(p.ms() / o.ms(), Fmt.quotientError(p.ms(), p.errorMs(), o.ms(), o.errorMs())));
            }
            rows.add(List.of(Integer.toString(o.shape().n()), o.shape().dLabel(), Integer.toString(o.shape().r()),
                    Catalog.byId(o.impl()).label(), FigureTable.throughput(o, false),
                    cells.isEmpty() ? Fmt.NONE : String.join("<br>", cells)));
        }
        if (rows.isEmpty()) {
            return "ours (rslora cpu): " + Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours", "ours GFLOP/s", "OpenBLAS GFLOP/s → ours ÷ it"), rows);
    }
}
