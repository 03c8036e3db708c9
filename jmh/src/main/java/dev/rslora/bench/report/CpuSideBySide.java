package dev.rslora.bench.report;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * The CPU figures measured side by side in one JVM (see {@link Interleaved}): ours against the
 * OpenBLAS chain, R with the LoRA and base steps alternating, decoding latencies, the effect of a
 * busy core, the machine's FMA ceiling, and issue 14's targets. Every row names our register tile.
 */
final class CpuSideBySide {
    /** Issue 14: ours (tile) ÷ OpenBLAS (core) ≥ min at N, d = 1024, r = 64. */
    record SpeedTarget(int n, String tile, String core, double min) {
    }

    /** Issue 14: R ≤ max at N = 512, d = 1024, r. */
    record RTarget(int r, double max) {
    }

    static final List<SpeedTarget> SPEED = List.of(new SpeedTarget(512, "512", "Cooperlake", 1.2),
            new SpeedTarget(2048, "512", "Cooperlake", 1.05), new SpeedTarget(512, "256", "Haswell", 1.05),
            new SpeedTarget(2048, "256", "Haswell", 1.05));
    static final List<RTarget> R_TARGETS = List.of(new RTarget(64, 1.10), new RTarget(256, 1.4));
    /** Issue 14: the LoRA step (and, decoding, the LoRA forward) at N = 1 costs at most this many of the base's. */
    static final double DECODE_MAX = 1.3;

    private CpuSideBySide() {
    }

    static String write(Results res) {
        StringBuilder sb = new StringBuilder();
        sb.append("### The machine's FMA ceiling (`FmaPeakBenchmark`, operands in registers; one thread, and one per core)\n\n")
                .append("Each run is many short iterations, and the ceiling is the best of them: on this shared machine the FMA ")
                .append("rate drops for stretches of seconds while the thread keeps its CPU (jmh/README.md), and a mean over long ")
                .append("iterations took those stretches for the ceiling. Every \"% of the ceiling\" below is of the best.\n\n")
                .append(fmaCeiling(res)).append("\n");
        sb.append("### Ours against OpenBLAS, interleaved in one JVM (the ratios to quote)\n\n")
                .append("`CpuVsOpenBlasBenchmark`: per invocation a block of our LoRA steps, a pause, a block of the OpenBLAS ")
                .append("chain's, a pause (the pauses, untimed, let the other side's threads go idle first); the ratio is taken ")
                .append("per iteration and its median and range over the iterations are given. A load that comes and goes ")
                .append("hits both sides alike, which separate runs minutes apart (the tables further down) do not.\n\n")
                .append(versusOpenBlas(res)).append("\n");
        sb.append("### R and decoding latency, the LoRA and base steps interleaved\n\n")
                .append("`CpuLayerBenchmark.loraThenBase`: one LoRA step then one frozen-base step per invocation, each timed ")
                .append("(rows marked \"k steps a side\": k LoRA steps, then k base steps); ")
                .append("R per iteration, median and range. The FLOP ratio is R if the LoRA step's FLOPs ran at the base's rate: ")
                .append("1 + 3r/d with the LoRA K-segments, 1 + 2r/d + r/N where the backend forms W' = W + γB·A per pass instead ")
                .append("(N ≥ 2·d, no dropout; jmh/README.md). ")
                .append("The two pairings can disagree at N = 1: a LoRA step leaves its dA and dB dirty in the caches, and with ")
                .append("single steps the base step that follows seems to pay for writing them back (jmh/README.md); in blocks ")
                .append("each side mostly follows itself.\n\n")
                .append(rTable(res)).append("\n")
                .append("Decoding, forward only (`CpuLayerBenchmark.forwardThenBase`): one LoRA forward (adapter active, eval mode) ")
                .append("then one frozen-base forward (adapter off) per invocation (or k of each), each side timed, no backward; the ratio per ")
                .append("iteration, median and range. The forward FLOP ratio is 1 + r(d_in + d_out)/(d_in·d_out) (1 + r/d + r/N where W' is formed).\n\n")
                .append(decodeTable(res)).append("\n");
        sb.append("### One thread, timed in its CPU time (the register tiles' rates)\n\n")
                .append("`CpuLayerBenchmark.loraThenBaseCpu` with one worker thread: all the work runs on the timed thread, so ")
                .append("its CPU time gives the rates while it runs, which other processes on a shared machine do not dilute; ")
                .append("compare with the FMA ceiling of the same width (the table above).\n\n")
                .append(cpuTimeTable(res)).append("\n");
        sb.append("### Targets (issue 14)\n\n")
                .append("Each verdict is this run's alone. On this shared machine some ratios move by more than their margin from ")
                .append("one run to the next; jmh/README.md lists earlier runs, and a target counts as met only when it holds ")
                .append("across them.\n\n")
                .append(targets(res)).append("\n");
        return sb.toString();
    }

