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

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.TimeUnit;

/**
 * Ours against the OpenBLAS sgemm chain ({@link OpenBlasChain}) in one JVM, interleaved, so that
 * both see the same machine: each invocation runs {@code block} LoRA steps of ours, pauses
 * {@code gapMs}, runs {@code block} steps of OpenBLAS, pauses again, timing each block. The pauses
 * (not timed) let the other side's threads go idle first: OpenBLAS's threads keep spinning for
 * about 2^28 TSC ticks (~0.13 s here) after a call, which would otherwise take a core from our
 * next block; ours park after ~0.3 ms. The ratio of the two blocks' times per step (per iteration
 * and its spread over iterations) is the figure to quote on a shared machine: a load that comes
 * and goes hits both sides alike. {@code busy} adds competing threads ({@link Busy}) for the whole
 * run: how each side degrades when another process holds a core. With {@code threads} = 1 both
 * sides run on the calling thread, and its CPU time per block (oursCpuNanos, peerCpuNanos) gives
 * each side's rate while it runs, which other processes on a shared machine do not dilute.
 * <pre>
 *   java -jar jmh/target/benchmarks.jar CpuVsOpenBlasBenchmark -p n=512 -p core=Cooperlake
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 6, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class CpuVsOpenBlasBenchmark {
    @Param({"512"})
    public int n;
    @Param({"1024"})
    public int d;
    @Param({"64"})
    public int r;
    /** OpenBLAS's kernel set (see {@link OpenBlasLoraBenchmark}). */
    @Param({"Cooperlake"})
    public String core;
    /** Our register tile (see {@link Tile}). */
    @Param({"auto"})
    public String tile;
    /** Threads of competing floating-point load ({@link Busy}). */
    @Param({"0"})
    public int busy;
    /** Steps per block. */
    @Param({"8"})
    public int block;
    /** Untimed pause after each block, ms. */
    @Param({"150"})
    public int gapMs;
    /** Threads of each side (ours: workers with the caller; OpenBLAS: its threads); 0: one per processor. */
    @Param({"0"})
    public int threads;

    private static final ThreadMXBean THREAD_TIME = ManagementFactory.getThreadMXBean();

    private CpuBackend backend;
    private LayerStep ours;
    private OpenBlasChain peer;
    private Busy load;

    @Setup(Level.Trial)
    public void setUp() {
        int t = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        OpenBlasChain.load(core, t);
        Tile.apply(tile);
        backend = new CpuBackend(t);
        ours = new LayerStep(backend, n, d, d, r, 0f);
        peer = new OpenBlasChain(n, d, r);
        load = busy > 0 ? new Busy(busy) : null;
    }

    /**
     * Block times per iteration of {@link #busyEffect}: each side without and with one thread of
     * competing load, all four in the same invocation.
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class BusyBlocks {
        public long oursNanos;
        public long oursBusyNanos;
        public long peerNanos;
        public long peerBusyNanos;
        public long steps;

        @Setup(Level.Iteration)
        public void reset() {
            oursNanos = 0;
            oursBusyNanos = 0;
            peerNanos = 0;
            peerBusyNanos = 0;
            steps = 0;
        }
    }

    /**
     * How much one busy core slows each side, measured side by side: per invocation a block of ours,
     * a block of ours while a {@link Busy} thread runs, a block of OpenBLAS, a block of OpenBLAS with
     * the busy thread (pauses between). The slowdowns are oursBusyNanos/oursNanos and
     * peerBusyNanos/peerNanos. Run with busy = 0 (the load is switched per block here).
     */
    @Benchmark
    public void busyEffect(BusyBlocks t, Blackhole bh) throws InterruptedException {
        float sum = 0;
        long t0 = System.nanoTime();
        for (int i = 0; i < block; i++) {
            sum += ours.lora();
        }
        t.oursNanos += System.nanoTime() - t0;
        Thread.sleep(gapMs);
        try (Busy b = new Busy(1)) {
            long t1 = System.nanoTime();
            for (int i = 0; i < block; i++) {
                sum += ours.lora();
            }
            t.oursBusyNanos += System.nanoTime() - t1;
        }
        Thread.sleep(gapMs);
        long t2 = System.nanoTime();
        for (int i = 0; i < block; i++) {
            sum += peer.lora();
        }
        t.peerNanos += System.nanoTime() - t2;
        Thread.sleep(gapMs);
        try (Busy b = new Busy(1)) {
            long t3 = System.nanoTime();
            for (int i = 0; i < block; i++) {
                sum += peer.lora();
            }
            t.peerBusyNanos += System.nanoTime() - t3;
        }
        Thread.sleep(gapMs);
        t.steps += block;
        bh.consume(sum);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (load != null) {
            load.close();
        }
        peer.close();
        ours.close();
        backend.close();
    }

    /**
     * Block times summed per iteration (JMH aux counters): the ratio is (peerNanos/peerSteps) /
     * (oursNanos/oursSteps); the same from the calling thread's CPU time (complete with threads = 1).
     */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Blocks {
        public long oursNanos;
        public long oursSteps;
        public long peerNanos;
        public long peerSteps;
        public long oursCpuNanos;
        public long peerCpuNanos;

        @Setup(Level.Iteration)
        public void reset() {
            oursNanos = 0;
            oursSteps = 0;
            peerNanos = 0;
            peerSteps = 0;
            oursCpuNanos = 0;
            peerCpuNanos = 0;
        }
    }

    /** One block of ours, a pause, one block of OpenBLAS, a pause. */
    @Benchmark
    public void oursThenOpenBlas(Blocks t, Blackhole bh) throws InterruptedException {
        long c0 = THREAD_TIME.getCurrentThreadCpuTime();
        long t0 = System.nanoTime();
        float sum = 0;
        for (int i = 0; i < block; i++) {
            sum += ours.lora();
        }
        long t1 = System.nanoTime();
        long c1 = THREAD_TIME.getCurrentThreadCpuTime();
        Thread.sleep(gapMs);
        long c2 = THREAD_TIME.getCurrentThreadCpuTime();
        long t2 = System.nanoTime();
        for (int i = 0; i < block; i++) {
            sum += peer.lora();
        }
        long t3 = System.nanoTime();
        long c3 = THREAD_TIME.getCurrentThreadCpuTime();
        Thread.sleep(gapMs);
        t.oursNanos += t1 - t0;
        t.peerNanos += t3 - t2;
        t.oursCpuNanos += c1 - c0;
        t.peerCpuNanos += c3 - c2;
        t.oursSteps += block;
        t.peerSteps += block;
        bh.consume(sum);
    }
}
