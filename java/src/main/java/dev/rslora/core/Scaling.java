package dev.rslora.core;

/** How the adapter output is scaled: γ as a function of α and the rank r. */
public enum Scaling {
    /** Rank-stabilized LoRA (PEFT {@code use_rslora=True}): γ = α/√r. The default. */
    RSLORA,
    /** Classic LoRA (PEFT {@code use_rslora=False}): γ = α/r. */
    LORA;

    /** γ for rank {@code r} and alpha {@code alpha}; the only place γ is computed. */
    public double gamma(double alpha, int r) {
        return switch (this) {
            case RSLORA -> alpha / Math.sqrt(r);
            case LORA -> alpha / r;
        };
    }
}
