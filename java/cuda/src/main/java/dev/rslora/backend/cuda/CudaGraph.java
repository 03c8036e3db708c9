package dev.rslora.backend.cuda;

import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.JCudaDriver;

import java.util.List;

/**
 * One captured and instantiated CUDA graph (e.g. a whole training step of a {@link CudaLoraLayer}).
 * {@link #replay()} relaunches exactly the captured kernels with exactly the captured parameters
 * (same buffers, shapes, γ, dropout seed and step) on the backend's stream. The graph pins the
 * device tensors it was captured with; {@link #close()} unpins them and frees the graph.
 */
public final class CudaGraph implements AutoCloseable {
    private final CudaBackend backend;
    private final CUgraph graph;
    private final CUgraphExec exec;
    private final List<DeviceTensor> pinned;
    private final Runnable onClose;
    private boolean closed;

    CudaGraph(CudaBackend backend, CUgraph graph, CUgraphExec exec, List<DeviceTensor> pinned, Runnable onClose) {
        this.backend = backend;
        this.graph = graph;
        this.exec = exec;
        this.pinned = pinned;
        this.onClose = onClose;
        pinned.forEach(DeviceTensor::pin);
        backend.register(this);
    }

    /** Queues one replay on the backend's stream (asynchronous; copies out wait for it). */
    public void replay() {
        synchronized (backend) {
            if (closed) {
                throw new IllegalStateException("CUDA graph is closed");
            }
            backend.context().makeCurrent();
            JCudaDriver.cuGraphLaunch(exec, backend.context().stream());
        }
    }

    /** Waits until every replay queued so far has finished. */
    public void synchronize() {
        synchronized (backend) {
            backend.context().makeCurrent();
            backend.context().synchronize();
        }
    }

    /** Frees the graph and unpins its tensors; after the backend is closed, a no-op (the backend freed it). */
    @Override
    public void close() {
        synchronized (backend) {
            if (closed) {
                return;
            }
            backend.context().makeCurrent();
            destroy();
        }
    }

    /**
     * Frees the graph on the device and unpins its tensors, with the backend's lock held and its
     * context current: from {@link #close()}, or from {@link CudaBackend#close()} for a graph still
     * open then (its context goes away with the backend, and the layer and tensors must stay closable).
     */
    void destroy() {
        closed = true;
        backend.unregister(this);
        try {
            try {
                backend.context().synchronize();
            } finally {
                // destroyed even when the synchronize reports a (sticky) device error: the graph would leak
                try {
                    JCudaDriver.cuGraphExecDestroy(exec);
                } finally {
                    JCudaDriver.cuGraphDestroy(graph);
                }
            }
        } finally {
            pinned.forEach(DeviceTensor::unpin);
            onClose.run();
        }
    }
}
