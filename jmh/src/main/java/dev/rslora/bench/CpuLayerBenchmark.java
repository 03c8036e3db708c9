package dev.rslora.bench;

import dev.rslora.backend.cpu.CpuBackend;
import dev.rslora.tensor.DType;
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

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.TimeUnit;

/**
 * One LoRA layer training step on the cpu backend, fp32: forward + backward (dX, dA, dB) against
 * the frozen base alone (forward with the adapter off + backward computing dX only), measured
 * side by side in one run. Effective GFLOP/s count what the layer must do:
 * LoRA = 4·N·d_in·d_out + 6·N·r·(d_in + d_out), base = 4·N·d_in·d_out
 * ({@code jmh/bench.sh cpu} runs it with the peers and turns the JSON into bench/RESULTS.md: GFLOP/s and R).
 * The two steps are also measured interleaved ({@link #loraThenBase}: one LoRA step then one
 * base step per invocation, each timed): on a shared, noisy machine that ratio is the reliable
 * one, since both sides see the same load. {@link #forwardThenBase} does the same with the forwards
 * alone (decoding: the LoRA forward against the frozen base's).
 * <pre>
 *   mvn -o -q -B package -DskipTests
 *   java -jar jmh/target/benchmarks.jar CpuLayerBenchmark -rf json -rff bench-cpu-layer.json
 * </pre>
 * The default run (r ∈ {16, 64, 256}, 5 benchmarks, 6×2 s warm-up + 8×2 s measurement each) is
 * 15 trials of 28 s, over 7 minutes; -p n=… -p dIn=… -p dOut=… -p dropout=0.1 sweep other shapes, -p tile=256
 * (with -jvmArgsAppend -XX:MaxVectorSize=32) another register tile, -p busy=1 a competing thread.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 6, time = 2)
@Measurement(iterations = 8, time = 2)
public class CpuLayerBenchmark {
    @Param({"512"})
    public int n;
    @Param({"1024"})
    public int dIn;
    @Param({"1024"})
    public int dOut;
    @Param({"16", "64", "256"})
    public int r;
    /** Dropout probability on the LoRA input (0 in the headline numbers). */
    @Param({"0"})
    public float dropout;
    /** The register tile: "auto" (the JIT's widest), or 512, 256, 128, 0 (see {@link Tile}). */
    @Param({"auto"})
    public String tile;
    /** X, W, dY, Y and dX's dtype: F32, or BF16 (a bf16 model; the adapter stays F32, see {@link LayerStep}). */
    @Param({"F32"})
    public String dtype;
    /** Threads of competing floating-point load ({@link Busy}) while measuring. */
    @Param({"0"})
    public int busy;
    /** Our worker threads, the caller included; 0: one per available processor. */
    @Param({"0"})
    public int threads;
    /**
     * Steps of each side per invocation of {@link #loraThenBase} and {@link #forwardThenBase}: 1
     * alternates single steps; more run each side's steps back to back. At N = 1 that changes R: a
     * LoRA step leaves 512 KB of dA and dB dirty in the caches (d = 1024, r = 64), and a base step
     * right after it was measured faster in blocks and the LoRA step slower (jmh/README.md), as if
     * the base step paid for writing them back.
     */
    @Param({"1"})
    public int block;

    private static final ThreadMXBean THREAD_TIME = ManagementFactory.getThreadMXBean();

    private CpuBackend backend;
    private LayerStep step;
    private Busy load;

    @Setup(Level.Trial)
    public void setUp() {
        Tile.apply(tile);
        backend = threads > 0 ? new CpuBackend(threads) : new CpuBackend();
        step = new LayerStep(backend, n, dIn, dOut, r, dropout, DType.valueOf(dtype.strip().toUpperCase(java.util.Locale.ROOT)));
        load = busy > 0 ? new Busy(busy) : null;
    }

    /** Forward (Y, U) and backward (dX, dA, dB) with the adapter active. */
    @Benchmark
    public void loraForwardBackward(Blackhole bh) {
        bh.consume(step.lora());
    }

    /** The frozen base layer alone: forward with the adapter off, backward computing dX only. */
    @Benchmark
    public void baseForwardBackward(Blackhole bh) {
        bh.consume(step.base());
    }

    /**
     * Time spent in each half of {@link #loraThenBase} (or of {@link #forwardThenBase}: the LoRA and
     * base forwards), summed per iteration (JMH aux counters).
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Interleaved {
        public long loraNanos;
        public long baseNanos;
        /** Pairs of steps (each side ran this many). */
        public long steps;

        @Setup(Level.Iteration)
        public void reset() {
            loraNanos = 0;
            baseNanos = 0;
            steps = 0;
        }
    }

    /**
     * {@link #block} LoRA steps then as many base steps, each side timed: R = Σ loraNanos / Σ
     * baseNanos, side by side.
     */
    @Benchmark
    public void loraThenBase(Interleaved t, Blackhole bh) {
        timePair(t, bh, block, step::lora, step::base);
    }

    /**
     * Decoding: {@link #block} LoRA forwards (adapter active, eval mode) then as many frozen-base
     * forwards (adapter off) per invocation, each side timed, no backward; LoRA forward ÷ base
     * forward = Σ loraNanos / Σ baseNanos.
     */
    @Benchmark
    public void forwardThenBase(Interleaved t, Blackhole bh) {
        timePair(t, bh, block, step::loraForward, step::baseForward);
    }

    /** One call that returns a value to consume (a LoRA or base step, or forward). */
    private interface Side {
        float run();
    }

    /** Runs {@code lora} then {@code base} {@code steps} times each, adding each side's wall time to {@code t}. */
    private static void timePair(Interleaved t, Blackhole bh, int steps, Side lora, Side base) {
        float sum = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            sum += lora.run();
        }
        long t1 = System.nanoTime();
        for (int i = 0; i < steps; i++) {
            sum += base.run();
        }
        long t2 = System.nanoTime();
        t.loraNanos += t1 - t0;
        t.baseNanos += t2 - t1;
        t.steps += steps;
        bh.consume(sum);
    }

    /** CPU time of this thread in each half of {@link #loraThenBaseCpu}, summed per iteration. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class CpuTimes {
        public long loraCpuNanos;
        public long baseCpuNanos;
        public long steps;

        @Setup(Level.Iteration)
        public void reset() {
            loraCpuNanos = 0;
            baseCpuNanos = 0;
            steps = 0;
        }
    }

    /**
     * As {@link #loraThenBase}, timed in this thread's CPU time: with threads = 1 all the work runs
     * on this thread, so the figures are the rates while it runs, which other processes on a
     * shared machine do not dilute (GFLOP/s per CPU-second of the base GEMM; R).
     */
    @Benchmark
    public void loraThenBaseCpu(CpuTimes t, Blackhole bh) {
        long t0 = THREAD_TIME.getCurrentThreadCpuTime();
        float l = step.lora();
        long t1 = THREAD_TIME.getCurrentThreadCpuTime();
        float b = step.base();
        long t2 = THREAD_TIME.getCurrentThreadCpuTime();
        t.loraCpuNanos += t1 - t0;
        t.baseCpuNanos += t2 - t1;
        t.steps++;
        bh.consume(l + b);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (load != null) {
            load.close();
        }
        step.close();
        backend.close();
    }
}
