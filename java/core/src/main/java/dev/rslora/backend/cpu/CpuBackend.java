package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.locks.ReentrantLock;

import static dev.rslora.backend.cpu.MicroKernel.MR;
import static dev.rslora.backend.cpu.MicroKernel.NR;
import static dev.rslora.backend.cpu.MicroKernel.PANEL_ROW_BYTES;

/**
 * The Vector API backend: the semantics of the reference backend (SPEC.md §2–3, §6), computed
 * with cache-blocked, register-tiled fp32 GEMMs ({@link MicroKernel}) on a fixed pool of threads.
 *
 * <ul>
 *   <li>{@link #prepare} packs W [d_out, d_in] once into two panel layouts (Y = X·Wᵀ and
 *       dX = dY·W) held off-heap by the returned weight; {@link #merge} rewrites W and re-packs.</li>
 *   <li>Forward: Y = X·Wᵀ + b + γ·U·Bᵀ with the LoRA term as a second K-segment of the same
 *       register tile (γ folded into the packed Bᵀ); U = D(X)·Aᵀ is written as F32 without γ.</li>
 *   <li>Backward: V = dY·B, dBᵀ and dA partials from one read of each dY/X chunk, dX = dY·W +
 *       γ·D'(V·A) with the V·A tile as a second K-segment masked in the register tile.</li>
 *   <li>Determinism: rows are split statically over workers, partial sums of dA/dB are reduced in
 *       worker order; results depend on the worker count (fixed per instance), never on timing.</li>
 *   <li>Dropout bits are regenerated per chunk of rows (never an N×d_in mask).</li>
 * </ul>
 * Tensors must live in shared (or global) arenas for the workers to read them; otherwise the
 * call runs every worker's share on the calling thread, with identical results. Calls on one
 * instance are serialised. {@code -Drslora.cpu.scalar=true} forces scalar kernels.
 */
public final class CpuBackend implements Backend, AutoCloseable {
    private final WorkerPool pool;
    private final Scratch[] scratch;
    private final ReentrantLock lock = new ReentrantLock();
    /** Panels of A: Aᵀ (forward), γA (backward, merge). */
    private final NativeBuffer packA = new NativeBuffer();
    /** Panels of B: (γB)ᵀ (forward), B (backward). */
    private final NativeBuffer packB = new NativeBuffer();
    private final NativeBuffer uScratch = new NativeBuffer();
    private float[] vAll = new float[0];
    private boolean closed;

    /** A backend with one worker per available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /** A backend with {@code threads} workers (the caller counts as one). */
    public CpuBackend(int threads) {
        this.pool = new WorkerPool(threads);
        this.scratch = new Scratch[threads];
        for (int w = 0; w < threads; w++) {
            scratch[w] = new Scratch();
        }
    }

    @Override
    public String name() {
        return "cpu";
    }

    /** Workers used per call, the caller included. */
    public int threads() {
        return pool.size();
    }

    @Override
    public FrozenWeight prepare(Tensor weight, Tensor bias) {
        if (weight == null || weight.rank() != 2 || weight.dim(0) < 1 || weight.dim(1) < 1) {
            throw new IllegalArgumentException("weight must be 2-D [d_out, d_in] with dims >= 1, got "
                    + (weight == null ? "null" : weight.shapeString()));
        }
        if (bias != null && !(bias.rank() == 1 && bias.dim(0) == weight.dim(0))) {
            throw new IllegalArgumentException("bias shape " + bias.shapeString() + " does not match weight "
                    + weight.shapeString() + ": expected [" + weight.dim(0) + "]");
        }
        lock.lock();
        try {
            checkOpen();
            CpuFrozenWeight w = new CpuFrozenWeight(weight, bias);
            pool.run(wk -> packWeight(w, wk), accessible(weight, bias));
            return w;
        } finally {
            lock.unlock();
        }
    }

    /** Worker wk's share of both packings of W. */
    private void packWeight(CpuFrozenWeight w, int wk) {
        Scratch s = scratch[wk];
        int workers = scratch.length;
        int panels = Panels.panels(w.dOut);
        Panels.packTransposed(w.weight(), 1f, w.forward, Split.part(panels, workers, wk),
                Split.part(panels, workers, wk + 1), s.gather, s.gatherIndex);
        Panels.packDirect(w.weight(), 1f, w.backward, Split.part(w.dOut, workers, wk),
                Split.part(w.dOut, workers, wk + 1), s.block(w.dIn));
    }

