package dev.rslora.backend.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A fixed pool of {@code size - 1} daemon threads plus the calling thread, created once. A job is
 * run as {@code job.run(w)} for every worker index w in [0, size): w = 0 on the caller. Work is
 * split statically by w inside the job, so which thread computes what never depends on timing.
 * Workers spin briefly between jobs (jobs of one layer call follow each other within
 * microseconds), then park. One job at a time: concurrent callers queue on a lock.
 */
final class WorkerPool implements AutoCloseable {
    /** The share of worker {@code w}. */
    interface Job {
        void run(int worker);
    }

    private static final int SPINS = 1 << 14;

    private final int size;
    private final Thread[] threads;
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicInteger pending = new AtomicInteger();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private volatile Job job;
    private volatile long generation;
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
     * Runs {@code job.run(w)} for w in [0, size) and returns when all are done. With
     * {@code parallel} false every share runs on the caller, in order of w (the same results).
     */
    void run(Job job, boolean parallel) {
        if (!parallel || threads.length == 0) {
            for (int w = 0; w < size; w++) {
                job.run(w);
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
            pending.set(threads.length);
            this.job = job;
            generation = generation + 1;
            for (Thread t : threads) {
                LockSupport.unpark(t);
            }
            Throwable mine = null;
            try {
                job.run(0);
            } catch (Throwable t) {
                mine = t;
            }
            int spins = 0;
            while (pending.get() != 0) {
                if (spins < SPINS) {
                    spins++;
                    Thread.onSpinWait();
                } else {
                    LockSupport.park(this);
                }
            }
            this.job = null;
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
        long seen = 0;
        while (true) {
            long g;
            int spins = 0;
            while ((g = generation) == seen) {
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
            seen = g;
            try {
                job.run(w);
            } catch (Throwable t) {
                failure.compareAndSet(null, t);
            }
            if (pending.decrementAndGet() == 0) {
                LockSupport.unpark(caller);
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
