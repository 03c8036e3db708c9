package dev.rslora.cli;

import dev.rslora.core.Init;
import dev.rslora.core.Scaling;
import dev.rslora.io.SafetensorsDtype;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.peft.AdapterModule;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.PeftConfig;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The streaming demonstration (tagged "slow", not run by default): a synthetic 7B-layer-shaped
 * BF16 checkpoint of ~3.3 GB in two shards (embedding 32000×4096, 8 layers of q/k/v/o 4096×4096 and
 * gate/up/down 11008×4096) gets an r = 16 rsLoRA adapter on q_proj and v_proj merged by
 * {@code rslora merge} in a child JVM limited to -Xmx256m; the peak heap is recorded.
 *
 * <pre>
 * mvn -o -B -pl java/cli -am test -Dtest=StreamingMergeTest -Dsurefire.failIfNoSpecifiedTests=false -Drslora.test.excludedGroups=none \
 *     [-Drslora.streaming.dir=/big/disk]      # needs ~7 GB free
 * </pre>
 * Results go to stdout and {@code java/cli/target/streaming-merge.txt}.
 */
@Tag("slow")
class StreamingMergeTest {
    private static final int HIDDEN = 4096;
    private static final int INTER = 11008;
    private static final int VOCAB = 32000;
    private static final int LAYERS = 8;
    private static final String XMX = "-Xmx256m";

    /** Cheap deterministic BF16 values in ±[2^-8, 2^-7): sign and mantissa are a hash of (tensor, element). */
    private static SafetensorsWriter.ByteProducer pattern(int tensorId) {
        return (offset, dst) -> {
            long first = offset / 2;
            long n = dst.byteSize() / 2;
            for (long i = 0; i < n; i++) {
                long h = (first + i) * 0x9E3779B97F4A7C15L + tensorId * 0xC2B2AE3D27D4EB4FL;
                short bits = (short) (0x3B80 | ((h >>> 40) & 0x7F) | ((h >>> 32) & 0x8000));
                dst.set(DType.LE_SHORT, i * 2, bits);
            }
        };
    }

