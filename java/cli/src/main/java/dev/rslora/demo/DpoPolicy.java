package dev.rslora.demo;

import dev.rslora.backend.Backend;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Adafactor;
import dev.rslora.train.DpoLoss;
import dev.rslora.train.LrSchedule;
import dev.rslora.train.Parameter;
import dev.rslora.train.SeqLogprob;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One trained row of one seed: the world's frozen network with LoRA adapters on both layers, trained
 * with DPO by Adafactor under the linear warmup schedule, as the paper's recipe does.
 *
 * <pre>
 *   h1 = tanh(x·W1ᵀ + γ·B1(A1·D(x)))      (LoraLinear, layer 0, dropout p)
 *   h2 = tanh(h1·W2ᵀ + γ·B2(A2·D(h1)))    (LoraLinear, layer 1)
 *   logits = h2·Eᵀ [n, K];  log π(y|x) = logits_y − logsumexp(logits)     (SeqLogprob, T = 1, V = K)
 *   reference: the same layers with the adapters disabled (LoraLinear.disableAdapter, PEFT's disable_adapter)
 *   loss: DPO sigmoid (β) on (log π(y_c), log π(y_r), log π_ref(y_c), log π_ref(y_r))
 *   optimizer: Adafactor (Hugging Face Trainer's optim="adafactor": scale_parameter and relative_step off),
 *              lr of step t from the Trainer's linear schedule with warmup_ratio
 * </pre>
 *
 * Two departures from the Trainer's and TRL's defaults, both as in the calibration prototype: the
 * gradients are not clipped (the Trainer clips at max_grad_norm = 1.0), and the adapter dropout p
 * stays on while training (recent TRL's DPOConfig disable_dropout = True would turn it off; the
 * paper's recipe names LoRA dropout 0.1).
 *
 * Owns its layers, optimizer and buffers; one thread at a time.
 */
final class DpoPolicy implements AutoCloseable {
    /** Loss, training reward accuracy and mean reward margin of one step (TRL's logged metrics). */
    record StepRecord(double loss, double rewardAccuracy, double rewardMargin) {
    }

    /** Score (expected true reward), held-out reward accuracy and KL(π‖π_ref), each averaged over the held-out prompts. */
    record Evaluation(double score, double rewardAccuracy, double kl) {
    }

    private final Arena arena = Arena.ofShared();
    private final DpoWorld world;
    private final Backend backend;
    private final LoraLinear layer1;
    private final LoraLinear layer2;
    private final Adafactor optimizer;
    private final LrSchedule schedule;
    private final DpoLoss loss;
    private final int batch;
    private final int k;
    private final Tensor h1;
    private final Tensor h2;
    private final Tensor logits;
    private final Tensor pairLogits;  // [2·batch, 1, K]: the prompt's logits for the chosen rows, then for the rejected
    private final Tensor lse;
    private final Tensor logp;
    private final Tensor gradLogp;
    private final Tensor dh2;
    private final Tensor dh1;

    DpoPolicy(DpoWorld world, DpoConfig c, DpoConfig.Row row, long adapterSeed, Backend backend) {
        this.world = world;
        this.backend = backend;
        this.batch = c.batch();
        this.k = world.responses();
        LoraConfig lc = new LoraConfig(row.rank(), c.alpha(), row.scaling(), c.dropout(), Init.DEFAULT, adapterSeed);
        this.layer1 = LoraLinear.create(world.w1(), null, lc, DType.F32, backend, 0);
        this.layer2 = LoraLinear.create(world.w2(), null, lc, DType.F32, backend, 1);
        List<Parameter> params = new ArrayList<>(Parameter.of(layer1, "layers.0"));
        params.addAll(Parameter.of(layer2, "layers.1"));
        this.optimizer = new Adafactor(params, AdafactorConfig.trainer(c.lr()));
        this.schedule = LrSchedule.withWarmupRatio(LrSchedule.Kind.LINEAR, c.lr(), c.warmupRatio(), c.steps());
        this.loss = DpoLoss.paper(c.beta());
        int d = world.dim();
        this.h1 = Tensor.allocate(arena, DType.F32, batch, d);
        this.h2 = Tensor.allocate(arena, DType.F32, batch, d);
        this.logits = Tensor.allocate(arena, DType.F32, batch, k);
        this.pairLogits = Tensor.allocate(arena, DType.F32, 2L * batch, 1, k);
        this.lse = Tensor.allocate(arena, DType.F32, 2L * batch, 1);
        this.logp = Tensor.allocate(arena, DType.F32, 2L * batch);
        this.gradLogp = Tensor.allocate(arena, DType.F32, 2L * batch);
        this.dh2 = Tensor.allocate(arena, DType.F32, batch, d);
        this.dh1 = Tensor.allocate(arena, DType.F32, batch, d);
    }

    /** logits [n, K] of prompts x [n, d] through the adapted layers (h1, h2 are [n, d] buffers). */
    private void forward(Tensor x, Tensor a1, Tensor a2, Tensor out) {
        layer1.forward(x, a1);
        NetMath.tanhInPlace(a1);
        layer2.forward(a1, a2);
        NetMath.tanhInPlace(a2);
        world.linear(world.embeddings(), a2, out);
    }

    /** Copies logits [B, K] into pairLogits [2B, 1, K] twice (chosen rows, then rejected rows). */
    private void stackPairs() {
        long rowBytes = (long) batch * k * Float.BYTES;
        MemorySegment from = logits.readOnlySegment();
        MemorySegment to = pairLogits.segment();
        MemorySegment.copy(from, 0, to, 0, rowBytes);
        MemorySegment.copy(from, 0, to, rowBytes, rowBytes);
    }

    private int[] labels(int[] chosen, int[] rejected) {
        int[] l = new int[2 * batch];
        System.arraycopy(chosen, 0, l, 0, batch);
        System.arraycopy(rejected, 0, l, batch, batch);
        return l;
    }

    private double[] logpHalf(int half) {
        double[] out = new double[batch];
        MemorySegment s = logp.readOnlySegment();
        for (int b = 0; b < batch; b++) {
            out[b] = s.getAtIndex(DType.LE_FLOAT, (long) half * batch + b);
        }
        return out;
    }

    /** One DPO step on prompts x [batch, d] with pairs (chosen[b], rejected[b]). */
    StepRecord step(Tensor x, int[] chosen, int[] rejected) {
        int[] labels = labels(chosen, rejected);
        // reference log-probs: the same layers with the adapters disabled (no gradient is taken)
        try (LoraLinear.AdapterScope off1 = layer1.disableAdapter(); LoraLinear.AdapterScope off2 = layer2.disableAdapter()) {
            forward(x, h1, h2, logits);
        }
        stackPairs();
        SeqLogprob.forward(pairLogits, labels, lse, logp);
        double[] refChosen = logpHalf(0);
        double[] refRejected = logpHalf(1);
        // policy log-probs (training mode: dropout on the adapter inputs)
        forward(x, h1, h2, logits);
        stackPairs();
        SeqLogprob.forward(pairLogits, labels, lse, logp);
        DpoLoss.Result r = loss.compute(logpHalf(0), logpHalf(1), refChosen, refRejected);
        MemorySegment g = gradLogp.segment();
        for (int b = 0; b < batch; b++) {
            g.setAtIndex(DType.LE_FLOAT, b, (float) r.gradPolicyChosen()[b]);
            g.setAtIndex(DType.LE_FLOAT, (long) batch + b, (float) r.gradPolicyRejected()[b]);
        }
        // dlogits in place over the stacked logits, then the two halves summed into logits [B, K]
        SeqLogprob.backward(pairLogits, labels, lse, gradLogp, pairLogits);
        MemorySegment pl = pairLogits.readOnlySegment();
        MemorySegment dl = logits.segment();
        long half = (long) batch * k;
        for (long i = 0; i < half; i++) {
            dl.setAtIndex(DType.LE_FLOAT, i, pl.getAtIndex(DType.LE_FLOAT, i) + pl.getAtIndex(DType.LE_FLOAT, half + i));
        }
        world.linearBackward(world.embeddings(), h2, logits, dh2);
        NetMath.tanhBackwardInPlace(dh2, h2);
        layer2.backward(dh2, dh1);
        NetMath.tanhBackwardInPlace(dh1, h1);
        layer1.backward(dh1, null);
        schedule.apply(optimizer);
        if (Double.isFinite(r.loss())) {  // a diverged run skips the step (the optimizer would refuse NaN gradients)
            optimizer.step();
        }
        return new StepRecord(r.loss(), r.rewardAccuracy(), r.rewardMargin());
    }

    /** Score, held-out reward accuracy and KL to the reference on the world's held-out prompts (eval mode). */
    Evaluation evaluate(double beta) {
        layer1.train(false);
        layer2.train(false);
        Tensor x = world.evalPrompts();
        int n = (int) x.dim(0);
        double[][] lp;
        try (Arena tmp = Arena.ofConfined()) {
            Tensor a1 = Tensor.allocate(tmp, DType.F32, n, world.dim());
            Tensor a2 = Tensor.allocate(tmp, DType.F32, n, world.dim());
            Tensor out = Tensor.allocate(tmp, DType.F32, n, k);
            forward(x, a1, a2, out);
            lp = DpoWorld.logSoftmaxRows(out);
        } finally {
            layer1.train(true);
            layer2.train(true);
        }
        double[][] ref = world.evalRefLogp();
        double[][] reward = world.evalReward();
        int[] ch = world.evalChosen();
        int[] rj = world.evalRejected();
        double score = 0;
        double kl = 0;
        int correct = 0;
        for (int i = 0; i < n; i++) {
            score += DpoWorld.expectedReward(lp[i], reward[i]);
            double s = 0;
            for (int y = 0; y < k; y++) {
                s += Math.exp(lp[i][y]) * (lp[i][y] - ref[i][y]);
            }
            kl += s;
            double rc = beta * (lp[i][ch[i]] - ref[i][ch[i]]);
            double rr = beta * (lp[i][rj[i]] - ref[i][rj[i]]);
            if (rc > rr) {
                correct++;
            }
        }
        return new Evaluation(score / n, (double) correct / n, kl / n);
    }

    /** The reference log-probs this policy computes with its adapters disabled, for prompts x [batch, d] (for tests). */
    float[] referenceLogits(Tensor x) {
        try (LoraLinear.AdapterScope off1 = layer1.disableAdapter(); LoraLinear.AdapterScope off2 = layer2.disableAdapter()) {
            forward(x, h1, h2, logits);
        }
        return logits.toFloatArray();
    }

    Adafactor optimizer() {
        return optimizer;
    }

    @Override
    public void close() {
        optimizer.close();
        layer1.close();
        layer2.close();
        arena.close();
    }
}
