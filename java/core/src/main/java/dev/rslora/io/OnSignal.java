package dev.rslora.io;

import java.util.ArrayList;
import java.util.List;

/**
 * A cleanup that runs if a SIGTERM or Ctrl-C (or {@link System#exit}) ends the JVM while a step is
 * still in progress: the JVM then runs only its shutdown hooks, not the {@code finally} blocks and
 * {@code catch} clauses that undo a failed step. Register it around the step that would leave
 * something behind and close it when the step ends:
 *
 * <pre>{@code
 * try (OnSignal _ = OnSignal.register("my-step-cleanup", () -> undoPartialOutput())) {
 *     ... the step that would leave partial output ...
 * }
 * }</pre>
 *
 * <p>All cleanups share one JVM shutdown hook, which runs those registered when shutdown begins one
 * after another, <em>the most recently registered first</em> (the order {@code finally} blocks
 * unwind in). The order of separate JVM shutdown hooks is unspecified; this one is not: a step nested
 * in another (a {@link StagedOutput} inside a command that made its output folder) is undone before
 * the step around it, which then sees the state the inner cleanup left. A cleanup runs on the hook
 * thread while the step's own thread goes on; the JVM halts when the last cleanup returns, so a
 * cleanup that waits for the step to finish something should wait a bounded time.
 */
public final class OnSignal implements AutoCloseable {
    private static final Object LOCK = new Object();
    /** The open registrations, oldest first; guarded by {@link #LOCK}. */
    private static final List<OnSignal> OPEN = new ArrayList<>();
    /** Whether the JVM hook was added; guarded by {@link #LOCK}. */
    private static boolean hookAdded;
    /** Set when the JVM hook starts: no registration is taken after that; guarded by {@link #LOCK}. */
    private static boolean shuttingDown;

    private final String name;
    private final Runnable cleanup;

    private OnSignal(String name, Runnable cleanup) {
        this.name = name;
        this.cleanup = cleanup;
    }

    /**
     * Registers {@code cleanup} to run if the JVM shuts down before the returned handle is closed.
     *
     * @param name    names the cleanup (the hook thread bears it while the cleanup runs, and a
     *                failure report names it)
     * @param cleanup what to undo; it runs on the hook thread while the step's own thread goes on
     * @return the registration; closing it removes the cleanup
     * @throws IllegalStateException if the JVM is already shutting down (as {@link Runtime#addShutdownHook} does)
     */
    public static OnSignal register(String name, Runnable cleanup) {
        OnSignal r = new OnSignal(name, cleanup);
        synchronized (LOCK) {
            if (shuttingDown) {
                throw new IllegalStateException("Shutdown in progress");
            }
            if (!hookAdded) {
                Runtime.getRuntime().addShutdownHook(new Thread(OnSignal::runAll, "rslora-on-signal"));
                hookAdded = true;
            }
            OPEN.add(r);
        }
        return r;
    }

    /**
     * Removes the cleanup. Once shutdown has begun the cleanup is running, has run or is about to
     * run, and it is left to do so (as with a JVM shutdown hook); it must then find nothing to undo.
     */
    @Override
    public void close() {
        synchronized (LOCK) {
            OPEN.remove(this);   // by identity: equals is Object's
        }
    }

    /**
     * Whether this cleanup is still registered (for tests).
     *
     * @return true until {@link #close()}
     */
    boolean registered() {
        synchronized (LOCK) {
            return OPEN.contains(this);
        }
    }

    /** The JVM hook: every cleanup open when shutdown began, newest first; a failing one does not stop the rest. */
    private static void runAll() {
        List<OnSignal> open;
        synchronized (LOCK) {
            shuttingDown = true;
            open = List.copyOf(OPEN);
        }
        Thread self = Thread.currentThread();
        for (OnSignal r : open.reversed()) {
            self.setName(r.name);
            try {
                r.cleanup.run();
            } catch (Throwable t) {
                // the process is ending: report it and go on with the others
                System.err.println("rslora: cleanup " + r.name + " on shutdown failed: " + t);
            }
            Thread.interrupted();   // an interrupt one cleanup left set must not cut the next one's waits short
        }
    }
}