    private static Path writeBase(Path folder) throws Exception {
        Files.createDirectories(folder);
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {VOCAB, HIDDEN});
        for (int l = 0; l < LAYERS; l++) {
            String p = "model.layers." + l + ".";
            for (String m : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"}) {
                shapes.put(p + "self_attn." + m + ".weight", new long[] {HIDDEN, HIDDEN});
            }
            shapes.put(p + "mlp.gate_proj.weight", new long[] {INTER, HIDDEN});
            shapes.put(p + "mlp.up_proj.weight", new long[] {INTER, HIDDEN});
            shapes.put(p + "mlp.down_proj.weight", new long[] {HIDDEN, INTER});
            shapes.put(p + "input_layernorm.weight", new long[] {HIDDEN});
        }
        String[] shardNames = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
        SafetensorsWriter[] shards = {new SafetensorsWriter().metadata("format", "pt"), new SafetensorsWriter().metadata("format", "pt")};
        StringBuilder map = new StringBuilder();
        long total = 0;
        int id = 0;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            int s = e.getKey().startsWith("model.layers.") && Integer.parseInt(e.getKey().split("\\.")[2]) >= LAYERS / 2 ? 1 : 0;
            shards[s].add(SafetensorsWriter.Item.computed(e.getKey(), SafetensorsDtype.BF16, e.getValue(), pattern(id++)));
            map.append(map.isEmpty() ? "" : ",\n").append("    \"").append(e.getKey()).append("\": \"").append(shardNames[s]).append('"');
            long n = 2;
            for (long d : e.getValue()) {
                n *= d;
            }
            total += n;
        }
        for (int s = 0; s < 2; s++) {
            shards[s].write(folder.resolve(shardNames[s]));
        }
        Files.writeString(folder.resolve("model.safetensors.index.json"),
                "{\n  \"metadata\": {\"total_size\": " + total + "},\n  \"weight_map\": {\n" + map + "\n  }\n}\n");
        return folder;
    }

    @Test
    void aMultiGigabyteCheckpointMergesWithBoundedHeap() throws Exception {
        Path root = Files.createTempDirectory(Path.of(System.getProperty("rslora.streaming.dir", System.getProperty("java.io.tmpdir"))),
                "rslora-streaming-");
        try {
            long t0 = System.nanoTime();
            Path base = writeBase(root.resolve("base"));
            double genSeconds = (System.nanoTime() - t0) / 1e9;
            Path adapter = root.resolve("adapter");
            try (Arena arena = Arena.ofShared()) {
                BaseCheckpoint ck = BaseCheckpoint.open(base, arena);
                PeftConfig config = PeftConfig.create(List.of("q_proj", "v_proj"), 16, 32, Scaling.RSLORA, Init.DEFAULT);
                AdapterSet set = AdapterSet.init(ck, config, 1, arena);
                SplittableRandom rng = new SplittableRandom(2);
                for (AdapterModule m : set.modules().values()) {
                    for (long k = 0; k < m.loraB().numel(); k++) {
                        m.loraB().set(k, (float) rng.nextDouble(-0.01, 0.01));     // a "trained" B
                    }
                }
                set.save(adapter, DType.F32);
            }
            long baseBytes;
            try (var files = Files.list(base)) {
                baseBytes = files.mapToLong(p -> p.toFile().length()).sum();
            }
            Path out = root.resolve("merged");
            Path gcLog = root.resolve("gc.log");
            List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", XMX, "-Xlog:gc:file=" + gcLog,
                    "-cp", System.getProperty("java.class.path"), HeapReport.class.getName(),
                    "merge", "--base", base.toString(), "--adapter", adapter.toString(), "--output", out.toString()));
            long t1 = System.nanoTime();
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes());
            assertTrue(p.waitFor(30, TimeUnit.MINUTES));
            double mergeSeconds = (System.nanoTime() - t1) / 1e9;
            assertEquals(0, p.exitValue(), log);
            Matcher m = Pattern.compile("heap-peak-bytes=(\\d+) heap-max-bytes=(\\d+) rss-peak-kb=(\\d+)").matcher(log);
            assertTrue(m.find(), log);
            long heapPeak = Long.parseLong(m.group(1));
            long gcPeak = 0;
            Matcher g = Pattern.compile("(\\d+)M->(\\d+)M\\((\\d+)M\\)").matcher(Files.readString(gcLog));
            int gcs = 0;
            while (g.find()) {
                gcPeak = Math.max(gcPeak, Long.parseLong(g.group(1)));
                gcs++;
            }
            checkSamples(base, adapter, out);
            String report = String.format("checkpoint: %.2f GB BF16 in 2 shards (%d layers of 4096/11008 + embedding %dx%d), generated in %.1f s%n"
                            + "adapter: r=16 rsLoRA on q_proj,v_proj (%d modules)%n"
                            + "merge: %s, wall %.1f s (%.0f MB/s, including JVM start)%n"
                            + "heap peak (sum of pool peaks, upper bound): %.1f MB of %.0f MB max; GC log: %d collections, max heap before GC %d MB%n"
                            + "peak RSS (includes mapped file pages): %.0f MB%n",
                    baseBytes / 1e9, LAYERS, VOCAB, HIDDEN, genSeconds, 2 * LAYERS, XMX, mergeSeconds, baseBytes / 1e6 / mergeSeconds,
                    heapPeak / 1e6, Long.parseLong(m.group(2)) / 1e6, gcs, gcPeak, Long.parseLong(m.group(3)) / 1e3);
            System.out.print(report);
            Files.writeString(Path.of("target", "streaming-merge.txt"), report + "child output:\n" + log);
            assertTrue(baseBytes > 12L * Long.parseLong(m.group(2)), "the checkpoint is far larger than the heap");
            assertTrue(heapPeak < 128L << 20, "peak heap " + heapPeak);
        } finally {
            try (var walk = Files.walk(root)) {
                for (Path f : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(f);
                }
            }
        }
    }

    /** Spot checks: a few merged elements of each adapted weight against a double oracle, and a copied tensor. */
    private static void checkSamples(Path base, Path adapter, Path out) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint in = BaseCheckpoint.open(base, arena);
            BaseCheckpoint merged = BaseCheckpoint.open(out, arena);
            AdapterSet set = AdapterSet.load(adapter, arena);
            SplittableRandom rng = new SplittableRandom(3);
            for (AdapterModule mod : set.modules().values()) {
                Tensor w = in.tensor(mod.weightName());
                Tensor got = merged.tensor(mod.weightName());
                for (int k = 0; k < 64; k++) {
                    long o = rng.nextLong(w.dim(0));
                    long i = rng.nextLong(w.dim(1));
                    double s = 0;
                    for (int j = 0; j < mod.rank(); j++) {
                        s += (double) mod.loraB().get(o, j) * mod.loraA().get(j, i);
                    }
                    double ref = w.get(o, i) + mod.gamma() * s;
                    assertTrue(Math.abs(got.get(o, i) - ref) <= Math.ulp((float) ref) * 65536, mod.path() + " [" + o + "," + i + "]");
                }
            }
            String copied = "model.layers.7.mlp.down_proj.weight";
            MemorySegment a = in.shardOf(copied).file().bytes(copied);
            MemorySegment b = merged.shardOf(copied).file().bytes(copied);
            assertEquals(-1, a.mismatch(b), copied + " copied byte for byte");
        }
    }
}
