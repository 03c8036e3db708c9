package dev.rslora.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.File;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Turns the JMH JSON of {@link CpuLayerBenchmark} into a Markdown table: time per step, effective
 * GFLOP/s (LoRA = 4·N·d_in·d_out + 6·N·r·(d_in + d_out), base = 4·N·d_in·d_out),
 * R = LoRA time / base time from the two separate benchmarks, and R measured interleaved
 * (loraThenBase: Σ loraNanos / Σ base nanos, the same load on both sides). Usage:
 * {@code java -cp benchmarks.jar dev.rslora.bench.CpuLayerReport bench-cpu-layer.json}.
 */
public final class CpuLayerReport {
    private CpuLayerReport() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 1) {
            System.err.println("usage: CpuLayerReport <jmh-result.json>");
            System.exit(2);
        }
        JsonNode root = new ObjectMapper().readTree(new File(args[0]));
        Map<String, double[]> byParams = new LinkedHashMap<>();
        for (JsonNode run : root) {
            String bench = run.get("benchmark").asText();
            JsonNode p = run.get("params");
            String key = p.get("n").asText() + " " + p.get("dIn").asText() + " " + p.get("dOut").asText() + " "
                    + p.get("r").asText() + " " + p.get("dropout").asText();
            double[] v = byParams.computeIfAbsent(key, k -> new double[] {Double.NaN, Double.NaN, Double.NaN, Double.NaN,
                    Double.NaN, Double.NaN});
            if (bench.endsWith("loraThenBase")) {
                JsonNode sec = run.get("secondaryMetrics");
                v[4] = sec.get("loraNanos").get("score").asDouble();
                v[5] = sec.get("baseNanos").get("score").asDouble();
                continue;
            }
            JsonNode m = run.get("primaryMetric");
            int at = bench.endsWith("loraForwardBackward") ? 0 : 2;
            v[at] = m.get("score").asDouble();
            v[at + 1] = m.get("scoreError").asDouble();
        }
        System.out.println("| N | d_in | d_out | r | p | LoRA fwd+bwd ms | base fwd+bwd ms | LoRA GFLOP/s | base GFLOP/s "
                + "| R (separate) | R (interleaved) |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
        for (Map.Entry<String, double[]> e : byParams.entrySet()) {
            String[] k = e.getKey().split(" ");
            double n = Double.parseDouble(k[0]);
            double dIn = Double.parseDouble(k[1]);
            double dOut = Double.parseDouble(k[2]);
            double r = Double.parseDouble(k[3]);
            double[] v = e.getValue();
            double baseFlop = 4 * n * dIn * dOut;
            double loraFlop = baseFlop + 6 * n * r * (dIn + dOut);
            System.out.printf("| %s | %s | %s | %s | %s | %.3f ± %.3f | %.3f ± %.3f | %.1f | %.1f | %.3f | %.3f |%n",
                    k[0], k[1], k[2], k[3], k[4], v[0], v[1], v[2], v[3], loraFlop / (v[0] * 1e6),
                    baseFlop / (v[2] * 1e6), v[0] / v[2], v[4] / v[5]);
        }
    }
}
