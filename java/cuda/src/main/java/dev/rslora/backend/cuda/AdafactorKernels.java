package dev.rslora.backend.cuda;

import dev.rslora.optim.AdafactorSpec;
import dev.rslora.tensor.DType;

import java.util.ArrayList;
import java.util.List;

/**
 * Packing and launches of the fused Adafactor kernels of {@code cuda/kernels/adafactor.cuh}: the
 * device-side tensor table ({@code RsAdafactorTensor[]}), the two work lists ({@code RsAdafactorWork[]}:
 * the stats pass's row segments, column chunks and p² segments, and the update pass's segments), the
 * per-step params ({@code RsAdafactorParams}) with the step's scalars from {@link AdafactorSpec#step},
 * and the five launches of a step. Pure packing plus calls to a {@link KernelLauncher}, so everything
 * here is tested without a device.
 */
final class AdafactorKernels {
    static final String STATS = "rslora_adafactor_stats_v1";
    static final String FACTORS = "rslora_adafactor_factors_v1";
    static final String UPDATE = "rslora_adafactor_update_v1";
    static final String CLIP = "rslora_adafactor_clip_v1";
    static final String APPLY = "rslora_adafactor_apply_v1";

    /** The exported kernels of this family, in launch order. */
    static final List<String> KERNELS = List.of(STATS, FACTORS, UPDATE, CLIP, APPLY);

    /** Work item kinds (adafactor.cuh). */
    static final int ROW_SEGMENT = 0;
    static final int COLUMN_CHUNK = 1;
    static final int P_SEGMENT = 2;
    static final int UPDATE_SEGMENT = 3;

    /** Most blocks of the two item passes (each block takes 8 items per round). */
    static final int MAX_ITEM_BLOCKS = 4096;

    /**
     * The shape of one parameter as the kernels see it: factored [rows, cols] (rank 2) or unfactored
     * [count] (rank 0/1: rows = 1, cols = 0), with the sizes of its reduction workspaces.
     */
    record Layout(int rows, int cols, long count) {
        Layout {
            if (count < 1 || rows < 1 || cols < 0 || (cols > 0 && (long) rows * cols != count) || (cols == 0 && rows != 1)) {
                throw new IllegalArgumentException("Adafactor layout rows=" + rows + " cols=" + cols + " count=" + count);
            }
            if (AdafactorSpec.segments(count) > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("Adafactor tensor of " + count + " elements is too large");
            }
        }

        /** The layout of a parameter of {@code shape} (rank ≤ 2; rank ≥ 3 is refused). */
        static Layout of(long[] shape) {
            if (shape.length > 2) {
                throw new IllegalArgumentException("the fused CUDA Adafactor takes parameters of rank <= 2, got "
                        + java.util.Arrays.toString(shape) + " (the CPU Adafactor factors higher ranks)");
            }
            long count = 1;
            for (long d : shape) {
                count = Math.multiplyExact(count, d);
            }
            if (shape.length == 2) {
                if (shape[0] > Integer.MAX_VALUE || shape[1] > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("Adafactor parameter " + java.util.Arrays.toString(shape)
                            + " has a dimension above " + Integer.MAX_VALUE);
                }
                return new Layout((int) shape[0], (int) shape[1], count);
            }
            return new Layout(1, 0, count);
        }

        boolean factored() {
            return cols > 0;
        }

        int segments() {
            return (int) AdafactorSpec.segments(count);
        }

        /** Row segments of a row sum: ceil(cols / 2048) (factored), else 0. */
        int rowSegments() {
            return factored() ? (int) AdafactorSpec.segments(cols) : 0;
        }

        /** Row chunks of a column sum: ceil(rows / 64) (factored), else 0. */
        int columnChunks() {
            return factored() ? (int) AdafactorSpec.colChunks(rows) : 0;
        }

        /** Bytes of the reduction workspace: row_part, col_part, p_part, u_part (f64), rfac, cfac, scalars (f32). */
        long workspaceBytes() {
            return 8L * ((long) rows * rowSegments() + (long) columnChunks() * cols + 2L * segments())
                    + 4L * (factored() ? rows + cols : 0) + 16;
        }
    }

