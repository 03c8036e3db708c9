package dev.rslora.cli;

import dev.rslora.demo.SweepProgress;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * Sweep progress for the console: a progress bar (me.tongfei:progressbar, on stderr) when stdin/out
 * is an interactive terminal, otherwise one plain line at each quarter of the work.
 */
final class ConsoleProgress {
    private ConsoleProgress() {
    }

    /** A bar on a terminal, plain lines on {@code err} otherwise, named "rank sweep". */
    static SweepProgress create(PrintWriter err) {
        return create(err, "rank sweep");
    }

    /** A bar on a terminal, plain lines on {@code err} otherwise, named {@code task}. */
    static SweepProgress create(PrintWriter err, String task) {
        java.io.Console console = System.console();
        if (console != null && console.isTerminal()) {
            return new Bar(task);
        }
        return new Lines(err, task);
    }

    /** The terminal progress bar. */
    static final class Bar implements SweepProgress {
        private final String task;
        private ProgressBar bar;

        Bar(String task) {
            this.task = task;
        }

        @Override
        public void start(long totalUnits) {
            bar = new ProgressBarBuilder().setTaskName(task).setInitialMax(totalUnits)
                    .setStyle(ProgressBarStyle.COLORFUL_UNICODE_BLOCK).setUpdateIntervalMillis(250).setUnit(" steps", 1)
                    .build();
        }

        @Override
        public void advance(String label) {
            bar.step();
            bar.setExtraMessage(label);
        }

        @Override
        public void finish() {
            if (bar != null) {
                bar.close();
            }
        }
    }

    /** Plain lines at 25 %, 50 %, 75 % and 100 % with the elapsed time (for logs and pipes). */
    static final class Lines implements SweepProgress {
        private final PrintWriter err;
        private final String task;
        private long total;
        private long done;
        private int nextQuarter;
        private long started;

        Lines(PrintWriter err, String task) {
            this.err = err;
            this.task = task;
        }

        @Override
        public void start(long totalUnits) {
            total = totalUnits;
            done = 0;
            nextQuarter = 1;
            started = System.nanoTime();
        }

        @Override
        public void advance(String label) {
            done++;
            while (nextQuarter <= 4 && done * 4 >= nextQuarter * total) {
                err.printf(Locale.ROOT, "%s: %3d%% (%d/%d steps, %s) %.1f s%n", task, nextQuarter * 25, done, total, label,
                        (System.nanoTime() - started) / 1e9);
                err.flush();
                nextQuarter++;
            }
        }

        @Override
        public void finish() {
        }
    }
}
