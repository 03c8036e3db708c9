package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The device bookkeeping {@link CudaAdamW} and {@link CudaAdafactor} share: every buffer the optimizer
 * allocates (its state, f32 masters, tensor table and work buffers), freed together by {@link #close()}
 * or by {@link #freeAll()} when the constructor fails; heap downloads of f32 state for snapshots; and the
 * closed / backend-closed check before each use. The optimizer keeps its update launches and state layout.
 *
 * <p>It also pins the caller's parameter and gradient tensors ({@link #pin}) while the optimizer is open:
 * its tensor table holds their device addresses, so a tensor closed under it would give its block back
 * to the caching allocator, and the next step would write into whatever was allocated there. The
 * backend closes open optimizers when it closes (as it destroys open graphs), so the tensors stay closable.
 */
final class OptimizerBuffers implements AutoCloseable {
    private final CudaBackend backend;
    private final String what;
    private final List<DeviceBuffer> owned = new ArrayList<>();
    private List<DeviceTensor> pinned = List.of();
    private boolean closed;

    /**
     * Buffers of an optimizer on {@code backend}; none yet.
     *
     * @param backend the backend whose context holds the buffers (its monitor guards every use)
     * @param what    the optimizer in the closed message, e.g. "CUDA AdamW"
     */
    OptimizerBuffers(CudaBackend backend, String what) {
        this.backend = backend;
        this.what = what;
    }

    /**
     * Checks a parameter of a device optimizer: a non-blank name, value and grad present, of the
     * same shape and not the same device memory (the check of {@link CudaAdamW.Param} and
     * {@link CudaAdafactor.Param}, as the CPU {@code dev.rslora.train.Parameter}'s).
     */
    static void checkParam(String name, DeviceTensor value, DeviceTensor grad) {
        if (name == null || name.isBlank()) {
            throw new IllegalArgumentException("parameter name must not be blank, got '" + name + "'");
        }
        Objects.requireNonNull(value, "value of " + name);
        Objects.requireNonNull(grad, "grad of " + name);
        if (!java.util.Arrays.equals(value.shape(), grad.shape())) {
            throw new IllegalArgumentException("parameter " + name + ": grad shape " + grad.shapeString()
                    + " differs from value shape " + value.shapeString());
        }
        if (value.buffer() == grad.buffer()) {
            throw new IllegalArgumentException("parameter " + name + ": grad shares memory with value (an optimizer step "
                    + "would update the gradient it reads); pass a separate gradient tensor");
        }
    }

    /**
     * Refuses a null or empty parameter list and a null element, naming it, as the CPU
     * {@code OptimizerParams} does (before, a NullPointerException from inside the constructor).
     *
     * @param optimizer the optimizer in the message, e.g. "AdamW"
     */
    static void checkList(String optimizer, List<?> params) {
        if (params == null || params.isEmpty()) {
            throw new IllegalArgumentException(optimizer + " needs at least one parameter, got " + (params == null ? "null" : "none"));
        }
        for (int i = 0; i < params.size(); i++) {
            if (params.get(i) == null) {
                throw new IllegalArgumentException(optimizer + ": parameter " + i + " of the list is null");
            }
        }
    }

    /**
     * Refuses one device tensor used by two parameters (the same value twice would be updated twice
     * per step, a value that is another's gradient would change that gradient mid-step, a shared
     * gradient would be clipped twice), as the CPU {@code OptimizerParams} does; before any device
     * work. A device tensor owns its buffer, so two tensors share memory only when they share it.
     */
    static void checkDisjoint(List<String> names, List<DeviceTensor> values, List<DeviceTensor> grads) {
        java.util.Map<DeviceBuffer, Integer> seen = new java.util.IdentityHashMap<>();
        for (int i = 0; i < 2 * names.size(); i++) {
            DeviceTensor t = i % 2 == 0 ? values.get(i / 2) : grads.get(i / 2);
            Integer earlier = seen.putIfAbsent(t.buffer(), i);
            if (earlier != null) {
                throw new IllegalArgumentException("parameter '" + names.get(i / 2) + "': its " + role(i)
                        + " shares memory with the " + role(earlier) + " of parameter '" + names.get(earlier / 2)
                        + "'; each parameter needs its own value and gradient tensors");
            }
        }
    }

    /** "value" or "grad": what entry i of {@link #checkDisjoint}'s order (value 0, grad 0, value 1, ...) is. */
    private static String role(int i) {
        return i % 2 == 0 ? "value" : "grad";
    }

    /** {@code bytes} of device memory (contents undefined), owned from now on. */
    DeviceBuffer allocate(long bytes) {
        return own(backend.context().allocate(bytes));
    }

    /** {@code bytes} of zeroed device memory (f32 state starts at 0), owned from now on. */
    DeviceBuffer zeroed(long bytes) {
        DeviceBuffer b = allocate(bytes);
        JCudaDriverCopies.zero(backend.context(), b);
        return b;
    }

    /** A device copy of {@code bytes} (a tensor table or work list), owned from now on. */
    DeviceBuffer upload(byte[] bytes) {
        DeviceBuffer b = allocate(bytes.length);
        backend.context().upload(MemorySegment.ofArray(bytes), b);
        return b;
    }

    /**
     * The f32 master copy of parameter {@code value} ({@code count} elements), owned from now on, or null
     * when {@code masterWeights} is off or the parameter is F32 already.
     */
    DeviceBuffer master(DeviceTensor value, long count, boolean masterWeights) {
        if (!masterWeights || value.dtype() == DType.F32) {
            return null;
        }
        return own(backend.transfers().convert(value.buffer(), value.dtype(), DType.F32, count));
    }

    /**
     * Queues, for every parameter i with a master ({@code masters.get(i)} not null), master_i = its
     * value widened exactly to f32: one conversion launch each, on the stream, after the work queued
     * so far (the CPU {@code OptimizerParams.reloadMasterWeights}).
     *
     * @param kernels the conversion kernels (the backend's)
     * @param values  the parameters, in the optimizer's order
     * @param masters each parameter's f32 master, or null where it has none (F32, or master weights off)
     */
    static void reloadMasters(LoraKernels kernels, List<DeviceTensor> values, List<DeviceBuffer> masters) {
        for (int i = 0; i < values.size(); i++) {
            DeviceBuffer master = masters.get(i);
            if (master != null) {
                DeviceTensor v = values.get(i);
                kernels.convert(v.dtype(), DType.F32, v.buffer(), master, v.numel());
            }
        }
    }

    private DeviceBuffer own(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    /** Device address of {@code b}, 0 for none (the kernels' "absent"). */
    static long address(DeviceBuffer b) {
        return b == null ? 0 : b.address();
    }

    /**
     * Pins the optimizer's parameter and gradient tensors until {@link #close()} (or {@link #freeAll()}
     * when the constructor fails), and registers this optimizer with the backend, whose close closes it.
     * Called by the constructor, under the backend's monitor, before it reads the tensors' addresses.
     */
    void pin(List<DeviceTensor> tensors) {
        List<DeviceTensor> p = List.copyOf(tensors);
        p.forEach(DeviceTensor::pin);
        pinned = p;
        backend.register(this);
    }

    /**
     * Frees every buffer allocated so far and releases the pins (a constructor that fails after
     * allocating calls this).
     */
    void freeAll() {
        Release release = new Release();
        for (DeviceBuffer b : owned) {
            release.run(b::close);
        }
        release.run(this::unpinAll);
        release.rethrow();
    }

    private void unpinAll() {
        List<DeviceTensor> p = pinned;
        pinned = List.of();
        p.forEach(DeviceTensor::unpin);
        backend.unregister(this);
    }

    /**
     * Before each use, under the backend's monitor: refuses a closed optimizer or backend and makes
     * the backend's context current.
     */
    void enter() {
        if (closed) {
            throw new IllegalStateException(what + " is closed");
        }
        if (backend.isClosed()) {
            throw new IllegalStateException("cuda backend is closed");
        }
        backend.context().makeCurrent();
    }

    /** A heap copy of {@code n} f32 values of {@code b} (waits for queued work), or null when b is null. */
    float[] download(DeviceBuffer b, long n) {
        if (b == null) {
            return null;
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("tensor of " + n + " elements too large for a heap snapshot");
        }
        float[] a = new float[(int) n];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(4 * n, 4);
            backend.context().download(b, seg);
            MemorySegment.copy(seg, DType.LE_FLOAT, 0, a, 0, a.length);
        }
        return a;
    }

    /**
     * Frees every owned buffer once (not the caller's parameters or gradients) and unpins them; also
     * from {@link CudaBackend#close()} for an optimizer still open then. The pins are released even
     * when a free fails.
     */
    @Override
    public void close() {
        synchronized (backend) {
            if (closed) {
                return;
            }
            closed = true;
            Release release = new Release();
            if (!backend.isClosed()) {
                release.run(() -> backend.context().makeCurrent());
            }
            release.run(this::freeAll);
            release.rethrow();
        }
    }
}
