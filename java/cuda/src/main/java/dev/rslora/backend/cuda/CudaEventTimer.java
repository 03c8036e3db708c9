package dev.rslora.backend.cuda;

import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.JCudaDriver;

/**
 * Device time between two CUDA events recorded on the backend's stream, the way the PyTorch peer
 * (jmh/peft_peer.py) times its steps: {@link #start()} before the queued work, {@link #stop()} after
 * it, {@link #elapsedMs()} waits for the stop event and returns the device time between them (host
 * launch cost and synchronisation are not in it, unlike a JMH time per synchronised call).
 */
public final class CudaEventTimer implements AutoCloseable {
    private final CudaBackend backend;
    private final CUevent begin = new CUevent();
    private final CUevent end = new CUevent();
    private boolean closed;

    /**
     * Two events on {@code backend}'s context.
     *
     * @param backend the backend whose context and stream the events are recorded on
     */
    public CudaEventTimer(CudaBackend backend) {
        this.backend = backend;
        synchronized (backend) {
            backend.context().makeCurrent();
            JCudaDriver.cuEventCreate(begin, CUevent_flags.CU_EVENT_DEFAULT);
            JCudaDriver.cuEventCreate(end, CUevent_flags.CU_EVENT_DEFAULT);
        }
    }

    /** Records the start event on the backend's stream. */
    public void start() {
        synchronized (backend) {
            backend.context().makeCurrent();
            JCudaDriver.cuEventRecord(begin, backend.context().stream());
        }
    }

    /** Records the stop event on the backend's stream. */
    public void stop() {
        synchronized (backend) {
            backend.context().makeCurrent();
            JCudaDriver.cuEventRecord(end, backend.context().stream());
        }
    }

    /**
     * Milliseconds of device time between the last start and stop (waits for the stop event).
     *
     * @return device time in milliseconds between the events (about 0.5 µs resolution)
     */
    public float elapsedMs() {
        synchronized (backend) {
            backend.context().makeCurrent();
            JCudaDriver.cuEventSynchronize(end);
            float[] ms = new float[1];
            JCudaDriver.cuEventElapsedTime(ms, begin, end);
            return ms[0];
        }
    }

    @Override
    public void close() {
        synchronized (backend) {
            if (!closed) {
                closed = true;
                if (!backend.isClosed()) {
                    backend.context().makeCurrent();
                    JCudaDriver.cuEventDestroy(begin);
                    JCudaDriver.cuEventDestroy(end);
                }
            }
        }
    }
}