    @Override
    public void forward(LoraParams p, FrozenWeight fw, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        CpuFrozenWeight w = frozen(fw, p);
        check("x", x, p.n(), p.dIn());
        check("y", y, p.n(), p.dOut());
        boolean active = p.adapterActive();
        if (active) {
            check("a", a, p.rank(), p.dIn());
            check("b", b, p.dOut(), p.rank());
            if (u != null) {
                checkU(u, p);
            }
        }
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            boolean parallel = accessible(x, y, w.weight(), w.bias(), a, b, u);
            Tensor uOut = u;
            if (active && uOut == null) {
                long bytes = (long) p.n() * p.rank() * 4;
                uOut = Tensor.wrap(uScratch.ensure(bytes).asSlice(0, bytes), DType.F32, p.n(), p.rank());
            }
            MemorySegment aT = active ? packA.ensure(Panels.bytes(p.rank(), p.dIn())) : null;
            MemorySegment gbT = active ? packB.ensure(Panels.bytes(p.dOut(), p.rank())) : null;
            new ForwardPass(p, w, x, y, uOut, active ? a : null, active ? b : null, aT, gbT, scratch).run(pool, parallel);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void backward(LoraParams p, FrozenWeight fw, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                         Tensor dx, Tensor gradA, Tensor gradB) {
        CpuFrozenWeight w = frozen(fw, p);
        check("dy", dy, p.n(), p.dOut());
        if (dx != null) {
            check("dx", dx, p.n(), p.dIn());
        }
        boolean active = p.adapterActive();
        if (active) {
            check("x", x, p.n(), p.dIn());
            check("a", a, p.rank(), p.dIn());
            check("b", b, p.dOut(), p.rank());
            if (u == null) {
                throw new IllegalArgumentException("u (the U = D(X)·Aᵀ saved by forward) is required by backward, "
                        + "expected F32 [" + p.n() + ", " + p.rank() + "]");
            }
            checkU(u, p);
            check("gradA", gradA, p.rank(), p.dIn());
            check("gradB", gradB, p.dOut(), p.rank());
        }
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            boolean parallel = accessible(x, dy, dx, w.weight(), a, b, u, gradA, gradB);
            float[] v = null;
            if (active && BackwardPass.needsSharedV(p.n(), scratch.length)) {
                vAll = Scratch.grow(vAll, (long) Split.padRows(p.n()) * p.rank());
                v = vAll;
            }
            MemorySegment bP = active ? packB.ensure(Panels.bytes(p.rank(), p.dOut())) : null;
            MemorySegment gaP = active ? packA.ensure(Panels.bytes(p.dIn(), p.rank())) : null;
            new BackwardPass(p, w, active ? x : null, active ? a : null, active ? b : null, active ? u : null, dy, dx,
                    active ? gradA : null, active ? gradB : null, bP, gaP, scratch, v).run(pool, parallel);
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@code W ← round(W + sign·γ·B·A)}: ΔW tiles come from the micro-kernel (B rows times
     * sign·γ·A panels, K = r), are added to W in fp32 and rounded once to W's dtype; then both
     * packings are rebuilt.
     */
    @Override
    public void merge(FrozenWeight fw, Tensor a, Tensor b, double gamma, int sign) {
        if (!(fw instanceof CpuFrozenWeight w)) {
            throw new IllegalArgumentException("weight was prepared by another backend: "
                    + (fw == null ? "null" : fw.getClass().getName()));
        }
        if (sign != 1 && sign != -1) {
            throw new IllegalArgumentException("sign must be +1 (merge) or -1 (unmerge), got " + sign);
        }
        if (a == null || a.rank() != 2 || a.dim(1) != w.dIn || a.dim(0) < 1) {
            throw new IllegalArgumentException("a must be [r, " + w.dIn + "], got " + (a == null ? "null" : a.shapeString()));
        }
        check("b", b, w.dOut, (int) a.dim(0));
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            int r = (int) a.dim(0);
            boolean parallel = accessible(a, b, w.weight());
            MemorySegment gaP = packA.ensure(Panels.bytes(w.dIn, r));
            float g = (float) (sign * gamma);
            pool.run(wk -> {
                Scratch s = scratch[wk];
                Panels.packDirect(a, g, gaP, Split.part(r, scratch.length, wk), Split.part(r, scratch.length, wk + 1),
                        s.block(w.dIn));
            }, parallel);
            pool.run(wk -> mergeRows(w, b, r, gaP, wk), parallel);
            pool.run(wk -> packWeight(w, wk), parallel);
        } finally {
            lock.unlock();
        }
    }

