package dev.rslora.dropout;

/**
 * The dropout mask of one (seed, step, layer): a pure function of (row, column), regenerated in
 * forward and backward on every backend, never stored.
 *
 * <h2>Exact definition (every backend, CPU and CUDA, must match it bit for bit)</h2>
 * <pre>
 *   key     = (k0, k1) = (low 32 bits of seed, high 32 bits of seed)
 *   counter = (c0, c1, c2, c3) = (column &gt;&gt;&gt; 2, row, layer, low 32 bits of step)
 *   bits    = Philox4x32-10(counter, key)[column &amp; 3]           (uint32)
 *   u       = (float) (bits &gt;&gt;&gt; 8) * 2^-24                      (exact: 24 bits fit a float, u in [0, 1))
 *   keep    = u &gt;= p_f                                           (p_f = p rounded to fp32)
 *   scale   = (float) (1.0f / (1.0f - p_f))                       (fp32 division, IEEE round to nearest)
 *   D(x)    = keep ? x * scale : 0                                (fp32 multiply)
 * </pre>
 * Row and column are those of the element in X [N, d_in]; the mask of an element therefore does
 * not depend on N or d_in, and four consecutive columns share one Philox call.
 * Equivalent integer test: keep iff {@code (bits >>> 8) >= threshold} where
 * {@code threshold = ceil(p_f * 2^24)} (see {@link #threshold()}).
 */
public final class DropoutMask {
    private final float p;
    private final float scale;
    private final int k0;
    private final int k1;
    private final int layer;
    private final int step;
    private final int threshold;

    /**
     * The mask of one (seed, step, layer) with drop probability {@code p} in [0, 1).
     *
     * @param seed  the run's seed: its low and high 32 bits are the Philox key
     * @param step  the training step; only its low 32 bits enter the counter (the mask repeats every 2^32 steps)
     * @param layer the layer's index, so that layers of one step draw independent masks
     * @param p     the drop probability in [0, 1) (0: every element kept, scale 1)
     * @throws IllegalArgumentException if p is outside [0, 1) or NaN
     */
    public DropoutMask(long seed, long step, int layer, float p) {
        if (!(p >= 0f && p < 1f)) {
            throw new IllegalArgumentException("dropout p must be in [0, 1), got p=" + p);
        }
        this.p = p;
        this.scale = 1.0f / (1.0f - p);
        this.k0 = (int) seed;
        this.k1 = (int) (seed >>> 32);
        this.layer = layer;
        this.step = (int) step;
        this.threshold = thresholdOf(p);
    }

    /** ceil(p * 2^24): the smallest 24-bit draw that is kept. Exact because p is an fp32 in [0, 1). */
    static int thresholdOf(float p) {
        return (int) Math.ceil((double) p * 0x1p24);
    }

    /**
     * The drop probability p.
     *
     * @return p in [0, 1), as given
     */
    public float p() {
        return p;
    }

    /**
     * 1/(1-p) in fp32: the factor applied to kept elements.
     *
     * @return the fp32 quotient 1.0f / (1.0f − p), ≥ 1
     */
    public float scale() {
        return scale;
    }

    /**
     * The 24-bit threshold: keep iff {@code (bits >>> 8) >= threshold()}.
     *
     * @return ceil(p·2^24), in [0, 2^24)
     */
    public int threshold() {
        return threshold;
    }

    /**
     * The raw 32-bit draw for element (row, col).
     *
     * @param row the element's row in X [N, d_in]; only its low 32 bits are used
     * @param col the element's column in X; col &gt;&gt;&gt; 2 selects the Philox call, col &amp; 3 its output lane
     * @return the draw, an unsigned 32-bit value in an int
     */
    public int bits(long row, long col) {
        return Philox4x32.draw((int) (col >>> 2), (int) row, layer, step, k0, k1, (int) (col & 3));
    }

    /**
     * The uniform in [0, 1) for element (row, col).
     *
     * @param row the element's row in X [N, d_in]
     * @param col the element's column
     * @return (bits &gt;&gt;&gt; 8)·2^-24, a multiple of 2^-24 in [0, 1)
     */
    public float uniform(long row, long col) {
        return (bits(row, col) >>> 8) * 0x1p-24f;
    }

    /**
     * Whether element (row, col) survives.
     *
     * @param row the element's row in X [N, d_in]
     * @param col the element's column
     * @return true when the element is kept (and scaled), false when it is dropped
     */
    public boolean keep(long row, long col) {
        return uniform(row, col) >= p;
    }

    /**
     * The multipliers of columns [col0, col0 + count) of {@code row}: {@code scale} where kept,
     * 0 where dropped, written to {@code out[0..count)}. One Philox call per four columns.
     *
     * @param row   the row in X [N, d_in]
     * @param col0  the first column, ≥ 0
     * @param count the number of columns, ≥ 0
     * @param out   receives the multipliers in {@code out[0..count)}; at least count long
     * @throws IllegalArgumentException if col0 or count is negative, or out is null or shorter than count
     *                                  (nothing is written then)
     */

    public void rowMultipliers(long row, long col0, int count, float[] out) {
        if (col0 < 0 || count < 0 || col0 > Long.MAX_VALUE - count) {
            throw new IllegalArgumentException("rowMultipliers needs col0 >= 0 and count >= 0, got col0=" + col0 + " count=" + count);
        }
        if (out == null || out.length < count) {
            throw new IllegalArgumentException("rowMultipliers of " + count + " columns needs out of at least " + count
                    + " floats, got " + (out == null ? "null" : out.length));
        }
        int[] q = new int[4];
        int i = 0;
        while (i < count) {
            long col = col0 + i;
            Philox4x32.generate((int) (col >>> 2), (int) row, layer, step, k0, k1, q);
            for (int lane = (int) (col & 3); lane < 4 && i < count; lane++, i++) {
                out[i] = (q[lane] >>> 8) >= threshold ? scale : 0f;
            }
        }
    }
}
