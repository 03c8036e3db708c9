package dev.rslora.optim;

import java.util.Arrays;
import java.util.List;

/**
 * A copy of an Adafactor optimizer's state ({@code dev.rslora.train.Adafactor} or {@code CudaAdafactor}),
 * in parameter order: the step count t, the hyper-parameters, and per parameter the fp32 state of
 * {@code transformers.optimization.Adafactor} under its names. Held on the heap; the arrays are the
 * snapshot's own (treat them as read-only). Files: {@code dev.rslora.train.AdafactorStateFile}.
 *
 * @param step    the number of steps taken (the next step is t = step + 1)
 * @param config  the hyper-parameters at the time of the snapshot
 * @param entries one per parameter, in the optimizer's order
 */
public record AdafactorState(long step, AdafactorConfig config, List<Entry> entries) {

    /** Copies the entries and checks that their first moments match the config's beta1. */
    public AdafactorState {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got step=" + step);
        }
        if (config == null || entries == null) {
            throw new IllegalArgumentException("AdafactorState: " + (config == null ? "config" : "entries") + " is null");
        }
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i) == null) {
                throw new IllegalArgumentException("AdafactorState: entry " + i + " is null");
            }
        }
        entries = List.copyOf(entries);
        for (Entry e : entries) {
            if ((e.expAvg() != null) != config.usesFirstMoment()) {
                throw new IllegalArgumentException("entry " + e.name() + (e.expAvg() != null ? " has" : " lacks")
                        + " exp_avg but the config has beta1=" + config.beta1());
            }
        }
    }

    /**
     * The state of one parameter of shape {@code [..., R, C]} (factored: rank ≥ 2) or any shape of
     * rank 0 or 1 (unfactored).
     *
     * @param name       the parameter's name
     * @param shape      its shape
     * @param expAvgSqRow factored: the row averages of grad² + eps1, shape[:-1] (B·R values), else null
     * @param expAvgSqCol factored: the column averages, shape[:-2] + shape[-1:] (B·C values), else null
     * @param expAvgSq   unfactored: the averages of grad² + eps1, numel values, else null
     * @param expAvg     the first moment (numel values) when beta1 is set, else null
     * @param master     fp32 master weights, or null when the parameter has none
     */
    public record Entry(String name, long[] shape, float[] expAvgSqRow, float[] expAvgSqCol, float[] expAvgSq, float[] expAvg,
                        float[] master) {
        /** Checks that every array has the length its shape implies. */
        public Entry {
            if (name == null || shape == null) {
                throw new IllegalArgumentException("AdafactorState.Entry" + (name == null ? ": name" : " " + name + ": shape")
                        + " is null");
            }
            shape = shape.clone();
            long numel = ShapeCount.of(name, shape);
            if (factored(shape)) {
                long cols = shape[shape.length - 1];
                long rowsTotal = ShapeCount.of(name, Arrays.copyOf(shape, shape.length - 1));
                long batch = ShapeCount.of(name, Arrays.copyOf(shape, shape.length - 2));
                require(expAvgSqRow != null && expAvgSqRow.length == rowsTotal, name, "exp_avg_sq_row", rowsTotal,
                        expAvgSqRow);
                require(expAvgSqCol != null && expAvgSqCol.length == batch * cols, name, "exp_avg_sq_col", batch * cols,
                        expAvgSqCol);
                if (expAvgSq != null) {
                    throw new IllegalArgumentException("entry " + name + " of shape " + Arrays.toString(shape)
                            + " is factored and must not have exp_avg_sq");
                }
            } else {
                require(expAvgSq != null && expAvgSq.length == numel, name, "exp_avg_sq", numel, expAvgSq);
                if (expAvgSqRow != null || expAvgSqCol != null) {
                    throw new IllegalArgumentException("entry " + name + " of shape " + Arrays.toString(shape)
                            + " is not factored and must not have exp_avg_sq_row/col");
                }
            }
            if (expAvg != null) {
                require(expAvg.length == numel, name, "exp_avg", numel, expAvg);
            }
            if (master != null) {
                require(master.length == numel, name, "master", numel, master);
            }
        }

        private static void require(boolean ok, String name, String what, long expected, float[] got) {
            if (!ok) {
                throw new IllegalArgumentException("entry " + name + ": " + what + " has " + (got == null ? "no" : got.length)
                        + " values, expected " + expected);
            }
        }

        /**
         * Whether a parameter of this shape has factored second moments (rank ≥ 2, as Hugging Face).
         *
         * @param shape the parameter's shape
         * @return true for rank ≥ 2 (row and column averages), false for rank 0 or 1 (full exp_avg_sq)
         */
        public static boolean factored(long[] shape) {
            return shape.length >= 2;
        }

        /**
         * The parameter's shape.
         *
         * @return a copy of the shape (the caller may modify it)
         */
        @Override
        public long[] shape() {
            return shape.clone();
        }

        /**
         * Whether this parameter has factored second moments (rank ≥ 2).
         *
         * @return true when the row/column averages are set, false when exp_avg_sq is
         */
        public boolean isFactored() {
            return factored(shape);
        }

        /**
         * The parameter's element count.
         *
         * @return the product of the shape's dimensions (1 for rank 0)
         */

        public long numel() {
            return ShapeCount.of(name, shape);  // checked when the entry was made
        }
    }
}
