package dev.rslora.cli;

import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.DpoLoss;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code rslora dpo-loss}: the DPO loss of TRL's {@code DPOTrainer} ({@link DpoLoss}) on log-probabilities
 * read from a safetensors file, for cross-checking: the mean loss, the per-pair rewards and the
 * gradients of the mean loss with respect to the policy log-probs.
 */
@Command(name = "dpo-loss", description = {
        "Compute the DPO loss (TRL DPOTrainer.dpo_loss) of a batch of preference pairs.",
        "Input: policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps ([batch] each, F32).",
        "Output (F32): loss (the mean, a scalar), chosen_rewards, rejected_rewards, grad_policy_chosen_logps, "
                + "grad_policy_rejected_logps ([batch]: gradients of the mean loss). The reward accuracy is in the metadata."})
final class DpoLossCommand implements Callable<Integer> {
    static final List<String> INPUTS = List.of("policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps",
            "reference_rejected_logps");

    /** The largest batch: the pairs are held in Java arrays. */
    static final int MAX_BATCH = Integer.MAX_VALUE - 8;

    @Spec
    CommandSpec spec;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "the four log-prob tensors")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "output file (written atomically)")
    Path output;

    @Option(names = "--beta", required = true, paramLabel = "B", description = "DPO β (> 0; TRL default 0.1)")
    double beta;

    @Option(names = "--label-smoothing", defaultValue = "0", paramLabel = "S", description = "cDPO label smoothing in [0, 0.5] (default 0)")
    double labelSmoothing;

    @Option(names = "--loss-type", defaultValue = "sigmoid", paramLabel = "sigmoid|hinge|ipo", description = "TRL loss_type (default sigmoid)")
    String lossType;

    @Override
    public Integer call() throws Exception {
        DpoLoss loss = new DpoLoss(beta, labelSmoothing, DpoLoss.Type.fromName(lossType));
        OutputPaths.requireNotALinkToAStream(output);
        OutputPaths.requireNotReadOnly(output);
        OutputPaths.requireNotAnInput(output, input);
        try (Arena arena = Arena.ofShared()) {
            SafetensorsFile in = SafetensorsFile.open(input, arena);
            double[][] v = read(in);
            DpoLoss.Result r = loss.compute(v[0], v[1], v[2], v[3]);
            int n = v[0].length;
            Tensor scalar = Tensor.allocate(arena, DType.F32);
            scalar.set(0, (float) r.loss());
            Map<String, Tensor> outputs = new LinkedHashMap<>();
            outputs.put("loss", scalar);
            outputs.put("chosen_rewards", f32(arena, r.chosenRewards()));
            outputs.put("rejected_rewards", f32(arena, r.rejectedRewards()));
            outputs.put("grad_policy_chosen_logps", f32(arena, r.gradPolicyChosen()));
            outputs.put("grad_policy_rejected_logps", f32(arena, r.gradPolicyRejected()));
            SafetensorsWriter w = new SafetensorsWriter()
                    .metadata("format", "pt")
                    .metadata("rslora.beta", Double.toString(beta))
                    .metadata("rslora.label_smoothing", Double.toString(labelSmoothing))
                    .metadata("rslora.loss_type", loss.type().trlName())
                    .metadata("rslora.loss", Double.toString(r.loss()))
                    .metadata("rslora.reward_accuracy", Double.toString(r.rewardAccuracy()))
                    .metadata("rslora.reward_margin", Double.toString(r.rewardMargin()));
            outputs.forEach(w::add);
            OutputPaths.write(w, output);
            outputs.forEach((name, t) -> NonFiniteOutputs.warn(spec.commandLine().getErr(), "dpo-loss", name, t,
                    "a value overflowed fp32 (β or the log-probabilities at their extremes?)"));
            spec.commandLine().getErr().printf(Locale.ROOT, "rslora dpo-loss: %d pairs, %s β=%s: loss %.6g, reward accuracy %.4g -> %s%n",
                    n, loss.type().trlName(), beta, r.loss(), r.rewardAccuracy(), output);
        }
        return 0;
    }

    private static Tensor f32(Arena arena, double[] v) {
        Tensor t = Tensor.allocate(arena, DType.F32, v.length);
        for (int i = 0; i < v.length; i++) {
            t.set(i, (float) v[i]);
        }
        return t;
    }

    /** The four inputs as doubles, checked: present, F32, 1-D of one length ≥ 1, finite, nothing else. */
    static double[][] read(SafetensorsFile f) {
        for (String name : f.names()) {
            if (!INPUTS.contains(name)) {
                throw new IllegalArgumentException(f.source() + ": unexpected tensor '" + name + "' (the input holds " + INPUTS + ")");
            }
        }
        double[][] out = new double[INPUTS.size()][];
        long batch = -1;
        String first = null;
        for (int k = 0; k < INPUTS.size(); k++) {
            String name = INPUTS.get(k);
            if (!f.contains(name)) {
                throw new IllegalArgumentException(f.source() + ": missing tensor '" + name + "' (file has " + f.names() + ")");
            }
            SafetensorsEntry e = f.entry(name);
            if (!e.dtypeName().equals("F32")) {
                throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' has dtype " + e.dtypeName()
                        + "; dpo-loss needs F32");
            }
            if (e.rank() != 1 || e.numel() < 1 || e.numel() > MAX_BATCH) {
                throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' " + e.shapeString()
                        + " must be 1-D [batch] with 1 <= batch <= " + MAX_BATCH);
            }
            if (batch < 0) {
                batch = e.numel();
                first = name;
            } else if (e.numel() != batch) {
                throw new IllegalArgumentException(f.source() + ": shape mismatch: " + name + " " + e.shapeString() + " and "
                        + first + " [" + batch + "]");
            }
            Tensor t = f.tensor(name);
            double[] d = new double[(int) batch];
            for (int i = 0; i < d.length; i++) {
                float x = t.get(i);
                if (!Float.isFinite(x)) {
                    throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' holds " + x + " at index " + i
                            + " (log-probs must be finite)");
                }
                d[i] = x;
            }
            out[k] = d;
        }
        return out;
    }
}
