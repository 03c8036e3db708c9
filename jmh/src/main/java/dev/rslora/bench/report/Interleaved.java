package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Two things timed alternately in one JVM (JMH aux counters summed per iteration), so a load that
 * comes and goes hits both alike: per iteration, A's and B's total time and steps.
 * <pre>
 *   LORA_VS_BASE        CpuLayerBenchmark.loraThenBase          A = our LoRA step, B = our frozen base; figure R = A/B
 *   LORA_VS_BASE_CPU    CpuLayerBenchmark.loraThenBaseCpu       the same in the calling thread's CPU time (threads = 1)
 *   LORA_VS_BASE_FORWARD  CpuLayerBenchmark.forwardThenBase     forward only (decoding): A = our LoRA forward, B = the
 *                       frozen base's forward; figure A/B
 *   OURS_VS_OPENBLAS    CpuVsOpenBlasBenchmark.oursThenOpenBlas A = ours, B = the OpenBLAS chain; figure B/A (ours faster above 1)
 *   OURS_VS_OPENBLAS_CPU  the same run in the calling thread's CPU time (kept for threads = 1, where it holds all the work)
 *   BUSY_OURS, BUSY_PEER  CpuVsOpenBlasBenchmark.busyEffect: A = the side's steps with a busy thread, B = without;
 *                       figure A/B (the slowdown one busy core causes)
 *   TRAFFIC             TrafficFloorBenchmark.loraThenBase      A = a LoRA step's bytes moved alone, B = the base step's;
 *                       figure A/B (the traffic floor under R at N = 1)
 *   TRAFFIC_FORWARD     TrafficFloorBenchmark.forwardThenBase   the same for the forwards
 * </pre>
 * The figure quoted is the median over iterations of the per-iteration ratio, with its range; a run
 * with several forks (JMH -f, one JVM each) pools the iterations of all of them, and
 * {@link #forkFigures} gives each JVM's own median: on the shared development machine a whole JVM
 * can run faster or slower than the next one (jmh/README.md: OpenBLAS's chain 7.1–9.4 ms per step,
 * ours 6.7–9.0, over nineteen JVMs), which one fork cannot show.
 *
 * @param fork the fork (JVM) each iteration ran in, 0-based, in the order of aMs and bMs
 */
public record Interleaved(Kind kind, Shape shape, Map<String, String> params, double[] aMs, double[] bMs, int[] fork,
                          String source) {

    public enum Kind {
        LORA_VS_BASE,
        LORA_VS_BASE_CPU,
        LORA_VS_BASE_FORWARD,
        OURS_VS_OPENBLAS,
        OURS_VS_OPENBLAS_CPU,
        BUSY_OURS,
        BUSY_PEER,
        TRAFFIC,
        TRAFFIC_FORWARD
    }

    static Kind kindOf(String cls, String method) {
        return switch (cls + "." + method) {
            case "CpuLayerBenchmark.loraThenBase" -> Kind.LORA_VS_BASE;
            case "CpuLayerBenchmark.loraThenBaseCpu" -> Kind.LORA_VS_BASE_CPU;
            case "CpuLayerBenchmark.forwardThenBase" -> Kind.LORA_VS_BASE_FORWARD;
            case "CpuVsOpenBlasBenchmark.oursThenOpenBlas" -> Kind.OURS_VS_OPENBLAS;
            case "CpuVsOpenBlasBenchmark.busyEffect" -> Kind.BUSY_OURS;
            case "TrafficFloorBenchmark.loraThenBase" -> Kind.TRAFFIC;
            case "TrafficFloorBenchmark.forwardThenBase" -> Kind.TRAFFIC_FORWARD;
            default -> null;
        };
    }

    /**
     * Per-iteration ms per step of each side from the aux counters' raw data (every fork). Files from
     * before the steps counter (loraThenBase without "steps") split the primary score (ms per
     * pair of steps) in proportion to the two times.
     */
    static Interleaved parse(Kind kind, JsonNode run, Shape shape, Map<String, String> params, String source, String where)
            throws IOException {
        JsonNode sm = run.path("secondaryMetrics");
        String a = switch (kind) {
            case LORA_VS_BASE, LORA_VS_BASE_FORWARD, TRAFFIC, TRAFFIC_FORWARD -> "loraNanos";
            case LORA_VS_BASE_CPU -> "loraCpuNanos";
            case OURS_VS_OPENBLAS -> "oursNanos";
            case OURS_VS_OPENBLAS_CPU -> "oursCpuNanos";
            case BUSY_OURS -> "oursBusyNanos";
            case BUSY_PEER -> "peerBusyNanos";
        };
        String b = switch (kind) {
            case LORA_VS_BASE, LORA_VS_BASE_FORWARD, TRAFFIC, TRAFFIC_FORWARD -> "baseNanos";
            case LORA_VS_BASE_CPU -> "baseCpuNanos";
            case OURS_VS_OPENBLAS -> "peerNanos";
            case OURS_VS_OPENBLAS_CPU -> "peerCpuNanos";
            case BUSY_OURS -> "oursNanos";
            case BUSY_PEER -> "peerNanos";
        };
        double[] aNs = raw(sm, a, where);
        double[] bNs = raw(sm, b, where);
        double[] aSteps;
        double[] bSteps;
        if (kind == Kind.OURS_VS_OPENBLAS || kind == Kind.OURS_VS_OPENBLAS_CPU) {
            aSteps = raw(sm, "oursSteps", where);
            bSteps = raw(sm, "peerSteps", where);
        } else if (sm.has("steps")) {
            aSteps = raw(sm, "steps", where);
            bSteps = aSteps;
        } else {
            double[] msPerPair = iterations(run.path("primaryMetric").path("rawData"), where + " primaryMetric.rawData");
            double scale = JmhJson.toMs(JmhJson.text(run.path("primaryMetric"), "scoreUnit", where), where);
            aSteps = new double[aNs.length];
            for (int i = 0; i < aNs.length; i++) {
                aSteps[i] = (aNs[i] + bNs[i]) / 1e6 / (msPerPair[i] * scale);
            }
            bSteps = aSteps;
        }
        // the JVM flags that shape the JIT's vectors (-XX:MaxVectorSize, -XX:UseAVX), as a pseudo-parameter
        List<String> xx = new ArrayList<>();
        run.path("jvmArgs").forEach(j -> {
            if (j.asText().startsWith("-XX:")) {
                xx.add(j.asText());
            }
        });
        if (!xx.isEmpty()) {
            params = new java.util.LinkedHashMap<>(params);
            params.put("jvm", String.join(" ", xx));
        }
        int k = aNs.length;
        if (bNs.length != k || aSteps.length != k || bSteps.length != k || k == 0) {
            throw new IOException(where + ": aux counters of " + kind + " have unequal or no iterations");
        }
        double[] aMs = new double[k];
        double[] bMs = new double[k];
        for (int i = 0; i < k; i++) {
            if (!(aSteps[i] > 0 && bSteps[i] > 0 && aNs[i] > 0 && bNs[i] > 0)) {
                throw new IOException(where + ": iteration " + i + " of " + kind + " has no steps or no time");
            }
            if (!(Double.isFinite(aSteps[i]) && Double.isFinite(bSteps[i]) && Double.isFinite(aNs[i]) && Double.isFinite(bNs[i]))) {
                throw new IOException(where + ": iteration " + i + " of " + kind + " has a time or step count that is not finite");
            }
            aMs[i] = aNs[i] / 1e6 / aSteps[i];
            bMs[i] = bNs[i] / 1e6 / bSteps[i];
        }
        int[] fork = forks(sm.get(a).path("rawData"));
        if (fork.length != k) {
            throw new IOException(where + ": aux counters of " + kind + " have unequal or no iterations");
        }
        return new Interleaved(kind, shape, params, aMs, bMs, fork, source);
    }

    private static double[] raw(JsonNode sm, String name, String where) throws IOException {
        JsonNode m = sm.get(name);
        if (m == null) {
            throw new IOException(where + ": aux counter '" + name + "' missing (have " + iterable(sm) + ")");
        }
        return iterations(m.path("rawData"), where + " " + name + ".rawData");
    }

    private static List<String> iterable(JsonNode sm) {
        List<String> names = new ArrayList<>();
        sm.fieldNames().forEachRemaining(names::add);
        return names;
    }

    /** The per-iteration values of every fork, fork after fork (rawData is [fork][iteration]). */
    private static double[] iterations(JsonNode rawData, String where) throws IOException {
        if (!rawData.isArray() || rawData.isEmpty()) {
            throw new IOException(where + " has no iterations");
        }
        for (int f = 0; f < rawData.size(); f++) {
            JsonNode fork = rawData.get(f);
            if (!fork.isArray() || fork.isEmpty()) {
                throw new IOException(where + " has no iterations in fork " + f);
            }
        }
        return JmhJson.iterations(rawData, 1.0, where).stream().mapToDouble(Double::doubleValue).toArray();
    }

    /** The fork of each value {@link #iterations} returns for the same rawData. */
    private static int[] forks(JsonNode rawData) {
        List<Integer> fork = new ArrayList<>();
        for (int f = 0; f < rawData.size(); f++) {
            for (int i = 0; i < rawData.get(f).size(); i++) {
                fork.add(f);
            }
        }
        return fork.stream().mapToInt(Integer::intValue).toArray();
    }

    /** A's ms per step, median over iterations. */
    double aMedian() {
        return median(aMs);
    }

    double bMedian() {
        return median(bMs);
    }

    /** The per-iteration figure: R = A/B for the LoRA/base kinds (forward only for LORA_VS_BASE_FORWARD), B/A (ours faster above 1) for OURS_VS_OPENBLAS. */
    double[] figures() {
        double[] f = new double[aMs.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = kind == Kind.OURS_VS_OPENBLAS || kind == Kind.OURS_VS_OPENBLAS_CPU ? bMs[i] / aMs[i] : aMs[i] / bMs[i];
        }
        return f;
    }

    double figure() {
        return median(figures());
    }

    double figureMin() {
        return Arrays.stream(figures()).min().orElse(Double.NaN);
    }

    double figureMax() {
        return Arrays.stream(figures()).max().orElse(Double.NaN);
    }

    int iterations() {
        return aMs.length;
    }

    /** JVMs (JMH forks) the iterations ran in. */
    int forks() {
        return Arrays.stream(fork).max().orElse(-1) + 1;
    }

    /** Each fork's median figure, in fork order. */
    double[] forkFigures() {
        double[] all = figures();
        double[] out = new double[forks()];
        for (int f = 0; f < out.length; f++) {
            final int ff = f;
            out[f] = median(java.util.stream.IntStream.range(0, all.length).filter(i -> fork[i] == ff).mapToDouble(i -> all[i])
                    .toArray());
        }
        return out;
    }

    String param(String name, String otherwise) {
        return params.getOrDefault(name, otherwise);
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        int k = s.length;
        return k % 2 == 1 ? s[k / 2] : (s[k / 2 - 1] + s[k / 2]) / 2;
    }
}
