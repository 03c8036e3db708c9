package dev.rslora.cli;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.demo.CsvReport;
import dev.rslora.demo.DpoConfig;
import dev.rslora.demo.DpoExperiment;
import dev.rslora.demo.DpoPlot;
import dev.rslora.demo.DpoReport;
import dev.rslora.demo.DpoResult;
import dev.rslora.demo.DpoTable;
import dev.rslora.demo.GradNormPlot;
import dev.rslora.demo.JsonReport;
import dev.rslora.demo.LossCurvePlot;
import dev.rslora.demo.RankSweep;
import dev.rslora.demo.SummaryTable;
import dev.rslora.demo.SweepConfig;
import dev.rslora.demo.SweepResult;
import dev.rslora.io.OnSignal;
import dev.rslora.io.StagedOutput;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code rslora demo}: the rank-sweep experiment (LoRA γ = α/r vs rsLoRA γ = α/√r on a small
 * frozen tanh network with a high-rank teacher). Prints a table and writes rank_sweep.csv,
 * rank_sweep.json, loss_curves.png and grad_norm_vs_rank.png into --out. With
 * {@code --experiment dpo}: the rsLoRA paper's DPO comparison on a toy policy (base, LoRA r16,
 * LoRA r256, rsLoRA r256 at α 16), writing dpo_sweep.csv, dpo_sweep.json and dpo_scores.png.
 */
