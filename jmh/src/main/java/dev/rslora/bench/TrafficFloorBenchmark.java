package dev.rslora.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
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

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The bytes a layer call of one row (N = 1, fp32) moves, moved alone: no arithmetic but the sums
 * that keep the reads alive. The floor under issue 14's N = 1 targets, measured on the machine that
 * runs it instead of counted:
 * <pre>
 *   base step      W [d_out, d_in] read in each of two passes (forward, backward)
 *   LoRA step      the same, plus A [r, d_in] and B [d_out, r] read in each pass, and dA [r, d_in]
 *                  and dB [d_out, r] written in the backward's (in place, every step, as a training
 *                  step writes its gradients)
 *   base forward   W read once;  LoRA forward: W, A and B read once
 * </pre>
 * A pass splits every tensor among the threads, each its own contiguous 1/T of the bytes, and ends
 * when all threads are done (the cpu backend's passes end at a join too). Each thread moves its share
 * of the adapter's tensors first, then W's: the order matters on the 2-core Zen 4 VM, where W first
 * gave the same bytes R = 1.28–1.34 against 1.18–1.24 (d = 1024, r = 64, two threads, blocks of 32,
 * two runs each, 2026-12-07), and a floor is the lower. Reads run four vector
 * sums side by side; writes store a value taken from the sums. The threads spin between passes,
 * so no wake-up is timed. Aux counters as {@link CpuLayerBenchmark#loraThenBase}'s: R = Σ loraNanos
 * / Σ baseNanos, k steps a side ({@link #block}).
 * <pre>
 *   java -jar jmh/target/benchmarks.jar TrafficFloorBenchmark -p block=32
 * </pre>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 6, time = 1)
public class TrafficFloorBenchmark {
    /** Rows: 1 only (the report reads the shape from it; the floor is that of one row). */
    @Param({"1"})
    public int n;
    @Param({"1024"})
    public int dIn;
    @Param({"1024"})
    public int dOut;
    @Param({"64"})
    public int r;
    /** Steps of each side per invocation. */
    @Param({"32"})
    public int block;
    /** Threads moving the bytes; 0: one per available processor (what the cpu backend uses by default). */
    @Param({"0"})
    public int threads;

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Bytes per loop step of {@link #read} and {@link #write}: four vectors. */
    private static final int STEP = 4 * S.vectorByteSize();

    /** What a pass moves. */
    private enum Pass { BASE, LORA_FORWARD, LORA_BACKWARD }

    private Arena arena;
    private MemorySegment w, a, b, gradA, gradB;
    private Team team;

    @Setup(Level.Trial)
    public void setUp() {
        if (n != 1) {
            throw new IllegalArgumentException("TrafficFloorBenchmark models one row: n must be 1, got " + n);
        }
        for (long bytes : new long[] {4L * dIn * dOut, 4L * r * dIn, 4L * dOut * r}) {
            if (bytes % STEP != 0) {
                throw new IllegalArgumentException("tensor of " + bytes + " bytes (dIn=" + dIn + ", dOut=" + dOut + ", r=" + r
                        + ") is not a multiple of " + STEP + " bytes");
            }
        }
        int t = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        arena = Arena.ofShared();
        w = fill(arena.allocate(4L * dIn * dOut, 64));
        a = fill(arena.allocate(4L * r * dIn, 64));
        b = fill(arena.allocate(4L * dOut * r, 64));
        gradA = arena.allocate(4L * r * dIn, 64);
        gradB = arena.allocate(4L * dOut * r, 64);
        team = new Team(t);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws InterruptedException {
        team.close();
        arena.close();
    }

    private static MemorySegment fill(MemorySegment m) {
        for (long i = 0; i < m.byteSize() / 4; i++) {
            m.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, (i % 7) * 1e-3f);
        }
        return m;
    }

    /** {@link #block} LoRA steps' bytes then as many base steps', each side timed. */
    @Benchmark
    public void loraThenBase(CpuLayerBenchmark.Interleaved t, Blackhole bh) {
        timePair(t, bh, new Pass[] {Pass.LORA_FORWARD, Pass.LORA_BACKWARD}, new Pass[] {Pass.BASE, Pass.BASE});
    }

    /** The forwards' bytes alone: {@link #block} LoRA forwards then as many base forwards. */
    @Benchmark
    public void forwardThenBase(CpuLayerBenchmark.Interleaved t, Blackhole bh) {
        timePair(t, bh, new Pass[] {Pass.LORA_FORWARD}, new Pass[] {Pass.BASE});
    }

    /** {@link #block} times the passes of {@code lora}, then as many times {@code base}'s, each side's wall time added to t. */
    private void timePair(CpuLayerBenchmark.Interleaved t, Blackhole bh, Pass[] lora, Pass[] base) {
        long t0 = System.nanoTime();
        for (int i = 0; i < block; i++) {
            for (Pass p : lora) {
                team.pass(p);
            }
        }
        long t1 = System.nanoTime();
        for (int i = 0; i < block; i++) {
            for (Pass p : base) {
                team.pass(p);
            }
        }
        long t2 = System.nanoTime();
        t.loraNanos += t1 - t0;
        t.baseNanos += t2 - t1;
        t.steps += block;
        bh.consume(team.sum());
    }

    /** Thread {@code k} of {@code of}'s share of one pass, the adapter's tensors first; returns the sum of what it read. */
    private float share(Pass pass, int k, int of) {
        float s = 0;
        if (pass == Pass.LORA_FORWARD) {
            s += read(a, k, of) + read(b, k, of);
        } else if (pass == Pass.LORA_BACKWARD) {
            s += read(b, k, of);
            write(gradB, k, of, s);
            s += read(a, k, of);
            write(gradA, k, of, s);
        }
        return s + read(w, k, of);
    }

    /** First byte of share k of {@code of} in a tensor of {@code bytes}, on a {@link #STEP} boundary. */
    private static long bound(long bytes, int k, int of) {
        return bytes / STEP * k / of * STEP;
    }

    private static float read(MemorySegment m, int k, int of) {
        long end = bound(m.byteSize(), k + 1, of);
        int vb = S.vectorByteSize();
        FloatVector s0 = FloatVector.zero(S);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (long o = bound(m.byteSize(), k, of); o < end; o += STEP) {
            s0 = s0.add(FloatVector.fromMemorySegment(S, m, o, LE));
            s1 = s1.add(FloatVector.fromMemorySegment(S, m, o + vb, LE));
            s2 = s2.add(FloatVector.fromMemorySegment(S, m, o + 2L * vb, LE));
            s3 = s3.add(FloatVector.fromMemorySegment(S, m, o + 3L * vb, LE));
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }

    private static void write(MemorySegment m, int k, int of, float value) {
        long end = bound(m.byteSize(), k + 1, of);
        int vb = S.vectorByteSize();
        FloatVector v = FloatVector.broadcast(S, value);
        for (long o = bound(m.byteSize(), k, of); o < end; o += STEP) {
            v.intoMemorySegment(m, o, LE);
            v.intoMemorySegment(m, o + vb, LE);
            v.intoMemorySegment(m, o + 2L * vb, LE);
            v.intoMemorySegment(m, o + 3L * vb, LE);
        }
    }

    /**
     * The calling thread plus size − 1 spinning helpers: {@link #pass} posts a pass, every thread
     * does its share, and the caller returns when all have.
     */
    private final class Team {
        private final int size;
        private final Thread[] helpers;
        private final AtomicLong posted = new AtomicLong();
        private final AtomicInteger done = new AtomicInteger();
        private final float[] sums;
        private volatile Pass pass;
        private volatile boolean stop;

        Team(int size) {
            this.size = size;
            this.sums = new float[size];
            this.helpers = new Thread[size - 1];
            for (int i = 1; i < size; i++) {
                int k = i;
                helpers[i - 1] = new Thread(() -> loop(k), "traffic-" + i);
                helpers[i - 1].setDaemon(true);
                helpers[i - 1].start();
            }
        }

        private void loop(int k) {
            long seen = 0;
            while (!stop) {
                long p = posted.get();
                if (p == seen) {
                    Thread.onSpinWait();
                    continue;
                }
                seen = p;
                sums[k] += share(pass, k, size);
                done.incrementAndGet();
            }
        }

        void pass(Pass p) {
            pass = p;
            done.set(0);
            posted.incrementAndGet();
            sums[0] += share(p, 0, size);
            while (done.get() < size - 1) {
                Thread.onSpinWait();
            }
        }

        float sum() {
            float s = 0;
            for (float x : sums) {
                s += x;
            }
            return s;
        }

        void close() throws InterruptedException {
            stop = true;
            for (Thread t : helpers) {
                t.join();
            }
        }
    }
}
