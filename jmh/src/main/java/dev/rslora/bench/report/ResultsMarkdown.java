package dev.rslora.bench.report;

import java.util.List;

/** The whole results file (bench/RESULTS.md) from loaded {@link Results}. */
final class ResultsMarkdown {
    private ResultsMarkdown() {
    }

    /**
     * @param generated   when (UTC) the file is generated, as printed in its header
     * @param plotFile    the PNG's file name relative to the results file, or null when no plot was written
     * @param plotPanels  the titles of the plot's panels
     */
    static String write(Results res, String generated, String plotFile, List<String> plotPanels) {
        StringBuilder sb = new StringBuilder();
        sb.append("# rsLoRA benchmark results\n\n");
        sb.append("Generated ").append(generated).append(" by `jmh/bench.sh report` (`dev.rslora.bench.report.ResultsReport`) ")
                .append("from the raw benchmark output in `bench/raw/`")
                .append(res.gpuFolder() == null ? "" : ", the GPU part from `" + res.gpuFolder() + "` instead of `bench/raw/gpu/` (so the "
                        + "committed raw files alone do not reproduce it)")
                .append(". **Do not edit by hand; no number here is typed in.** ")
                .append("To regenerate:\n\n")
                .append("- `jmh/bench.sh cpu`: runs the CPU suite on this machine (see jmh/README.md for its duration), writes `bench/raw/cpu-*.json`, then regenerates;\n")
                .append("- `native-build/gpu-check.sh LOGDIR` on a GPU host, then `jmh/bench.sh gpu-import LOGDIR [--commit SHA]` here: replaces ")
                .append("`bench/raw/gpu/` with that run's files (only when it holds GPU results), then regenerates;\n")
                .append("- `jmh/bench.sh report [LOGDIR]`: regenerates from `bench/raw/` (GPU part from LOGDIR when given).\n\n");
        sb.append("Definitions: **R** = LoRA layer forward+backward time / frozen base linear ")
                .append("forward+backward time (Y = X·Wᵀ and dX = dY·W, no dW), same shape, dtype and run; on the CPU the ")
                .append("implementation's own base, on the GPU the fastest base anyone measured in the run (ours or torch's, named ")
                .append("in each row); ")
                .append("R = 1 would be a free adapter. Work per step: LoRA 4·N·d_in·d_out + 6·N·r·(d_in + d_out) FLOP, base ")
                .append("4·N·d_in·d_out FLOP (d = d_in = d_out here); GFLOP/s and TFLOP/s are that work over the time. ")
                .append("Errors: JMH's 99.9 % confidence half-width (one fork), or half the p10–p90 spread of CUDA-event ")
                .append("repetitions, as the ± column says; errors of ratios are propagated to first order. ")
                .append("\"" + Fmt.NONE + "\" marks every figure that has no raw result.\n\n");
        sb.append(CpuSection.write(res));
        sb.append(GpuSection.write(res));
        sb.append("## Plot: R against r\n\n");
        if (plotFile == null) {
            sb.append(Fmt.NONE).append(" (no LoRA result with its base at the plotted shapes)\n\n");
        } else {
            sb.append("Panels: ").append(String.join("; ", plotPanels)).append(".\n\n")
                    .append("![R against the rank r, ours and the peers](").append(plotFile).append(")\n\n");
        }
        List<JmhJson.Unknown> other = res.unknown().stream().filter(u -> !CpuSideBySide.handles(u)).toList();
        if (!other.isEmpty()) {
            sb.append("## Other JMH results (benchmarks this report does not know)\n\n");
            List<List<String>> rows = other.stream().map(u -> List.of(u.benchmark(), u.params().toString(),
                    Fmt.time(u.ms(), u.errorMs()), u.source())).toList();
            sb.append(Fmt.table(List.of("benchmark", "params", "ms", "file"), rows)).append("\n");
        }
        sb.append("## Raw files\n\n")
                .append("- CPU (`bench/raw/`): ").append(res.cpuSources().isEmpty() ? "none" : String.join(", ", res.cpuSources())).append("\n")
                .append("- GPU (`").append(res.gpuFolder() == null ? "bench/raw/gpu/" : res.gpuFolder().toString()).append("`): ")
                .append(res.gpuSources().isEmpty() ? "none" : String.join(", ", res.gpuSources())).append("\n");
        return sb.toString();
    }
}
