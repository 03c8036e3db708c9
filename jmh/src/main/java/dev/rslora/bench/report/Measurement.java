package dev.rslora.bench.report;

/**
 * One timed configuration, normalised from any raw source (JMH JSON, the PEFT peer's or cuda/dev's
 * JSON lines): implementation id (see {@link Catalog}), role, platform, shape (r = 0 for a base),
 * time per step in ms and its error half-width in ms (NaN when the source gives none).
 *
 * @param errorKind how {@code errorMs} was obtained, e.g. "99.9% CI" (JMH) or "p10–p90/2" (CUDA events)
 * @param source    the raw file it came from, for the report's provenance list
 */
public record Measurement(String impl, Role role, Platform platform, Shape shape, double ms, double errorMs,
                          String errorKind, String source) {

    public Measurement {
        if (!(ms > 0) || Double.isInfinite(ms)) {
            throw new IllegalArgumentException("time must be finite and > 0 ms, got " + ms + " for " + impl + " " + shape
                    + " from " + source);
        }
    }

    /** Achieved GFLOP/s of this step (LoRA or base FLOPs, per the role). */
    public double gflops() {
        double flop = role == Role.LORA ? shape.loraFlop() : shape.baseFlop();
        return flop / (ms * 1e6);
    }
}
