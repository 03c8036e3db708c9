package dev.rslora.cli;

import dev.rslora.peft.AdapterSet;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code rslora inspect ADAPTER_DIR}: modules, ranks, α, γ per module, dtype, parameter count. */
@Command(name = "inspect", description = "Show a PEFT adapter folder: modules, r, α and γ per module, dtype, parameter count.")
final class InspectCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "ADAPTER_DIR", description = "folder with adapter_config.json and adapter_model.safetensors")
    Path dir;

    @Override
    public Integer call() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            AdapterSet set = AdapterSet.load(dir, arena);
            Inspect.print(spec.commandLine().getOut(), dir, set);
        }
        return 0;
    }
}
