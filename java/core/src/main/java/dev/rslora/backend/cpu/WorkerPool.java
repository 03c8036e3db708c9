package dev.rslora.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed pool of {@code size - 1} daemon threads plus the calling thread, created once. A job is
 * a number of units; the caller (worker 0) and the pool's threads claim units from a counter
 * until none is left, each running {@code body.run(worker, unit)} with its own worker index (which
 * selects its scratch buffers).
 *
 * <p>Nobody waits for a thread that has not started: the caller works through the units itself,
 * then waits only for threads that are inside the job. A thread that wakes up after the caller has
 * closed the job leaves without touching it. So when another process holds a core, a job costs
 * about what one thread needs for it, instead of waiting for the busy core's time slice (a static
 * split of the work waits for the slowest share). Callers make every unit's result independent of
 * which worker runs it, so results never depend on timing. Threads spin briefly between jobs (jobs
 * of one layer call follow each other within microseconds), then park. One job at a time:
 * concurrent callers queue on a lock.
 *
 * <p>Measured on the 2-core development VM (N = 512, d = 1024, r = 64, two workers, an instrumented
 * copy, 2026-12-06): the workers were busy 92–95 % of each chunk job's wall time. The pool thread
 * entered a job within 1 µs of its start in two jobs of three, but 0.1–1 ms late in 8–25 % of
 * them and over 1 ms late in 2–3 %, and then finished its share last. Not fixed by spinning
 * longer before parking (3 ms instead of 0.3: LoRA step 0.995–0.997×, base 0.989–0.990×, medians of
 * per-round ratios in one JVM), nor by spinning without PAUSE (later still). Halving the chunks
 * (Split.MC 32 rows) raised the busy share to 96 % and took the steps 0.98–0.99× at N = 512 but
 * 1.00× at N = 2048, and 16 rows 1.01×: within this machine's noise, so MC stays.
 */
final class WorkerPool implements AutoCloseable {
    /** One unit of a job, run by worker {@code worker}. */
    interface Body {
        void run(int worker, int unit);
    }

    /** One job: its units, the claim counter, the threads inside, and whether the caller closed it. */
    private static final class Job {
        final int units;
        final Body body;
        final AtomicInteger next = new AtomicInteger();
        final AtomicInteger inside = new AtomicInteger();
        volatile boolean closed;

        Job(int units, Body body) {
            this.units = units;
            this.body = body;
        }

        /** Claims and runs units until none is left. */
        void work(int worker) {
            for (int u = next.getAndIncrement(); u < units; u = next.getAndIncrement()) {
                body.run(worker, u);
            }
        }
    }

    private static final int SPINS = 1 << 14;

    private final int size;
    private final Thread[] threads;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile Job job;
    private volatile Thread caller;
    private volatile boolean closed;

    WorkerPool(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("pool size must be >= 1, got " + size);
        }
        this.size = size;
        this.threads = new Thread[size - 1];
        for (int w = 1; w < size; w++) {
            int index = w;
            Thread t = new Thread(() -> loop(index), "rslora-cpu-" + w);
            t.setDaemon(true);
            threads[w - 1] = t;
            t.start();
        }
    }

    /** Workers, the caller included. */
    int size() {
        return size;
    }

    /** One of the pool's own threads (null when the pool is the caller alone). */
    Thread anyWorkerThread() {
        return threads.length == 0 ? null : threads[0];
    }

    /**
     * Runs {@code body} for units [0, units) and returns when all are done. With {@code parallel}
     * false (or one unit) every unit runs on the caller as worker 0, in order.
     */
    void run(int units, Body body, boolean parallel) {
        if (units <= 0) {
            return;
        }
        if (!parallel || threads.length == 0 || units == 1) {
            for (int u = 0; u < units; u++) {
                body.run(0, u);
            }
            return;
        }
        lock.lock();
        try {
            if (closed) {
                throw new IllegalStateException("the cpu backend's worker pool is closed");
            }
            failure.set(null);
            caller = Thread.currentThread();
            Job j = new Job(units, body);
            job = j;
            for (Thread t : threads) {
                LockSupport.unpark(t);
            }
            Throwable mine = null;
            try {
                j.work(0);
            } catch (Throwable t) {
                mine = t;
                j.next.set(j.units);
            }
            j.closed = true;
            int spins = 0;
            while (j.inside.get() != 0) {
                if (spins < SPINS) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 10_000);
                }
            }
            job = null;
            Throwable f = mine != null ? mine : failure.get();
            if (f instanceof RuntimeException e) {
                throw e;
            }
            if (f instanceof Error e) {
                throw e;
            }
            if (f != null) {
                throw new IllegalStateException("cpu backend worker failed", f);
            }
        } finally {
            lock.unlock();
        }
    }

    private void loop(int w) {
        Job seen = null;
        while (true) {
            Job j;
            int spins = 0;
            while ((j = job) == null || j == seen) {
                if (closed) {
                    return;
                }
                if (spins < SPINS) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            seen = j;
            j.inside.incrementAndGet();
            try {
                if (!j.closed) {
                    j.work(w);
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
                // the caller may be claiming units of this job: stop it from taking more
                j.next.set(j.units);
            } finally {
                j.inside.decrementAndGet();
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread t : threads) {
            LockSupport.unpark(t);
        }
    }
}