    /**
     * One tensor of the table: device addresses (0 = none) and layout. {@code workspace} holds, in
     * this order, row_part, col_part, p_part, u_part (f64) then rfac, cfac and 4 scalars (f32).
     */
    record Entry(long param, DType paramType, long grad, DType gradType, long master, long row, long col, long v, long expAvg,
                 long workspace, Layout layout) {
        Entry {
            if (param == 0 || grad == 0 || workspace == 0) {
                throw new IllegalArgumentException("Adafactor tensor with a null param, grad or workspace address");
            }
            if (layout.factored() ? row == 0 || col == 0 || v != 0 : v == 0 || row != 0 || col != 0) {
                throw new IllegalArgumentException("Adafactor tensor " + layout + ": factored tensors need row/col state and "
                        + "no v, unfactored ones v only");
            }
        }

        long rowPart() {
            return layout.factored() ? workspace : 0;
        }

        long colPart() {
            return layout.factored() ? workspace + 8L * layout.rows() * layout.rowSegments() : 0;
        }

        long pPart() {
            return workspace + 8L * ((long) layout.rows() * layout.rowSegments() + (long) layout.columnChunks() * layout.cols());
        }

        long uPart() {
            return pPart() + 8L * layout.segments();
        }

        long rfac() {
            return layout.factored() ? uPart() + 8L * layout.segments() : 0;
        }

        long cfac() {
            return layout.factored() ? rfac() + 4L * layout.rows() : 0;
        }

        long scalars() {
            return uPart() + 8L * layout.segments() + 4L * (layout.factored() ? layout.rows() + layout.cols() : 0);
        }
    }

    /** Σ count. */
    static long total(List<Entry> entries) {
        long n = 0;
        for (Entry e : entries) {
            n = Math.addExact(n, e.layout().count());
        }
        return n;
    }

    /** The table bytes: one RsAdafactorTensor per entry, offsets the running sum of the counts. */
    static byte[] table(List<Entry> entries) {
        if (entries.isEmpty()) {
            throw new IllegalArgumentException("Adafactor needs at least one tensor");
        }
        int size = KernelParams.ADAFACTOR_TENSOR.size();
        if (entries.size() > Integer.MAX_VALUE / size) {
            throw new IllegalArgumentException("too many Adafactor tensors: " + entries.size());
        }
        byte[] out = new byte[entries.size() * size];
        long offset = 0;
        for (int k = 0; k < entries.size(); k++) {
            Entry e = entries.get(k);
            Layout l = e.layout();
            byte[] one = KernelParams.ADAFACTOR_TENSOR.packer()
                    .ptr("param", e.param()).ptr("grad", e.grad()).ptr("master", e.master()).ptr("row", e.row())
                    .ptr("col", e.col()).ptr("v", e.v()).ptr("exp_avg", e.expAvg()).ptr("row_part", e.rowPart())
                    .ptr("col_part", e.colPart()).ptr("p_part", e.pPart()).ptr("u_part", e.uPart()).ptr("rfac", e.rfac())
                    .ptr("cfac", e.cfac()).ptr("scalars", e.scalars()).i64("count", l.count()).i64("offset", offset)
                    .i32("rows", l.rows()).i32("cols", l.cols()).i32("row_segs", l.rowSegments())
                    .i32("col_chunks", l.columnChunks()).i32("segs", l.segments())
                    .i32("param_dtype", AdamWKernels.code(e.paramType())).i32("grad_dtype", AdamWKernels.code(e.gradType()))
                    .i32("factored", l.factored() ? 1 : 0)
                    .bytes();
            System.arraycopy(one, 0, out, k * size, size);
            offset = Math.addExact(offset, l.count());
        }
        return out;
    }

    /**
     * The stats pass's items, {kind, tensor, a, b} each: per factored tensor its row segments (row, segment)
     * and column chunks (chunk, first of 32 columns); per tensor its p² segments (segment, 0).
     */
    static List<int[]> statsWork(List<Layout> layouts) {
        List<int[]> w = new ArrayList<>();
        for (int k = 0; k < layouts.size(); k++) {
            Layout l = layouts.get(k);
            if (l.factored()) {
                for (int i = 0; i < l.rows(); i++) {
                    for (int s = 0; s < l.rowSegments(); s++) {
                        w.add(new int[] {ROW_SEGMENT, k, i, s});
                    }
                }
                for (int c = 0; c < l.columnChunks(); c++) {
                    for (int j0 = 0; j0 < l.cols(); j0 += 32) {
                        w.add(new int[] {COLUMN_CHUNK, k, c, j0});
                    }
                }
            }
            for (int s = 0; s < l.segments(); s++) {
                w.add(new int[] {P_SEGMENT, k, s, 0});
            }
        }
        checkItems(w.size());
        return w;
    }

