package dev.rslora.demo;

/** Receives the progress of a sweep: one unit per (seed, step), all (scaling, rank) runs of that step done. */
public interface SweepProgress {
    /**
     * Called once before the first step with the total number of units.
     *
     * @param totalUnits seeds × steps
     */
    void start(long totalUnits);

    /**
     * One more unit done; {@code label} says where the sweep is (e.g. "seed 2/3").
     *
     * @param label a short status for a progress bar
     */
    void advance(String label);

    /** Called once after the last unit (also when the sweep fails). */
    void finish();

    /** Reports nothing. */
    SweepProgress NONE = new SweepProgress() {
        @Override
        public void start(long totalUnits) {
        }

        @Override
        public void advance(String label) {
        }

        @Override
        public void finish() {
        }
    };
}
