package dev.rslora.backend;

import dev.rslora.tensor.Tensor;

import java.util.concurrent.CountDownLatch;

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
}