    private static List<Interleaved> of(Results res, Interleaved.Kind kind, Predicate<Interleaved> p) {
        return res.interleaved().stream().filter(i -> i.kind() == kind).filter(p)
                .sorted(Comparator.<Interleaved>comparingInt(i -> i.shape().n()).thenComparingInt(i -> i.shape().dIn())
                        .thenComparingInt(i -> i.shape().r()).thenComparing(i -> i.param("tile", "auto"))
                        .thenComparing(i -> i.param("busy", "0")).thenComparingInt(CpuSideBySide::block)
                        .thenComparing(i -> i.param("dtype", "F32")).thenComparing(i -> i.param("dropout", "0")))
                .toList();
    }

    /**
     * Steps of each side per invocation of loraThenBase and forwardThenBase (their {@code block}
     * parameter; 1: single steps alternating, also for files from before it existed); 1 for other kinds.
     */
    static int block(Interleaved i) {
        boolean paired = i.kind() == Interleaved.Kind.LORA_VS_BASE || i.kind() == Interleaved.Kind.LORA_VS_BASE_FORWARD
                || i.kind() == Interleaved.Kind.TRAFFIC || i.kind() == Interleaved.Kind.TRAFFIC_FORWARD;
        return paired ? Integer.parseInt(i.param("block", "1")) : 1;
    }

    /** ", 32 steps a side" for a run in blocks; "" for single steps alternating. */
    static String pairing(Interleaved i) {
        int b = block(i);
        return b == 1 ? "" : ", " + b + " steps a side";
    }

    /**
     * "512-bit vectors, 8×32 tile" for the run's tile parameter; "the JIT's widest" for "auto"; with
     * ", dropout p" when its LoRA steps applied a mask ({@link #masked}) and ", bf16 X, W and dY (adapter
     * fp32)" for a run in another dtype: the section and the README summary say fp32 and dropout 0 unless
     * a row says otherwise.
     */
    static String tile(Interleaved i) {
        String t = i.param("tile", "auto");
        String jvm = i.param("jvm", "");
        String name = t.equals("auto") ? null : Catalog.tileName(t, jvm);
        return (name != null ? name : "the JIT's widest vectors") + (jvm.isEmpty() ? "" : " (" + jvm + ")")
                + (masked(i) ? ", dropout " + i.param("dropout", "0") : "")
                + (Catalog.f32(i.params()) ? "" : ", " + i.param("dtype", "F32").toLowerCase(java.util.Locale.ROOT)
                        + " X, W and dY (adapter fp32)");
    }

    /** "1.150 (1.050–1.300, 6 iterations)"; over several JVMs "…, 18 iterations in 3 JVMs; per JVM 1.10, 1.25, 1.08)". */
    static String figure(Interleaved i) {
        String f = Fmt.num(i.figure(), 3) + " (" + Fmt.num(i.figureMin(), 3) + "–" + Fmt.num(i.figureMax(), 3) + ", "
                + i.iterations() + " iterations";
        if (i.forks() > 1) {
            List<String> each = new ArrayList<>();
            for (double x : i.forkFigures()) {
                each.add(Fmt.num(x, 3));
            }
            f += " in " + i.forks() + " JVMs; per JVM " + String.join(", ", each);
        }
        return f + ")";
    }

    static String fmaCeiling(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (JmhJson.Unknown u : res.unknown()) {
            if (!handles(u)) {
                continue;
            }
            String width = width(u);
            int threads = threadsOf(u);
            Peak p = peak(u);
            double perThread = 2.0 * lanes(width) / p.bestNs();
            rows.add(List.of(width.equals("Scalar") ? "scalar" : width + "-bit", Integer.toString(threads),
                    p.iterations() == 0 ? "n/a" : Integer.toString(p.iterations()), Fmt.num(p.bestNs(), 4) + " (" + Fmt.num(p.medianNs(), 4) + ")",
                    Fmt.num(perThread, 1), Fmt.num(threads * perThread, 1), Double.isNaN(p.cpuGflops()) ? "n/a" : Fmt.num(p.cpuGflops(), 1),
                    res.load(u.source())));
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("vector width", "threads", "iterations", "ns per FMA instruction per thread (wall): best (median)",
                "GFLOP/s per thread (wall), best", "GFLOP/s, all threads (wall), best", "GFLOP/s per CPU-second of a thread, best",
                "load (1/5/15 min) before → after"), rows);
    }

    /**
     * An FMA-ceiling run's figures: its measurement iterations, the best and the median iteration's
     * ns per FMA instruction per thread (wall), and the best iteration's GFLOP/s per second of the
     * threads' CPU time (NaN without the aux counters). A ceiling is what the core can reach, and
     * only interference (other processes on the host, a lower clock) makes an iteration slower, so
     * the best iteration is the ceiling; files without per-iteration data give their mean for both
     * and 0 iterations.
     */
    record Peak(int iterations, double bestNs, double medianNs, double cpuGflops) {
    }

