package dev.rslora.demo;

import java.util.List;

/**
 * Everything a sweep produced: its config, the backend it ran on, every run's curves (ordered by
 * seed, then LoRA before rsLoRA, then rank) and the wall time.
 */
public record SweepResult(SweepConfig config, String backend, List<RunCurve> curves, double wallSeconds) {

    public SweepResult {
        curves = List.copyOf(curves);
    }

    /** The per-(scaling, rank) rows, LoRA first. */
    public List<ConfigSummary> summaries() {
        return ConfigSummary.of(curves, config.finalWindow());
    }
}
