package dev.rslora.bench.report;

/**
 * One benchmark shape: N tokens, W [d_out, d_in], rank r (0 for a frozen base alone), and the
 * work the layer must do (PERFORMANCE.md §2):
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

    /** The same shape without the rank (how a frozen base is keyed). */
    public Shape base() {
        return new Shape(n, dIn, dOut, 0);
    }

    /** "d" when square, else "d_in→d_out". */
    public String dLabel() {
        return dIn == dOut ? Integer.toString(dIn) : dIn + "→" + dOut;
    }
}