    static Peak peak(JmhJson.Unknown u) {
        double[] ms = u.iterationsMs().stream().mapToDouble(Double::doubleValue).toArray();
        double best = ms.length == 0 ? u.ms() : java.util.Arrays.stream(ms).min().orElseThrow();
        double median = ms.length == 0 ? u.ms() : Interleaved.median(ms);
        return new Peak(ms.length, best * 1e6, median * 1e6, perCpuSecond(u, width(u)));
    }

    private static String width(JmhJson.Unknown u) {
        return u.benchmark().substring("FmaPeakBenchmark.fma".length());
    }

    private static int threadsOf(JmhJson.Unknown u) {
        return Integer.parseInt(u.params().getOrDefault(JmhJson.JMH_THREADS, "1"));
    }

    /**
     * GFLOP/s per second of the threads' CPU time from the aux counters, its best iteration (the
     * sums where the file has no per-iteration counters; NaN without the counters).
     */
    private static double perCpuSecond(JmhJson.Unknown u, String width) {
        List<Double> fi = u.auxIterations().getOrDefault("fmas", List.of());
        List<Double> ci = u.auxIterations().getOrDefault("cpuNanos", List.of());
        double best = Double.NaN;
        for (int i = 0; i < Math.min(fi.size(), ci.size()); i++) {
            if (ci.get(i) > 0) {
                double g = 2.0 * lanes(width) * fi.get(i) / ci.get(i);
                best = Double.isNaN(best) ? g : Math.max(best, g);
            }
        }
        if (!Double.isNaN(best)) {
            return best;
        }
        Double f = u.aux().get("fmas");
        Double c = u.aux().get("cpuNanos");
        return f == null || c == null || !(c > 0) ? Double.NaN : 2.0 * lanes(width) * f / c;
    }

    /**
     * The FMA ceiling of all cores together at a width, in wall-clock GFLOP/s: the best iteration
     * ({@link #peak}) of the run with the most JMH threads (more than one; bench.sh runs one per
     * core), times its thread count (NaN when no such run exists).
     */
    static double allCoreCeiling(Results res, String width) {
        return res.unknown().stream().filter(u -> u.benchmark().equals("FmaPeakBenchmark.fma" + width) && threadsOf(u) > 1)
                .max(java.util.Comparator.comparingInt(CpuSideBySide::threadsOf))
                .map(u -> threadsOf(u) * 2.0 * lanes(width) / peak(u).bestNs()).orElse(Double.NaN);
    }

    /** The thread count of {@link #allCoreCeiling}'s run (0 when none). */
    static int allCoreThreads(Results res, String width) {
        return res.unknown().stream().filter(u -> u.benchmark().equals("FmaPeakBenchmark.fma" + width))
                .mapToInt(CpuSideBySide::threadsOf).filter(t -> t > 1).max().orElse(0);
    }

    private static int lanes(String width) {
        return width.equals("Scalar") ? 1 : Integer.parseInt(width) / 32;
    }

    /**
     * The FMA ceiling of one core at a width ("512", "256", "128", "Scalar") in GFLOP/s per second
     * of the thread's CPU time, its best iteration ({@link #peak}; NaN when not measured).
     */
    static double ceiling(Results res, String width) {
        return res.unknown().stream().filter(u -> u.benchmark().equals("FmaPeakBenchmark.fma" + width) && threadsOf(u) == 1)
                .mapToDouble(u -> perCpuSecond(u, width)).findFirst().orElse(Double.NaN);
    }

