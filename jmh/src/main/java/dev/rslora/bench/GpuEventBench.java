package dev.rslora.bench;

import dev.rslora.backend.BackendFactory;
import dev.rslora.backend.GradMode;
import dev.rslora.backend.cuda.BaseLinearBaseline;
import dev.rslora.backend.cuda.CudaBackend;
import dev.rslora.backend.cuda.CudaBackendFactory;
import dev.rslora.backend.cuda.CudaEventTimer;
import dev.rslora.backend.cuda.CudaGraph;
import dev.rslora.backend.cuda.CudaLoraLayer;
import dev.rslora.backend.cuda.DeviceTensor;
import dev.rslora.tensor.Bf16;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * Our GPU steps timed the way the PyTorch peer times its own (jmh/peft_peer.py's method): CUDA events
 * around each step on the stream, warm-up first, median of many repetitions, inputs and weights
 * rotated past L2, random data, no host synchronisation between steps. The JMH benchmarks time a
 * synchronised call (host launch and wake-up included); this times device work only, so ours and
 * torch's frozen base compare like for like (issue 12 §2).
 * <pre>
 *   java ... -cp benchmarks.jar dev.rslora.bench.GpuEventBench --n 8192 --d 4096 --ranks 16,64,256 --out java-events.jsonl
 * </pre>
 * Writes JSON lines in the PEFT peer's format: one "meta" line, one "timing" line per (impl, n, d, r)
 * for impl java_cublas_base (cublasGemmEx), java_cublaslt_base (cuBLASLt, as the split step runs its
 * GEMMs), java_split_graph and java_fused_graph (a layer step replayed from a CUDA graph). Exit
 * status: 0 measured, 2 bad arguments, 3 CUDA unavailable.
 */
public final class GpuEventBench {
    static final double ALPHA = 16.0;
    static final long SEED = 42L;
    static final long STEP = 1L;

    private GpuEventBench() {
    }

    record Options(List<Integer> ns, List<Integer> ds, List<Integer> ranks, int warmup, int reps, float dropout, Path out,
                   List<String> impls) {
    }

    static Options parse(String[] args) {
        List<Integer> ns = List.of(8192);
        List<Integer> ds = List.of(4096);
        List<Integer> ranks = List.of(16, 64, 256);
        int warmup = 10;
        int reps = 50;
        float dropout = 0.1f;
        Path out = null;
        List<String> impls = List.of("cublas_base", "cublaslt_base", "split_graph", "fused_graph");
        for (int i = 0; i < args.length; i += 2) {
            if (i + 1 >= args.length) {
                throw new IllegalArgumentException("option " + args[i] + " needs a value");
            }
            String v = args[i + 1];
            switch (args[i]) {
                case "--n" -> ns = ints(v);
                case "--d" -> ds = ints(v);
                case "--ranks" -> ranks = ints(v);
                case "--warmup" -> warmup = Integer.parseInt(v);
                case "--reps" -> reps = Integer.parseInt(v);
                case "--dropout" -> dropout = Float.parseFloat(v);
                case "--out" -> out = Path.of(v);
                case "--impls" -> impls = Arrays.stream(v.split(",")).map(String::strip).toList();
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        if (reps < 5 || warmup < 1 || !(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("--reps >= 5, --warmup >= 1, --dropout in [0, 1)");
        }
        return new Options(ns, ds, ranks, warmup, reps, dropout, out, impls);
    }

    private static List<Integer> ints(String v) {
        List<Integer> out = new ArrayList<>();
        for (String p : v.split(",")) {
            int x = Integer.parseInt(p.strip());
            if (x < 1) {
                throw new IllegalArgumentException("expected positive integers, got " + v);
            }
            out.add(x);
        }
        return out;
    }

    /** median, p10, p90, min of the sorted times, as peft_peer.py reports them. */
    static String stats(float[] ms) {
        float[] s = ms.clone();
        Arrays.sort(s);
        return String.format(Locale.ROOT, "\"median_ms\": %s, \"p10_ms\": %s, \"p90_ms\": %s, \"min_ms\": %s, \"reps\": %d",
                s[s.length / 2], s[s.length / 10], s[(s.length * 9) / 10], s[0], s.length);
    }

    /** One step of an implementation on rotation set k. */
    interface Step {
        void run(int k);
    }

    /** Two events around one step on the stream ({@link CudaEventTimer} on a GPU). */
    interface StepTimer extends AutoCloseable {
        void start();

        void stop();

        /** Device milliseconds between the events; waits for the stop event. */
        float elapsedMs();

        @Override
        void close();
    }

    /** A {@link StepTimer} of two fresh CUDA events on {@code cuda}'s stream. */
    private static StepTimer events(CudaBackend cuda) {
        CudaEventTimer t = new CudaEventTimer(cuda);
        return new StepTimer() {
            @Override
            public void start() {
                t.start();
            }

            @Override
            public void stop() {
                t.stop();
            }

            @Override
            public float elapsedMs() {
                return t.elapsedMs();
            }

            @Override
            public void close() {
                t.close();
            }
        };
    }

    public static void main(String[] args) throws IOException {
        Options o;
        try {
            o = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("GpuEventBench: " + e.getMessage());
            System.exit(2);
            return;
        }
        BackendFactory.Availability av = new CudaBackendFactory().probe();
        if (!av.available()) {
            System.out.println("{\"kind\": \"skipped\", \"reason\": \"CUDA is unavailable: " + av.detail().replace("\"", "'") + "\"}");
            System.exit(3);
            return;
        }
        List<String> lines = new ArrayList<>();
        try (CudaBackend cuda = CudaLayerBenchmark.openBackend()) {
            lines.add("{\"kind\": \"meta\", \"date\": \"" + Instant.now().truncatedTo(ChronoUnit.SECONDS) + "\", \"device\": \""
                    + cuda.deviceDescription() + "\", \"method\": \"CUDA events per step, median\", \"warmup\": " + o.warmup()
                    + ", \"reps\": " + o.reps() + "}");
            emit(lines, o);
            for (int n : o.ns()) {
                for (int d : o.ds()) {
                    measureShape(cuda, o, n, d, lines);
                }
            }
        }
        if (o.out() != null) {
            Files.write(o.out(), lines, StandardCharsets.UTF_8);
        }
    }

    private static int printed;

    private static void emit(List<String> lines, Options o) {
        PrintWriter w = new PrintWriter(System.out, true);
        while (printed < lines.size()) {
            w.println(lines.get(printed++));
        }
    }

    private static void measureShape(CudaBackend cuda, Options o, int n, int d, List<String> lines) {
        int sets = Rotation.sets(Rotation.bytesPerSet(n, d, d, 2));
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofShared()) {
            SplittableRandom rng = new SplittableRandom(SEED);
            Tensor x = uniform(arena, rng, DType.BF16, 1.0, n, d);
            Tensor dy = uniform(arena, rng, DType.BF16, 1.0, n, d);
            Tensor w = uniform(arena, rng, DType.BF16, 1.0 / Math.sqrt(d), d, d);
            List<AutoCloseable> owned = new ArrayList<>();
            try {
                DeviceTensor[] xs = new DeviceTensor[sets];
                DeviceTensor[] dys = new DeviceTensor[sets];
                DeviceTensor[] ys = new DeviceTensor[sets];
                DeviceTensor[] dxs = new DeviceTensor[sets];
                DeviceTensor[] ws = new DeviceTensor[sets];
                for (int k = 0; k < sets; k++) {
                    xs[k] = own(owned, cuda.upload(x));
                    dys[k] = own(owned, cuda.upload(dy));
                    ys[k] = own(owned, cuda.allocate(DType.BF16, n, d));
                    dxs[k] = own(owned, cuda.allocate(DType.BF16, n, d));
                    ws[k] = own(owned, cuda.upload(w));
                }
                for (String base : List.of("cublas_base", "cublaslt_base")) {
                    if (!o.impls().contains(base)) {
                        continue;
                    }
                    try (BaseLinearBaseline b = base.equals("cublas_base") ? new BaseLinearBaseline(cuda) : BaseLinearBaseline.cublasLt(cuda)) {
                        float[] ms = time(cuda::synchronize, () -> events(cuda), o, sets, k -> {
                            b.forward(xs[k], ws[k], ys[k]);
                            b.backwardData(dys[k], ws[k], dxs[k]);
                        });
                        lines.add(timing("java_" + base, n, d, 0, 0f, sets, ms, b.binding()));
                        emit(lines, o);
                    } catch (RuntimeException e) {
                        lines.add("{\"kind\": \"skipped\", \"impl\": \"java_" + base + "\", \"reason\": \""
                                + String.valueOf(e.getMessage()).replace("\"", "'") + "\"}");
                        emit(lines, o);
                    }
                }
                for (int r : o.ranks()) {
                    double gamma = ALPHA / Math.sqrt(r);
                    Tensor a = uniform(arena, rng, DType.F32, 1.0 / Math.sqrt(d), r, d);
                    Tensor b = uniform(arena, rng, DType.F32, 1.0 / Math.sqrt(r), d, r);
                    for (String impl : List.of("split_graph", "fused_graph")) {
                        if (!o.impls().contains(impl)) {
                            continue;
                        }
                        String step = impl.startsWith("split") ? "split" : "fused";
                        List<AutoCloseable> layerOwned = new ArrayList<>();
                        try {
                            CudaGraph[] graphs = new CudaGraph[sets];
                            String chosen = null;
                            for (int k = 0; k < sets; k++) {
                                CudaLoraLayer layer = own(layerOwned, new CudaLoraLayer(cuda, w, null, a, b, gamma, o.dropout(), SEED, 0, n,
                                        GradMode.ASSIGN, step));
                                chosen = layer.step().toString();
                                graphs[k] = own(layerOwned, layer.captureStep(xs[k], ys[k], dys[k], dxs[k], STEP));
                            }
                            // layers close after their graphs: own() closes in reverse order
                            float[] ms = time(cuda::synchronize, () -> events(cuda), o, sets, k -> graphs[k].replay());
                            lines.add(timing("java_" + impl, n, d, r, o.dropout(), sets, ms, chosen));
                        } catch (RuntimeException e) {
                            lines.add("{\"kind\": \"skipped\", \"impl\": \"java_" + impl + "\", \"r\": " + r + ", \"reason\": \""
                                    + String.valueOf(e.getMessage()).replace("\"", "'") + "\"}");
                        } finally {
                            closeAll(layerOwned);
                        }
                        emit(lines, o);
                    }
                }
            } finally {
                closeAll(owned);
            }
        }
    }

    /**
     * CUDA-event time of each of o.reps() steps after o.warmup() untimed ones, rotating over the sets,
     * as peft_peer.py's time_steps does: a pair of events per step, every step queued behind the
     * previous one, one synchronisation after the last, then the times read. Waiting for each step's
     * stop event before queueing the next would leave the stream idle while the host launches the
     * next step, and that launch latency would fall inside its events (torch's steps have none).
     */
    static float[] time(Runnable synchronize, Supplier<StepTimer> newTimer, Options o, int sets, Step step) {
        for (int i = 0; i < o.warmup(); i++) {
            step.run(i % sets);
        }
        synchronize.run();
        StepTimer[] timers = new StepTimer[o.reps()];
        try {
            for (int i = 0; i < o.reps(); i++) {
                timers[i] = newTimer.get();
            }
            for (int i = 0; i < o.reps(); i++) {
                timers[i].start();
                step.run(i % sets);
                timers[i].stop();
            }
            synchronize.run();
            float[] ms = new float[o.reps()];
            for (int i = 0; i < o.reps(); i++) {
                ms[i] = timers[i].elapsedMs();
            }
            return ms;
        } finally {
            for (StepTimer t : timers) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    private static String timing(String impl, int n, int d, int r, float p, int sets, float[] ms, String detail) {
        return String.format(Locale.ROOT, "{\"kind\": \"timing\", \"impl\": \"%s\", \"n\": %d, \"d_in\": %d, \"d_out\": %d, \"r\": %d, "
                        + "\"dropout\": %s, \"sets\": %d, %s, \"detail\": \"%s\"}", impl, n, d, d, r, p, sets, stats(ms),
                detail == null ? "" : detail.replace("\"", "'"));
    }

    private static <T extends AutoCloseable> T own(List<AutoCloseable> owned, T t) {
        owned.add(t);
        return t;
    }

    private static void closeAll(List<AutoCloseable> owned) {
        for (int i = owned.size() - 1; i >= 0; i--) {
            try {
                owned.get(i).close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        owned.clear();
    }

    private static Tensor uniform(java.lang.foreign.Arena arena, SplittableRandom rng, DType t, double bound, long... shape) {
        Tensor out = Tensor.allocate(arena, t, shape);
        for (long i = 0; i < out.numel(); i++) {
            out.set(i, Bf16.toFloat(Bf16.fromFloat((float) rng.nextDouble(-bound, bound))));
        }
        return out;
    }
}
