package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.lang.foreign.Arena;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** SeqLogprob with a tensor whose memory was freed: refused naming it, before any output is written. */
class SeqLogprobFreedTest {
    private static final int[] LABELS = {0, 1, 2, 3, 4, 0};

    private static Tensor freed(long... shape) {
        Arena a = Arena.ofShared();
        Tensor t = Tensor.allocate(a, DType.F32, shape);
        a.close();
        return t;
    }

    private static void refused(String name, Executable call) {
        String m = assertThrows(IllegalArgumentException.class, call).getMessage();
        assertTrue(m.startsWith(name + " [") && m.contains("arena is closed"), m);
    }

    @Test
    void forwardNamesTheFreedTensorAndWritesNothing() {
        try (Arena arena = Arena.ofShared()) {
            Tensor logits = Tensor.allocate(arena, DType.F32, 2, 3, 5);
            logits.fill(0.5f);
            Tensor lse = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor logp = Tensor.allocate(arena, DType.F32, 2);
            lse.fill(-7f);
            logp.fill(-7f);
            float[] lseBefore = lse.toFloatArray();
            float[] logpBefore = logp.toFloatArray();
            refused("logp", () -> SeqLogprob.forward(logits, LABELS, lse, freed(2)));
            assertArrayEquals(lseBefore, lse.toFloatArray(), "lse must not be half-written");
            refused("lse", () -> SeqLogprob.forward(logits, LABELS, freed(2, 3), logp));
            assertArrayEquals(logpBefore, logp.toFloatArray());
            refused("logits", () -> SeqLogprob.forward(freed(2, 3, 5), LABELS, lse, logp));
            assertArrayEquals(lseBefore, lse.toFloatArray());
            assertArrayEquals(logpBefore, logp.toFloatArray());
        }
    }

    @Test
    void backwardNamesTheFreedTensorAndWritesNothing() {
        try (Arena arena = Arena.ofShared()) {
            Tensor logits = Tensor.allocate(arena, DType.F32, 2, 3, 5);
            logits.fill(0.5f);
            Tensor lse = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor logp = Tensor.allocate(arena, DType.F32, 2);
            SeqLogprob.forward(logits, LABELS, lse, logp);
            Tensor g = Tensor.allocate(arena, DType.F32, 2);
            g.fill(1f);
            Tensor dlogits = Tensor.allocate(arena, DType.F32, 2, 3, 5);
            dlogits.fill(-7f);
            float[] before = dlogits.toFloatArray();
            refused("dlogits", () -> SeqLogprob.backward(logits, LABELS, lse, g, freed(2, 3, 5)));
            refused("grad_logp", () -> SeqLogprob.backward(logits, LABELS, lse, freed(2), dlogits));
            assertArrayEquals(before, dlogits.toFloatArray(), "dlogits must not be half-written");
            refused("lse", () -> SeqLogprob.backward(logits, LABELS, freed(2, 3), g, dlogits));
            refused("logits", () -> SeqLogprob.backward(freed(2, 3, 5), LABELS, lse, g, dlogits));
            assertArrayEquals(before, dlogits.toFloatArray());
        }
    }
}
