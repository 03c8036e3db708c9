package dev.rslora.cli;

import dev.rslora.io.OnSignal;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.CheckpointMerge;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.Console;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code rslora merge}: writes BASE with the adapter merged in (or, with --unmerge, subtracted),
 * streaming one tensor at a time; OUT appears only when complete. A progress bar shows on a terminal.
 */
@Command(name = "merge", description = {
        "Merge a PEFT adapter into a base checkpoint (or, with --unmerge, subtract it).",
        "Each adapted weight becomes round(W ± γ·B·A) (fp32, rounded once to the base dtype), extra adapter tensors",
        "(e.g. a classifier head) replace theirs, all else is copied byte for byte.",
        "BASE is a .safetensors file (OUT: a file) or a shard folder (OUT: a new folder with the same shards and index)."})
final class MergeCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--base", required = true, paramLabel = "BASE", description = "base checkpoint: a .safetensors file or a shard folder")
    Path base;

    @Option(names = "--adapter", required = true, paramLabel = "ADAPTER_DIR", description = "PEFT adapter folder")
    Path adapter;

    @Option(names = "--output", required = true, paramLabel = "OUT", description = "merged checkpoint (written under a temporary name, renamed when complete)")
    Path output;

    @Option(names = "--unmerge", description = "subtract the adapter instead (W ← round(W − γ·B·A))")
    boolean unmerge;

    @Override
    public Integer call() throws Exception {
        long start = System.nanoTime();
        OutputPaths.requireNotALinkToAStream(output);
        OutputPaths.requireNotReadOnly(output);
        OutputPaths.requireNotAnInput(output, base, adapter, adapter.resolve(AdapterSet.WEIGHTS_FILE),
                adapter.resolve(AdapterSet.CONFIG_FILE));
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint ckpt = BaseCheckpoint.open(base, arena);
            AdapterSet set = AdapterSet.load(adapter, arena);
            CheckpointMerge merge = new CheckpointMerge(ckpt, set, unmerge);
            // a SIGTERM or Ctrl-C: the hook cancels the merge and waits for its cleanup
            try (OnSignal _ = OnSignal.register("rslora-merge-cancel", () -> {
                try {
                    merge.cancel(10_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }); ProgressBar bar = terminal() ? progressBar(merge.totalBytes()) : null) {
                merge.writeTo(output, bar == null ? n -> { } : bar::stepBy);
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            spec.commandLine().getErr().printf("rslora %s: %d adapted weights%s, %d file(s), %.1f MB in %.1f s -> %s%n",
                    unmerge ? "unmerge" : "merge", set.modules().size(),
                    set.extras().isEmpty() ? "" : " + " + set.extras().size() + " replaced tensor(s)",
                    ckpt.shards().size(), merge.totalBytes() / 1e6, seconds, output);
            if (!merge.notCopied().isEmpty()) {
                spec.commandLine().getErr().printf("rslora %s: note: not copied from the base folder: %s%n",
                        unmerge ? "unmerge" : "merge", String.join(", ", merge.notCopied()));
            }
        }
        return 0;
    }

    private static boolean terminal() {
        Console c = System.console();
        return c != null && c.isTerminal();
    }

    private static ProgressBar progressBar(long totalBytes) {
        return new ProgressBarBuilder().setTaskName("merge").setInitialMax(totalBytes).setUnit("MiB", 1L << 20)
                .showSpeed().setUpdateIntervalMillis(250).build();
    }
}
