package dev.rslora.demo;

import java.util.List;

/**
 * Everything a sweep produced: its config, the backend it ran on, every run's curves (ordered by
 * seed, then LoRA before rsLoRA, then rank) and the wall time.
 *
 * @param config      the sweep's settings
 * @param backend     the name of the backend it ran on
 * @param curves      every run, in the order above
 * @param wallSeconds the sweep's wall-clock time in seconds
 */
public record SweepResult(SweepConfig config, String backend, List<RunCurve> curves, double wallSeconds) {

    /** Copies the curves into an unmodifiable list. */
    public SweepResult {
        curves = List.copyOf(curves);
    }

    /**
     * The per-(scaling, rank) rows, LoRA first.
     *
     * @return one row per (scaling, rank), computed with the config's final window
     */
    public List<ConfigSummary> summaries() {
        return ConfigSummary.of(curves, config.finalWindow());
    }
}
