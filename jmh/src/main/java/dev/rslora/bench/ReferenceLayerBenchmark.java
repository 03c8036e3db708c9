package dev.rslora.bench;

import dev.rslora.backend.reference.ReferenceBackend;
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
 * The scalar {@code reference} backend (double accumulation, one thread: the oracle, not a fast
 * path) doing one LoRA layer step, fp32, against its own frozen base (adapter off, dX only). It
 * takes seconds per step, so it runs single shots at the smallest shape only; same parameter and
 * method names as CpuLayerBenchmark so the report pairs them alike.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 1)
@Measurement(iterations = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class ReferenceLayerBenchmark {
    @Param({"512"})
    public int n;
    @Param({"1024"})
    public int dIn;
    @Param({"1024"})
    public int dOut;
    @Param({"16", "64", "256"})
    public int r;
    @Param({"0"})
    public float dropout;

    private ReferenceBackend backend;
    private LayerStep step;

    @Setup(Level.Trial)
    public void setUp() {
        backend = new ReferenceBackend();
        step = new LayerStep(backend, n, dIn, dOut, r, dropout);
    }

    /** Forward (Y, U) and backward (dX, dA, dB) with the adapter active. */
    @Benchmark
    public void loraForwardBackward(Blackhole bh) {
        bh.consume(step.lora());
    }

    /** The frozen base alone: forward with the adapter off, backward computing dX only. */
    @Benchmark
    public void baseForwardBackward(Blackhole bh) {
        bh.consume(step.base());
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        step.close();
    }
}
