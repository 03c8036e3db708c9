package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link SeqLogprob} against a double reference (log-softmax in double over the same stored logits):
 * awkward vocabularies (1, 7, 255, 1025, 4099, 32003), ignored positions (the prompt part, random
 * ones, a whole sequence), F32/BF16/F16 logits, outputs poisoned first, the backward into a
 * separate tensor and in place, and the Vector API path against the scalar one.
 */
class SeqLogprobTest {

    private record Ref(double[] lse, double[] logp) {
    }

    private static Ref reference(Tensor logits, int[] labels) {
        int b = (int) logits.dim(0);
        int t = (int) logits.dim(1);
        int v = (int) logits.dim(2);
        double[] lse = new double[b * t];
        double[] logp = new double[b];
        for (int r = 0; r < b * t; r++) {
            if (labels[r] == SeqLogprob.IGNORE_INDEX) {
                continue;
            }
            double m = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < v; k++) {
                m = Math.max(m, logits.get((long) r * v + k));
            }
            double s = 0;
            for (int k = 0; k < v; k++) {
                s += Math.exp(logits.get((long) r * v + k) - m);
            }
            lse[r] = m + Math.log(s);
            logp[r / t] += logits.get((long) r * v + labels[r]) - lse[r];
        }
        return new Ref(lse, logp);
    }

    private static int[] labels(SplittableRandom rnd, int b, int t, int v) {
        int[] l = new int[b * t];
        for (int i = 0; i < l.length; i++) {
            boolean ignored = i % t < t / 3 || (b > 2 && i / t == 1) || rnd.nextInt(5) == 0;
            l[i] = ignored ? SeqLogprob.IGNORE_INDEX : rnd.nextInt(v);
        }
        l[l.length - 1] = v - 1;
        return l;
    }

    @Test
    void forwardAndBackwardMatchTheDoubleReference() {
        long seed = 0x5E9L;
        SplittableRandom rnd = new SplittableRandom(seed);
        int[][] shapes = {{1, 1, 1}, {2, 3, 7}, {3, 5, 255}, {4, 6, 1025}, {2, 4, 4099}, {2, 2, 32003}};
        for (DType dt : DType.values()) {
            for (int[] s : shapes) {
                int b = s[0];
                int t = s[1];
                int v = s[2];
                String ctx = dt + " " + b + "x" + t + "x" + v + " seed " + seed;
                try (Arena a = Arena.ofConfined()) {
                    Tensor logits = TestData.uniform(a, dt, rnd, 12, b, t, v);
                    int[] labels = labels(rnd, b, t, v);
                    Tensor lse = TestData.poisoned(a, DType.F32, b, t);
                    Tensor logp = TestData.poisoned(a, DType.F32, b);
                    SeqLogprob.forward(logits, labels, lse, logp);
                    Ref ref = reference(logits, labels);
                    for (int r = 0; r < b * t; r++) {
                        assertEquals(ref.lse()[r], lse.get(r), 2e-6 * (1 + Math.abs(ref.lse()[r])), "lse[" + r + "] " + ctx);
                    }
                    for (int i = 0; i < b; i++) {
                        double scale = 0;
                        for (int r = i * t; r < (i + 1) * t; r++) {
                            scale += labels[r] == SeqLogprob.IGNORE_INDEX ? 0 : 1 + Math.abs(ref.lse()[r]);
                        }
                        assertEquals(ref.logp()[i], logp.get(i), 1e-6 * scale + 1e-30, "logp[" + i + "] " + ctx);
                    }
                    Tensor g = TestData.uniform(a, DType.F32, rnd, 2, b);
                    Tensor d = TestData.poisoned(a, dt, b, t, v);
                    SeqLogprob.backward(logits, labels, lse, g, d);
                    checkGrad(d, logits, labels, ref, g, dt, ctx);
                    Tensor copy = Tensor.allocate(a, dt, b, t, v);
                    copy.copyFrom(logits);
                    SeqLogprob.backward(copy, labels, lse, g, copy);
                    for (long i = 0; i < d.numel(); i++) {
                        assertEquals(Float.floatToRawIntBits(d.get(i)), Float.floatToRawIntBits(copy.get(i)), "in place [" + i + "] " + ctx);
                    }
                }
            }
        }
    }

    private static void checkGrad(Tensor d, Tensor logits, int[] labels, Ref ref, Tensor g, DType dt, String ctx) {
        int t = (int) logits.dim(1);
        int v = (int) logits.dim(2);
        double unit = dt == DType.BF16 ? 0x1p-8 : dt == DType.F16 ? 0x1p-11 : 0x1p-24;
        for (int r = 0; r < labels.length; r++) {
            double gr = g.get(r / t);
            for (int k = 0; k < v; k++) {
                double want = 0;
                if (labels[r] != SeqLogprob.IGNORE_INDEX) {
                    double p = Math.exp(logits.get((long) r * v + k) - ref.lse()[r]);
                    want = gr * ((k == labels[r] ? 1 : 0) - p);
                }
                double got = d.get((long) r * v + k);
                double tol = Math.abs(gr) * 2e-6 + unit * Math.abs(want);
                if (!(Math.abs(got - want) <= tol)) {
                    throw new AssertionError("dlogits[" + r + ", " + k + "] " + got + " vs " + want + " (label " + labels[r] + ", " + ctx + ")");
                }
                if (labels[r] == SeqLogprob.IGNORE_INDEX) {
                    assertEquals(0f, (float) got, "ignored rows are exact zeros");
                }
            }
        }
    }

    @Test
    void theGradientIsTheDerivativeOfTheForward() {
        // d/dx_v Σ log softmax(x)[label] by central differences in double through the op itself
        try (Arena a = Arena.ofConfined()) {
            int b = 2;
            int t = 3;
            int v = 9;
            SplittableRandom rnd = new SplittableRandom(8);
            Tensor x = TestData.uniform(a, DType.F32, rnd, 3, b, t, v);
            int[] labels = {4, SeqLogprob.IGNORE_INDEX, 0, 8, 2, SeqLogprob.IGNORE_INDEX};
            Tensor lse = Tensor.allocate(a, DType.F32, b, t);
            Tensor logp = Tensor.allocate(a, DType.F32, b);
            Tensor g = Tensor.of(a, DType.F32, new float[] {1f, -0.5f}, b);
            Tensor d = Tensor.allocate(a, DType.F32, b, t, v);
            SeqLogprob.forward(x, labels, lse, logp);
            SeqLogprob.backward(x, labels, lse, g, d);
            for (long i = 0; i < x.numel(); i++) {
                float keep = x.get(i);
                double h = 1e-2;
                x.set(i, (float) (keep + h));
                double up = objective(x, labels, g);
                x.set(i, (float) (keep - h));
                double down = objective(x, labels, g);
                x.set(i, keep);
                assertEquals((up - down) / (2 * h), d.get(i), 2e-4, "element " + i);
            }
        }
    }

    private static double objective(Tensor x, int[] labels, Tensor g) {
        Ref r = reference(x, labels);
        return g.get(0) * r.logp()[0] + g.get(1) * r.logp()[1];
    }

    @Test
    void vectorAndScalarPathsAgree() throws Exception {
        // the scalar rows (Math.exp in double) against the Vector API rows (vector EXP, blocked fp32 sums)
        assertTrue(SeqLogprob.vectorized() || !ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent());
        try (Arena a = Arena.ofConfined()) {
            SplittableRandom rnd = new SplittableRandom(12);
            Tensor x = TestData.uniform(a, DType.F32, rnd, 20, 3, 1, 50_000);
            for (int r = 0; r < 3; r++) {
                double scalar = SeqLogprob.logSumExp(x.segment(), DType.F32, (long) r * 50_000, 50_000);
                double vector = SeqLogprob.vectorized() ? SeqLogprobVector.logSumExp(x.segment(), (long) r * 50_000, 50_000) : scalar;
                assertEquals(scalar, vector, 2e-6 * Math.abs(scalar), "row " + r);
            }
        }
    }

    /**
     * TRL's causal-LM convention, worked by hand: the full logits [B, T, V] and the token ids with −100 on
     * the prompt and padding are shifted by the caller (logits[:, :-1], labels[:, 1:]), so that position t
     * scores token t + 1 and only completion tokens count. Sequence 0: prompt (0, 1), completion (1, 0);
     * sequence 1: prompt (0), completion (1, 0), one padding position.
     */
    @Test
    void shiftedLabelsSumTheCompletionTokensOnlyAsTrl() {
        double ln2 = Math.log(2);
        double ln3 = Math.log(3);
        int b = 2;
        int t = 4;
        int v = 2;
        double[][][] full = {
            {{7, -3}, {0, ln3}, {ln2, 0}, {100, 100}},   // p(1 | pos 1) = 3/4, p(0 | pos 2) = 2/3; pos 0 scores a prompt token, pos 3 nothing
            {{0, 0}, {ln3, 0}, {-5, 9}, {1, 2}}};         // p(1 | pos 0) = 1/2, p(0 | pos 1) = 3/4; pos 2 scores padding
        int[][] labels = {{-100, -100, 1, 0}, {-100, 1, 0, -100}};
        try (Arena a = Arena.ofConfined()) {
            Tensor logits = Tensor.allocate(a, DType.F32, b, t - 1, v);  // logits[:, :-1]
            int[] shifted = new int[b * (t - 1)];                        // labels[:, 1:]
            for (int i = 0; i < b; i++) {
                for (int j = 0; j < t - 1; j++) {
                    for (int k = 0; k < v; k++) {
                        logits.segment().setAtIndex(DType.LE_FLOAT, ((long) i * (t - 1) + j) * v + k, (float) full[i][j][k]);
                    }
                    shifted[i * (t - 1) + j] = labels[i][j + 1];
                }
            }
            Tensor lse = TestData.poisoned(a, DType.F32, b, t - 1);
            Tensor logp = TestData.poisoned(a, DType.F32, b);
            SeqLogprob.forward(logits, shifted, lse, logp);
            assertEquals(Math.log(3.0 / 4) + Math.log(2.0 / 3), logp.get(0), 1e-6, "−ln 2");
            assertEquals(Math.log(1.0 / 2) + Math.log(3.0 / 4), logp.get(1), 1e-6, "ln(3/8)");
            assertEquals(0f, lse.get(0), "the position that scores a prompt token is ignored");
            assertEquals(0f, lse.get(5), "the position that scores padding is ignored");
        }
    }

    @Test
    void badInputsAreRefusedNamingThem() {
        try (Arena a = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(a, DType.F32, 2, 3, 5);
            Tensor lse = Tensor.allocate(a, DType.F32, 2, 3);
            Tensor logp = Tensor.allocate(a, DType.F32, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SeqLogprob.forward(x, new int[] {0, 1, 2, 3, 5, 0}, lse, logp));
            assertTrue(e.getMessage().contains("label 5 at [1, 1]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, new int[5], lse, logp));
            assertTrue(e.getMessage().contains("B·T = 6"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> SeqLogprob.forward(Tensor.allocate(a, DType.F32, 6, 5), new int[6], lse, logp));
            assertTrue(e.getMessage().contains("[B, T, V]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> SeqLogprob.forward(x, new int[6], Tensor.allocate(a, DType.BF16, 2, 3), logp));
            assertTrue(e.getMessage().contains("lse must be F32"), e.getMessage());
        }
    }

    /**
     * Read-only outputs (a memory-mapped file's tensors) were written until the JDK refused the first
     * store, naming no argument, after lse had been partly written: refused first, naming them.
     */
    @Test
    void readOnlyOutputsAreRefusedBeforeAnythingIsWritten() {
        try (Arena a = Arena.ofConfined()) {
            int[] labels = {0, 1};
            Tensor x = Tensor.of(a, DType.F32, new float[] {1, 2, 3, 4, 5, 6}, 1, 2, 3);
            Tensor lse = Tensor.allocate(a, DType.F32, 1, 2);
            Tensor logp = Tensor.allocate(a, DType.F32, 1);
            Tensor g = Tensor.of(a, DType.F32, new float[] {1}, 1);
            Tensor roLogp = Tensor.wrap(logp.readOnlySegment(), DType.F32, 1);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, labels, lse, roLogp));
            assertTrue(e.getMessage().startsWith("logp [1] is read-only memory"), e.getMessage());
            assertArrayEquals(new float[] {0, 0}, lse.toFloatArray(), "lse untouched");
            Tensor roLse = Tensor.wrap(lse.readOnlySegment(), DType.F32, 1, 2);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, labels, roLse, logp));
            assertTrue(e.getMessage().startsWith("lse [1, 2] is read-only memory"), e.getMessage());
            SeqLogprob.forward(x, labels, lse, logp);
            Tensor roX = Tensor.wrap(x.readOnlySegment(), DType.F32, 1, 2, 3);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(roX, labels, lse, g, roX));
            assertTrue(e.getMessage().startsWith("dlogits [1, 2, 3] is read-only memory"), e.getMessage());
        }
    }

    @Test
    void outputsThatShareMemoryWithAnInputOrEachOtherAreRefused() {
        try (Arena a = Arena.ofConfined()) {
            int[] labels = {0, 1};
            float[] values = {1, 2, 3, 4, 5, 6};
            Tensor x = Tensor.of(a, DType.F32, values, 1, 2, 3);
            Tensor lse = Tensor.allocate(a, DType.F32, 1, 2);
            Tensor logp = Tensor.allocate(a, DType.F32, 1);
            Tensor g = Tensor.of(a, DType.F32, new float[] {1}, 1);
            // forward: lse over the first logits, logp over lse
            Tensor lseInX = Tensor.wrap(x.segment().asSlice(0, 8), DType.F32, 1, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, labels, lseInX, logp));
            assertTrue(e.getMessage().startsWith("lse [1, 2] shares memory with logits [1, 2, 3]"), e.getMessage());
            Tensor logpInLse = Tensor.wrap(lse.segment().asSlice(0, 4), DType.F32, 1);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, labels, lse, logpInLse));
            assertTrue(e.getMessage().startsWith("logp [1] shares memory with lse [1, 2]"), e.getMessage());
            Tensor logpInX = Tensor.wrap(x.segment().asSlice(20, 4), DType.F32, 1);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(x, labels, lse, logpInX));
            assertTrue(e.getMessage().startsWith("logp [1] shares memory with logits"), e.getMessage());
            assertArrayEquals(values, x.toFloatArray(), "nothing was written");

            SeqLogprob.forward(x, labels, lse, logp);
            // backward: dlogits shifted by one row over logits, or over lse / grad_logp
            MemorySegment mem = a.allocate(4 * 9);
            Tensor x2 = Tensor.wrap(mem.asSlice(0, 24), DType.F32, 1, 2, 3);
            x2.copyFrom(values);
            Tensor shifted = Tensor.wrap(mem.asSlice(12, 24), DType.F32, 1, 2, 3);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(x2, labels, lse, g, shifted));
            assertTrue(e.getMessage().contains("partly overlaps logits"), e.getMessage());
            Tensor asBf16 = Tensor.wrap(x2.segment().asSlice(0, 12), DType.BF16, 1, 2, 3);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(x2, labels, lse, g, asBf16));
            assertTrue(e.getMessage().contains("partly overlaps logits"), e.getMessage());
            MemorySegment both = a.allocate(24);
            Tensor d = Tensor.wrap(both, DType.F32, 1, 2, 3);
            Tensor lseInD = Tensor.wrap(both.asSlice(16, 8), DType.F32, 1, 2);
            lseInD.copyFrom(lse.toFloatArray());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(x, labels, lseInD, g, d));
            assertTrue(e.getMessage().startsWith("dlogits [1, 2, 3] shares memory with lse"), e.getMessage());
            Tensor gInD = Tensor.wrap(both.asSlice(8, 4), DType.F32, 1);
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(x, labels, lse, gInD, d));
            assertTrue(e.getMessage().startsWith("dlogits [1, 2, 3] shares memory with grad_logp"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(x, labels, lse, g, null));
            assertTrue(e.getMessage().contains("dlogits shape null"), e.getMessage());

            // dlogits == logits (and a second view of exactly its memory) is still the documented in-place backward
            Tensor separate = Tensor.allocate(a, DType.F32, 1, 2, 3);
            SeqLogprob.backward(x, labels, lse, g, separate);
            SeqLogprob.backward(x2, labels, lse, g, Tensor.wrap(x2.segment(), DType.F32, 1, 2, 3));
            assertArrayEquals(separate.toFloatArray(), x2.toFloatArray());
            SeqLogprob.backward(x, labels, lse, g, x);
            assertArrayEquals(separate.toFloatArray(), x.toFloatArray());
        }
    }

    /** A null logits or labels was a bare NullPointerException from inside the shape check; both are named. */
    @Test
    void nullLogitsOrLabelsAreNamed() {
        try (Arena arena = Arena.ofConfined()) {
            Tensor logits = Tensor.allocate(arena, DType.F32, 1, 2, 3);
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, 2);
            Tensor logp = Tensor.allocate(arena, DType.F32, 1);
            int[] labels = {0, 1};
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SeqLogprob.forward(null, labels, lse, logp));
            assertEquals("logits is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.forward(logits, null, lse, logp));
            assertEquals("labels is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(null, labels, lse, logp, logits));
            assertEquals("logits is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> SeqLogprob.backward(logits, null, lse, logp, logits));
            assertEquals("labels is null", e.getMessage());
        }
    }
}
