package dev.rslora.bench.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;

/**
 * Regenerates the results file and its plot from the raw benchmark output (jmh/bench.sh calls it):
 * <pre>
 *   java -cp benchmarks.jar dev.rslora.bench.report.ResultsReport \
 *        [--raw bench/raw] [--gpu DIR] [--import-gpu LOGDIR [--commit SHA]] [--out bench/RESULTS.md] [--plot bench/r-vs-rank.png]
 *        [--readme README.md]
 * </pre>
 * {@code --readme FILE} also regenerates FILE's CPU summary between its markers ({@link ReadmeCpuBlock}).
 * {@code --import-gpu LOGDIR} first replaces RAW/gpu with the GPU files of a gpu-check log folder
 * (when it holds GPU results; otherwise the old ones stay and the exit status is 4). {@code --gpu DIR}
 * reads the GPU part from DIR instead of RAW/gpu without importing. {@code --commit SHA} records which
 * project commit the run's bundle was packed from, for a LOGDIR without BUNDLE.txt (runs before 2026-12). Exit status: 0 written,
 * 2 bad arguments, 1 unreadable raw files, 4 written but nothing imported.
 */
public final class ResultsReport {
    private ResultsReport() {
    }

    public static void main(String[] args) {
        Path raw = Path.of("bench/raw");
        Path gpu = null;
        Path importFrom = null;
        Path out = Path.of("bench/RESULTS.md");
        Path plot = Path.of("bench/r-vs-rank.png");
        String commit = null;
        Path readme = null;
        try {
            for (int i = 0; i < args.length; i++) {
                String a = args[i];
                if (i + 1 >= args.length) {
                    usage("option " + a + " needs a value");
                }
                String value = args[++i];
                if (a.equals("--commit")) {
                    commit = value;
                    continue;
                }
                Path v = Path.of(value);
                switch (a) {
                    case "--raw" -> raw = v;
                    case "--gpu" -> gpu = v;
                    case "--import-gpu" -> importFrom = v;
                    case "--out" -> out = v;
                    case "--plot" -> plot = v;
                    case "--readme" -> readme = v;
                    default -> usage("unknown option " + a);
                }
            }
        } catch (IllegalArgumentException e) {
            usage(e.getMessage());
        }
        int status = 0;
        try {
            if (importFrom != null) {
                GpuImport.Outcome o = GpuImport.run(importFrom, raw.resolve("gpu"), commit,
                        commit == null ? null : "given at import with --commit");
                System.out.println("ResultsReport: " + o.message());
                status = o.imported() ? 0 : 4;
            }
            Results res = Results.load(raw, gpu);
            generate(res, out, plot, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
            System.out.println("ResultsReport: wrote " + out + " (" + res.measurements().size() + " measurements, "
                    + res.interleaved().size() + " side-by-side runs)" + (Files.exists(plot) ? " and " + plot : ""));
            if (readme != null) {
                if (ReadmeCpuBlock.update(readme, res)) {
                    System.out.println("ResultsReport: regenerated the CPU summary in " + readme);
                } else {
                    System.err.println("ResultsReport: " + readme + " has no CPU summary markers (" + ReadmeCpuBlock.BEGIN
                            + " … " + ReadmeCpuBlock.END + "): left unchanged");
                }
            }
        } catch (IOException e) {
            System.err.println("ResultsReport: " + e.getMessage());
            System.exit(1);
        }
        System.exit(status);
    }

    /** Writes the results file and (when there is data to plot) the PNG next to it; removes a stale PNG otherwise. */
    static void generate(Results res, Path out, Path plot, String generated) throws IOException {
        Path parent = out.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        List<String> panels = RatioPlot.write(res, plot);
        if (panels.isEmpty()) {
            Files.deleteIfExists(plot);
        }
        String rel = panels.isEmpty() ? null : parent.relativize(plot.toAbsolutePath()).toString();
        Files.writeString(out, ResultsMarkdown.write(res, generated, rel, panels), StandardCharsets.UTF_8);
    }

    private static void usage(String why) {
        System.err.println("ResultsReport: " + why);
        System.err.println("usage: ResultsReport [--raw DIR] [--gpu DIR] [--import-gpu LOGDIR [--commit SHA]] [--out FILE.md] [--plot FILE.png]"
                + " [--readme README.md]");
        System.exit(2);
    }
}
