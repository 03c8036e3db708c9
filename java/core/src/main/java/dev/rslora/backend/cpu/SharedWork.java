package dev.rslora.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Units of work that every worker needs done before going on (packing the small adapter
 * panels): each worker claims units from a counter until none is left, then waits only for the
 * units other workers are still finishing. No unit is done twice and nobody waits for a worker
 * that has not started: a worker arriving late finds everything done. If a worker fails, the
 * others stop waiting and fail too.
 */
final class SharedWork {
    /** One unit, done by worker {@code worker}. */
    interface Unit {
        void run(int worker, int unit);
    }

    private final int units;
    private final Unit body;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger done = new AtomicInteger();
    private volatile boolean failed;

    SharedWork(int units, Unit body) {
        this.units = units;
        this.body = body;
    }

    /** Claims and runs units until none is left, then waits until all are done. */
    void runAndWait(int worker) {
        try {
            for (int u = next.getAndIncrement(); u < units; u = next.getAndIncrement()) {
                body.run(worker, u);
                done.incrementAndGet();
            }
        } catch (RuntimeException | Error e) {
            failed = true;
            throw e;
        }
        for (int spins = 1; done.get() < units; spins++) {
            if (failed) {
                throw new IllegalStateException("another cpu worker failed while preparing shared panels");
            }
            if ((spins & 1023) == 0) {
                Thread.yield();
            } else {
                Thread.onSpinWait();
            }
        }
    }
}
