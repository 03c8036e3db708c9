package dev.rslora.cli;

import dev.rslora.backend.Backend;
import dev.rslora.backend.Backends;
import dev.rslora.backend.GradMode;
import dev.rslora.core.Init;
import dev.rslora.core.LoraConfig;
import dev.rslora.core.LoraLinear;
import dev.rslora.core.Scaling;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code rslora layer}: one training-mode forward and backward of a LoRA layer on tensors read
 * from a safetensors file; writes y, grad_x, grad_lora_A, grad_lora_B in the input dtype.
 * The dropout mask is that of (seed, step 0, layer 0).
 */
@Command(name = "layer", description = {
        "Run one training-mode forward + backward of a LoRA linear layer.",
        "Input tensors: x [N,d_in], weight [d_out,d_in], optional bias [d_out], lora_A [r,d_in], lora_B [d_out,r],",
        "grad_y [N,d_out], all F32, all BF16 or all F16. Output: y, grad_x, grad_lora_A, grad_lora_B (input dtype)."})
final class LayerCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--input", required = true, paramLabel = "IN.safetensors", description = "input tensors")
    Path input;

    @Option(names = "--output", required = true, paramLabel = "OUT.safetensors", description = "output file (written atomically)")
    Path output;

    @Option(names = "--alpha", required = true, paramLabel = "A", description = "LoRA alpha (> 0)")
    double alpha;

    @Option(names = "--scaling", defaultValue = "rslora", paramLabel = "rslora|lora",
            description = "rslora: γ = α/√r (default); lora: γ = α/r")
    String scaling;

    @Option(names = "--dropout", defaultValue = "0", paramLabel = "P", description = "dropout probability in [0, 1) (default 0)")
    double dropout;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "dropout seed (default 0)")
    long seed;

    @Option(names = "--backend", defaultValue = "${sys:rslora.backend:-auto}", paramLabel = "reference|cpu|cuda|auto",
            description = "backend (default: -Drslora.backend when set, else auto)")
    String backendName;

    @Override
    public Integer call() throws Exception {
        Scaling sc = Scaling.fromName(scaling);
        OutputPaths.requireNotALinkToAStream(output);
        OutputPaths.requireNotReadOnly(output);
        OutputPaths.requireNotAnInput(output, input);
        try (Arena arena = Arena.ofShared()) {
            SafetensorsFile in = SafetensorsFile.open(input, arena);
            LayerInputs t = LayerInputs.from(in);
            LoraConfig cfg = new LoraConfig(t.rank(), alpha, sc, dropout, Init.DEFAULT, seed);
            Backend backend = Backends.get(backendName);
            DType dt = t.dtype();
            Tensor y = Tensor.allocate(arena, dt, t.n(), t.dOut());
            Tensor dx = Tensor.allocate(arena, dt, t.n(), t.dIn());
            try (LoraLinear layer = LoraLinear.withAdapter(t.weight(), t.bias(), t.loraA(), t.loraB(), cfg, backend, 0)) {
                layer.train(true);
                layer.setGradMode(GradMode.ASSIGN);
                layer.forward(t.x(), y);
                layer.backward(t.gradY(), dx);
                SafetensorsWriter w = new SafetensorsWriter()
                        .metadata("format", "pt")
                        .metadata("rslora.scaling", scaling)
                        .metadata("rslora.alpha", Double.toString(alpha))
                        .metadata("rslora.gamma", Double.toString(cfg.gamma()))
                        .metadata("rslora.dropout", Double.toString(dropout))
                        .metadata("rslora.seed", Long.toString(seed))
                        .metadata("rslora.backend", backend.name())
                        .add("y", y)
                        .add("grad_x", dx)
                        .add("grad_lora_A", layer.gradA())
                        .add("grad_lora_B", layer.gradB());
                OutputPaths.write(w, output);
                warnNonFinite("y", y);
                warnNonFinite("grad_x", dx);
                warnNonFinite("grad_lora_A", layer.gradA());
                warnNonFinite("grad_lora_B", layer.gradB());
            }
            spec.commandLine().getErr().printf("rslora layer: N=%d d_in=%d d_out=%d r=%d %s γ=%.6g backend=%s -> %s%n",
                    t.n(), t.dIn(), t.dOut(), t.rank(), dt, cfg.gamma(), backend.name(), output);
        }
        return 0;
    }

    /** One warning line for an output holding NaN or ±Inf ({@link NonFiniteOutputs}). */
    private void warnNonFinite(String name, Tensor t) {
        NonFiniteOutputs.warn(spec.commandLine().getErr(), "layer", name, t,
                "an input holds NaN or ±Inf, or a value overflowed " + t.dtype());
    }
}
