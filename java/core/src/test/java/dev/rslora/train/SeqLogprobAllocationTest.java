package dev.rslora.train;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.Allocations;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Once compiled, {@link SeqLogprob}'s forward and backward over F32 logits (the Vector API rows)
 * allocate next to nothing per call: a few small arrays and records, not a vector per L logits.
 * Before e^x and its loops became one method ({@link VectorExp#exp}), C2 never inlined e^x, and
 * its argument and result were boxed for every vector: 6.1 MB per forward and backward over
 * [1, 8, 32000] (192 bytes per 16 logits, JDK 25, 512-bit vectors, 2026-12-07); at this test's
 * [2, 4, 1000] that is about 190 KB per call pair. The calls repeat until a batch allocates under
 * {@link #LIMIT} bytes per pair (the interpreter and C1 box every vector), for up to
 * {@link Allocations#BUDGET_NANOS}. The cpu-no-inline execution runs it with none of the project's
 * methods inlined.
 */
class SeqLogprobAllocationTest {
    /** Bytes per forward and backward allowed: 8 rows' L-float lane buffer and the checks' records, not a vector per 16 logits. */
    private static final long LIMIT = 4096;
    private static final int BATCH = 200;

    @Test
    void compiledForwardAndBackwardAllocateNextToNothing() {
        assumeTrue(SeqLogprob.vectorized(), "the Vector API path is off (no jdk.incubator.vector, or the scalar property)");
        var threads = Allocations.counter();
        int batch = 2;
        int time = 4;
        int vocab = 1000;  // not a multiple of 16 or 32: each row ends in scalar values too
        SplittableRandom rng = new SplittableRandom(11);
        try (Arena arena = Arena.ofConfined()) {
            Tensor logits = Tensor.allocate(arena, DType.F32, batch, time, vocab);
            for (long i = 0; i < logits.numel(); i++) {
                logits.set(i, (float) rng.nextDouble(-8, 8));
            }
            int[] labels = new int[batch * time];
            for (int i = 0; i < labels.length; i++) {
                labels[i] = i == 1 ? SeqLogprob.IGNORE_INDEX : rng.nextInt(vocab);
            }
            Tensor lse = Tensor.allocate(arena, DType.F32, batch, time);
            Tensor logp = Tensor.allocate(arena, DType.F32, batch);
            Tensor gradOut = Tensor.allocate(arena, DType.F32, batch);
            gradOut.set(0, 1f);
            gradOut.set(1, -0.5f);
            Tensor dlogits = Tensor.allocate(arena, DType.F32, batch, time, vocab);
            long start = System.nanoTime();
            long perPair = Long.MAX_VALUE;
            while (System.nanoTime() - start < Allocations.BUDGET_NANOS) {
                long a0 = threads.getCurrentThreadAllocatedBytes();
                for (int k = 0; k < BATCH; k++) {
                    SeqLogprob.forward(logits, labels, lse, logp);
                    SeqLogprob.backward(logits, labels, lse, gradOut, dlogits);
                }
                perPair = (threads.getCurrentThreadAllocatedBytes() - a0) / BATCH;
                if (perPair < LIMIT) {
                    return;
                }
            }
            fail("after " + Allocations.BUDGET_NANOS / 1_000_000_000L + " s of calls over logits " + logits.shapeString()
                    + ", the last batch allocated " + perPair + " bytes per forward and backward (limit " + LIMIT + ")");
        }
    }
}
