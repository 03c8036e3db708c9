package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tensors over heap arrays take the training loops' scalar code ({@link VectorAccess}: a heap
 * segment in a vector access slows every later one in the JVM). AdamW's scalar loop does the
 * vector loop's arithmetic, so heap parameters get the bits of native ones; SeqLogprob's sums in
 * double, so heap logits agree with native ones within a few fp32 ulps of the result.
 */
class HeapTensorTrainTest {
    @Test
    void adamWOnHeapParametersGivesTheBitsOfNativeOnes() {
        SplittableRandom rng = new SplittableRandom(0xAD4EAL);
        try (Arena arena = Arena.ofShared()) {
            Tensor value = TestData.uniform(arena, DType.F32, rng, 1.0, 33, 31);
            Tensor grad = TestData.uniform(arena, DType.F32, rng, 0.1, 33, 31);
            Tensor heapValue = heap(value);
            Tensor heapGrad = heap(grad);
            assertTrue(value.readOnlySegment().isNative());
            assertFalse(heapValue.readOnlySegment().isNative());
            AdamWConfig config = AdamWConfig.torchDefaults().withWeightDecay(0.1).withLr(1e-2);
            try (AdamW nat = new AdamW(List.of(new Parameter("p", value, grad)), config);
                 AdamW hp = new AdamW(List.of(new Parameter("p", heapValue, heapGrad)), config)) {
                for (int t = 0; t < 5; t++) {
                    nat.step();
                    hp.step();
                }
            }
            assertArrayEquals(value.toFloatArray(), heapValue.toFloatArray(), "heap parameters after 5 steps");
        }
    }

    @Test
    void seqLogprobOnHeapLogitsAgreesWithNativeOnes() {
        SplittableRandom rng = new SplittableRandom(0x5E9L);
        int batch = 2, time = 3, vocab = 1001;
        int[] labels = new int[batch * time];
        for (int i = 0; i < labels.length; i++) {
            labels[i] = i == 4 ? SeqLogprob.IGNORE_INDEX : rng.nextInt(vocab);
        }
        try (Arena arena = Arena.ofShared()) {
            Tensor logits = TestData.uniform(arena, DType.F32, rng, 8.0, batch, time, vocab);
            Tensor heapLogits = heap(logits);
            Tensor lse = Tensor.allocate(arena, DType.F32, batch, time);
            Tensor logp = Tensor.allocate(arena, DType.F32, batch);
            Tensor heapLse = heap(lse);
            Tensor heapLogp = heap(logp);
            SeqLogprob.forward(logits, labels, lse, logp);
            SeqLogprob.forward(heapLogits, labels, heapLse, heapLogp);
            for (int b = 0; b < batch; b++) {
                float want = logp.get(b);
                assertEquals(want, heapLogp.get(b), 8 * Math.ulp(want), "logp[" + b + "]");
            }
            Tensor g = TestData.uniform(arena, DType.F32, rng, 1.0, batch);
            Tensor d = Tensor.allocate(arena, DType.F32, batch, time, vocab);
            Tensor heapD = heap(d);
            SeqLogprob.backward(logits, labels, lse, g, d);
            SeqLogprob.backward(heapLogits, labels, lse, g, heapD);
            float[] want = d.toFloatArray();
            float[] got = heapD.toFloatArray();
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], 4 * Math.ulp(Math.abs(want[i])) + 1e-12f, "dlogits[" + i + "]");
            }
        }
    }

    private static Tensor heap(Tensor t) {
        MemorySegment seg = MemorySegment.ofArray(new float[Math.toIntExact(t.numel())]);
        MemorySegment.copy(t.readOnlySegment(), 0, seg, 0, seg.byteSize());
        return Tensor.wrap(seg, t.dtype(), t.shape());
    }
}
