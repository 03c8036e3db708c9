package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A backend whose forward stops inside the call until {@link #release()}: for tests of what another
 * thread's call does while one is inside a layer (the one-thread-at-a-time checks, close). The held
 * forward then runs the inner backend's, or nothing.
 */
public final class HeldForward implements ForwardingBackend {
    private final Backend inner;
    private final boolean compute;
    private final CountDownLatch inside = new CountDownLatch(1);
    private final CountDownLatch release = new CountDownLatch(1);

    /**
     * @param inner   the backend every call goes to
     * @param compute whether the held forward runs the inner one once released (reading A, B, W and writing U)
     */
    public HeldForward(Backend inner, boolean compute) {
        this.inner = inner;
        this.compute = compute;
    }

    @Override
    public Backend inner() {
        return inner;
    }

    @Override
    public void forward(LoraParams p, FrozenWeight w, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        inside.countDown();
        try {
            release.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (compute) {
            inner.forward(p, w, x, a, b, u, y);
        }
    }

    /** Waits until a forward is inside the call. */
    public void awaitInside() throws InterruptedException {
        inside.await();
    }

    /** Lets the held forward go on. */
    public void release() {
        release.countDown();
    }

    /**
     * Runs {@code call} (a layer call that reaches this backend's forward) on a new thread named
     * {@code name}, and returns once that forward is held inside.
     *
     * @return the running call: {@link Held#finish()} releases it and returns what it threw
     */
    public Held hold(String name, Runnable call) throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread t = new Thread(() -> {
            try {
                call.run();
            } catch (Throwable e) {
                failure.set(e);
            }
        }, name);
        t.start();
        awaitInside();
        return new Held(t, failure);
    }

    /** A call held inside {@link #forward} on its own thread. */
    public final class Held {
        private final Thread thread;
        private final AtomicReference<Throwable> failure;

        private Held(Thread thread, AtomicReference<Throwable> failure) {
            this.thread = thread;
            this.failure = failure;
        }

        /** Releases the call, waits for its thread, and returns what the call threw (null if nothing). */
        public Throwable finish() throws InterruptedException {
            release();
            thread.join();
            return failure.get();
        }
    }
}
