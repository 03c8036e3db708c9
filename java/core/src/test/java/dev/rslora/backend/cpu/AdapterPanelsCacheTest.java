package dev.rslora.backend.cpu;

import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Parameter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The per-layer cache of packed adapter panels ({@link AdapterPanels}): reused while A, B and γ
 * are unchanged, and never stale. Every way A or B can change (the optimizer step in place and
 * through master weights, restoring optimizer state, loading with copyFrom, set, fill, writes
 * through segment(), a kept segment plus markWritten(), another tensor object, another γ, merge
 * and unmerge in between) is followed by a training step that must match the reference backend
 * on the same tensors, by chunks of rows (N = 70, past RowGrads.MAX_ROWS), on the row path without
 * cached panels in training mode (N = 37 and 5; N = 5 in eval mode keeps its panels) and one row,
 * with dropout in training mode.
 */
class AdapterPanelsCacheTest {
    private static final long SEED = Long.getLong("rslora.test.seed", 0xCAC4EL);
    private static final int D_IN = 70;
    private static final int D_OUT = 45;
    private static final int R = 12;

    /** One layer on cpu and on the reference, sharing A, B, X, dY. */
    private static final class Layer implements AutoCloseable {
        final Arena arena = Arena.ofShared();
        final SplittableRandom rng;
        final int n;
        final CpuBackend cpu = new CpuBackend(2);
        final ReferenceBackend ref = new ReferenceBackend();
        final Tensor w;
        final Tensor wRef;
        final Tensor bias;
        final FrozenWeight fc;
        final FrozenWeight fr;
        Tensor a;
        Tensor b;
        final Tensor gA;
        final Tensor gB;
        double gamma = 0.7;
        long step;
        final String ctx;

        /** Training mode (dropout 0.1), or eval mode (no dropout: the forward of decoding, then a backward). */
        final boolean training;

        Layer(int n, DType adapterType, long seed) {
            this(n, adapterType, seed, true);
        }

        Layer(int n, DType adapterType, long seed, boolean training) {
            this.n = n;
            this.training = training;
            this.rng = new SplittableRandom(seed);
            this.ctx = "n=" + n + " " + adapterType + " seed=" + seed + (training ? "" : " eval mode");
            w = random(DType.F32, 1.0 / Math.sqrt(D_IN), D_OUT, D_IN);
            wRef = w.to(arena, DType.F32);
            bias = random(DType.F32, 1, D_OUT);
            fc = cpu.prepare(w, bias);
            fr = ref.prepare(wRef, bias);
            a = random(adapterType, 1.0 / Math.sqrt(D_IN), R, D_IN);
            b = random(adapterType, 1, D_OUT, R);
            gA = Tensor.allocate(arena, adapterType, R, D_IN);
            gB = Tensor.allocate(arena, adapterType, D_OUT, R);
        }

        Tensor random(DType t, double scale, long... shape) {
            Tensor out = Tensor.allocate(arena, t, shape);
            for (long i = 0; i < out.numel(); i++) {
                out.set(i, (float) (scale * rng.nextDouble(-1, 1)));
            }
            return out;
        }

        long packs() {
            return ((CpuFrozenWeight) fc).adapter.packs;
        }

        /**
         * A step (forward and backward; in training mode dropout 0.1, a new mask each step) on fresh
         * X, dY through both backends; asserts they agree and leaves the cpu gradients in gA, gB.
         */
        void stepAndCompare(String what) {
            step++;
            LoraParams p = new LoraParams(n, D_IN, D_OUT, R, gamma, 0.1f, SEED, step, 3, training, true, GradMode.ASSIGN);
            Tensor x = random(DType.F32, 1, n, D_IN);
            Tensor dy = random(DType.F32, 1, n, D_OUT);
            Tensor[] got = run(cpu, fc, p, x, dy);
            Tensor[] exp = run(ref, fr, p, x, dy);
            String c = what + " (" + ctx + ", step " + step + ")";
            String[] names = {"Y", "U", "dX", "dA", "dB"};
            for (int i = 0; i < names.length; i++) {
                Compare.close(names[i] + " after " + what, got[i], exp[i], i < 3 ? 2e-5 : 5e-5, 2e-5, c);
            }
            gA.copyFrom(got[3]);
            gB.copyFrom(got[4]);
        }

        private Tensor[] run(dev.rslora.backend.Backend be, FrozenWeight fw, LoraParams p, Tensor x, Tensor dy) {
            Tensor y = poisoned(D_OUT);
            Tensor u = Tensor.allocate(arena, DType.F32, n, R);
            u.fill(Float.NaN);
            Tensor dx = poisoned(D_IN);
            Tensor ga = Tensor.allocate(arena, DType.F32, R, D_IN);
            Tensor gb = Tensor.allocate(arena, DType.F32, D_OUT, R);
            ga.fill(Float.NaN);
            gb.fill(Float.NaN);
            be.forward(p, fw, x, a, b, u, y);
            be.backward(p, fw, x, a, b, u, dy, dx, ga, gb);
            return new Tensor[] {y, u, dx, ga, gb};
        }

        private Tensor poisoned(int cols) {
            Tensor t = Tensor.allocate(arena, DType.F32, n, cols);
            t.fill(Float.NaN);
            return t;
        }

