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

    @Override
    public void close() {
        synchronized (backend) {
            if (closed) {
                return;
            }
            closed = true;
            backend.context().makeCurrent();
            backend.context().synchronize();
            JCudaDriver.cuGraphExecDestroy(exec);
            JCudaDriver.cuGraphDestroy(graph);
            pinned.forEach(DeviceTensor::unpin);
            onClose.run();
        }
    }
}