    /** The update pass's items: one {3, tensor, segment, 0} per segment of every tensor. */
    static List<int[]> updateWork(List<Layout> layouts) {
        List<int[]> w = new ArrayList<>();
        for (int k = 0; k < layouts.size(); k++) {
            for (int s = 0; s < layouts.get(k).segments(); s++) {
                w.add(new int[] {UPDATE_SEGMENT, k, s, 0});
            }
        }
        checkItems(w.size());
        return w;
    }

    private static void checkItems(long n) {
        if (n > Integer.MAX_VALUE / KernelParams.ADAFACTOR_WORK.size()) {
            throw new IllegalArgumentException("too many Adafactor work items: " + n);
        }
    }

    /** The bytes of a work list. */
    static byte[] work(List<int[]> items) {
        int size = KernelParams.ADAFACTOR_WORK.size();
        byte[] out = new byte[items.size() * size];
        for (int i = 0; i < items.size(); i++) {
            int[] it = items.get(i);
            byte[] one = KernelParams.ADAFACTOR_WORK.packer().i32("kind", it[0]).i32("tensor", it[1]).i32("a", it[2])
                    .i32("b", it[3]).bytes();
            System.arraycopy(one, 0, out, i * size, size);
        }
        return out;
    }

    /** RsAdafactorParams of one pass of step {@code s}; {@code work} = 0 and numWork = 0 for the non-item passes. */
    static byte[] params(long table, long work, int numWork, long total, int numTensors, AdafactorSpec.Step s) {
        return KernelParams.ADAFACTOR.packer()
                .ptr("tensors", table).ptr("work", work).i64("total", total).i32("num_tensors", numTensors).i32("num_work", numWork)
                .f32("beta2", s.beta2()).f32("one_minus_beta2", s.oneMinusBeta2()).f32("eps1", s.eps1())
                .f32("beta1", s.beta1()).f32("one_minus_beta1", s.oneMinusBeta1())
                .i32("first_moment", s.firstMoment() ? 1 : 0).i32("scale_parameter", s.scaleParameter() ? 1 : 0)
                .i32("weight_decay_on", s.weightDecay() != 0 ? 1 : 0)
                .f64("rho", s.rho()).f64("eps2", s.eps2()).f64("clip_threshold", s.clipThreshold())
                .f64("weight_decay", s.weightDecay())
                .bytes();
    }

    /** The grid of an item pass: min(ceil(items / 8), 4096) blocks of 256 threads (8 warps, one item each per round). */
    static LaunchGeometry.Grid itemGrid(int items) {
        long blocks = Math.max(1, Math.min((items + 7L) / 8, MAX_ITEM_BLOCKS));
        return new LaunchGeometry.Grid((int) blocks, 1, 1);
    }

    private final KernelLauncher launcher;

    AdafactorKernels(KernelLauncher launcher) {
        this.launcher = launcher;
    }

    /** Looks every kernel up now (with lazy module loading: loads their code outside any graph capture). */
    void resolveAll() {
        for (String k : KERNELS) {
            launcher.resolve(k);
        }
    }

    /** Queues the five launches of one step over the table. */
    void step(long table, long statsWork, int numStats, long updateWork, int numUpdate, long total, int numTensors,
              AdafactorSpec.Step s) {
        byte[] none = params(table, 0, 0, total, numTensors, s);
        launcher.launch(STATS, itemGrid(numStats), LaunchGeometry.THREADS, params(table, statsWork, numStats, total, numTensors, s));
        launcher.launch(FACTORS, new LaunchGeometry.Grid(numTensors, 1, 1), LaunchGeometry.THREADS, none);
        launcher.launch(UPDATE, itemGrid(numUpdate), LaunchGeometry.THREADS,
                params(table, updateWork, numUpdate, total, numTensors, s));
        launcher.launch(CLIP, new LaunchGeometry.Grid((numTensors + LaunchGeometry.THREADS - 1) / LaunchGeometry.THREADS, 1, 1),
                LaunchGeometry.THREADS, none);
        launcher.launch(APPLY, LaunchGeometry.elementwise(total), LaunchGeometry.THREADS, none);
    }
}