        @Override
        public void close() {
            fc.close();
            fr.close();
            cpu.close();
            arena.close();
        }
    }

    @ParameterizedTest(name = "n={0} training={1}")
    @CsvSource({"70, true", "37, true", "5, true", "5, false", "1, true"})
    void unchangedAdapterIsPackedOnceAndEveryChangeIsSeen(int n, boolean training) {
        // copies packed per pass that reads a changed tensor: the backward reads A and B as they are up to
        // RowGrads.MAX_ROWS rows, the forward up to AdapterRows.forwardMaxRows (AdapterRows: fewer in eval
        // mode, where panels kept for unchanged A and B serve decoding); every change must still reach the results
        int k = (n > AdapterRows.forwardMaxRows(training) ? 1 : 0) + (n > RowGrads.MAX_ROWS ? 1 : 0);
        try (Layer l = new Layer(n, DType.F32, SEED + n, training)) {
            l.stepAndCompare("the first step");
            long packed = l.packs();
            assertEquals(2 * k, packed, "the first step packs Aᵀ, (γB)ᵀ, B and γA once each (fewer with few rows)");
            l.stepAndCompare("an unchanged adapter");
            assertEquals(packed, l.packs(), "no repacking while A, B and γ are unchanged");

            change(l, "Tensor.set on A", t -> t.a.set(5, 0.5f), k);
            change(l, "Tensor.set on B", t -> t.b.set(D_OUT * R - 1, -2f), k);
            change(l, "copyFrom into A (loading)", t -> t.a.copyFrom(t.random(DType.F32, 0.2, R, D_IN)), k);
            change(l, "copyFrom into B (loading)", t -> t.b.copyFrom(t.random(DType.F32, 1, D_OUT, R)), k);
            change(l, "copyFrom(float[]) into A (loading from a heap array)", t -> t.a.copyFrom(t.random(DType.F32, 0.3, R, D_IN)
                    .toFloatArray()), k);
            change(l, "copyFrom(float[][]) into B (loading from heap rows)", t -> t.b.copyFrom(t.random(DType.F32, 0.7, D_OUT, R)
                    .toMatrix()), k);
            change(l, "fill B", t -> t.b.fill(0.25f), k);
            change(l, "a write through A's segment()", t -> {
                float[] v = new float[R * D_IN];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) t.rng.nextDouble(-0.3, 0.3);
                }
                MemorySegment.copy(v, 0, t.a.segment(), DType.LE_FLOAT, 0, v.length);
            }, k);
            MemorySegment kept = l.b.segment();
            change(l, "a write through a kept segment of B, then markWritten()", t -> {
                kept.setAtIndex(DType.LE_FLOAT, 7, 3f);
                t.b.markWritten();
            }, k);
            change(l, "another γ", t -> t.gamma = 1.3, k);
            change(l, "another tensor object for A", t -> t.a = t.a.to(t.arena, DType.F32), k);
            change(l, "merge then unmerge (W changes, A and B do not)", t -> {
                t.cpu.merge(t.fc, t.a, t.b, t.gamma, +1);
                t.ref.merge(t.fr, t.a, t.b, t.gamma, +1);
                t.cpu.merge(t.fc, t.a, t.b, t.gamma, -1);
                t.ref.merge(t.fr, t.a, t.b, t.gamma, -1);
            }, 0);

            // The optimizer: AdamW updates F32 A and B in place, three steps in a row.
            try (AdamW opt = new AdamW(List.of(new Parameter("a", l.a, l.gA), new Parameter("b", l.b, l.gB)),
                    AdamWConfig.torchDefaults().withLr(0.05))) {
                for (int s = 0; s < 3; s++) {
                    change(l, "AdamW step " + s, t -> opt.step(), 2 * k);
                }
            }
        }
    }

    /** BF16 adapters with fp32 master weights: the step writes A and B by copyFrom; restore() writes them back. */
    @Test
    void masterWeightStepsAndRestoredOptimizerStateAreSeen() {
        try (Layer l = new Layer(RowGrads.MAX_ROWS + 6, DType.BF16, SEED + 1);
             AdamW opt = new AdamW(List.of(new Parameter("a", l.a, l.gA), new Parameter("b", l.b, l.gB)),
                     AdamWConfig.torchDefaults().withLr(0.05), true)) {
            l.stepAndCompare("the first step");
            AdamWState before = opt.snapshot();
            float a0 = l.a.get(0);
            change(l, "a master-weight AdamW step", t -> opt.step(), 4);
            assertNotEquals(a0, l.a.get(0), "the step changed A");
            change(l, "AdamW.restore of the earlier state", t -> opt.restore(before), 4);
            assertEquals(a0, l.a.get(0), "restore brought A back");
        }
    }

    /** Applies {@code how}, then a step that must match the reference and repack {@code repacks} copies. */
    private static void change(Layer l, String what, Consumer<Layer> how, int repacks) {
        long before = l.packs();
        how.accept(l);
        l.stepAndCompare(what);
        assertEquals(before + repacks, l.packs(), "copies packed again after " + what + " (" + l.ctx + ")");
    }
}
