package dev.rslora.cli;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.Adafactor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Optimizer;
import dev.rslora.train.Parameter;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code rslora optimizer-step}: N optimizer steps on one parameter, for cross-checking with other
 * tools (e.g. {@code transformers.optimization.Adafactor} or {@code torch.optim.AdamW}). Reads
 * {@code param} and {@code grad.0 … grad.(N−1)} (F32, same shape, 1-D or 2-D) and writes
 * {@code param.1 … param.N}, the parameter after each step. Options carry the Hugging Face / PyTorch
 * names and defaults.
 */
@Command(name = "optimizer-step", description = {
        "Run optimizer steps on one parameter and write the parameter after each step.",
        "Input: param (1-D or 2-D) and grad.0, grad.1, ... (same shape), all F32. Output: param.1, param.2, ... (F32).",
        "Adafactor options (transformers.optimization.Adafactor, its defaults): --eps1 1e-30 --eps2 1e-3 --clip-threshold 1.0 "
                + "--decay-rate -0.8 --beta1 (none) --weight-decay 0 --scale-parameter true --relative-step true "
                + "--warmup-init false; --lr may be omitted only with --relative-step true (and must be, as in Hugging Face).",
        "AdamW options (torch.optim.AdamW, its defaults): --beta1 0.9 --beta2 0.999 --eps 1e-8 --weight-decay 0.01."})
