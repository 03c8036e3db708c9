package dev.rslora.bench;

import dev.rslora.backend.cpu.CpuBackend;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.infra.Blackhole;

import java.util.concurrent.TimeUnit;

/**
 * The cpu backend's two routes for the LoRA terms of Y and dX, side by side in one JVM: the LoRA
 * K-segment of each register tile (a backend made with {@code -Drslora.cpu.mergedWeight=off}) and
 * W' = W + γB·A formed per pass (the default, taken when N ≥ 2·d and there is no dropout). Each
 * invocation runs one fp32 LoRA step (forward + backward: dX, dA, dB) on each backend, the order
 * alternating, each timed; segment ÷ merged = Σ segmentNanos / Σ mergedNanos per iteration (> 1:
 * the merged route is faster). Both backends see the same inputs and the same load.
 * <pre>
 *   java -jar jmh/target/benchmarks.jar CpuMergedRouteBenchmark -rf json -rff merged-route.json
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 8, time = 2)
public class CpuMergedRouteBenchmark {
    /** 512: below 2·d, neither backend takes the merged route (the control: a ratio of 1 expected). */
    @Param({"512", "2048", "8192"})
    public int n;
    @Param({"1024"})
    public int d;
    @Param({"64", "256"})
    public int r;

    private CpuBackend segmentBackend;
    private CpuBackend mergedBackend;
    private LayerStep segment;
    private LayerStep merged;
    private boolean mergedFirst;

    @Setup(Level.Trial)
    public void setUp() {
        String key = "rslora.cpu.mergedWeight";
        String old = System.getProperty(key);
        System.setProperty(key, "off");
        segmentBackend = new CpuBackend();
        System.clearProperty(key);
        mergedBackend = new CpuBackend();
        if (old != null) {
            System.setProperty(key, old);
        }
        segment = new LayerStep(segmentBackend, n, d, d, r, 0f);
        merged = new LayerStep(mergedBackend, n, d, d, r, 0f);
    }

    /** Time in each route's steps, summed per iteration (JMH aux counters). */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Routes {
        public long segmentNanos;
        public long mergedNanos;
        public long steps;

        @Setup(Level.Iteration)
        public void reset() {
            segmentNanos = 0;
            mergedNanos = 0;
            steps = 0;
        }
    }

    /** One LoRA step on each backend, in alternating order, each timed. */
    @Benchmark
    public void segmentAndMerged(Routes t, Blackhole bh) {
        mergedFirst = !mergedFirst;
        LayerStep first = mergedFirst ? merged : segment;
        LayerStep second = mergedFirst ? segment : merged;
        long t0 = System.nanoTime();
        float sum = first.lora();
        long t1 = System.nanoTime();
        sum += second.lora();
        long t2 = System.nanoTime();
        t.mergedNanos += mergedFirst ? t1 - t0 : t2 - t1;
        t.segmentNanos += mergedFirst ? t2 - t1 : t1 - t0;
        t.steps++;
        bh.consume(sum);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        segment.close();
        merged.close();
        segmentBackend.close();
        mergedBackend.close();
    }
}
