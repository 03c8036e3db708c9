package dev.rslora.bench;

import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.train.SeqLogprob;
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

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The CPU sequence log-probs ({@link SeqLogprob}) at a DPO-like shape: 16 rows (B·T) of fp32 logits
 * over a vocabulary of 32000 or 128256, forward (lse and the summed log-prob) and backward (dlogits into
 * a separate tensor, from the lse the forward gives these logits). Whether the Vector API rows pay: run once as is and once with
 * {@code -jvmArgsAppend -Drslora.train.scalar=true} (the scalar rows: Math.exp in double), e.g.
 * {@code java -jar jmh/target/benchmarks.jar SeqLogprobBenchmark -f 1}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class SeqLogprobBenchmark {
    @Param({"32000", "128256"})
    public int vocab;

    private static final int ROWS = 16;
    private Arena arena;
    private Tensor logits;
    private Tensor work;
    private Tensor lse;
    private Tensor logp;
    private Tensor grad;
    private int[] labels;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        SplittableRandom rnd = new SplittableRandom(1);
        logits = Tensor.allocate(arena, DType.F32, 2, ROWS / 2, vocab);
        for (long i = 0; i < logits.numel(); i++) {
            logits.set(i, (float) rnd.nextDouble(-10, 10));
        }
        work = Tensor.allocate(arena, DType.F32, 2, ROWS / 2, vocab);
        lse = Tensor.allocate(arena, DType.F32, 2, ROWS / 2);
        logp = Tensor.allocate(arena, DType.F32, 2);
        grad = Tensor.allocate(arena, DType.F32, 2);
        grad.fill(1f);
        labels = new int[ROWS];
        for (int i = 0; i < ROWS; i++) {
            labels[i] = rnd.nextInt(vocab);
        }
        // the backward reads the forward's lse: without this it would exponentiate x − 0 instead of x − lse
        SeqLogprob.forward(logits, labels, lse, logp);
        System.out.println("SeqLogprob vectorized: " + SeqLogprob.vectorized());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    /** lse of every row and the summed log-probs. */
    @Benchmark
    public Tensor forward() {
        SeqLogprob.forward(logits, labels, lse, logp);
        return logp;
    }

    /** dlogits into a separate tensor (the forward's lse reused). */
    @Benchmark
    public Tensor backward() {
        SeqLogprob.backward(logits, labels, lse, grad, work);
        return work;
    }
}