final class OptimizerStepCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "param and grad.0, grad.1, ...")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "output file (written atomically)")
    Path output;

    @Option(names = "--optimizer", required = true, paramLabel = "adafactor|adamw", description = "the optimizer")
    String optimizer;

    @Option(names = "--lr", paramLabel = "LR", description = "learning rate")
    Double lr;

    @Option(names = "--beta1", paramLabel = "B1", description = "Adafactor: first-moment decay (default none); AdamW: β1 (0.9)")
    Double beta1;

    @Option(names = "--weight-decay", paramLabel = "WD", description = "Adafactor default 0; AdamW default 0.01")
    Double weightDecay;

    @Option(names = "--eps1", paramLabel = "E", description = "Adafactor eps[0] (1e-30)")
    Double eps1;

    @Option(names = "--eps2", paramLabel = "E", description = "Adafactor eps[1] (1e-3)")
    Double eps2;

    @Option(names = "--clip-threshold", paramLabel = "C", description = "Adafactor clip_threshold (1.0)")
    Double clipThreshold;

    @Option(names = "--decay-rate", paramLabel = "D", description = "Adafactor decay_rate (-0.8)")
    Double decayRate;

    @Option(names = "--scale-parameter", arity = "1", paramLabel = "true|false", description = "Adafactor scale_parameter (true)")
    Boolean scaleParameter;

    @Option(names = "--relative-step", arity = "1", paramLabel = "true|false", description = "Adafactor relative_step (true)")
    Boolean relativeStep;

    @Option(names = "--warmup-init", arity = "1", paramLabel = "true|false", description = "Adafactor warmup_init (false)")
    Boolean warmupInit;

    @Option(names = "--beta2", paramLabel = "B2", description = "AdamW β2 (0.999)")
    Double beta2;

    @Option(names = "--eps", paramLabel = "E", description = "AdamW eps (1e-8)")
    Double eps;

    /** The Adafactor config from the options (Hugging Face defaults for those not given). */
    AdafactorConfig adafactorConfig() {
        refuse("adafactor", "--beta2", beta2, "--eps", eps);
        AdafactorConfig d = AdafactorConfig.hfDefaults();
        boolean relative = relativeStep == null ? d.relativeStep() : relativeStep;
        if (lr != null && relative) {
            throw new IllegalArgumentException("--lr " + lr + " cannot be combined with --relative-step true (the Hugging Face "
                    + "default: Adafactor then computes its own step size); add --relative-step false, or omit --lr");
        }
        if (lr == null && !relative) {
            throw new IllegalArgumentException("--lr is required with --relative-step false");
        }
        return new AdafactorConfig(lr, or(eps1, d.eps1()), or(eps2, d.eps2()), or(clipThreshold, d.clipThreshold()),
                or(decayRate, d.decayRate()), beta1, or(weightDecay, d.weightDecay()),
                scaleParameter == null ? d.scaleParameter() : scaleParameter, relative,
                warmupInit == null ? d.warmupInit() : warmupInit);
    }

    /** The AdamW config from the options (PyTorch defaults for those not given). */
    AdamWConfig adamWConfig() {
        refuse("adamw", "--eps1", eps1, "--eps2", eps2, "--clip-threshold", clipThreshold, "--decay-rate", decayRate,
                "--scale-parameter", scaleParameter, "--relative-step", relativeStep, "--warmup-init", warmupInit);
        if (lr == null) {
            throw new IllegalArgumentException("--lr is required with --optimizer adamw");
        }
        AdamWConfig d = AdamWConfig.torchDefaults();
        return new AdamWConfig(lr, or(beta1, d.beta1()), or(beta2, d.beta2()), or(eps, d.eps()), or(weightDecay, d.weightDecay()));
    }

    private static double or(Double v, double dflt) {
        return v == null ? dflt : v;
    }

    /** Refuses options (name, value pairs) that were given but do not apply to {@code opt}. */
    private static void refuse(String opt, Object... pairs) {
        List<String> given = new ArrayList<>();
        for (int i = 0; i < pairs.length; i += 2) {
            if (pairs[i + 1] != null) {
                given.add((String) pairs[i]);
            }
        }
        if (!given.isEmpty()) {
            throw new IllegalArgumentException(String.join(", ", given) + (given.size() == 1 ? " does" : " do")
                    + " not apply to --optimizer " + opt);
        }
    }

    @Override
    public Integer call() throws Exception {
        if (!optimizer.equals("adafactor") && !optimizer.equals("adamw")) {
            throw new IllegalArgumentException("--optimizer must be adafactor or adamw, got '" + optimizer + "'");
        }
        boolean adafactor = optimizer.equals("adafactor");
        AdafactorConfig afc = adafactor ? adafactorConfig() : null;
        AdamWConfig awc = adafactor ? null : adamWConfig();
        OutputPaths.requireNotALinkToAStream(output);
        OutputPaths.requireNotReadOnly(output);
        OutputPaths.requireNotAnInput(output, input);
        try (Arena arena = Arena.ofShared()) {
            SafetensorsFile in = SafetensorsFile.open(input, arena);
            int steps = checkInput(in);
            Tensor param = Tensor.allocate(arena, DType.F32, in.entry("param").shape());
            param.copyFrom(in.tensor("param"));
            Tensor grad = Tensor.allocate(arena, DType.F32, param.shape());
            List<Parameter> params = List.of(new Parameter("param", param, grad));
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").metadata("rslora.optimizer", optimizer);
            for (Map.Entry<String, String> e : describe(afc, awc).entrySet()) {
                w.metadata("rslora." + e.getKey(), e.getValue());
            }
            try (Optimizer opt = adafactor ? new Adafactor(params, afc) : new AdamW(params, awc)) {
                for (int t = 0; t < steps; t++) {
                    grad.copyFrom(in.tensor("grad." + t));
                    opt.step();
                    Tensor snapshot = Tensor.allocate(arena, DType.F32, param.shape());
                    snapshot.copyFrom(param);
                    w.add("param." + (t + 1), snapshot);
                    NonFiniteOutputs.warn(spec.commandLine().getErr(), "optimizer-step", "param." + (t + 1), snapshot,
                            "the update overflowed or divided by zero (--lr, --eps, --weight-decay or the gradients at their"
                                    + " extremes?)");
                }
            }
            OutputPaths.write(w, output);
            spec.commandLine().getErr().printf("rslora optimizer-step: %s, param %s, %d step%s -> %s%n", optimizer,
                    Arrays.toString(param.shape()), steps, steps == 1 ? "" : "s", output);
        }
        return 0;
    }

    /** The hyper-parameters as metadata strings (Hugging Face / PyTorch names). */
    private static Map<String, String> describe(AdafactorConfig a, AdamWConfig w) {
        Map<String, String> m = new LinkedHashMap<>();
        if (a != null) {
            m.put("lr", a.lr() == null ? "None" : Double.toString(a.lr()));
            m.put("eps1", Double.toString(a.eps1()));
            m.put("eps2", Double.toString(a.eps2()));
            m.put("clip_threshold", Double.toString(a.clipThreshold()));
            m.put("decay_rate", Double.toString(a.decayRate()));
            m.put("beta1", a.beta1() == null ? "None" : Double.toString(a.beta1()));
            m.put("weight_decay", Double.toString(a.weightDecay()));
            m.put("scale_parameter", Boolean.toString(a.scaleParameter()));
            m.put("relative_step", Boolean.toString(a.relativeStep()));
            m.put("warmup_init", Boolean.toString(a.warmupInit()));
        } else {
            m.put("lr", Double.toString(w.lr()));
            m.put("beta1", Double.toString(w.beta1()));
            m.put("beta2", Double.toString(w.beta2()));
            m.put("eps", Double.toString(w.eps()));
            m.put("weight_decay", Double.toString(w.weightDecay()));
        }
        return m;
    }

    /**
     * Checks the input tensors: {@code param} F32 1-D or 2-D with at least one element, {@code grad.0 …
     * grad.(N−1)} (N ≥ 1, no gaps) F32 of the same shape, finite values, nothing else. Returns N.
     */
    static int checkInput(SafetensorsFile f) {
        if (!f.contains("param")) {
            throw new IllegalArgumentException(f.source() + ": missing tensor 'param' (file has " + f.names() + ")");
        }
        SafetensorsEntry p = f.entry("param");
        if (!p.dtypeName().equals("F32")) {
            throw new IllegalArgumentException(f.source() + ": tensor 'param' has dtype " + p.dtypeName() + "; optimizer-step needs F32");
        }
        if (p.rank() < 1 || p.rank() > 2 || p.numel() < 1) {
            throw new IllegalArgumentException(f.source() + ": tensor 'param' " + p.shapeString()
                    + " must be 1-D or 2-D with at least one element");
        }
        int steps = 0;
        while (f.contains("grad." + steps)) {
            steps++;
        }
        if (steps == 0) {
            throw new IllegalArgumentException(f.source() + ": missing tensor 'grad.0' (the gradient of the first step)");
        }
        for (String name : f.names()) {
            boolean known = name.equals("param");
            if (name.startsWith("grad.")) {
                String k = name.substring(5);
                known = k.matches("0|[1-9][0-9]{0,8}") && Integer.parseInt(k) < steps;
                if (!known) {
                    throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' does not continue grad.0 … grad."
                            + (steps - 1) + " (gradients must be numbered from 0 without gaps)");
                }
            }
            if (!known) {
                throw new IllegalArgumentException(f.source() + ": unexpected tensor '" + name
                        + "' (the input holds 'param' and 'grad.0', 'grad.1', ...)");
            }
            SafetensorsEntry e = f.entry(name);
            if (!e.dtypeName().equals("F32")) {
                throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' has dtype " + e.dtypeName()
                        + "; optimizer-step needs F32");
            }
            if (!Arrays.equals(e.shape(), p.shape())) {
                throw new IllegalArgumentException(f.source() + ": shape mismatch: " + name + " " + e.shapeString() + " and param "
                        + p.shapeString());
            }
            Tensor t = f.tensor(name);
            for (long i = 0; i < t.numel(); i++) {
                float v = t.get(i);
                if (!Float.isFinite(v)) {
                    throw new IllegalArgumentException(f.source() + ": tensor '" + name + "' holds " + v + " at flat index " + i
                            + " (values must be finite)");
                }
            }
        }
        return steps;
    }
}
