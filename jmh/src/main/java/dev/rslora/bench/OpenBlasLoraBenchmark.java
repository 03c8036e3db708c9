package dev.rslora.bench;

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
 * The CPU peer alone: the LoRA layer step as a chain of OpenBLAS sgemm calls ({@link OpenBlasChain}:
 * 8 calls; the base: 2), on all cores.
 *
 * <p>{@code core} chooses OpenBLAS's kernel set explicitly, so the peer does not depend on the
 * caller's environment: "Haswell" (AVX2) or "Cooperlake" (AVX-512; what the bytedeco 0.3.31 build's
 * own detection picks on an AVX-512 Zen 5 when OPENBLAS_CORETYPE is unset), or "auto" (unset: the
 * detection). It is requested through OPENBLAS_CORETYPE before the library loads in the forked JVM
 * and verified (a request that does not take fails the trial). Other OPENBLAS_* variables (e.g.
 * OPENBLAS_L2_SIZE) are inherited; BenchEnv records them. {@link CpuVsOpenBlasBenchmark} measures it
 * interleaved with ours.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class OpenBlasLoraBenchmark {
    @Param({"512", "2048"})
    public int n;
    @Param({"1024", "4096"})
    public int d;
    @Param({"16", "64", "256"})
    public int r;
    @Param({"Haswell", "Cooperlake"})
    public String core;

    private OpenBlasChain chain;

    @Setup(Level.Trial)
    public void setUp() {
        OpenBlasChain.load(core);
        chain = new OpenBlasChain(n, d, r);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        chain.close();
    }

    /** LoRA forward + backward as eight sgemm calls (d_in = d_out = d). */
    @Benchmark
    public void loraForwardBackward(Blackhole bh) {
        bh.consume(chain.lora());
    }

    /** The frozen base linear forward + backward: Y = X·Wᵀ, dX = dY·W. */
    @Benchmark
    public void baseForwardBackward(Blackhole bh) {
        bh.consume(chain.base());
    }
}
