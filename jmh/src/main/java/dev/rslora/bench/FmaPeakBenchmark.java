package dev.rslora.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.concurrent.TimeUnit;

/**
 * The machine's fp32 FMA ceiling per vector width, the yardstick the cpu backend's register tiles
 * are judged against: {@value #CHAINS} independent accumulator chains (enough to cover the FMA
 * latency of two pipes, and few enough to stay in 16 registers), all operands in registers.
 * One operation = one FMA instruction; GFLOP/s = 2 · lanes / (ns per op) per thread. The aux
 * counters also give the rate per second of this thread's CPU time (cpuNanos, fmas), which a
 * shared machine's other processes do not dilute. Many short iterations: the report takes the best
 * of them as the ceiling, since on a shared host the rate drops for stretches of seconds even while
 * the thread keeps its CPU.
 * <pre>
 *   java ... -jar benchmarks.jar FmaPeakBenchmark -t 1      (one core; -t 2: both)
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 20, time = 100, timeUnit = TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class FmaPeakBenchmark {
    static final int CHAINS = 10;
    static final int STEPS = 1 << 16;
    private static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();
    private static final VectorSpecies<Float> S512 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Float> S256 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Float> S128 = FloatVector.SPECIES_128;

    /** This thread's CPU time and FMA instructions, summed per iteration. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Cpu {
        public long cpuNanos;
        public long fmas;

        @Setup(Level.Iteration)
        public void reset() {
            cpuNanos = 0;
            fmas = 0;
        }
    }

    /** Inputs the JIT cannot constant-fold. */
    public float a = 0.999f;
    public float b = 1e-6f;

    @Benchmark
    @OperationsPerInvocation(CHAINS * STEPS)
    public float fma512(Cpu t) {
        long c0 = THREADS.getCurrentThreadCpuTime();
        float v = chains512();
        t.cpuNanos += THREADS.getCurrentThreadCpuTime() - c0;
        t.fmas += CHAINS * STEPS;
        return v;
    }

    @Benchmark
    @OperationsPerInvocation(CHAINS * STEPS)
    public float fma256(Cpu t) {
        long c0 = THREADS.getCurrentThreadCpuTime();
        float v = chains256();
        t.cpuNanos += THREADS.getCurrentThreadCpuTime() - c0;
        t.fmas += CHAINS * STEPS;
        return v;
    }

    @Benchmark
    @OperationsPerInvocation(CHAINS * STEPS)
    public float fma128(Cpu t) {
        long c0 = THREADS.getCurrentThreadCpuTime();
        float v = chains128();
        t.cpuNanos += THREADS.getCurrentThreadCpuTime() - c0;
        t.fmas += CHAINS * STEPS;
        return v;
    }

    // One copy per width, each naming its species constant: a species passed as an argument is
    // intrinsified only when the JIT happens to inline the call.
    private float chains512() {
        FloatVector m = FloatVector.broadcast(S512, a);
        FloatVector c = FloatVector.broadcast(S512, b);
        FloatVector x0 = c, x1 = c.add(1f), x2 = c.add(2f), x3 = c.add(3f), x4 = c.add(4f);
        FloatVector x5 = c.add(5f), x6 = c.add(6f), x7 = c.add(7f), x8 = c.add(8f), x9 = c.add(9f);
        for (int i = 0; i < STEPS; i++) {
            x0 = x0.fma(m, c); x1 = x1.fma(m, c); x2 = x2.fma(m, c); x3 = x3.fma(m, c); x4 = x4.fma(m, c);
            x5 = x5.fma(m, c); x6 = x6.fma(m, c); x7 = x7.fma(m, c); x8 = x8.fma(m, c); x9 = x9.fma(m, c);
        }
        return x0.add(x1).add(x2).add(x3).add(x4).add(x5).add(x6).add(x7).add(x8).add(x9).reduceLanes(
                jdk.incubator.vector.VectorOperators.ADD);
    }

    private float chains256() {
        FloatVector m = FloatVector.broadcast(S256, a);
        FloatVector c = FloatVector.broadcast(S256, b);
        FloatVector x0 = c, x1 = c.add(1f), x2 = c.add(2f), x3 = c.add(3f), x4 = c.add(4f);
        FloatVector x5 = c.add(5f), x6 = c.add(6f), x7 = c.add(7f), x8 = c.add(8f), x9 = c.add(9f);
        for (int i = 0; i < STEPS; i++) {
            x0 = x0.fma(m, c); x1 = x1.fma(m, c); x2 = x2.fma(m, c); x3 = x3.fma(m, c); x4 = x4.fma(m, c);
            x5 = x5.fma(m, c); x6 = x6.fma(m, c); x7 = x7.fma(m, c); x8 = x8.fma(m, c); x9 = x9.fma(m, c);
        }
        return x0.add(x1).add(x2).add(x3).add(x4).add(x5).add(x6).add(x7).add(x8).add(x9).reduceLanes(
                jdk.incubator.vector.VectorOperators.ADD);
    }

    private float chains128() {
        FloatVector m = FloatVector.broadcast(S128, a);
        FloatVector c = FloatVector.broadcast(S128, b);
        FloatVector x0 = c, x1 = c.add(1f), x2 = c.add(2f), x3 = c.add(3f), x4 = c.add(4f);
        FloatVector x5 = c.add(5f), x6 = c.add(6f), x7 = c.add(7f), x8 = c.add(8f), x9 = c.add(9f);
        for (int i = 0; i < STEPS; i++) {
            x0 = x0.fma(m, c); x1 = x1.fma(m, c); x2 = x2.fma(m, c); x3 = x3.fma(m, c); x4 = x4.fma(m, c);
            x5 = x5.fma(m, c); x6 = x6.fma(m, c); x7 = x7.fma(m, c); x8 = x8.fma(m, c); x9 = x9.fma(m, c);
        }
        return x0.add(x1).add(x2).add(x3).add(x4).add(x5).add(x6).add(x7).add(x8).add(x9).reduceLanes(
                jdk.incubator.vector.VectorOperators.ADD);
    }

    @Benchmark
    @OperationsPerInvocation(CHAINS * STEPS)
    public float fmaScalar(Cpu t) {
        long c0 = THREADS.getCurrentThreadCpuTime();
        float v = scalarChains();
        t.cpuNanos += THREADS.getCurrentThreadCpuTime() - c0;
        t.fmas += CHAINS * STEPS;
        return v;
    }

    private float scalarChains() {
        float m = a;
        float c = b;
        float x0 = c, x1 = c + 1, x2 = c + 2, x3 = c + 3, x4 = c + 4, x5 = c + 5, x6 = c + 6, x7 = c + 7, x8 = c + 8,
                x9 = c + 9;
        for (int i = 0; i < STEPS; i++) {
            x0 = Math.fma(x0, m, c); x1 = Math.fma(x1, m, c); x2 = Math.fma(x2, m, c); x3 = Math.fma(x3, m, c);
            x4 = Math.fma(x4, m, c); x5 = Math.fma(x5, m, c); x6 = Math.fma(x6, m, c); x7 = Math.fma(x7, m, c);
            x8 = Math.fma(x8, m, c); x9 = Math.fma(x9, m, c);
        }
        return x0 + x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9;
    }
}
