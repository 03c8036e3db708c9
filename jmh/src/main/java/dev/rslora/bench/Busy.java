package dev.rslora.bench;

/**
 * A competing load for "busy core" measurements: {@code threads} daemon threads that keep a core
 * each busy with floating-point work (another process's training loop, say) until {@link #close()}.
 */
final class Busy implements AutoCloseable {
    private final Thread[] threads;
    private volatile boolean stop;
    /** Published so the JIT cannot drop the work. */
    volatile double sink;

    Busy(int threads) {
        this.threads = new Thread[threads];
        for (int i = 0; i < threads; i++) {
            Thread t = new Thread(this::spin, "busy-core-" + i);
            t.setDaemon(true);
            this.threads[i] = t;
            t.start();
        }
    }

    private void spin() {
        double a = 1.0;
        double b = 1e-9;
        while (!stop) {
            for (int i = 0; i < 1 << 16; i++) {
                a = a * 0.999999 + b;
            }
            sink = a;
        }
    }

    @Override
    public void close() {
        stop = true;
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