    /** Worker wk: W[o] ← round(W[o] + ΔW[o]) for its rows o, MR rows at a time. */
    private void mergeRows(CpuFrozenWeight w, Tensor b, int r, MemorySegment gaP, int wk) {
        Scratch s = scratch[wk];
        int workers = scratch.length;
        int dIn = w.dIn;
        s.xc = Scratch.grow(s.xc, (long) MR * dIn);
        s.uc = Scratch.grow(s.uc, (long) MR * r);
        float[] tile = s.tile;
        Tensor wt = w.weight();
        int end = Split.rowStart(w.dOut, workers, wk + 1);
        for (int o0 = Split.rowStart(w.dOut, workers, wk); o0 < end; o0 += MR) {
            int rows = Math.min(MR, end - o0);
            Convert.load(b, (long) o0 * r, rows * r, s.uc, 0);
            Convert.load(wt, (long) o0 * dIn, rows * dIn, s.xc, 0);
            for (int pk = 0; pk < Panels.panels(dIn); pk++) {
                MicroKernel.mma(s.uc, 0, r, gaP, (long) pk * r * PANEL_ROW_BYTES, r, tile, 0, false);
                int k0 = pk * NR;
                int kn = Math.min(NR, dIn - k0);
                for (int m = 0; m < rows; m++) {
                    for (int c = 0; c < kn; c++) {
                        s.xc[m * dIn + k0 + c] += tile[m * NR + c];
                    }
                }
            }
            Convert.store(s.xc, 0, rows * dIn, wt, (long) o0 * dIn);
        }
    }

    private static CpuFrozenWeight frozen(FrozenWeight fw, LoraParams p) {
        if (!(fw instanceof CpuFrozenWeight w)) {
            throw new IllegalArgumentException("weight was prepared by another backend: "
                    + (fw == null ? "null" : fw.getClass().getName()) + "; use CpuBackend.prepare");
        }
        if (w.dIn != p.dIn() || w.dOut != p.dOut()) {
            throw new IllegalArgumentException("prepared weight is [" + w.dOut + ", " + w.dIn + "] but params say d_out="
                    + p.dOut() + ", d_in=" + p.dIn());
        }
        return w;
    }

    private static void check(String name, Tensor t, long rows, long cols) {
        if (t == null || !t.sameShape(rows, cols)) {
            throw new IllegalArgumentException(name + " shape " + (t == null ? "null" : t.shapeString())
                    + " must be [" + rows + ", " + cols + "]");
        }
    }

    private static void checkU(Tensor u, LoraParams p) {
        check("u", u, p.n(), p.rank());
        if (u.dtype() != DType.F32) {
            throw new IllegalArgumentException("u must be F32 [" + p.n() + ", " + p.rank() + "], got " + u.dtype());
        }
    }

    /** Whether the pool's threads may read every (non-null) tensor. */
    private boolean accessible(Tensor... tensors) {
        Thread worker = pool.anyWorkerThread();
        if (worker == null) {
            return false;
        }
        for (Tensor t : tensors) {
            if (t != null && !t.segment().isAccessibleBy(worker)) {
                return false;
            }
        }
        return true;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("this cpu backend is closed");
        }
    }

    /** Stops the worker threads and frees the packing buffers; the instance is unusable afterwards. */
    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            pool.close();
            packA.close();
            packB.close();
            uScratch.close();
            for (Scratch s : scratch) {
                s.close();
            }
        } finally {
            lock.unlock();
        }
    }
}
