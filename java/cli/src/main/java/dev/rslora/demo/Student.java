package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Parameter;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;

/**
 * The student: the frozen network with a LoRA adapter on both linear layers, trained by AdamW.
 *
 * <pre>
 *   z1 = x·W1ᵀ + γ·(x·A1ᵀ)·B1ᵀ     h = tanh(z1)      (layer 0, LoraLinear)
 *   z2 = h·W2ᵀ + γ·(h·A2ᵀ)·B2ᵀ     y = tanh(z2)      (layer 1, LoraLinear)
 *   L  = mean((y − target)²)
 *   A_l [r, d] ~ U(±1/√d) (PEFT default), B_l [d, r] = 0, all F32; γ = α/r (LoRA) or α/√r (rsLoRA)
 * </pre>
 *
 * Buffers x-sized [batch, d] F32: h, y, dz2, dh. One thread at a time; owns its layers, buffers and optimizer.
 */
final class Student implements AutoCloseable {
    /** Loss and global adapter gradient 2-norm (before clipping) of one step. */
    record StepRecord(double loss, double gradNorm) {
    }

    private final Arena arena = Arena.ofShared();
    private final LoraLinear layer1;
    private final LoraLinear layer2;
    private final AdamW optimizer;
    private final double maxGradNorm;
    private final Tensor h;
    private final Tensor y;
    private final Tensor dz2;
    private final Tensor dh;

    Student(FrozenNetwork net, Scaling scaling, int rank, SweepConfig c, long adapterSeed, Backend backend) {
        LoraConfig lc = new LoraConfig(rank, c.alpha(), scaling, 0.0, Init.DEFAULT, adapterSeed);
        this.layer1 = LoraLinear.create(net.w1(), null, lc, DType.F32, backend, 0);
        this.layer2 = LoraLinear.create(net.w2(), null, lc, DType.F32, backend, 1);
        List<Parameter> params = new ArrayList<>(Parameter.of(layer1, "layers.0"));
        params.addAll(Parameter.of(layer2, "layers.1"));
        this.optimizer = new AdamW(params, c.optimizer());
        this.maxGradNorm = c.maxGradNorm();
        this.h = Tensor.allocate(arena, DType.F32, net.batch(), net.dim());
        this.y = Tensor.allocate(arena, DType.F32, net.batch(), net.dim());
        this.dz2 = Tensor.allocate(arena, DType.F32, net.batch(), net.dim());
        this.dh = Tensor.allocate(arena, DType.F32, net.batch(), net.dim());
    }

    /** One training step on x [batch, d] against target [batch, d]: forward, backward, (clip), AdamW. */
    StepRecord step(Tensor x, Tensor target) {
        double loss = lossAndGradients(x, target);
        double norm = maxGradNorm > 0 ? optimizer.clipGradNorm(maxGradNorm) : optimizer.gradNorm();
        if (Double.isFinite(norm)) {  // a diverged run (NaN or ±Inf gradients) skips the step, as GradScaler does; the
            optimizer.step();         // optimizer would refuse it, and the sweep reports the run's non-finite loss
        }
        return new StepRecord(loss, norm);
    }

    /** Forward and backward: returns the loss and leaves dA, dB of both layers in the gradients. */
    double lossAndGradients(Tensor x, Tensor target) {
        double loss = loss(x, target);
        NetMath.tanhBackwardInPlace(dz2, y);
        layer2.backward(dz2, dh);
        NetMath.tanhBackwardInPlace(dh, h);
        layer1.backward(dh, null);
        return loss;
    }

    /** Forward only: the loss of the current adapters (also writes dL/dy into a buffer, unused). */
    double loss(Tensor x, Tensor target) {
        layer1.forward(x, h);
        NetMath.tanhInPlace(h);
        layer2.forward(h, y);
        NetMath.tanhInPlace(y);
        return NetMath.mse(y, target, dz2);
    }

    /** A1, B1, A2, B2 with their gradients (live views). */
    List<Parameter> parameters() {
        return optimizer.parameters();
    }

    @Override
    public void close() {
        optimizer.close();
        layer1.close();
        layer2.close();
        arena.close();
    }
}
