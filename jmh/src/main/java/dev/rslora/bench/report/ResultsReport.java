package dev.rslora.bench.report;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
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
 * (when it holds GPU results, all readable; otherwise the old ones stay, nothing is written and the exit
 * status is 4). {@code --gpu DIR} reads the GPU part from DIR instead of RAW/gpu without importing (DIR must
 * hold GPU results). {@code --commit SHA} records which
 * project commit the run's bundle was packed from, for a LOGDIR without BUNDLE.txt (runs before 2026-12). Exit status: 0 written,
 * 2 bad arguments, 1 unreadable raw files, a missing RAW or a missing or empty GPU folder (nothing written), 4 nothing imported
 * (nothing written). Every file is written whole (a temporary file moved into place) after all inputs are read.
 */
public final class ResultsReport {
    private ResultsReport() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** What {@link #main} does, returning the exit status instead of exiting. */
    static int run(String... args) {
        if (args.length == 1 && (args[0].equals("--help") || args[0].equals("-h"))) {
            System.out.println(USAGE);
            System.out.print(HELP);
            return 0;
        }
        try {
            return generateFromArgs(args);
        } catch (Usage u) {
            System.err.println("ResultsReport: " + u.getMessage());
            System.err.println(USAGE);
            return 2;
        }
    }

    private static final String USAGE = "usage: ResultsReport [--raw DIR] [--gpu DIR] [--import-gpu LOGDIR [--commit SHA]] "
            + "[--out FILE.md] [--plot FILE.png] [--readme README.md]";
    private static final String HELP = """
            Regenerates the results file and its plot from the raw benchmark output.
              --raw DIR            raw JMH/GPU results (default bench/raw)
              --gpu DIR            read the GPU part from DIR instead of RAW/gpu (nothing imported)
              --import-gpu LOGDIR  first replace RAW/gpu with a gpu-check log folder's GPU files
              --commit SHA         the commit the imported run's bundle was packed from (with --import-gpu)
              --out FILE.md        the results file (default bench/RESULTS.md)
              --plot FILE.png      the R-vs-rank plot (default bench/r-vs-rank.png)
              --readme FILE        also regenerate FILE's CPU summary between its markers
            Exit status: 0 written; 1 unreadable or missing inputs (nothing written); 2 bad arguments;
            4 nothing imported (nothing written).
            """;

    private static int generateFromArgs(String[] args) {
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
        if (commit != null && importFrom == null) {
            usage("--commit needs --import-gpu");
        }
        if (commit != null && !GpuImport.isCommitId(commit)) {
            usage("--commit " + commit + " is not a git commit id (7 to 40 hex digits)");
        }
        try {
            if (!Files.isDirectory(raw)) {  // Results reads an absent folder as one with nothing measured
                throw new IOException("raw folder " + raw + (Files.exists(raw) ? " is not a folder" : " does not exist")
                        + ": nothing written");
            }
            if (gpu != null && GpuImport.countResults(gpu, "GPU folder") == 0) {
                throw new IOException("GPU folder " + gpu + " holds no GPU results (no JMH result, PEFT timing or cuda/dev kernel "
                        + "timing): nothing written");
            }
            if (importFrom != null) {
                Results.load(raw, importFrom);  // every file must parse before the GPU folder is replaced
                GpuImport.Outcome o = GpuImport.run(importFrom, raw.resolve("gpu"), commit,
                        commit == null ? null : "given at import with --commit");
                System.out.println("ResultsReport: " + o.message());
                if (!o.imported()) {
                    System.out.println("ResultsReport: nothing imported: " + out + (readme == null ? "" : " and " + readme)
                            + " left as they were");
                    return 4;
                }
            }
            Results res = Results.load(raw, gpu);
            String readmeText = readme == null ? null : Files.readString(readme, StandardCharsets.UTF_8);
            String updated = readme == null ? null : ReadmeCpuBlock.updated(readmeText, res);
            generate(res, out, plot, Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
            System.out.println("ResultsReport: wrote " + out + " (" + res.measurements().size() + " measurements, "
                    + res.interleaved().size() + " side-by-side runs)" + (Files.exists(plot) ? " and " + plot : ""));
            if (readme != null) {
                if (updated == null) {
                    System.err.println("ResultsReport: " + readme + " has no CPU summary markers (" + ReadmeCpuBlock.BEGIN
                            + " … " + ReadmeCpuBlock.END + "): left unchanged");
                } else {
                    if (!updated.equals(readmeText)) {
                        writeAtomically(readme, updated);
                    }
                    System.out.println("ResultsReport: regenerated the CPU summary in " + readme);
                }
            }
        } catch (IOException e) {
            System.err.println("ResultsReport: " + describe(e));
            return 1;
        } catch (IllegalArgumentException e) {  // a value the model refuses (a time of 0, a shape with n = 0), named there
            System.err.println("ResultsReport: " + e.getMessage() + ": nothing written");
            return 1;
        }
        return 0;
    }

    /** An IOException's message; for the file system's own (whose message is only the path) what went wrong, too. */
    static String describe(IOException e) {
        if (e instanceof NoSuchFileException f) {
            return f.getFile() + " does not exist";
        }
        if (e instanceof AccessDeniedException f) {
            return f.getFile() + ": permission denied";
        }
        if (e instanceof FileSystemException f) {
            return f.getFile() + (f.getOtherFile() == null ? "" : " → " + f.getOtherFile()) + ": "
                    + (f.getReason() == null ? f.getClass().getSimpleName() : f.getReason());
        }
        return e.getMessage();
    }

    /**
     * Writes the results file and (when there is data to plot) the PNG next to it; removes a stale PNG otherwise.
     * Each file is written under a temporary name and moved into place whole.
     */
    static void generate(Results res, Path out, Path plot, String generated) throws IOException {
        Path parent = out.toAbsolutePath().getParent();
        Files.createDirectories(parent);
        String name = plot.getFileName().toString();
        Path plotTmp = plot.toAbsolutePath().resolveSibling("." + name + ".tmp" + ProcessHandle.current().pid() + ".png");
        try {
            List<String> panels = RatioPlot.write(res, plotTmp);
            String rel = panels.isEmpty() ? null : parent.relativize(plot.toAbsolutePath()).toString();
            String md = ResultsMarkdown.write(res, generated, rel, panels);
            if (panels.isEmpty()) {
                Files.deleteIfExists(plot);
            } else {
                Files.move(plotTmp, plot, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            }
            writeAtomically(out, md);
        } finally {
            Files.deleteIfExists(plotTmp);
        }
    }

    /** {@code text} into {@code file} through a temporary file beside it: the file is old or new, never half-written. */
    static void writeAtomically(Path file, String text) throws IOException {
        Path abs = file.toAbsolutePath();
        // a plain new file (the umask's permissions, as the file it replaces had), not createTempFile's owner-only one
        Path tmp = abs.resolveSibling("." + abs.getFileName() + ".tmp" + ProcessHandle.current().pid());
        Files.deleteIfExists(tmp);  // left by a killed run that had this pid
        try {
            Files.writeString(tmp, text, StandardCharsets.UTF_8, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** A bad command line: {@link #run} prints the message and the usage and returns 2. */
    private static final class Usage extends RuntimeException {
        Usage(String why) {
            super(why);
        }
    }

    private static void usage(String why) {
        throw new Usage(why);
    }
}