    static String cpuTimeTable(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Interleaved i : of(res, Interleaved.Kind.LORA_VS_BASE_CPU, x -> x.param("threads", "0").equals("1"))) {
            String t = i.param("tile", "auto");
            double gflops = i.shape().baseFlop() / (i.bMedian() * 1e6);
            double ceil = t.equals("auto") ? Double.NaN : ceiling(res, t.equals("0") ? "Scalar" : t);
            rows.add(List.of(Integer.toString(i.shape().n()), i.shape().dLabel(), Integer.toString(i.shape().r()), tile(i),
                    i.param("jvm", "none"), Fmt.num(i.bMedian(), Fmt.decimals(i.bMedian())), Fmt.num(gflops, 1),
                    Double.isNaN(ceil) ? "n/a" : Fmt.num(100 * gflops / ceil, 0) + " %", figure(i), res.load(i.source())));
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours", "JIT flags", "base CPU-ms/step", "base GFLOP/s per CPU-second",
                "of the FMA ceiling at that width", "R in CPU time: median (range)", "load (1/5/15 min) before → after"), rows);
    }

    /** Whether this section renders an otherwise unknown JMH result (the FMA ceiling). */
    static boolean handles(JmhJson.Unknown u) {
        return u.benchmark().startsWith("FmaPeakBenchmark.fma");
    }

    static String versusOpenBlas(Results res) {
        List<List<String>> rows = new ArrayList<>();
        List<Interleaved> all = new ArrayList<>(of(res, Interleaved.Kind.OURS_VS_OPENBLAS, x -> !x.param("threads", "0").equals("1")));
        all.addAll(of(res, Interleaved.Kind.OURS_VS_OPENBLAS_CPU, x -> true));
        for (Interleaved i : all) {
            String core = i.param("core", "?");
            int busy = Integer.parseInt(i.param("busy", "0"));
            boolean cpu = i.kind() == Interleaved.Kind.OURS_VS_OPENBLAS_CPU;
            rows.add(List.of(Integer.toString(i.shape().n()), i.shape().dLabel(), Integer.toString(i.shape().r()),
                    "rslora cpu, " + tile(i), "OpenBLAS sgemm chain, " + core + " kernels" + Catalog.isa(core),
                    cpu ? "1 each, CPU time" : i.param("threads", "0").equals("0") ? "all cores" : i.param("threads", "?"),
                    busy == 0 ? "none" : busy + " thread" + (busy > 1 ? "s" : ""), Fmt.num(i.aMedian(), Fmt.decimals(i.aMedian())),
                    Fmt.num(i.bMedian(), Fmt.decimals(i.bMedian())), figure(i), res.load(i.source())));
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours", "peer", "threads", "competing load", "ours ms/step", "peer ms/step",
                "ours ÷ peer (throughput; > 1: ours faster)", "load (1/5/15 min) before → after"), rows)
                + busyEffect(res);
    }

    /**
     * How much one busy core slows each side: measured side by side ({@code busyEffect}: blocks with
     * and without a competing thread in the same invocation) when available, else from a busy run
     * and a quiet run of the same shape (two runs).
     */
    static String busyEffect(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Interleaved o : of(res, Interleaved.Kind.BUSY_OURS, x -> true)) {
            Optional<Interleaved> p = of(res, Interleaved.Kind.BUSY_PEER, x -> x.source().equals(o.source())
                    && x.shape().equals(o.shape()) && x.params().equals(o.params())).stream().findFirst();
            if (p.isEmpty()) {
                continue;
            }
            String core = o.param("core", "?");
            rows.add(List.of(Integer.toString(o.shape().n()), o.shape().dLabel(), Integer.toString(o.shape().r()),
                    "rslora cpu, " + tile(o), "OpenBLAS " + core + Catalog.isa(core), figure(o), figure(p.get()),
                    res.load(o.source())));
        }
        if (!rows.isEmpty()) {
            return "\nA busy core, side by side (`busyEffect`: each side's blocks without and with one thread of competing "
                    + "load in the same invocation; time with ÷ time without):\n\n"
                    + Fmt.table(List.of("N", "d", "r", "ours", "peer", "ours slowed by", "peer slowed by",
                    "load (1/5/15 min) before → after"), rows);
        }
        List<String> lines = new ArrayList<>();
        for (Interleaved busy : of(res, Interleaved.Kind.OURS_VS_OPENBLAS, i -> !i.param("busy", "0").equals("0")
                && !i.param("threads", "0").equals("1"))) {
            Optional<Interleaved> quiet = quietTwin(res, busy);
            if (quiet.isEmpty()) {
                continue;
            }
            Interleaved q = quiet.get();
            lines.add("- N = " + busy.shape().n() + ", d = " + busy.shape().dLabel() + ", r = " + busy.shape().r() + ", "
                    + tile(busy) + " vs " + q.param("core", "?") + ": with " + busy.param("busy", "?")
                    + " competing thread(s) ours takes " + Fmt.num(busy.aMedian() / q.aMedian(), 2) + "× its time, OpenBLAS "
                    + Fmt.num(busy.bMedian() / q.bMedian(), 2) + "× (medians of two runs: " + q.source() + " and " + busy.source() + ")");
        }
        return lines.isEmpty() ? "" : "\nA busy core (the same shape with and without competing threads):\n\n" + String.join("\n", lines) + "\n";
    }

    private static Optional<Interleaved> quietTwin(Results res, Interleaved busy) {
        return of(res, Interleaved.Kind.OURS_VS_OPENBLAS, i -> i.param("busy", "0").equals("0") && i.shape().equals(busy.shape())
                && i.param("threads", "0").equals(busy.param("threads", "0"))
                && i.param("tile", "auto").equals(busy.param("tile", "auto"))
                && i.param("core", "?").equals(busy.param("core", "?"))).stream().findFirst();
    }

    static String rTable(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Interleaved i : of(res, Interleaved.Kind.LORA_VS_BASE, x -> true)) {
            Shape s = i.shape();
            double floor = s.cpuStepFlopRatio(dropout(i));
            String busy = i.param("busy", "0");
            rows.add(List.of(Integer.toString(s.n()), s.dLabel(), Integer.toString(s.r()), tile(i) + pairing(i) + (busy.equals("0") ? ""
                    : ", " + busy + " competing thread(s)"), Fmt.num(i.aMedian(), Fmt.decimals(i.aMedian())),
                    Fmt.num(i.bMedian(), Fmt.decimals(i.bMedian())), figure(i), Fmt.num(floor, 3), res.load(i.source())));
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours", "LoRA ms/step", "base ms/step", "R: median (range)", "FLOP ratio",
                "load (1/5/15 min) before → after"), rows);
    }

    /** Whether a run's LoRA step applied a dropout mask (its JMH parameter, 0 when absent). */
    private static boolean dropout(Interleaved i) {
        return Double.parseDouble(i.param("dropout", "0")) > 0;
    }

    /**
     * Whether the run's LoRA side applied a dropout mask: training steps with p &gt; 0; never the
     * forward-only pairs (forwardThenBase runs in eval mode, LayerStep's decode parameters).
     */
    static boolean masked(Interleaved i) {
        return i.kind() != Interleaved.Kind.LORA_VS_BASE_FORWARD && dropout(i);
    }

    /** The forward-only pairs (decoding): LoRA and base forward µs, their ratio, the forward FLOP ratio. */
    static String decodeTable(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (Interleaved i : of(res, Interleaved.Kind.LORA_VS_BASE_FORWARD, x -> true)) {
            Shape s = i.shape();
            double floor = s.cpuForwardFlopRatio(false);  // eval mode: no mask whatever p is
            String busy = i.param("busy", "0");
            double aUs = i.aMedian() * 1e3;
            double bUs = i.bMedian() * 1e3;
            rows.add(List.of(Integer.toString(s.n()), s.dLabel(), Integer.toString(s.r()), tile(i) + pairing(i) + (busy.equals("0") ? ""
                    : ", " + busy + " competing thread(s)"), Fmt.num(aUs, Fmt.decimals(aUs)), Fmt.num(bUs, Fmt.decimals(bUs)),
                    figure(i), Fmt.num(floor, 3), res.load(i.source())));
        }
        if (rows.isEmpty()) {
            return Fmt.NONE + "\n";
        }
        return Fmt.table(List.of("N", "d", "r", "ours", "LoRA forward µs", "base forward µs",
                "LoRA ÷ base forward (decoding): median (range)", "forward FLOP ratio", "load (1/5/15 min) before → after"), rows);
    }

    /** The first quiet run of a kind at a shape and tile (single steps alternating, for the paired kinds). */
    private static Optional<Interleaved> find(Results res, Interleaved.Kind kind, int n, int d, int r, String tile,
                                              String core) {
        return matching(res, kind, n, d, r, tile, core).stream().filter(i -> block(i) == 1).findFirst();
    }

    /**
     * Every quiet fp32 run of a kind at a shape and tile without a dropout mask (issue 14's targets are
     * fp32 and dropout 0's), in {@link #of}'s order (single steps before blocks).
     */
    private static List<Interleaved> matching(Results res, Interleaved.Kind kind, int n, int d, int r, String tile,
                                              String core) {
        return of(res, kind, i -> i.shape().n() == n && i.shape().dIn() == d && i.shape().dOut() == d && i.shape().r() == r
                && i.param("tile", "auto").equals(tile) && i.param("busy", "0").equals("0") && !masked(i)
                && Catalog.f32(i.params())
                && (kind == Interleaved.Kind.OURS_VS_OPENBLAS_CPU || !i.param("threads", "0").equals("1"))
                && (core == null || i.param("core", "?").equalsIgnoreCase(core)));
    }

    /**
     * A speed target's runs with single blocks, one per set of JIT flags measured (the 256-bit tile
     * runs both as -XX:MaxVectorSize=32, issue 14's spelling, and as -XX:UseAVX=2, the code an AVX2
     * machine's JIT compiles: jmh/README.md), flagless first.
     */
    private static List<Interleaved> singles(Results res, Interleaved.Kind kind, SpeedTarget t) {
        return matching(res, kind, t.n(), 1024, 64, t.tile(), t.core()).stream().filter(i -> block(i) == 1)
                .sorted(Comparator.comparing(i -> i.param("jvm", ""))).toList();
    }

    /** ", -XX:UseAVX=2" for a run with JIT flags; "" without. */
    private static String jvm(Interleaved i) {
        String jvm = i.param("jvm", "");
        return jvm.isEmpty() ? "" : ", " + jvm;
    }

    /** "ours (256-bit vectors, 6×16 tile) ÷ OpenBLAS Haswell … ≥ 1.05× at …": the tile the run's JIT flags chose. */
    private static String targetName(SpeedTarget t, String jvmFlags) {
        return "ours (" + Catalog.tileName(t.tile(), jvmFlags) + ") ÷ OpenBLAS " + t.core() + Catalog.isa(t.core()) + " ≥ "
                + Fmt.num(t.min(), 2) + "× at N=" + t.n() + ", d=1024, r=64";
    }

    /** One run's row of a speed target: all cores in wall time, or one thread each in CPU time. */
    private static List<String> speedRow(Results res, SpeedTarget t, Interleaved i, boolean allCores) {
        return List.of(targetName(t, i.param("jvm", "")) + (allCores ? " (all cores, wall time" : " (one thread each, CPU time")
                        + jvm(i) + ")",
                figure(i) + "; load " + res.load(i.source()),
                verdict(i.figure() >= t.min(), i.figureMin() >= t.min(), i.figureMax() >= t.min())
                        + ceilingNote(res, i, t, allCores) + underLoad(res, i));
    }

    static String targets(Results res) {
        List<List<String>> rows = new ArrayList<>();
        for (SpeedTarget t : SPEED) {
            List<Interleaved> all = singles(res, Interleaved.Kind.OURS_VS_OPENBLAS, t);
            if (all.isEmpty()) {
                rows.add(List.of(targetName(t, "") + " (all cores, wall time)", Fmt.NONE, Fmt.NONE));
            }
            all.forEach(i -> rows.add(speedRow(res, t, i, true)));
            singles(res, Interleaved.Kind.OURS_VS_OPENBLAS_CPU, t).forEach(i -> rows.add(speedRow(res, t, i, false)));
        }
        for (RTarget t : R_TARGETS) {
            double floor = 1 + 3.0 * t.r() / 1024;
            String what = "R ≤ " + Fmt.num(t.max(), 2) + " at r=" + t.r() + ", N=512, d=1024 (" + Catalog.tileName("512") + ")";
            Optional<Interleaved> m = find(res, Interleaved.Kind.LORA_VS_BASE, 512, 1024, t.r(), "512", null);
            String floorNote = floor > t.max() ? "; the target is below the FLOP floor R = 1 + 3r/d = " + Fmt.num(floor, 3)
                    + ", reachable only if the LoRA FLOPs ran faster than the base's" : "";
            rows.add(m.map(i -> List.of(what, "R = " + figure(i) + "; load " + res.load(i.source()),
                    verdict(i.figure() <= t.max(), i.figureMax() <= t.max(), i.figureMin() <= t.max()) + floorNote
                            + baseEfficiency(res, i) + underLoad(res, i)))
                    .orElse(List.of(what, Fmt.NONE, Fmt.NONE + floorNote)));
        }
        for (Interleaved o : of(res, Interleaved.Kind.BUSY_OURS, x -> true)) {
            of(res, Interleaved.Kind.BUSY_PEER, x -> x.source().equals(o.source()) && x.params().equals(o.params())).stream()
                    .findFirst().ifPresent(p -> rows.add(List.of("a busy second core slows ours far less than OpenBLAS's "
                            + "all-core chain (N=" + o.shape().n() + ", d=" + o.shape().dLabel() + ", r=" + o.shape().r() + ", "
                            + tile(o) + " vs " + o.param("core", "?") + ")", "ours ×" + figure(o) + ", OpenBLAS ×" + figure(p)
                            + "; load " + res.load(o.source()), busyVerdict(o, p))));
        }
        decodeTargets(rows, res, Interleaved.Kind.LORA_VS_BASE,
                "N=1: the LoRA step ≤ " + Fmt.num(DECODE_MAX, 1) + "× the frozen base (d=1024, r=64, " + Catalog.tileName("512") + ")",
                "; traffic floor 1 + 3r/d = " + Fmt.num(1 + 3.0 * 64 / 1024, 3) + " to 1 + 4r/d = " + Fmt.num(1 + 4.0 * 64 / 1024, 3)
                        + " (memory-bound: both passes read the packed W, A and B, and dA and dB are written, each"
                        + " written byte costing one, or two with its read for ownership)" + trafficFloor(res, Interleaved.Kind.TRAFFIC));
        decodeTargets(rows, res, Interleaved.Kind.LORA_VS_BASE_FORWARD, "N=1 decoding (forward only): LoRA forward ≤ "
                + Fmt.num(DECODE_MAX, 1) + "× the frozen base forward (d=1024, r=64, " + Catalog.tileName("512") + ")",
                "; traffic floor 1 + 2r/d = " + Fmt.num(1 + 2.0 * 64 / 1024, 3) + " (the forward reads the packed W, A and B)"
                        + trafficFloor(res, Interleaved.Kind.TRAFFIC_FORWARD));
        return Fmt.table(List.of("target", "measured: median (range over iterations)", "verdict"), rows);
    }

    /**
     * "; the same bytes moved alone, no arithmetic (`TrafficFloorBenchmark`, k steps a side): R = …"
     * from the traffic run of {@code kind} at N = 1, d = 1024, r = 64 (the one with the most steps a
     * side), else "".
     */
    static String trafficFloor(Results res, Interleaved.Kind kind) {
        return of(res, kind, i -> i.shape().n() == 1 && i.shape().dIn() == 1024 && i.shape().dOut() == 1024 && i.shape().r() == 64)
                .stream().max(Comparator.comparingInt(CpuSideBySide::block))
                .map(i -> "; the same bytes moved alone, no arithmetic (`TrafficFloorBenchmark`, " + block(i)
                        + " steps a side, this machine): R = " + figure(i) + underLoad(res, i))
                .orElse("");
    }

    /**
     * The rows of an N = 1 target ({@link #DECODE_MAX}): one per pairing measured (single steps
     * alternating, then each block size), each with its own verdict and the byte-traffic floor
     * {@code floor} (N = 1 moves bytes, it does few FLOPs); "not yet measured" without any.
     */
    private static void decodeTargets(List<List<String>> rows, Results res, Interleaved.Kind kind, String what, String floor) {
        List<Interleaved> runs = new ArrayList<>(matching(res, kind, 1, 1024, 64, "512", null));
        // both pairings the suite runs (decode: single steps; decode-blocks: 32 a side) keep their row, in that order,
        // when one has no result: a missing or empty file reads "not yet measured" instead of dropping the target
        for (int b : new int[] {1, 32}) {
            List<Interleaved> these = runs.stream().filter(i -> block(i) == b).toList();
            if (these.isEmpty()) {
                rows.add(List.of(what + ", " + (b == 1 ? "single steps alternating" : b + " steps a side"), Fmt.NONE, Fmt.NONE));
            }
            for (Interleaved i : these) {
                addDecodeRow(rows, res, i, what, floor);
            }
            runs.removeAll(these);
        }
        for (Interleaved i : runs) {  // any other block size
            addDecodeRow(rows, res, i, what, floor);
        }
    }

    private static void addDecodeRow(List<List<String>> rows, Results res, Interleaved i, String what, String floor) {
        String how = block(i) == 1 ? "single steps alternating" : block(i) + " steps a side";
        rows.add(List.of(what + ", " + how, Fmt.num(i.aMedian() * 1e3, 1) + " µs vs " + Fmt.num(i.bMedian() * 1e3, 1)
                        + " µs: " + figure(i) + "; load " + res.load(i.source()),
                verdict(i.figure() <= DECODE_MAX, i.figureMax() <= DECODE_MAX, i.figureMin() <= DECODE_MAX) + floor
                        + underLoad(res, i)));
    }

    /**
     * The busy-core verdict: kept when ours is slowed less by the median, with how often it was in the
     * same iterations (both sides' blocks ran in each invocation, so iteration i pairs them) and
     * whether every JVM agrees: "**kept**: ours slowed 1.85×, OpenBLAS 2.20×; less in 14 of 18
     * iterations and in every JVM".
     */
    static String busyVerdict(Interleaved ours, Interleaved peer) {
        String v = (ours.figure() < peer.figure() ? "**kept**" : "**not kept**") + ": ours slowed " + Fmt.num(ours.figure(), 2)
                + "×, OpenBLAS " + Fmt.num(peer.figure(), 2) + "×";
        double[] o = ours.figures();
        double[] p = peer.figures();
        if (o.length != p.length) {
            return v;
        }
        long less = java.util.stream.IntStream.range(0, o.length).filter(i -> o[i] < p[i]).count();
        double[] of = ours.forkFigures();
        double[] pf = peer.forkFigures();
        long jvms = java.util.stream.IntStream.range(0, Math.min(of.length, pf.length)).filter(f -> of[f] < pf[f]).count();
        return v + "; ours slowed less in " + less + " of " + o.length + " iterations"
                + (of.length < 2 ? "" : jvms == of.length ? " and in every JVM" : " and in " + jvms + " of " + of.length + " JVMs");
    }

    /**
     * What a speed target asks of the FMA ceiling: "; OpenBLAS's chain ran at G GFLOP/s, P % of the
     * ceiling; ≥ T× needs Q % of it", plus ", more than the ceiling measured in this run" when Q
     * exceeds 100, and the share of the chain's FLOPs ours saved where it took the merged route (Q
     * counts the chain's FLOPs: the rate the target asks of the same work). When either side ran above the measured ceiling, the ceiling is what is wrong, and
     * the note says that instead. One thread each ({@code allCores} false): GFLOP/s per CPU-second
     * against one core's ceiling at the tile's width; all cores: wall-clock GFLOP/s against the
     * ceiling all cores reached together. "" when that ceiling was not measured.
     */
    static String ceilingNote(Results res, Interleaved i, SpeedTarget t, boolean allCores) {
        double ceil = allCores ? allCoreCeiling(res, t.tile()) : ceiling(res, t.tile());
        if (Double.isNaN(ceil) || !(i.bMedian() > 0) || !(i.aMedian() > 0)) {
            return "";
        }
        double peer = i.shape().loraFlop() / (i.bMedian() * 1e6);
        // ours may form W' = W + γB·A instead of the LoRA K-segments (N ≥ 2·d): count the FLOPs it did
        double oursFlop = i.shape().baseFlop() * i.shape().cpuStepFlopRatio(dropout(i));
        double ours = oursFlop / (i.aMedian() * 1e6);
        String fewer = oursFlop < 0.999 * i.shape().loraFlop()
                ? " (ours forms W' = W + γB·A and does " + Fmt.num(100 * (1 - oursFlop / i.shape().loraFlop()), 0)
                        + " % fewer FLOPs than the chain)" : "";
        String which = " of the " + t.tile() + "-bit FMA ceiling" + (allCores ? " of all cores" : "");
        if (Math.max(peer, ours) > ceil) {
            return "; " + (peer >= ours ? "OpenBLAS's chain" : "ours") + " ran at " + Fmt.num(100 * Math.max(peer, ours) / ceil, 0)
                    + " %" + which + ": that ceiling is under-measured";
        }
        double need = 100 * t.min() * peer / ceil;
        return "; OpenBLAS's chain ran at " + Fmt.num(peer, 0) + (allCores ? " GFLOP/s, " : " GFLOP/s per CPU-second, ")
                + Fmt.num(100 * peer / ceil, 0) + " %" + which + "; ≥ " + Fmt.num(t.min(), 2) + "× needs " + Fmt.num(need, 0)
                + " % of it" + (need > 100 ? ", more than the ceiling measured in this run" : "") + fewer;
    }

    /**
     * "; the base step ran at G GFLOP/s, P % of the FMA ceiling of all cores" when the 512-bit
     * ceiling and the machine's core count were measured, else "".
     */
    static String baseEfficiency(Results res, Interleaved i) {
        double perCore = ceiling(res, "512");
        if (Double.isNaN(perCore)) {
            perCore = res.unknown().stream().filter(u -> u.benchmark().equals("FmaPeakBenchmark.fma512") && threadsOf(u) == 1)
                    .mapToDouble(u -> 2.0 * 16 / peak(u).bestNs()).findFirst().orElse(Double.NaN);
        }
        int cores = res.cpuEnv() == null ? 0 : res.cpuEnv().path("logical_cpus").asInt(0);
        if (Double.isNaN(perCore) || cores == 0) {
            return "";
        }
        double gflops = i.shape().baseFlop() / (i.bMedian() * 1e6);
        double all = allCoreCeiling(res, "512");
        return "; the base step (interleaved) ran at " + Fmt.num(gflops, 0) + " GFLOP/s, " + Fmt.num(100 * gflops / (perCore * cores), 0)
                + " % of " + cores + " × the 512-bit FMA ceiling" + (Double.isNaN(all) ? ""
                : " (" + Fmt.num(100 * gflops / all, 0) + " % of the " + Fmt.num(all, 0) + " GFLOP/s " + allCoreThreads(res, "512")
                + " threads reached together)");
    }

    /** Other processes' CPUs (busy in the 2 s before a run) from which its figures are not a quiet machine's. */
    static final double BUSY_CPUS = 0.5;

    /**
     * " — under load: …" when other processes kept at least {@link #BUSY_CPUS} CPUs busy in the 2 s
     * before the run (recorded by jmh/bench.sh since 2026-12-06), else "". Not from the 1-minute load
     * average: at a run's start it still counts the suite's own previous run (two busy threads for a
     * minute read as a load near 2), so it flagged quiet runs that followed a long one; runs without
     * the record are not judged.
     */
    static String underLoad(Results res, Interleaved i) {
        var busy = res.busyBefore(i.source());
        if (busy.isEmpty() || busy.getAsDouble() < BUSY_CPUS) {
            return "";
        }
        int cpus = res.cpuEnv() == null ? 0 : res.cpuEnv().path("logical_cpus").asInt(0);
        return " — **under load** (other processes kept " + Fmt.num(busy.getAsDouble(), 2) + " of "
                + (cpus > 0 ? String.valueOf(cpus) : "the") + " logical CPUs busy in the 2 s before the run): not a quiet "
                + "machine's figure; the all-core ratios against OpenBLAS grow with the load";
    }

    /** "**met**" when the median meets it (and every iteration does, or not), "**not met**" otherwise. */
    private static String verdict(boolean median, boolean all, boolean any) {
        if (median) {
            return all ? "**met** (every iteration)" : "**met** by the median (not by every iteration)";
        }
        return any ? "**not met** by the median (met by some iterations)" : "**not met**";
    }
}
