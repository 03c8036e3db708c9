package dev.rslora.cli;

import dev.rslora.core.Init;
import dev.rslora.core.Scaling;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.ModuleSelector;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.foreign.Arena;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

/** {@code rslora init}: a fresh adapter in PEFT layout (A per --init, B = 0) for modules of a base checkpoint. */
@Command(name = "init", description = {
        "Create a new adapter in PEFT layout for the modules of BASE matching --target-modules.",
        "A initialised (default: U(±1/√d_in); gaussian: N(0, 1/r²)), B = 0, F32; use_rslora true unless --scaling lora."})
final class InitCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--base", required = true, paramLabel = "BASE", description = "base checkpoint: a .safetensors file or a shard folder")
    Path base;

    // split here, not by picocli: its quote handling would drop a name holding a stray quote
    @Option(names = "--target-modules", required = true, paramLabel = "NAMES",
            description = "module names, comma separated, or the option repeated (suffix match on the module path, "
                    + "as PEFT); each must match a 2-D weight of BASE")
    List<String> targetModules;

    @Option(names = "--rank", required = true, paramLabel = "R", description = "rank r >= 1")
    int rank;

    @Option(names = "--alpha", required = true, paramLabel = "A", description = "LoRA alpha (> 0, may be fractional)")
    double alpha;

    @Option(names = "--scaling", defaultValue = "rslora", paramLabel = "rslora|lora",
            description = "rslora: γ = α/√r (default); lora: γ = α/r")
    String scaling;

    @Option(names = "--init", defaultValue = "default", paramLabel = "default|gaussian", description = "initialisation of A (default: default)")
    String init;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "seed of the initialisation (default 0)")
    long seed;

    @Option(names = "--fan-in-fan-out", description = "the weights are stored [d_in, d_out] (GPT-2 Conv1D): A [r, d_in] with "
            + "d_in = dim 0, B [d_out, r], written as fan_in_fan_out true (PEFT's setting for such models)")
    boolean fanInFanOut;

    @Option(names = "--output", required = true, paramLabel = "ADAPTER_DIR", description = "new adapter folder (must not exist)")
    Path output;

    @Override
    public Integer call() throws Exception {
        Scaling sc = Scaling.fromName(scaling);
        Init in = switch (init) {
            case "default" -> Init.DEFAULT;
            case "gaussian" -> Init.GAUSSIAN;
            default -> throw new IllegalArgumentException("--init must be default or gaussian, got '" + init + "'");
        };
        if (Files.exists(output)) {
            throw new FileAlreadyExistsException(output.toString(), null, "the output already exists; remove it or choose another path");
        }
        List<String> names = targetModules.stream().flatMap(v -> Arrays.stream(v.split(",")))
                .map(String::strip).filter(n -> !n.isEmpty()).distinct().toList();
        if (names.isEmpty()) {
            throw new IllegalArgumentException("--target-modules names no module");
        }
        PeftConfig config = PeftConfig.create(names, rank, alpha, sc, in).withBaseModel(base.toString()).withFanInFanOut(fanInFanOut);
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint ckpt = BaseCheckpoint.open(base, arena);
            AdapterSet set = AdapterSet.init(ckpt, config, seed, arena);
            refuseUnmatched(names, set.modules().keySet());
            set.save(output, DType.F32);
            List<String> passed = notAdaptable(ckpt, config);
            if (!passed.isEmpty()) {
                spec.commandLine().getErr().printf("rslora init: note: targeted but not adapted (not a 2-D F32/BF16/F16 weight): %s%n",
                        String.join(", ", passed));
            }
            spec.commandLine().getErr().printf("rslora init: %d modules, r=%d, α=%s, γ=%.6g (%s), %d parameters -> %s%n",
                    set.modules().size(), rank, Inspect.number(alpha), sc.gamma(alpha, rank), scaling, set.loraParameterCount(), output);
        }
        return 0;
    }

    /**
     * Weights {@code P.weight} whose module P the config targets but which no adapter can take (not 2-D, or
     * not F32/BF16/F16: a quantised or fused 3-D tensor), each with its dtype and shape: init adapts the
     * others, and these would otherwise vanish from its module count without a word.
     */
    private static List<String> notAdaptable(BaseCheckpoint ckpt, PeftConfig config) {
        List<String> out = new java.util.ArrayList<>();
        if (config.targetModules() == null || config.targetModules().isAllLinear()) {
            return out;  // all-linear means the 2-D weights (AdapterSet.init): nothing else was asked for
        }
        Set<String> linear = Set.copyOf(ckpt.linearModules());
        for (String name : ckpt.names()) {
            if (!name.endsWith(".weight")) {
                continue;
            }
            String path = name.substring(0, name.length() - ".weight".length());
            if (!linear.contains(path) && config.targets(path)) {
                var e = ckpt.entry(name);
                out.add(name + " " + e.dtypeName() + " " + e.shapeString());
            }
        }
        return out;
    }

    /**
     * PEFT adapts what any name matches and ignores a name that matches nothing; here a name that
     * matches no module is a typo to report (`q_prj,v_proj` would otherwise adapt v_proj alone).
     * Each name is matched as its own one-name selector (PEFT's suffix rule at a dot boundary).
     */
    private void refuseUnmatched(List<String> names, Set<String> adapted) {
        List<String> unmatched = names.stream()
                .filter(n -> adapted.stream().noneMatch(ModuleSelector.names(List.of(n))::matches)).toList();
        if (!unmatched.isEmpty()) {
            throw new IllegalArgumentException("--target-modules " + (unmatched.size() == 1 ? "name " : "names ")
                    + unmatched.stream().map(n -> "'" + n + "'").collect(Collectors.joining(", "))
                    + " matches no 2-D weight of " + base + " (the other names match " + adapted.size() + " modules)");
        }
    }
}
