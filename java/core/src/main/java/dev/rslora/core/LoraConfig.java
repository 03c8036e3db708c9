package dev.rslora.core;

/**
 * The hyper-parameters of one LoRA adapter.
 *
 * @param rank    r ≥ 1
 * @param alpha   α &gt; 0 (may be fractional), such that γ fits in fp32 and is a normal number there (≥ 2^-126)
 * @param scaling {@link Scaling#RSLORA} (γ = α/√r, default) or {@link Scaling#LORA} (γ = α/r)
 * @param dropout p in [0, 1), also once rounded to fp32: inverted dropout on the adapter input only
 * @param init    initialisation of A (B starts at zero)
 * @param seed    seeds the initialisation and the dropout stream
 */
public record LoraConfig(int rank, double alpha, Scaling scaling, double dropout, Init init, long seed) {

    /** Checks every component (IllegalArgumentException naming the bad value). */
    public LoraConfig {
        if (rank < 1) {
            throw new IllegalArgumentException("rank must be >= 1, got rank=" + rank);
        }
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("alpha must be finite and > 0, got alpha=" + alpha);
        }
        if (scaling == null) {
            throw new IllegalArgumentException("scaling must be RSLORA or LORA, got scaling=null");
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("dropout must be in [0, 1), got dropout=" + dropout);
        }
        if (!((float) dropout < 1f)) {
            // the masks use p as an fp32 (DropoutMask, LoraParams): a p this close to 1 would become 1
            throw new IllegalArgumentException("dropout must be in [0, 1) after rounding to fp32, got dropout=" + dropout
                    + ", which rounds to " + (float) dropout);
        }
        if (init == null) {
            throw new IllegalArgumentException("init must be DEFAULT or GAUSSIAN, got init=null");
        }
        if (!(scaling.gamma(alpha, rank) <= Float.MAX_VALUE)) {
            // the backends scale by γ in fp32: a larger γ would be Infinity there
            throw new IllegalArgumentException("alpha=" + alpha + " with rank=" + rank + " gives γ=" + scaling.gamma(alpha, rank)
                    + ", beyond fp32's range");
        }
        if ((float) scaling.gamma(alpha, rank) == 0f) {
            // ... and a γ below fp32's smallest subnormal would be 0 there: the adapter silently off on the cpu and
            // cuda backends while the double reference still applies it
            throw new IllegalArgumentException("alpha=" + alpha + " with rank=" + rank + " gives γ=" + scaling.gamma(alpha, rank)
                    + ", which is 0 in fp32 (the adapter would have no effect)");
        }
        if ((float) scaling.gamma(alpha, rank) < Float.MIN_NORMAL) {
            // ... and a subnormal γ keeps only some of its bits in fp32: the cpu and cuda backends then scale by a
            // value up to a third off the reference's (γ = 2.1e-45 is stored as 1.4e-45)
            throw new IllegalArgumentException("alpha=" + alpha + " with rank=" + rank + " gives γ=" + scaling.gamma(alpha, rank)
                    + ", which is subnormal in fp32 (below " + Float.MIN_NORMAL + "): the backends, which scale in fp32,"
                    + " would not agree on it");
        }
    }

    /**
     * An rsLoRA config (γ = α/√r), no dropout, default init, seed 0.
     *
     * @param rank  r ≥ 1
     * @param alpha α &gt; 0 (finite)
     * @return the config
     * @throws IllegalArgumentException if r &lt; 1 or α is not finite and &gt; 0
     */
    public static LoraConfig rslora(int rank, double alpha) {
        return new LoraConfig(rank, alpha, Scaling.RSLORA, 0.0, Init.DEFAULT, 0L);
    }

    /**
     * γ = α/√r for rsLoRA, α/r for LoRA.
     *
     * @return the factor of the adapter term γ·B·A·x
     */
    public double gamma() {
        return scaling.gamma(alpha, rank);
    }

    /**
     * This config with scaling {@code s}.
     *
     * @param s RSLORA or LORA (not null)
     * @return a copy with the new scaling
     */
    public LoraConfig withScaling(Scaling s) {
        return new LoraConfig(rank, alpha, s, dropout, init, seed);
    }

    /**
     * This config with dropout probability {@code p}.
     *
     * @param p in [0, 1); 0 disables dropout
     * @return a copy with the new dropout
     * @throws IllegalArgumentException if p is outside [0, 1)
     */
    public LoraConfig withDropout(double p) {
        return new LoraConfig(rank, alpha, scaling, p, init, seed);
    }

    /**
     * This config with initialisation {@code i}.
     *
     * @param i how A is initialised (not null)
     * @return a copy with the new initialisation
     */
    public LoraConfig withInit(Init i) {
        return new LoraConfig(rank, alpha, scaling, dropout, i, seed);
    }

    /**
     * This config with seed {@code s} (initialisation and dropout stream).
     *
     * @param s any long; equal seeds give equal A and equal dropout masks
     * @return a copy with the new seed
     */

    public LoraConfig withSeed(long s) {
        return new LoraConfig(rank, alpha, scaling, dropout, init, s);
    }
}
