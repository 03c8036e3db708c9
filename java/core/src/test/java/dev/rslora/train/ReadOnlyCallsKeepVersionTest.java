package dev.rslora.train;

import dev.rslora.backend.Backends;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.Arena;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Calls that only read a tensor leave its {@link Tensor#version()} alone: a bumped stamp reads as a
 * write, and LoraLinear.backward then refuses ("lora_A was written after the forward").
 */
class ReadOnlyCallsKeepVersionTest {
    @ParameterizedTest
    @ValueSource(strings = {"reference", "cpu"})
    void theNormOfLoraABetweenForwardAndBackwardDoesNotStaleTheForward(String backend) {
        try (Arena arena = Arena.ofShared();
             LoraLinear layer = LoraLinear.create(Tensor.allocate(arena, DType.F32, 4, 6), null, LoraConfig.rslora(2, 4),
                     Backends.get(backend))) {
            Tensor x = Tensor.allocate(arena, DType.F32, 3, 6);
            x.fill(1f);
            layer.forward(arena, x);
            long before = layer.loraA().version();
            GradClip.globalNorm(List.of(layer.loraA(), layer.loraB()));  // logging the weights' norm, say
            assertEquals(before, layer.loraA().version());
            Tensor dy = Tensor.allocate(arena, DType.F32, 3, 4);
            dy.fill(1f);
            layer.backward(dy, Tensor.allocate(arena, DType.F32, 3, 6));  // refused before: lora_A written after the forward
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void globalNormDoesNotBumpTheStamp(DType dt) {
        try (Arena arena = Arena.ofShared()) {
            Tensor g = Tensor.allocate(arena, dt, 5);
            g.fill(2f);
            long before = g.version();
            assertEquals(Math.sqrt(20), GradClip.globalNorm(List.of(g)), 1e-12);
            assertEquals(before, g.version());
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void seqLogprobLeavesItsInputsStampsAlone(DType dt) {
        try (Arena arena = Arena.ofShared()) {
            Tensor logits = Tensor.allocate(arena, dt, 2, 3, 40);  // V = 40: the F32 vector path too
            logits.fill(0.5f);
            int[] labels = {0, 1, -100, 3, 4, 0};
            Tensor lse = Tensor.allocate(arena, DType.F32, 2, 3);
            Tensor logp = Tensor.allocate(arena, DType.F32, 2);
            long logitsBefore = logits.version();
            SeqLogprob.forward(logits, labels, lse, logp);
            assertEquals(logitsBefore, logits.version(), "forward only reads logits");
            Tensor g = Tensor.allocate(arena, DType.F32, 2);
            g.fill(1f);
            long lseBefore = lse.version();
            long gBefore = g.version();
            SeqLogprob.backward(logits, labels, lse, g, Tensor.allocate(arena, DType.F32, 2, 3, 40));
            assertEquals(logitsBefore, logits.version(), "backward into a separate dlogits only reads logits");
            assertEquals(lseBefore, lse.version());
            assertEquals(gBefore, g.version());
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void optimizerStepsOnlyReadTheGradients(DType dt) {
        try (Arena arena = Arena.ofShared()) {
            Tensor value = Tensor.allocate(arena, dt, 3, 20);
            Tensor grad = Tensor.allocate(arena, dt, 3, 20);
            value.fill(0.5f);
            grad.fill(0.25f);
            long before = grad.version();
            try (AdamW adamw = new AdamW(List.of(new Parameter("p", value, grad)), AdamWConfig.torchDefaults())) {
                adamw.step();
            }
            assertEquals(before, grad.version(), "AdamW");
            try (Adafactor adafactor = new Adafactor(List.of(new Parameter("p", value, grad)), AdafactorConfig.hfDefaults())) {
                adafactor.step();
            }
            assertEquals(before, grad.version(), "Adafactor");
        }
    }
}
