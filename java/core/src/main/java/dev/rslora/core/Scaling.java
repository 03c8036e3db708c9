package dev.rslora.core;

/** How the adapter output is scaled: γ as a function of α and the rank r. */
public enum Scaling {
    /** Rank-stabilized LoRA (PEFT {@code use_rslora=True}): γ = α/√r. The default. */
    RSLORA,
    /** Classic LoRA (PEFT {@code use_rslora=False}): γ = α/r. */
    LORA;

    /**
     * Parses the CLI / config spelling: "rslora" or "lora" (case-insensitive).
     *
     * @param name "rslora" or "lora", any case, surrounding blanks ignored
     * @return the scaling
     * @throws IllegalArgumentException if the name is null or neither (the message quotes it)
     */
    public static Scaling fromName(String name) {
        if (name != null) {
            switch (name.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "rslora" -> {
                    return RSLORA;
                }
                case "lora" -> {
                    return LORA;
                }
                default -> {
                }
            }
        }
        throw new IllegalArgumentException("scaling must be rslora or lora, got '" + name + "'");
    }

    /**
     * γ for rank {@code r} and alpha {@code alpha}; the only place γ is computed.
     *
     * @param alpha α &gt; 0
     * @param r     the rank, ≥ 1
     * @return α/√r for RSLORA, α/r for LORA
     * @throws IllegalArgumentException if r &lt; 1 (which gave ±Infinity or NaN)
     */

    public double gamma(double alpha, int r) {
        if (r < 1) {
            throw new IllegalArgumentException("rank must be >= 1, got r=" + r);
        }
        return switch (this) {
            case RSLORA -> alpha / Math.sqrt(r);
            case LORA -> alpha / r;
        };
    }
}
