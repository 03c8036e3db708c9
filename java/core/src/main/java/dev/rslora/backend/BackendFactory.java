package dev.rslora.backend;

/**
 * Creates one kind of backend, and says whether it can run here. {@link #probe()} must never
 * throw or load native code that can crash: it reports why a backend is unavailable instead.
 */
public interface BackendFactory {

    /** "reference", "cpu" or "cuda". */
    String name();

    /** Whether this backend can run on this machine, and if not, why. */
    Availability probe();

    /** Creates the backend; only called after {@link #probe()} said it is available. */
    Backend create();

    /** The outcome of a probe. */
    record Availability(boolean available, String detail) {
        /** An available backend; {@code detail} says what it runs on. */
        public static Availability yes(String detail) {
            return new Availability(true, detail);
        }

        /** An unavailable backend; {@code reason} says why, with what to change. */
        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
