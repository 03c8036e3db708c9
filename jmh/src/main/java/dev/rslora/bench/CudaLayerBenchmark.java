package dev.rslora.bench;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.BackendUnavailableException;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.cuda.BaseLinearBaseline;
import dev.rslora.backend.cuda.CudaBackend;
import dev.rslora.backend.cuda.CudaBackendFactory;
import dev.rslora.backend.cuda.CudaGraph;
import dev.rslora.backend.cuda.CudaLoraLayer;
import dev.rslora.backend.cuda.DeviceTensor;
import dev.rslora.backend.cuda.PeftChainBaseline;
import dev.rslora.backend.GradMode;
import dev.rslora.dropout.DropoutMask;
import dev.rslora.tensor.Bf16;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
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
import org.openjdk.jmh.infra.BenchmarkParams;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * One LoRA layer training step on the GPU through the Java API, bf16, d_in = d_out = d, dropout
 * p, γ = α/√r with α = 16, bias-free, dA/dB assigned:
 * <pre>
 *   fusedEager   CudaLoraLayer.forward + backward, the fused step (-Drslora.cuda.kernels family, default v1)
 *   fusedGraph   the same step captured once into a CUDA graph and replayed
 *   splitEager   CudaLoraLayer with the split step: cuBLASLt for Y = X·Wᵀ and dX = dY·W, our LoRA kernels
 *   splitGraph   the split step captured once into a CUDA graph and replayed
 *   unfusedChain PeftChainBaseline: PEFT's eager op sequence on cuBLAS (8 GEMMs + 2 dropout kernels)
 *   cublasBase   BaseLinearBaseline: the frozen base alone, Y = X·Wᵀ and dX = dY·W on cublasGemmEx
 *   cublasLtBase the same two GEMMs on cuBLASLt (heuristic algorithm, 32 MiB workspace), as the split step runs them
 * </pre>
 * Every invocation synchronizes the stream before returning, so the time is the step's wall time
 * including the host-side launch cost. Inputs rotate over {@link Rotation#sets} copies of X, dY,
 * Y, dX and W (never zeros: uniform random data), and the first step of every trial is checked
 * ({@link StepCheck}: finite, not zero, sampled rows against a double recomputation) before any
 * timing. Defaults cover the reference shape (N = 8192, d = 4096, r ∈ {16, 64, 256}); the full
 * sweep is {@code -p n=2048,8192,16384 -p d=4096,11008} (see jmh/README.md). Where CUDA is
 * unavailable the trial setup fails with the probe's reason; {@link GpuBench} checks this first
 * and skips the whole run cleanly.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Measurement(iterations = 5, time = 200, timeUnit = TimeUnit.MILLISECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector"})
public class CudaLayerBenchmark {
    /** α of the rsLoRA config (γ = α/√r); jmh/peft_peer.py uses the same. */
    static final double ALPHA = 16.0;
    static final long SEED = 42L;
    static final long STEP = 1L;
    static final int LAYER = 0;

    @Param({"8192"})
    public int n;
    @Param({"4096"})
    public int d;
    @Param({"16", "64", "256"})
    public int r;
    @Param({"0.1"})
    public float dropout;
    /**
     * The fused family (-Drslora.cuda.kernels) of fusedEager/fusedGraph; the other methods ignore it.
     * The GPU check runs the default v1 for everything, then fusedGraph alone with -p kernels=v2,v3,v4 (v3/v4 run
     * through the table-driven FamilyStep; a family a device cannot run falls back, and the log says to which).
     */
    @Param({"v1"})
    public String kernels;

    private Arena arena;
    private CudaBackend cuda;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private Slot[] slots;
    private CudaGraph[] graphs;
    private PeftChainBaseline chain;
    private BaseLinearBaseline base;
    private LoraParams params;
    private int next;

    /** One rotation set; the fields a variant does not use stay null. */
    private static final class Slot {
        DeviceTensor x;
        DeviceTensor dy;
        DeviceTensor y;
        DeviceTensor dx;
        DeviceTensor w;
        DeviceTensor a16;
        DeviceTensor b16;
        DeviceTensor gradA;
        DeviceTensor gradB;
        CudaLoraLayer layer;
    }

    /** Opens the cuda backend, or throws with the reason it cannot run here. */
    static CudaBackend openBackend() {
        CudaBackendFactory f = new CudaBackendFactory();
        BackendFactory.Availability a = f.probe();
        if (!a.available()) {
            throw new BackendUnavailableException("GPU benchmark skipped: CUDA is unavailable: " + a.detail());
        }
        return (CudaBackend) f.create();
    }

    @Setup(Level.Trial)
    public void setUp(BenchmarkParams bp) {
        String variant = bp.getBenchmark().substring(bp.getBenchmark().lastIndexOf('.') + 1);
        System.setProperty("rslora.cuda.kernels", kernels);
        cuda = openBackend();
        arena = Arena.ofShared();
        double gamma = ALPHA / Math.sqrt(r);
        params = new LoraParams(n, d, d, r, gamma, dropout, SEED, STEP, LAYER, true, true, GradMode.ASSIGN);
        SplittableRandom rng = new SplittableRandom(SEED);
        Tensor x = uniform(rng, DType.BF16, 1.0, n, d);
        Tensor dy = uniform(rng, DType.BF16, 1.0, n, d);
        Tensor w = uniform(rng, DType.BF16, 1.0 / Math.sqrt(d), d, d);
        // A and B hold bf16-representable values, so the chain (bf16 A, B) and the fused layer (f32 A, B) agree
        Tensor a = uniform(rng, DType.F32, 1.0 / Math.sqrt(d), r, d);
        Tensor b = uniform(rng, DType.F32, 1.0 / Math.sqrt(r), d, r);
        int sets = Rotation.sets(Rotation.bytesPerSet(n, d, d, DType.BF16.byteSize()));
        System.out.println("\n" + variant + " on " + cuda.deviceDescription() + ": n=" + n + " d=" + d + " r=" + r
                + " p=" + dropout + " bf16, " + sets + " rotation sets");
        slots = new Slot[sets];
        for (int i = 0; i < sets; i++) {
            Slot s = new Slot();
            s.x = own(cuda.upload(x));
            s.dy = own(cuda.upload(dy));
            s.y = own(cuda.allocate(DType.BF16, n, d));
            s.dx = own(cuda.allocate(DType.BF16, n, d));
            switch (variant) {
                case "fusedEager", "fusedGraph" -> s.layer = own(new CudaLoraLayer(cuda, w, null, a, b, gamma, dropout, SEED,
                        LAYER, n, GradMode.ASSIGN, "fused"));
                case "splitEager", "splitGraph" -> s.layer = own(new CudaLoraLayer(cuda, w, null, a, b, gamma, dropout, SEED,
                        LAYER, n, GradMode.ASSIGN, "split"));
                case "unfusedChain" -> {
                    s.w = own(cuda.upload(w));
                    s.a16 = own(cuda.upload(a.to(arena, DType.BF16)));
                    s.b16 = own(cuda.upload(b.to(arena, DType.BF16)));
                    s.gradA = own(cuda.allocate(DType.F32, r, d));
                    s.gradB = own(cuda.allocate(DType.F32, d, r));
                }
                case "cublasBase", "cublasLtBase" -> s.w = own(cuda.upload(w));
                default -> throw new IllegalStateException("no setup for benchmark method " + variant);
            }
            slots[i] = s;
        }
        if (slots[0].layer != null) {
            System.out.println(variant + ": step " + slots[0].layer.step());
        }
        switch (variant) {
            case "fusedGraph", "splitGraph" -> {
                graphs = new CudaGraph[sets];
                for (int i = 0; i < sets; i++) {
                    Slot s = slots[i];
                    graphs[i] = s.layer.captureStep(s.x, s.y, s.dy, s.dx, STEP);
                }
            }
            case "unfusedChain" -> chain = new PeftChainBaseline(cuda, DType.BF16, n, d, d, r);
            case "cublasBase" -> base = new BaseLinearBaseline(cuda);
            case "cublasLtBase" -> {
                base = BaseLinearBaseline.cublasLt(cuda);
                System.out.println(variant + ": " + base.binding());
            }
            default -> {
            }
        }
        check(variant, x, w, a, b, dy, gamma);
    }

    /** Runs one step of {@code variant} on set 0 and checks its outputs (StepCheck) before any timing. */
    private void check(String variant, Tensor x, Tensor w, Tensor a, Tensor b, Tensor dy, double gamma) {
        next = 0;
        switch (variant) {
            case "fusedEager" -> fusedEager();
            case "fusedGraph" -> fusedGraph();
            case "unfusedChain" -> unfusedChain();
            case "cublasBase" -> cublasBase();
            case "cublasLtBase" -> cublasLtBase();
            case "splitEager" -> splitEager();
            case "splitGraph" -> splitGraph();
            default -> throw new IllegalStateException("no check for benchmark method " + variant);
        }
        next = 0;
        Slot s = slots[0];
        Tensor y = Tensor.allocate(arena, DType.BF16, n, d);
        Tensor dx = Tensor.allocate(arena, DType.BF16, n, d);
        s.y.copyTo(y);
        s.dx.copyTo(dx);
        StepCheck.requireFiniteNonZero(variant + " Y", y);
        StepCheck.requireFiniteNonZero(variant + " dX", dx);
        boolean lora = !variant.equals("cublasBase") && !variant.equals("cublasLtBase");
        if (lora) {
            Tensor gA = Tensor.allocate(arena, DType.F32, r, d);
            Tensor gB = Tensor.allocate(arena, DType.F32, d, r);
            if (s.layer != null) {
                s.layer.copyGradientsTo(gA, gB);
            } else {
                s.gradA.copyTo(gA);
                s.gradB.copyTo(gB);
            }
            StepCheck.requireFiniteNonZero(variant + " dA", gA);
            StepCheck.requireFiniteNonZero(variant + " dB", gB);
        }
        DropoutMask mask = lora && dropout > 0f ? new DropoutMask(SEED, STEP, LAYER, dropout) : null;
        int[] rows = {0, n / 3, n - 1};
        // the chain rounds U, V, γ·V·A and Y to bf16 between its GEMMs: naive 16-bit tolerance
        StepCheck.requireRows(x, w, a, b, dy, gamma, mask, lora, y, dx, rows, 0x1p-5, 2e-2);
        System.out.println(variant + ": first step checked (finite, non-zero, rows " + java.util.Arrays.toString(rows)
                + " against a double recomputation)");
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    private Tensor uniform(SplittableRandom rng, DType t, double bound, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        for (long i = 0; i < out.numel(); i++) {
            out.set(i, Bf16.toFloat(Bf16.fromFloat((float) rng.nextDouble(-bound, bound))));
        }
        return out;
    }

    private Slot nextSlot() {
        Slot s = slots[next];
        next = next + 1 == slots.length ? 0 : next + 1;
        return s;
    }

    /** The fused step, launched eagerly from Java (forward then backward), then synchronized. */
    @Benchmark
    public void fusedEager() {
        Slot s = nextSlot();
        s.layer.forward(s.x, s.y, STEP, true);
        s.layer.backward(s.x, s.dy, s.dx, STEP, true);
        cuda.synchronize();
    }

    /** The same fused step replayed from a CUDA graph, then synchronized. */
    @Benchmark
    public void fusedGraph() {
        int i = next;
        nextSlot();
        graphs[i].replay();
        cuda.synchronize();
    }

    /** The split step (cuBLASLt + our LoRA kernels), launched eagerly from Java, then synchronized. */
    @Benchmark
    public void splitEager() {
        fusedEager();
    }

    /** The split step replayed from a CUDA graph, then synchronized. */
    @Benchmark
    public void splitGraph() {
        fusedGraph();
    }

    /** PEFT's unfused op sequence on cuBLAS (forward then backward), then synchronized. */
    @Benchmark
    public void unfusedChain() {
        Slot s = nextSlot();
        chain.forward(params, s.x, s.w, s.a16, s.b16, s.y);
        chain.backward(params, s.dy, s.w, s.a16, s.b16, s.dx, s.gradA, s.gradB);
        cuda.synchronize();
    }

    /** The frozen base linear on cuBLAS: Y = X·Wᵀ, dX = dY·W, then synchronized. */
    @Benchmark
    public void cublasBase() {
        Slot s = nextSlot();
        base.forward(s.x, s.w, s.y);
        base.backwardData(s.dy, s.w, s.dx);
        cuda.synchronize();
    }

    /** The frozen base on cuBLASLt: Y = X·Wᵀ, dX = dY·W, then synchronized. */
    @Benchmark
    public void cublasLtBase() {
        cublasBase();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        if (cuda == null) {
            return;
        }
        if (graphs != null) {
            for (CudaGraph g : graphs) {
                if (g != null) {
                    g.close();
                }
            }
        }
        if (chain != null) {
            chain.close();
        }
        if (base != null) {
            base.close();
        }
        for (int i = owned.size() - 1; i >= 0; i--) {
            owned.get(i).close();
        }
        owned.clear();
        cuda.close();
        arena.close();
    }
}
