package dev.rslora.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The first units of a {@link WorkerPool} job that its later units need (small N: U before Y in
 * the forward, V before dX and dA in the backward), counted as they finish, so that one job does
 * what took two jobs and a barrier between them. A unit that needs them calls {@link #await}; the
 * pool claims units in order, so by then every unit counted here is running on some worker or
 * done: the wait is for work in progress, never for a unit nobody has claimed. A counted unit
 * calls {@link #done} in a finally block: when it fails, the failure reaches the caller through
 * the pool and nobody waits for it forever.
 */
final class UnitsDone {
    private static final int SPINS = 1 << 12;
    private final int units;
    private final AtomicInteger finished = new AtomicInteger();

    /** @param units how many units the later ones wait for (0: they never wait) */
    UnitsDone(int units) {
        this.units = units;
    }

    /** One of the counted units has finished (or failed). */
    void done() {
        finished.incrementAndGet();
    }

    /** Returns once every counted unit has finished: spins briefly, then yields the core. */
    void await() {
        for (int spins = 0; finished.get() < units; spins++) {
            if (spins < SPINS) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
    }
}
