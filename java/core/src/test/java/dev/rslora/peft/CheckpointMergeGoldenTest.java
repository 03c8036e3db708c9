package dev.rslora.peft;

import dev.rslora.io.SafetensorsEntry;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Checkpoint merges against the PyTorch golden files (bit for bit), the √r bug, and merge → unmerge.
 */
class CheckpointMergeGoldenTest {
    @TempDir
    Path dir;

    private static void merge(Path base, Path adapter, Path out, boolean unmerge) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            new CheckpointMerge(BaseCheckpoint.open(base, arena), AdapterSet.load(adapter, arena), unmerge).writeTo(out, n -> { });
        }
    }

    /** Every tensor of {@code actual} has the bytes, dtype and shape of the one in {@code expected}, and the same set of names. */
    private static void assertSameTensors(BaseCheckpoint expected, BaseCheckpoint actual) {
        assertEquals(new java.util.TreeSet<>(expected.names()), new java.util.TreeSet<>(actual.names()));
        for (String name : expected.names()) {
            SafetensorsEntry e = expected.entry(name);
            SafetensorsEntry a = actual.entry(name);
            assertEquals(e.dtype(), a.dtype(), name);
            assertArrayEquals(e.shape(), a.shape(), name);
            long at = expected.shardOf(name).file().bytes(name).mismatch(actual.shardOf(name).file().bytes(name));
            assertEquals(-1, at, name + " differs at byte " + at);
        }
    }

    @ParameterizedTest(name = "{0} + {1}")
    @CsvSource({
            "base-bf16.safetensors, adapter-rslora, expected/merged-rslora-bf16.safetensors",
            "base-bf16.safetensors, adapter-rslora-bf16, expected/merged-rslora-bf16.safetensors",
            "base-bf16.safetensors, adapter-rslora-f16, expected/merged-rslora-bf16.safetensors",
            "base-f32.safetensors, adapter-rslora, expected/merged-rslora-f32.safetensors",
            "base-f32.safetensors, adapter-rslora-bf16, expected/merged-rslora-f32.safetensors",
            "base-bf16.safetensors, adapter-lora, expected/merged-lora-bf16.safetensors",
            "base-gpt2-f32.safetensors, adapter-gpt2, expected/merged-gpt2-f32.safetensors",
    })
    void singleFileMergesEqualTheGoldenBitForBit(String base, String adapter, String expected) throws Exception {
        Path out = dir.resolve("merged.safetensors");
        merge(Golden.path(base), Golden.path(adapter), out, false);
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint want = BaseCheckpoint.open(Golden.path(expected), arena);
            BaseCheckpoint got = BaseCheckpoint.open(out, arena);
            assertSameTensors(want, got);
            assertEquals(Map.of("format", "pt"), got.shards().get(0).file().metadata(), "header metadata kept");
            // the untouched tensors are the base's bytes, including the F32 buffer and the I64 tensor
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path(base), arena);
            for (String name : in.names()) {
                if (!name.contains("q_proj") && !name.contains("v_proj") && !name.contains("down_proj") && !name.contains("c_attn.weight")
                        && !name.equals("lm_head.weight") && !name.equals("score.weight")) {
                    assertEquals(-1, in.shardOf(name).file().bytes(name).mismatch(got.shardOf(name).file().bytes(name)), name);
                }
            }
        }
        // our writer lays the file out as the reference writer (and the generator) does
        assertEquals(-1, Files.mismatch(Golden.path(expected), out), "byte-identical file");
    }

    /** A caller with no progress bar passes null: the merge is written all the same (it threw a NullPointerException mid-write). */
    @Test
    void aNullProgressWritesTheSameFile() throws Exception {
        Path out = dir.resolve("merged.safetensors");
        try (Arena arena = Arena.ofShared()) {
            new CheckpointMerge(BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena),
                    AdapterSet.load(Golden.path("adapter-rslora"), arena), false).writeTo(out, null);
        }
        assertEquals(-1, Files.mismatch(Golden.path("expected/merged-rslora-bf16.safetensors"), out));
    }

    @Test
    void aShardFolderMergesIntoTheSameLayoutWithItsIndexAndOtherFiles() throws Exception {
        Path out = dir.resolve("merged");
        merge(Golden.path("base-bf16-sharded"), Golden.path("adapter-rslora"), out, false);
        Path in = Golden.path("base-bf16-sharded");
        try (Stream<Path> a = Files.list(in); Stream<Path> b = Files.list(out)) {
            assertEquals(a.map(p -> p.getFileName().toString()).sorted().toList(), b.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals(-1, Files.mismatch(in.resolve("model.safetensors.index.json"), out.resolve("model.safetensors.index.json")));
        assertEquals(-1, Files.mismatch(in.resolve("config.json"), out.resolve("config.json")));
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint got = BaseCheckpoint.open(out, arena);
            assertTrue(got.isSharded());
            BaseCheckpoint inCk = BaseCheckpoint.open(in, arena);
            for (String name : inCk.names()) {
                assertEquals(inCk.shardOf(name).fileName(), got.shardOf(name).fileName(), name + " stays in its shard");
            }
            assertSameTensors(BaseCheckpoint.open(Golden.path("expected/merged-rslora-bf16.safetensors"), arena), got);
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("merged"), s.map(p -> p.getFileName().toString()).toList(), "no temporary folder left");
        }
    }

    /**
     * The √r bug: merging the same A, B with use_rslora true and false must change W by deltas whose
     * ratio is exactly γ_rs/γ_lora = √r. Over an all-zero F32 base the merged tensor is the delta itself.
     */
    @Test
    void useRsloraScalesTheDeltaByExactlySqrtR() throws Exception {
        Path zeros = dir.resolve("zeros.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint like = BaseCheckpoint.open(Golden.path("base-f32.safetensors"), arena);
            SafetensorsWriter w = new SafetensorsWriter();
            for (String name : like.names()) {
                SafetensorsEntry e = like.entry(name);
                if (e.dtype().isComputable()) {
                    w.add(name, Tensor.allocate(arena, DType.F32, e.shape()));
                }
            }
            w.write(zeros);
        }
        Path rs = dir.resolve("rs.safetensors");
        Path lora = dir.resolve("lora.safetensors");
        merge(zeros, Golden.path("adapter-rslora"), rs, false);
        merge(zeros, Golden.path("adapter-lora"), lora, false);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile a = SafetensorsFile.open(rs, arena);
            SafetensorsFile b = SafetensorsFile.open(lora, arena);
            AdapterSet adapter = AdapterSet.load(Golden.path("adapter-lora"), arena);
            int checked = 0;
            for (AdapterModule m : adapter.modules().values()) {
                int r = m.rank();
                float[] dRs = a.tensor(m.weightName()).toFloatArray();
                float[] dLora = b.tensor(m.weightName()).toFloatArray();
                for (int k = 0; k < dRs.length; k++) {
                    if (dLora[k] == 0) {
                        assertEquals(0f, dRs[k]);
                        continue;
                    }
                    double ratio = (double) dRs[k] / dLora[k];
                    if (r == 4) {
                        assertEquals(2.0, ratio, 0.0, m.path() + " r=4: γ ratio √4 = 2 is a power of two, so exact");
                    } else {
                        assertEquals(Math.sqrt(r), ratio, Math.sqrt(r) * 0x1p-22, m.path() + " r=" + r);
                    }
                    checked++;
                }
            }
            assertTrue(checked > 1000, "checked " + checked + " elements");
        }
    }

    @ParameterizedTest
    @CsvSource({"base-bf16.safetensors, BF16", "base-f32.safetensors, F32"})
    void mergeThenUnmergeIsWithinOneUlpOfTheBase(String base, DType dt) throws Exception {
        Path merged = dir.resolve("m.safetensors");
        Path back = dir.resolve("b.safetensors");
        merge(Golden.path(base), Golden.path("adapter-lora"), merged, false);
        merge(merged, Golden.path("adapter-lora"), back, true);
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path(base), arena);
            BaseCheckpoint m = BaseCheckpoint.open(merged, arena);
            BaseCheckpoint out = BaseCheckpoint.open(back, arena);
            int moved = 0;
            for (String name : in.names()) {
                if (!in.entry(name).dtype().isComputable() || in.entry(name).dtype().compute() != dt) {
                    continue;
                }
                float[] w = in.tensor(name).toFloatArray();
                float[] mm = m.tensor(name).toFloatArray();
                float[] b = out.tensor(name).toFloatArray();
                for (int k = 0; k < w.length; k++) {
                    double ulp = Math.ulp(Math.max(Math.abs(w[k]), Math.abs(mm[k]))) * (dt == DType.BF16 ? 65536 : 1);
                    assertTrue(Math.abs(b[k] - w[k]) <= ulp, name + "[" + k + "]: " + b[k] + " vs base " + w[k] + " (merged " + mm[k] + ")");
                    moved += mm[k] != w[k] ? 1 : 0;
                }
            }
            assertTrue(moved > 500, "the merge changed " + moved + " elements");
        }
    }

    @Test
    void unmergeIsRefusedWhenTheAdapterReplacesBaseTensors() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            BaseCheckpoint base = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            AdapterSet set = AdapterSet.load(Golden.path("adapter-rslora"), arena);
            PeftFormatException e = assertThrows(PeftFormatException.class, () -> new CheckpointMerge(base, set, true));
            assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
        }
    }

    @Test
    void aCorruptShardIndexIsRefusedNamingTheIndex() throws Exception {
        Path base = Files.createDirectory(dir.resolve("sharded"));
        try (Stream<Path> files = Files.list(Golden.path("base-bf16-sharded"))) {
            for (Path f : files.toList()) {
                Files.copy(f, base.resolve(f.getFileName()));
            }
        }
        Path index = base.resolve(BaseCheckpoint.INDEX);
        String json = Files.readString(index);
        // trailing content: Python's json.load (transformers) refuses it with "Extra data"
        Files.writeString(index, json + "\n{\"weight_map\": {}}");
        assertIndexRefused(base, index.toString(), "not valid JSON");
        // a byte that is not UTF-8
        byte[] latin1 = json.replace("\"total_size\"", "\"caf\u00e9\": 1, \"total_size\"").getBytes(java.nio.charset.StandardCharsets.ISO_8859_1);
        Files.write(index, latin1);
        assertIndexRefused(base, index.toString(), "not valid UTF-8", "0xe9");
    }

    private static void assertIndexRefused(Path base, String... fragments) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            PeftFormatException e = assertThrows(PeftFormatException.class, () -> BaseCheckpoint.open(base, arena));
            for (String f : fragments) {
                assertTrue(e.getMessage().contains(f), "'" + f + "' in: " + e.getMessage());
            }
        }
    }
}
