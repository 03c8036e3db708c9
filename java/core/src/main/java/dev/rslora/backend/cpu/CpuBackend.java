package dev.rslora.backend.cpu;

import dev.rslora.backend.Backend;
import dev.rslora.backend.BackendChecks;
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
 * with cache-blocked, register-tiled fp32 GEMMs ({@link MicroKernel}, its tile shape chosen from
 * the vector length) on a fixed pool of threads.
 *
 * <ul>
 *   <li>{@link #prepare} packs W [d_out, d_in] into the panel layout of Y = X·Wᵀ, and the first
 *       backward that computes dX into that of dX = dY·W, both fp32 and held off-heap by the returned
 *       weight (4 bytes per element of W each: a layer that never computes dX holds one);
 *       {@link #merge} rewrites W and re-packs.</li>
 *   <li>The adapter's panels (Aᵀ, (γB)ᵀ, B, γA) are kept per layer in its prepared weight and
 *       packed again only when A, B or γ changed ({@link AdapterPanels}: tensors' version stamps).</li>
 *   <li>Forward: Y = X·Wᵀ + b + γ·U·Bᵀ with the LoRA term as a second K-segment of the same
 *       register tile (γ folded into the packed Bᵀ); U = D(X)·Aᵀ is written as F32 without γ.</li>
 *   <li>Backward: V = dY·B and dX = dY·W + γ·D'(V·A) (the V·A tile a second K-segment masked in
 *       the register tile), then dA and dB as GEMMs over all N rows ({@link GradGemm}).</li>
 *   <li>Up to {@link RowGrads#MAX_ROWS} rows (64): the backward, and the forward in training mode
 *       (N ≤ 2 otherwise), read A and B row-major with no cached panels ({@link AdapterRows}), and dA
 *       and dB are outer products written row by row ({@link RowGrads}).</li>
 *   <li>Many rows without dropout (N ≥ 2·d_in for the forward, N ≥ 2·d_out for dX): the pass forms
 *       W' = W + γB·A in its packed layout and drops the LoRA K-segment ({@link MergedWeight}); U and
 *       V are still computed for dA and dB. {@code -Drslora.cpu.mergedWeight=off} keeps the segment
 *       route everywhere.</li>
 *   <li>Small N (decoding): the work is split over columns instead of rows; N = 1 runs a one-row kernel.</li>
 *   <li>Determinism: each output element is one fixed sequence of fp32 operations, whichever worker
 *       computes it: results do not depend on the worker count or on timing.</li>
 *   <li>Dropout bits are regenerated from the key (never an N×d_in float mask).</li>
 * </ul>
 * Tensors must live in shared (or global) arenas for the workers to read them; otherwise the
 * call runs every worker's share on the calling thread, with identical results. Calls on one
 * instance are serialised. {@code -Drslora.cpu.vectorBits=256|128|0} forces a narrower tile
 * shape (0: scalar code). Shapes whose heap scratch would not fit a Java array are refused up front
 * ({@link CpuLimits}): chiefly a backward with n·r near 2^31, whose forward may run.
 */
public final class CpuBackend implements Backend, AutoCloseable {
    private final WorkerPool pool;
    private final Scratch[] scratch;
    private final ReentrantLock lock = new ReentrantLock();
    /** sign·γ·A panels of a merge. */
    private final NativeBuffer mergePanels = new NativeBuffer();
    private final NativeBuffer uScratch = new NativeBuffer();
    private final BackwardPass.Shared shared = new BackwardPass.Shared();
    /** W' of the merged route ({@link MergedWeight}), one pass at a time. */
    private final NativeBuffer mergedW = new NativeBuffer();
    /** The A operand of forming W': Aᵀ (forward) or B (backward), fp32. */
    private float[] mergeRows = new float[0];
    /** Whether passes may take the merged route ({@code -Drslora.cpu.mergedWeight=off}: never). */
    private final boolean mergedRoute = MergedWeight.enabledByProperty();
    /** Whether calls of few rows read A and B as they are ({@code -Drslora.cpu.adapterRows=off}: never). */
    private final boolean rowRoute = AdapterRows.enabledByProperty();
    private volatile boolean closed;

    /** A backend with one worker per available processor. */
    public CpuBackend() {
        this(Runtime.getRuntime().availableProcessors());
    }

    /**
     * A backend with {@code threads} workers (the caller counts as one).
     *
     * @throws IllegalArgumentException when {@code -Drslora.cpu.vectorBits} holds a value other
     *                                  than 512, 256, 128 or 0, or threads &lt; 1
     */
    public CpuBackend(int threads) {
        if (MicroKernel.CONFIG_ERROR != null) {
            throw new IllegalArgumentException(MicroKernel.CONFIG_ERROR);
        }
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
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

    /** The register tile in use, e.g. "512-bit vectors, 8×32 tile" (chosen once per JVM; see {@link MicroKernel}). */
    public static String tileShape() {
        return MicroKernel.describe();
    }

    /** The register tile for a width (512, 256, 128, or 0 for scalar code), in use or not. */
    public static String tileShape(int vectorBits) {
        return MicroKernel.shapeName(vectorBits);
    }

    /**
     * The register tile for a width on a JIT with or without FMA instructions and with
     * {@code vectorRegisters} (32, or 16 on x86 without AVX-512): what another JVM chose.
     */
    public static String tileShape(int vectorBits, boolean fused, int vectorRegisters) {
        return MicroKernel.shapeName(vectorBits, fused, vectorRegisters);
    }

    /** Whether this JVM's tiles fuse their multiply-adds (the JIT has FMA instructions). */
    public static boolean fusedMultiplyAdd() {
        return dev.rslora.simd.Fma.FUSED;
    }

    /** Vector registers this JVM's JIT allocates (32, or 16 on x86 without AVX-512), which size the tiles. */
    public static int vectorRegisters() {
        return MicroKernel.REGISTERS;
    }

    /** Vector bits of the register tile in use: 512, 256, 128, or 0 for scalar code. */
    public static int vectorBits() {
        return MicroKernel.BITS;
    }

    @Override
    public FrozenWeight prepare(Tensor weight, Tensor bias) {
        BackendChecks.prepare(weight, bias);
        CpuLimits.prepare((int) weight.dim(0), (int) weight.dim(1));
        lock.lock();
        try {
            checkOpen();
            CpuFrozenWeight w = new CpuFrozenWeight(weight, bias);
            packWeight(w, true, false, accessible(weight, bias));
            return w;
        } finally {
            lock.unlock();
        }
    }

    /** Rows of W per unit of its direct packing. */
    private static final int W_PACK_ROWS = 64;

    /**
     * Packs the layouts of W asked for: one unit per transposed panel of the forward's, one per
     * W_PACK_ROWS rows of dX's direct one.
     */
    private void packWeight(CpuFrozenWeight w, boolean forward, boolean backward, boolean parallel) {
        long stamp = w.weight().version();  // before reading: a write during the packing shows as stale
        int panels = forward ? Panels.panels(w.dOut) : 0;
        int blocks = backward ? (w.dOut + W_PACK_ROWS - 1) / W_PACK_ROWS : 0;
        MemorySegment direct = backward ? w.backwardPanels() : null;
        pool.run(panels + blocks, (wk, unit) -> {
            Scratch s = scratch[wk];
            if (unit < panels) {
                Panels.packTransposed(w.weight(), 1f, w.forward, unit, unit + 1, s.packRows, s.packStage);
            } else {
                int o0 = (unit - panels) * W_PACK_ROWS;
                Panels.packDirect(w.weight(), 1f, direct, o0, Math.min(w.dOut, o0 + W_PACK_ROWS), s.block(w.dIn));
            }
        }, parallel);
        if (forward) {
            w.forwardPacked(stamp);
        }
        if (backward) {
            w.backwardPacked(stamp);
        }
    }

    /**
     * Packs the layouts a call reads that are missing or older than W's (or the bias's) last write
     * through its tensor: the forward's ({@code forward}), dX's ({@code dx}).
     */
    private void refresh(CpuFrozenWeight w, boolean forward, boolean dx) {
        boolean f = forward && w.forwardStale();
        boolean b = dx && w.backwardStale();
        if (f || b) {
            packWeight(w, f, b, accessible(w.weight(), w.bias()));
        }
    }

    @Override
    public void forward(LoraParams p, FrozenWeight fw, Tensor x, Tensor a, Tensor b, Tensor u, Tensor y) {
        BackendChecks.forward(p, fw, x, a, b, u, y);
        CpuLimits.forward(p, pool.size());
        CpuFrozenWeight w = frozen(fw, p);
        boolean active = p.adapterActive();
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            boolean parallel = accessible(x, y, w.weight(), w.bias(), a, b, u);
            refresh(w, true, false);
            Tensor uOut = u;
            if (active && uOut == null) {
                long bytes = (long) p.n() * p.rank() * 4;
                uOut = Tensor.wrap(uScratch.ensure(bytes).asSlice(0, bytes), DType.F32, p.n(), p.rank());
            }
            AdapterPanels cache = w.adapter;
            MemorySegment aT = null;
            MemorySegment gbT = null;
            boolean packAT = false;
            boolean packGBT = false;
            AdapterPanels.Key aKey = null;
            AdapterPanels.Key bKey = null;
            MemorySegment merged = null;
            if (MergedWeight.use(p, p.dIn(), mergedRoute)) {
                merged = mergedW.ensure(Panels.bytes(p.dOut(), p.dIn()));
                mergeRows = Scratch.grow(mergeRows, (long) Split.padRows(p.dIn()) * p.rank());
            }
            if (active && !AdapterRows.useForward(p, merged != null, rowRoute)) {  // few rows read A and B as they are
                aKey = AdapterPanels.Key.of(a, 1f);
                bKey = AdapterPanels.Key.of(b, (float) p.gamma());
                packAT = cache.aT.needs(aKey, Panels.bytes(p.rank(), p.dIn()));
                packGBT = cache.gbT.needs(bKey, Panels.bytes(p.dOut(), p.rank()));
                aT = cache.aT.segment();
                gbT = cache.gbT.segment();
            }
            try {
                new ForwardPass(p, w, x, y, uOut, active ? a : null, active ? b : null, aT, packAT, gbT, packGBT, merged,
                        mergeRows, scratch).run(pool, parallel);
            } catch (RuntimeException | Error e) {
                cache.invalidateAll();
                throw e;
            }
            if (packAT) {
                cache.aT.packed(aKey);
                cache.packs++;
            }
            if (packGBT) {
                cache.gbT.packed(bKey);
                cache.packs++;
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public void backward(LoraParams p, FrozenWeight fw, Tensor x, Tensor a, Tensor b, Tensor u, Tensor dy,
                         Tensor dx, Tensor gradA, Tensor gradB) {
        BackendChecks.backward(p, fw, x, a, b, u, dy, dx, gradA, gradB, true);
        CpuLimits.backward(p, pool.size(), dx != null);
        CpuFrozenWeight w = frozen(fw, p);
        boolean active = p.adapterActive();
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            boolean parallel = accessible(x, dy, dx, w.weight(), a, b, u, gradA, gradB);
            refresh(w, false, dx != null);
            AdapterPanels cache = w.adapter;
            MemorySegment bP = null;
            MemorySegment gaP = null;
            boolean packBP = false;
            boolean packGAP = false;
            AdapterPanels.Key bKey = null;
            AdapterPanels.Key aKey = null;
            MemorySegment merged = null;
            if (dx != null && MergedWeight.use(p, p.dOut(), mergedRoute)) {
                merged = mergedW.ensure(Panels.bytes(p.dIn(), p.dOut()));
                mergeRows = Scratch.grow(mergeRows, (long) Split.padRows(p.dOut()) * p.rank());
            }
            if (active && !AdapterRows.useBackward(p, merged != null, rowRoute)) {  // few rows read A and B as they are
                bKey = AdapterPanels.Key.of(b, 1f);
                aKey = AdapterPanels.Key.of(a, (float) p.gamma());
                packBP = cache.bP.needs(bKey, Panels.bytes(p.rank(), p.dOut()));
                bP = cache.bP.segment();
                if (dx != null) {
                    packGAP = cache.gaP.needs(aKey, Panels.bytes(p.dIn(), p.rank()));
                    gaP = cache.gaP.segment();
                }
            }
            try {
                new BackwardPass(p, w, active ? x : null, active ? a : null, active ? b : null, active ? u : null, dy, dx,
                        active ? gradA : null, active ? gradB : null, bP, packBP, gaP, packGAP, merged, mergeRows, scratch,
                        shared).run(pool, parallel);
            } catch (RuntimeException | Error e) {
                cache.invalidateAll();
                throw e;
            }
            if (packBP) {
                cache.bP.packed(bKey);
                cache.packs++;
            }
            if (packGAP) {
                cache.gaP.packed(aKey);
                cache.packs++;
            }
        } finally {
            lock.unlock();
        }
    }

    /**
     * {@code W ← round(W + sign·γ·B·A)}: ΔW tiles come from the micro-kernel (B rows times
     * sign·γ·A panels, K = r), are added to W in fp32 and rounded once to W's dtype; then the
     * packings that exist are rebuilt.
     */
    @Override
    public void merge(FrozenWeight fw, Tensor a, Tensor b, double gamma, int sign) {
        mergeOrCheck(fw, a, b, gamma, sign, true);
    }

    /** Computes and checks every element of merge's result, as merge does before writing; writes nothing. */
    @Override
    public void checkMerge(FrozenWeight fw, Tensor a, Tensor b, double gamma, int sign) {
        mergeOrCheck(fw, a, b, gamma, sign, false);
    }

    private void mergeOrCheck(FrozenWeight fw, Tensor a, Tensor b, double gamma, int sign, boolean write) {
        if (!(fw instanceof CpuFrozenWeight w)) {
            throw new IllegalArgumentException("weight was prepared by another backend: "
                    + (fw == null ? "null" : fw.getClass().getName()));
        }
        BackendChecks.merge(w, a, b, gamma, sign);
        CpuLimits.merge(w.dOut, w.dIn, (int) a.dim(0));
        lock.lock();
        try {
            checkOpen();
            w.checkOpen();
            int r = (int) a.dim(0);
            boolean parallel = accessible(a, b, w.weight());
            MemorySegment gaP = mergePanels.ensure(Panels.bytes(w.dIn, r));
            float g = (float) (sign * gamma);
            pool.run((r + MR - 1) / MR, (wk, unit) -> Panels.packDirect(a, g, gaP, unit * MR, Math.min(r, unit * MR + MR),
                    scratch[wk].block(w.dIn)), parallel);
            int blocks = (w.dOut + W_PACK_ROWS - 1) / W_PACK_ROWS;
            // first pass: compute every element and check it, writing nothing; a merged value that would not be
            // finite (past F16's range, say) is refused with W unchanged, as unmerge could not restore it
            long[] firstBad = new long[blocks];
            pool.run(blocks, (wk, unit) -> firstBad[unit] = mergeRows(w, b, r, gaP, null, scratch[wk], unit * W_PACK_ROWS,
                    Math.min(w.dOut, unit * W_PACK_ROWS + W_PACK_ROWS)), parallel);
            for (long bad : firstBad) {
                if (bad >= 0) {
                    throw BackendChecks.mergeNotFinite(w, a, b, gamma, sign, bad / w.dIn, bad % w.dIn);
                }
            }
            if (!write) {
                return;
            }
            Convert.Sink out = Convert.Sink.of(w.weight());
            pool.run(blocks, (wk, unit) -> mergeRows(w, b, r, gaP, out, scratch[wk], unit * W_PACK_ROWS,
                    Math.min(w.dOut, unit * W_PACK_ROWS + W_PACK_ROWS)), parallel);
            packWeight(w, true, w.backward != null, parallel);
        } finally {
            lock.unlock();
        }
    }

    /**
     * W[o] ← round(W[o] + ΔW[o]) for rows o in [from, end), MR rows at a time; with {@code out} null, only checks:
     * writes nothing and returns the flat index of the first element whose merged value would not be finite in W's
     * dtype while W's is ({@link BackendChecks#mergeDestroys}), or −1 (also what a writing pass returns).
     */
    private long mergeRows(CpuFrozenWeight w, Tensor b, int r, MemorySegment gaP, Convert.Sink out, Scratch s, int from,
                           int end) {
        int dIn = w.dIn;
        s.xc = Scratch.grow(s.xc, (long) MR * dIn);
        s.uc = Scratch.grow(s.uc, (long) MR * r);
        float[] tile = s.tile;
        Tensor wt = w.weight();
        for (int o0 = from; o0 < end; o0 += MR) {
            int rows = Math.min(MR, end - o0);
            Convert.load(b, (long) o0 * r, rows * r, s.uc, 0);
            Convert.load(wt, (long) o0 * dIn, rows * dIn, s.xc, 0);
            for (int pk = 0; pk < Panels.panels(dIn); pk++) {
                MicroKernel.mma(s.uc, 0, r, gaP, (long) pk * r * PANEL_ROW_BYTES, r, tile, 0);
                int k0 = pk * NR;
                int kn = Math.min(NR, dIn - k0);
                for (int m = 0; m < rows; m++) {
                    for (int c = 0; c < kn; c++) {
                        s.xc[m * dIn + k0 + c] += tile[m * NR + c];
                    }
                }
            }
            if (out != null) {
                Convert.store(s.xc, 0, rows * dIn, out, (long) o0 * dIn);
                continue;
            }
            DType dt = wt.dtype();
            for (int i = 0; i < rows * dIn; i++) {
                // W's own value is read again only for a non-finite result (rare): s.xc now holds W + ΔW
                if (!Float.isFinite(dt.round(s.xc[i]))
                        && BackendChecks.mergeDestroys(dt, wt.get((long) o0 * dIn + i), s.xc[i])) {
                    return (long) o0 * dIn + i;
                }
            }
        }
        return -1;
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

    /** Whether the pool's threads may read every (non-null) tensor. */
    private boolean accessible(Tensor... tensors) {
        Thread worker = pool.anyWorkerThread();
        if (worker == null) {
            return false;
        }
        for (Tensor t : tensors) {
            if (t != null && !t.readOnlySegment().isAccessibleBy(worker)) {
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

    @Override
    public boolean isClosed() {
        return closed;
    }

    /** Stops the worker threads and frees the packing buffers; the instance is unusable afterwards. */
    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            pool.close();
            mergePanels.close();
            mergedW.close();
            uScratch.close();
            for (Scratch s : scratch) {
                s.close();
            }
        } finally {
            lock.unlock();
        }
    }
}
