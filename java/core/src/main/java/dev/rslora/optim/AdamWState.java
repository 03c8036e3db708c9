package dev.rslora.optim;

import java.util.Arrays;
import java.util.List;

/**
 * A copy of an {@code dev.rslora.train.AdamW} (or {@code CudaAdamW}) optimizer's state, in parameter order: the step count t, the
 * hyper-parameters, and per parameter the fp32 moments m and v and, for a 16-bit parameter with
 * master weights, its fp32 master copy. Held on the heap; the arrays are the snapshot's own
 * (treat them as read-only). Written to and read from files by {@code dev.rslora.train.AdamWStateFile}.
 *
 * @param step    the number of steps taken (the next step is t = step + 1)
 * @param config  the hyper-parameters at the time of the snapshot
 * @param entries one per parameter, in the optimizer's order
 */
public record AdamWState(long step, AdamWConfig config, List<Entry> entries) {

    /** Checks the step and copies the entries. */
    public AdamWState {
        if (step < 0) {
            throw new IllegalArgumentException("step must be >= 0, got step=" + step);
        }
        if (config == null || entries == null) {
            throw new IllegalArgumentException("AdamWState: " + (config == null ? "config" : "entries") + " is null");
        }
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i) == null) {
                throw new IllegalArgumentException("AdamWState: entry " + i + " is null");
            }
        }
        entries = List.copyOf(entries);
    }

    /**
     * The state of one parameter.
     *
     * @param name   the parameter's name
     * @param shape  its shape
     * @param m      first moment, numel(shape) values
     * @param v      second moment, numel(shape) values
     * @param master fp32 master weights, or null when the parameter has none
     */
    public record Entry(String name, long[] shape, float[] m, float[] v, float[] master) {
        /** Checks the entry (IllegalArgumentException naming the parameter). */
        public Entry {
            if (name == null) {
                throw new IllegalArgumentException("AdamWState.Entry: name is null");
            }
            if (shape == null || m == null || v == null) {
                throw new IllegalArgumentException("AdamWState.Entry " + name + ": "
                        + (shape == null ? "shape" : m == null ? "m" : "v") + " is null");
            }
            shape = shape.clone();
            long numel = ShapeCount.of(name, shape);
            if (m.length != numel || v.length != numel || (master != null && master.length != numel)) {
                throw new IllegalArgumentException("entry " + name + " of shape " + Arrays.toString(shape) + " (" + numel
                        + " elements) has m/v/master lengths " + m.length + "/" + v.length + "/"
                        + (master == null ? "none" : master.length));
            }
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
         * The parameter's element count.
         *
         * @return the length of m (= v = master, the product of the shape)
         */

        public long numel() {
            return m.length;
        }
    }
}
