package dev.rslora.backend;

/**
 * Creates one kind of backend, and says whether it can run here. {@link #probe()} must never
 * throw or load native code that can crash: it reports why a backend is unavailable instead.
 */
public interface BackendFactory {

    /**
     * The name of the backend this factory creates.
     *
     * @return "reference", "cpu" or "cuda"
     */
    String name();

    /**
     * Whether this backend can run on this machine, and if not, why.
     *
     * @return the availability; never throws
     */
    Availability probe();

    /**
     * Creates the backend; only called after {@link #probe()} said it is available.
     *
     * @return a new backend instance
     */
    Backend create();

    /**
     * The outcome of a probe.
     *
     * @param available whether the backend can run here
     * @param detail    what it runs on when available (e.g. the vector width or the GPU), else why
     *                  not and what to change (a flag, a driver, a platform)
     */
    record Availability(boolean available, String detail) {
        /**
         * An available backend; {@code detail} says what it runs on.
         *
         * @param detail what the backend runs on, for {@code rslora info}
         * @return an availability with available = true
         */
        public static Availability yes(String detail) {
            return new Availability(true, detail);
        }

        /**
         * An unavailable backend; {@code reason} says why, with what to change.
         *
         * @param reason why it cannot run, naming what to change
         * @return an availability with available = false
         */

        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