// the header is the line `rslora --help` lists: it names both experiments (the description's first line is the rank sweep's)
@Command(name = "demo",
        header = "Run the rank sweep (default) or, with --experiment dpo, the rsLoRA paper's DPO comparison.",
        description = {
        "Rank sweep: fine-tunes a frozen 2-layer tanh network (d=128) towards a high-rank teacher with LoRA "
                + "(γ = α/r) and rsLoRA (γ = α/√r) adapters at several ranks and seeds; prints a table and writes "
                + "rank_sweep.csv, rank_sweep.json, loss_curves.png and grad_norm_vs_rank.png.",
        "Default: batch 256, 200 steps, ranks 4,16,64,256, 3 seeds, α 8, AdamW lr 5e-5. "
                + "--quick: 100 steps, batch 128. Options below override the preset.",
        "--experiment dpo: the rsLoRA paper's DPO comparison on a toy policy (d=128, K=256 responses): base, LoRA r16, "
                + "LoRA r256 and rsLoRA r256 (α 16) trained with DPO (β 0.1, dropout 0.1) by Adafactor with a linear 10 %% "
                + "warmup schedule; writes dpo_sweep.csv, dpo_sweep.json and dpo_scores.png. Default: 64 pairs per step, "
                + "300 steps, 3 seeds, lr 1e-4; --quick: 32 pairs, 150 steps, 2 seeds. --steps, --seeds, --seed, --batch, "
                + "--dim, --alpha and --lr apply to it too.", ""})
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--quick", description = "the shorter preset (100 steps, batch 128)")
    boolean quick;

    @Option(names = "--experiment", defaultValue = "rank", paramLabel = "rank|dpo",
            description = "rank: the rank sweep (default); dpo: the paper's DPO comparison")
    String experiment;

    @Option(names = "--backend", defaultValue = "${sys:rslora.backend:-auto}", paramLabel = "auto|cpu|cuda|reference",
            description = "backend (default: -Drslora.backend when set, else auto: the fastest available)")
    String backendName;

    @Option(names = "--out", defaultValue = "out/demo", paramLabel = "DIR", description = "output folder (default out/demo)")
    Path out;

    @Option(names = "--steps", paramLabel = "N", description = "optimizer steps per run")
    Integer steps;

    @Option(names = "--seeds", paramLabel = "N", description = "number of seeds")
    Integer seeds;

    @Option(names = "--seed", paramLabel = "S", description = "first seed (default 0)")
    Long seed;

    @Option(names = "--ranks", split = ",", paramLabel = "R,R,...", description = "adapter ranks")
    List<Integer> ranks;

    @Option(names = "--batch", paramLabel = "N", description = "inputs per step")
    Integer batch;

    @Option(names = "--dim", paramLabel = "D", description = "network width d")
    Integer dim;

    @Option(names = "--alpha", paramLabel = "A", description = "LoRA alpha (default 8)")
    Double alpha;

    @Option(names = "--lr", paramLabel = "LR", description = "learning rate (rank sweep: AdamW, default 5e-5; dpo: Adafactor, default 1e-4)")
    Double lr;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "AdamW weight decay (default 0.01, PyTorch's)")
    Double weightDecay;

    @Option(names = "--final-window", paramLabel = "N", description = "final loss = mean over the last N steps (default 20, or a tenth of --steps when that is less; at most the steps)")
    Integer finalWindow;

    @Option(names = "--max-grad-norm", paramLabel = "X", description = "clip the global gradient norm to X (default: no clipping)")
    Double maxGradNorm;

    /** The preset with every given option applied (validated by {@link SweepConfig}). */
    SweepConfig config() {
        SweepConfig c = quick ? SweepConfig.quick() : SweepConfig.defaults();
        if (steps != null) {
            c = c.withSteps(steps);
        }
        if (seeds != null) {
            c = c.withSeeds(seeds);
        }
        if (seed != null) {
            c = c.withBaseSeed(seed);
        }
        if (ranks != null) {
            c = c.withRanks(ranks);
        }
        if (batch != null) {
            c = c.withBatch(batch);
        }
        if (dim != null) {
            c = c.withDim(dim);
        }
        if (alpha != null) {
            c = c.withAlpha(alpha);
        }
        if (lr != null) {
            c = c.withOptimizer(c.optimizer().withLr(lr));
        }
        if (weightDecay != null) {
            c = c.withOptimizer(c.optimizer().withWeightDecay(weightDecay));
        }
        if (finalWindow != null) {
            c = c.withFinalWindow(finalWindow);
        }
        if (maxGradNorm != null) {
            c = c.withMaxGradNorm(maxGradNorm);
        }
        return c;
    }

    /** The DPO preset with the options that apply to it (validated by {@link DpoConfig}). */
    DpoConfig dpoConfig() {
        DpoConfig c = quick ? DpoConfig.quick() : DpoConfig.defaults();
        if (ranks != null || weightDecay != null || finalWindow != null || maxGradNorm != null) {
            throw new IllegalArgumentException("--ranks, --weight-decay, --final-window and --max-grad-norm apply to the rank "
                    + "sweep only, not to --experiment dpo");
        }
        if (steps != null) {
            c = c.withSteps(steps);
        }
        if (seeds != null) {
            c = c.withSeeds(seeds);
        }
        if (seed != null) {
            c = c.withBaseSeed(seed);
        }
        if (batch != null) {
            c = c.withBatch(batch);
        }
        if (dim != null) {
            c = c.withDim(dim);
        }
        if (alpha != null) {
            c = c.withAlpha(alpha);
        }
        if (lr != null) {
            c = c.withLr(lr);
        }
        return c;
    }

    private Integer runDpo(PrintWriter o, PrintWriter err, MadeFolders made) throws Exception {
        DpoConfig c = dpoConfig();
        Backend backend = Backends.get(backendName);
        made.create();
        o.printf(Locale.ROOT, "DPO on the %s backend: d=%d, K=%d responses, %d pairs/step, %d steps, seeds %s, alpha %s, "
                        + "Adafactor lr %s (linear, warmup %s), beta %s, dropout %s%n",
                backend.name(), c.dim(), c.responses(), c.batch(), c.steps(), c.seedValues(), c.alpha(), c.lr(), c.warmupRatio(),
                c.beta(), c.dropout());
        o.flush();
        DpoResult r = DpoExperiment.run(c, backend, ConsoleProgress.create(err, "dpo"));
        o.println();
        o.print(DpoTable.format(r));
        o.println();
        List<Path> written;
        try (StagedOutput staged = StagedOutput.folder(out, true)) {
            Path d = staged.dir();
            written = List.of(DpoReport.writeCsv(r, d), DpoReport.writeJson(r, d), DpoPlot.write(r, d));
            staged.commit();
        }
        for (Path p : written) {
            o.println("wrote " + out.resolve(p.getFileName()));
        }
        o.printf(Locale.ROOT, "%.1f s on the %s backend%n", r.wallSeconds(), r.backend());
        o.flush();
        return 0;
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter o = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (Files.exists(out) && !Files.isDirectory(out)) {
            throw new FileAlreadyExistsException(out.toString(), null, "--out must be a folder, but a file of that name exists");
        }
        if (!experiment.equals("rank") && !experiment.equals("dpo")) {
            throw new IllegalArgumentException("--experiment must be rank or dpo, got '" + experiment + "'");
        }
        // --out is made before the run (a bad path fails in seconds, not after it); a failed run removes
        // it again if it made it and nothing was written there, and the missing parents it made with it.
        // A SIGTERM or Ctrl-C runs only the JVM's shutdown hooks, not the catch below: this cleanup removes them then.
        // The results' StagedOutput registers its own cleanup later, so it runs first (OnSignal: newest first): the
        // staging folder next to --out is gone when this one looks, or (a commit in progress) the results are in --out
        MadeFolders made = new MadeFolders(out);
        try (OnSignal _ = OnSignal.register("rslora-demo-cleanup", () -> {
            try {
                made.removeIfEmpty();
            } catch (IOException e) {
                // the process is ending: the folders stay, as after a crash
            }
        })) {
            try {
                return experiment.equals("dpo") ? runDpo(o, err, made) : runRank(o, err, made);
            } catch (Exception | Error e) {
                try {
                    made.removeIfEmpty();
                } catch (IOException other) {
                    e.addSuppressed(other);
                }
                throw e;
            }
        }
    }

    private Integer runRank(PrintWriter o, PrintWriter err, MadeFolders made) throws Exception {
        SweepConfig c = config();
        Backend backend = Backends.get(backendName);
        made.create();
        o.printf(Locale.ROOT, "rank sweep on the %s backend: d=%d, batch %d, %d steps, ranks %s, seeds %s, alpha %s, AdamW lr %s%n",
                backend.name(), c.dim(), c.batch(), c.steps(), c.ranks(), c.seedValues(), c.alpha(), c.optimizer().lr());
        o.flush();
        SweepResult r = RankSweep.run(c, backend, ConsoleProgress.create(err));
        o.println();
        o.print(SummaryTable.format(r.summaries(), c.finalWindow()));
        o.println();
        List<String> diverged = r.summaries().stream().filter(s -> !Double.isFinite(s.finalLossMean()))
                .map(s -> s.scaling().name().toLowerCase(Locale.ROOT) + " r=" + s.rank()).toList();
        if (!diverged.isEmpty()) {
            err.printf(Locale.ROOT, "rslora demo: warning: the loss is not finite for %s: those runs diverged (--lr %s too"
                    + " large?)%n", String.join(", ", diverged), c.optimizer().lr());
        }
        List<Path> written = new ArrayList<>();
        String plotsSkipped = null;
        try (StagedOutput staged = StagedOutput.folder(out, true)) {
            Path d = staged.dir();
            written.add(CsvReport.write(r, d));
            written.add(JsonReport.write(r, d));
            try {
                written.add(LossCurvePlot.write(r, d));
                written.add(GradNormPlot.write(r, d));
            } catch (VirtualMachineError e) {
                throw e;
            } catch (Error | RuntimeException e) {
                // a runtime without java.desktop (NoClassDefFoundError: java/awt/...) or a host without fonts:
                // no plot is kept (a half-drawn one would be a partial file)
                written.removeIf(p -> p.getFileName().toString().endsWith(".png"));
                for (String png : List.of(LossCurvePlot.FILE, GradNormPlot.FILE)) {
                    Files.deleteIfExists(d.resolve(png));
                }
                plotsSkipped = firstLine(e);
            }
            staged.commit();
        }
        for (Path p : written) {
            o.println("wrote " + out.resolve(p.getFileName()));
        }
        if (plotsSkipped != null) {
            o.println("plots skipped: cannot draw PNGs on this Java runtime or host (" + plotsSkipped
                    + "); rank_sweep.csv and rank_sweep.json hold the same data");
        }
        o.printf(Locale.ROOT, "%.1f s on the %s backend%n", r.wallSeconds(), r.backend());
        o.flush();
        return 0;
    }

    /**
     * --out and the missing parents a run makes for it, removed again while still empty when the run
     * fails or a SIGTERM or Ctrl-C ends it; nothing that existed before the run is touched, and a
     * folder that holds anything (whole result files may have been moved in) is kept with those above it.
     * The run's thread and the shutdown cleanup share it: once the folders are removed, none is made again.
     */
    private static final class MadeFolders {
        private final Path out;
        private final List<Path> missing = new ArrayList<>();   // --out first, then its parents
        private boolean removed;

        MadeFolders(Path out) {
            this.out = out;
            for (Path p = out.toAbsolutePath().normalize(); p != null && !Files.exists(p, LinkOption.NOFOLLOW_LINKS);
                    p = p.getParent()) {
                missing.add(p);   // a dangling link is the user's, not made here
            }
        }

        /** Makes --out and its missing parents (not once they were removed: the process is stopping). */
        synchronized void create() throws IOException {
            if (removed) {
                throw new IOException("stopping: --out " + out + " is not made");
            }
            Files.createDirectories(out);
        }

        /** Removes the folders this run made, innermost first, up to the first that is not empty. */
        synchronized void removeIfEmpty() throws IOException {
            removed = true;
            try {
                for (Path p : missing) {
                    Files.deleteIfExists(p);
                }
            } catch (DirectoryNotEmptyException kept) {
                // results were moved in before the failure or the signal (whole files), or something else was
                // put there: keep it, and the folders above it
            }
        }
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? "" : e.getMessage().strip().lines().findFirst().orElse("");
        return e.getClass().getName() + (m.isEmpty() ? "" : ": " + m);
    }
}
