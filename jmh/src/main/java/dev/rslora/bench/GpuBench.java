package dev.rslora.bench;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.cuda.CudaBackendFactory;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.options.CommandLineOptions;
import org.openjdk.jmh.runner.options.Options;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.util.Collection;

/**
 * Runs {@link CudaLayerBenchmark} when CUDA can run here, and otherwise says why and exits with
 * status 3 (the GPU check's "skipped") without starting JMH:
 * <pre>
 *   java --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
 *        -cp benchmarks.jar dev.rslora.bench.GpuBench [JMH options, e.g. -rf json -rff gpu.json -p r=16]
 * </pre>
 * Without a benchmark pattern among the options it runs every method of CudaLayerBenchmark.
 * Exit status: 0 when JMH produced results, 1 when it produced none, 2 on bad options, 3 when
 * CUDA is unavailable.
 */
public final class GpuBench {
    private GpuBench() {
    }

    public static void main(String[] args) throws Exception {
        CommandLineOptions cli;
        try {
            cli = new CommandLineOptions(args);
        } catch (org.openjdk.jmh.runner.options.CommandLineOptionException e) {
            System.err.println("GpuBench: " + e.getMessage());
            System.exit(2);
            return;
        }
        BackendFactory.Availability a = new CudaBackendFactory().probe();
        if (!a.available()) {
            System.out.println("GPU benchmarks skipped: CUDA is unavailable here: " + a.detail());
            System.exit(3);
            return;
        }
        System.out.println("GPU benchmarks on " + a.detail());
        Options opts = cli.getIncludes().isEmpty()
                ? new OptionsBuilder().parent(cli).include(CudaLayerBenchmark.class.getName() + "\\.").build()
                : cli;
        Collection<RunResult> results = new Runner(opts).run();
        if (results.isEmpty()) {
            System.err.println("GpuBench: JMH produced no results (see the failures above)");
            System.exit(1);
        }
    }
}
