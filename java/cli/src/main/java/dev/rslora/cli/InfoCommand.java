package dev.rslora.cli;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.Backends;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code rslora info}: Java version, and each backend's availability with the reason. */
@Command(name = "info", description = "Java version, available backends and, for each unavailable one, why.")
final class InfoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.printf("rslora 0.1.0%n");
        out.printf("java: %s (%s, %s)%n", System.getProperty("java.version"), System.getProperty("java.vm.name"),
                System.getProperty("java.home"));
        out.printf("cpu: %s %s, %d cores available%n", System.getProperty("os.arch"), System.getProperty("os.name"),
                Runtime.getRuntime().availableProcessors());
        out.printf("backends (auto picks the first available; override with -D%s=NAME):%n", Backends.PROPERTY);
        String chosen = null;
        for (Map.Entry<String, BackendFactory.Availability> e : Backends.probeAll().entrySet()) {
            BackendFactory.Availability a = e.getValue();
            if (a.available() && chosen == null) {
                chosen = e.getKey();
            }
            out.printf("  %-10s %-12s %s%n", e.getKey(), a.available() ? "available" : "unavailable", a.detail());
        }
        out.printf("auto -> %s%n", chosen == null ? "none" : chosen);
        String wanted = System.getProperty(Backends.PROPERTY, "auto");
        if (!wanted.equals("auto")) {
            String outcome;
            try {
                outcome = Backends.get(wanted).name();
            } catch (RuntimeException e) {
                outcome = "unavailable: " + Main.oneLine(e);
            }
            out.printf("-D%s=%s -> %s%n", Backends.PROPERTY, wanted, outcome);
        }
        out.flush();
        return 0;
    }
}
