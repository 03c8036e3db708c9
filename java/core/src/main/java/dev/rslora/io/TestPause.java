package dev.rslora.io;

/**
 * The test-only waits that hold a write or a staged output mid-way so that a child-JVM test can
 * signal the process at that point ({@link SafetensorsWriter#TEST_PAUSE_PROPERTY},
 * {@link StagedOutput#TEST_STAGED_PAUSE_PROPERTY}, {@link StagedOutput#TEST_COMMIT_PAUSE_PROPERTY}).
 * Unset, the properties cost one comparison with 0 per write.
 */
final class TestPause {
    private TestPause() {
    }

    /** The milliseconds system property {@code name} names (unset or negative: 0), for a static final read once. */
    static long millis(String name) {
        return Math.max(0, Long.getLong(name, 0));
    }

    /** Sleeps {@code millis}; an interrupt ends the wait and stays set, for the interrupted step to see. */
    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
