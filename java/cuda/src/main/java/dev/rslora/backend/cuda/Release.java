package dev.rslora.backend.cuda;

/**
 * Runs the release steps of a close so that one failing step does not skip the others: after a
 * kernel fault every driver call of the context returns the fault again (a sticky error), yet the
 * pinned staging memory, the modules, the stream and the primary-context retain must still be
 * given back. {@link #run} records a failure and goes on; {@link #rethrow} then throws the first
 * one, with the later ones as suppressed exceptions.
 */
final class Release {
    private Throwable first;

    /** Runs {@code step}; a RuntimeException or Error it throws is kept (the first) or added to the first as suppressed. */
    void run(Runnable step) {
        try {
            step.run();
        } catch (RuntimeException | Error e) {
            if (first == null) {
                first = e;
            } else if (first != e) {
                first.addSuppressed(e);
            }
        }
    }

    /** Throws the first failure recorded by {@link #run}, if any (later ones suppressed in it). */
    void rethrow() {
        if (first instanceof RuntimeException e) {
            throw e;
        }
        if (first instanceof Error e) {
            throw e;
        }
    }
}
