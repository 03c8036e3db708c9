package dev.rslora.bench.report;

/**
 * One benchmark shape: N tokens, W [d_out, d_in], rank r (0 for a frozen base alone), and the
 * work the layer must do (PERFORMANCE.md §2, in ../shared/docs/, outside this repository):
 * <pre>
 *   LoRA fwd+bwd = 4·N·d_in·d_out + 6·N·r·(d_in + d_out)   (Y, dX GEMMs + U, Y-term, V, dB, dA, dX-term)
 *   base fwd+bwd = 4·N·d_in·d_out                          (Y = X·Wᵀ and dX = dY·W)
 * </pre>
 */
public record Shape(int n, int dIn, int dOut, int r) {

    public Shape {
        if (n < 1 || dIn < 1 || dOut < 1 || r < 0) {
            throw new IllegalArgumentException("bad shape n=" + n + " d_in=" + dIn + " d_out=" + dOut + " r=" + r);
        }
    }

    /** FLOPs of one LoRA forward + backward. */
    public double loraFlop() {
        return baseFlop() + 6.0 * n * r * ((double) dIn + dOut);
    }

    /** FLOPs of one frozen-base forward + backward. */
    public double baseFlop() {
        return 4.0 * n * dIn * dOut;
    }

    /**
     * The FLOPs the cpu backend's LoRA step does over the base step's (R if all of them ran at the
     * base's rate): 6·N·r·(d_in + d_out) with the LoRA K-segments, or, where a pass takes the merged
     * route (dev.rslora.backend.cpu.MergedWeight: no dropout, N ≥ 2·d_in for the forward, N ≥ 2·d_out
     * for dX, W' within 64 MiB), that pass's segment (2·N·r·d_out or 2·N·r·d_in) replaced by
     * forming W' (2·r·d_in·d_out). Square shapes: 1 + 3r/d, or 1 + 2r/d + r/N with both passes merged.
     *
     * @param dropout whether the step applies a dropout mask
     */
    public double cpuStepFlopRatio(boolean dropout) {
        double w = 2.0 * r * dIn * dOut;
        double extra = 4.0 * n * r * ((double) dIn + dOut)
                + (merged(dropout, dIn) ? w : 2.0 * n * r * dOut) + (merged(dropout, dOut) ? w : 2.0 * n * r * dIn);
        return 1 + extra / baseFlop();
    }

    /**
     * As {@link #cpuStepFlopRatio} for the forward alone (U, and the Y segment or forming W'ᵀ, over
     * X·Wᵀ): 1 + r(d_in + d_out)/(d_in·d_out), or 1 + r/d_out + r/N on the merged route.
     */
    public double cpuForwardFlopRatio(boolean dropout) {
        double extra = 2.0 * n * r * dIn + (merged(dropout, dIn) ? 2.0 * r * dIn * dOut : 2.0 * n * r * dOut);
        return 1 + extra / (2.0 * n * dIn * dOut);
    }

    /** Whether a pass forming W' over {@code formed} takes the merged route (the rule of MergedWeight.use). */
    private boolean merged(boolean dropout, int formed) {
        return r > 0 && !dropout && (long) n >= 2L * formed && 4L * dIn * dOut <= 64L << 20;
    }

    /** The same shape without the rank (how a frozen base is keyed). */
    public Shape base() {
        return new Shape(n, dIn, dOut, 0);
    }

    /** "d" when square, else "d_in→d_out". */
    public String dLabel() {
        return dIn == dOut ? Integer.toString(dIn) : dIn + "→" + dOut;
    }
}
