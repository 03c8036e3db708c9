package dev.rslora.cli;


import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.peft.AdapterSet;
import dev.rslora.peft.BaseCheckpoint;
import dev.rslora.peft.Golden;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** {@code rslora init / merge / inspect} end to end on the golden files, and every bad input refused cleanly. */
class PeftCommandsTest {
    @TempDir
    Path dir;

    static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    private static String g(String relative) {
        return Golden.path(relative).toString();
    }

    @Test
    void initWritesPeftsLayoutAndTheConfigPeftWould() throws Exception {
        Path out = dir.resolve("fresh");
        String base = g("base-bf16.safetensors");
        CliRun r = cli("init", "--base", base, "--target-modules", "q_proj,v_proj", "--rank", "4", "--alpha", "16",
                "--init", "gaussian", "--seed", "3", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("4 modules") && r.err().contains("γ=8"), r.err());
        String expected = Files.readString(Golden.path("expected/init-adapter_config.json")).replace("\"BASE\"", "\"" + base + "\"");
        assertEquals(expected, Files.readString(out.resolve(AdapterSet.CONFIG_FILE)));
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile f = SafetensorsFile.open(out.resolve(AdapterSet.WEIGHTS_FILE), arena);
            assertEquals(8, f.entries().size());
            for (var e : f.entries()) {
                assertEquals("F32", e.dtypeName(), e.name());
                assertTrue(e.name().startsWith("base_model.model.model.layers."), e.name());
                if (e.name().endsWith("lora_B.weight")) {
                    assertTrue(Arrays.stream(toDoubles(f.tensor(e.name()))).allMatch(v -> v == 0), "B = 0");
                }
            }
            AdapterSet set = AdapterSet.load(out, arena);
            assertEquals(8.0, set.module("model.layers.1.self_attn.v_proj").gamma(), "16/√4");
        }
        CliRun lora = cli("init", "--base", base, "--target-modules", " down_proj ,", "--rank", "2", "--alpha", "3",
                "--scaling", "lora", "--output", dir.resolve("lora").toString());
        assertEquals(0, lora.code(), lora.err());
        String cfg = Files.readString(dir.resolve("lora").resolve(AdapterSet.CONFIG_FILE));
        assertTrue(cfg.contains("\"use_rslora\": false") && cfg.contains("\"init_lora_weights\": true")
                && cfg.contains("\"lora_alpha\": 3,"), cfg);
    }

    /** A name matching nothing (a typo, a stray quote) is refused by name and writes nothing; repeating the option adds names. */
    @Test
    void initRefusesANameThatMatchesNoModule() throws Exception {
        String base = g("base-bf16.safetensors");
        for (String names : new String[] {"q_proj,q_prj", "q_proj,\"v_proj"}) {
            Path out = dir.resolve("typo" + names.length());
            CliRun r = cli("init", "--base", base, "--target-modules", names, "--rank", "4", "--alpha", "8", "--output", out.toString());
            String bad = names.substring(names.indexOf(',') + 1);
            assertEquals(1, r.code(), r.err());
            assertTrue(r.err().contains("--target-modules name '" + bad + "' matches no 2-D weight"), r.err());
            assertFalse(r.err().contains("picocli WARN"), r.err());
            assertFalse(Files.exists(out), "nothing written for " + names);
        }
        Path out = dir.resolve("repeated");
        CliRun r = cli("init", "--base", base, "--target-modules", "q_proj", "--target-modules", "v_proj,q_proj", "--rank", "4",
                "--alpha", "8", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("4 modules"), r.err());
    }

    /**
     * A targeted weight no adapter can take (3-D here, or a quantised dtype) was left out of init's module
     * count without a word: init now names it in a note, and adapts the others.
     */
    @Test
    void initNamesATargetedWeightItCannotAdapt() throws Exception {
        Path base = dir.resolve("fused.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (String n : in.names()) {
                if (n.equals("model.layers.1.self_attn.q_proj.weight")) {
                    w.add(n, Tensor.allocate(arena, DType.BF16, 1, 16, 16));
                } else {
                    w.copy(in.shardOf(n).file(), n);
                }
            }
            w.write(base);
        }
        Path out = dir.resolve("fused-adapter");
        CliRun r = cli("init", "--base", base.toString(), "--target-modules", "q_proj", "--rank", "2", "--alpha", "4",
                "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("rslora init: 1 modules"), r.err());
        assertTrue(r.err().contains("note: targeted but not adapted (not a 2-D F32/BF16/F16 weight):"
                + " model.layers.1.self_attn.q_proj.weight BF16 [1, 16, 16]"), r.err());
        CliRun plain = cli("init", "--base", g("base-bf16.safetensors"), "--target-modules", "q_proj", "--rank", "2", "--alpha",
                "4", "--output", dir.resolve("plain-adapter").toString());
        assertFalse(plain.err().contains("note:"), plain.err());
    }

    /** GPT-2's Conv1D weights are stored [d_in, d_out]: PEFT's adapter on them has lora_A [r, d_in] with fan_in_fan_out true. */
    @Test
    void initWithFanInFanOutGivesTheTensorsPeftSavesForGpt2() throws Exception {
        Path out = dir.resolve("gpt2");
        CliRun r = cli("init", "--base", g("base-gpt2-f32.safetensors"), "--target-modules", "c_attn", "--rank", "4", "--alpha", "8",
                "--scaling", "lora", "--fan-in-fan-out", "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.readString(out.resolve(AdapterSet.CONFIG_FILE)).contains("\"fan_in_fan_out\": true"));
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile ours = SafetensorsFile.open(out.resolve(AdapterSet.WEIGHTS_FILE), arena);
            SafetensorsFile peft = SafetensorsFile.open(Golden.path("adapter-gpt2/" + AdapterSet.WEIGHTS_FILE), arena);
            for (var e : ours.entries()) {
                assertTrue(peft.contains(e.name()), e.name());
                assertArrayEquals(peft.entry(e.name()).shape(), e.shape(), e.name());
            }
            assertEquals(4, ours.entries().size(), "lora_A and lora_B of both c_attn");
        }
        Path merged = dir.resolve("merged.safetensors");
        assertEquals(0, cli("merge", "--base", g("base-gpt2-f32.safetensors"), "--adapter", out.toString(), "--output",
                merged.toString()).code());
    }

    private static double[] toDoubles(Tensor t) {
        float[] f = t.toFloatArray();
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void initThenInspectThenMergeIsTheBaseUntilBIsTrained() throws Exception {
        Path adapter = dir.resolve("a");
        assertEquals(0, cli("init", "--base", g("base-bf16-sharded"), "--target-modules", "q_proj", "--rank", "2", "--alpha", "2",
                "--output", adapter.toString()).code());
        CliRun inspect = cli("inspect", adapter.toString());
        assertEquals(0, inspect.code(), inspect.err());
        assertTrue(inspect.out().contains("modules: 2"), inspect.out());
        assertTrue(inspect.out().contains("model.layers.0.self_attn.q_proj     2         2       1.41421  [2, 16]        [16, 2]"),
                inspect.out());
        Path merged = dir.resolve("merged");
        CliRun m = cli("merge", "--base", g("base-bf16-sharded"), "--adapter", adapter.toString(), "--output", merged.toString());
        assertEquals(0, m.code(), m.err());
        assertEquals("", m.out(), "no progress bar when not on a terminal");
        assertEquals(1, m.err().strip().lines().count(), m.err());
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path("base-bf16-sharded"), arena);
            BaseCheckpoint out = BaseCheckpoint.open(merged, arena);
            for (String name : in.names()) {
                assertEquals(-1, in.shardOf(name).file().bytes(name).mismatch(out.shardOf(name).file().bytes(name)), name + ": B = 0 is a no-op");
            }
        }
    }

    @Test
    void inspectShowsModulesRanksAlphasGammasDtypeAndParameterCount() {
        CliRun r = cli("inspect", g("adapter-rslora-bf16"));
        assertEquals(0, r.code(), r.err());
        String o = r.out();
        for (String s : new String[] {"peft_type: LORA  task_type: CAUSAL_LM  base_model: tiny-llama",
                "scaling: rslora, γ = α/√r (use_rslora: true)", "dtype: BF16", "modules: 6",
                "model.layers.1.self_attn.q_proj     8         8       2.82843  [8, 16]        [16, 8]                 256",
                "model.layers.1.self_attn.v_proj     4       100            50  [4, 16]        [8, 4]                   96",
                "model.layers.0.self_attn.v_proj     4       3.5          1.75",
                "lm_head.weight                   BF16  [32, 16]                512",
                "parameters: 736 in LoRA factors + 512 in extra tensors = 1248"}) {
            assertTrue(o.contains(s), "'" + s + "' in:\n" + o);
        }
    }

    /** γ printed in plain digits ran to 327 characters for α = 1e-320 (now refused: γ is 0 in fp32) and broke the table. */
    @Test
    void inspectShowsAVerySmallOrLargeGammaInScientificNotation() throws Exception {
        for (String[] c : new String[][] {{"1e-20", "5E-21"}, {"1e-36", "5E-37"}, {"2.5e12", "1.25E+12"}, {"0.0004", "0.0002"}}) {
            Path out = dir.resolve("alpha" + c[0]);
            CliRun init = cli("init", "--base", g("base-bf16.safetensors"), "--target-modules", "q_proj", "--rank", "4", "--alpha",
                    c[0], "--output", out.toString());
            assertEquals(0, init.code(), init.err());
            CliRun r = cli("inspect", out.toString());
            assertEquals(0, r.code(), r.err());
            String row = r.out().lines().filter(l -> l.contains("layers.0.self_attn.q_proj")).findFirst().orElseThrow();
            assertTrue(row.contains("  " + c[1] + "  "), "γ " + c[1] + " in: " + row);
            assertTrue(row.length() < 120, row);
        }
        // a γ that is 0 in fp32 (the adapter would do nothing on the cpu and cuda backends) is refused by init
        assertRefused(cli("init", "--base", g("base-bf16.safetensors"), "--target-modules", "q_proj", "--rank", "4", "--alpha",
                "1e-320", "--output", dir.resolve("alpha-tiny").toString()), dir.resolve("alpha-tiny"), "alpha=1.0E-320", "0 in fp32");
    }

    @Test
    void mergeOfTheGoldenFilesEqualsTheGoldenOutputAndRefusesAnExistingFolder() throws Exception {
        Path out = dir.resolve("m.safetensors");
        CliRun r = cli("merge", "--base", g("base-f32.safetensors"), "--adapter", g("adapter-rslora-f16"), "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(-1, Files.mismatch(out, Golden.path("expected/merged-rslora-f32.safetensors")));
        Path folder = Files.createDirectory(dir.resolve("exists"));
        assertRefused(cli("merge", "--base", g("base-bf16-sharded"), "--adapter", g("adapter-rslora"), "--output", folder.toString()),
                null, "already exists");
        assertRefused(cli("init", "--base", g("base-bf16.safetensors"), "--target-modules", "q_proj", "--rank", "2", "--alpha", "2",
                "--output", folder.toString()), null, "already exists");
    }

    // ------------------------------------------------------------------ bad inputs

    /** Exit 1, one line "rslora: error: …" without a stack trace naming each fragment, and no output or temporary file left. */
    private void assertRefused(CliRun r, Path out, String... fragments) throws Exception {
        assertEquals(1, r.code(), r.err());
        String line = r.err().strip();
        assertFalse(line.contains("\n"), "one line: " + line);
        assertTrue(line.startsWith("rslora: error: "), line);
        assertFalse(line.contains("\tat ") || line.contains("Exception"), "no stack trace or class name: " + line);
        for (String f : fragments) {
            assertTrue(line.contains(f), "'" + f + "' in: " + line);
        }
        if (out != null) {
            assertFalse(Files.exists(out), "no output left: " + out);
        }
        try (Stream<Path> s = Files.list(dir)) {
            List<String> temps = s.map(p -> p.getFileName().toString()).filter(n -> n.contains(".tmp")).toList();
            assertEquals(List.of(), temps, "no temporary files left");
        }
    }

    /** A copy of {@code golden} with its 8-byte header length replaced by {@code n}. */
    private Path withHeaderLength(String golden, long n, String name) throws Exception {
        byte[] bytes = Files.readAllBytes(Golden.path(golden));
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, n);
        return Files.write(dir.resolve(name), bytes);
    }

    /** A file with this header JSON and {@code dataBytes} bytes of data. */
    private Path crafted(String name, String json, int dataBytes) throws Exception {
        byte[] h = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        return Files.write(dir.resolve(name), b.array());
    }

    /** The golden rsLoRA adapter with its config replaced by {@code configJson}, or its tensors by {@code tensors}. */
    private Path adapterVariant(String name, String configJson, Path weights) throws Exception {
        Path d = Files.createDirectory(dir.resolve(name));
        Files.writeString(d.resolve(AdapterSet.CONFIG_FILE),
                configJson != null ? configJson : Files.readString(Golden.path("adapter-lora/adapter_config.json")));
        Files.copy(weights != null ? weights : Golden.path("adapter-lora/adapter_model.safetensors"), d.resolve(AdapterSet.WEIGHTS_FILE));
        return d;
    }

    @Test
    void malformedBasesAreRefusedWithOneLineAndNoOutput() throws Exception {
        Path out = dir.resolve("out.safetensors");
        String adapter = g("adapter-lora");
        byte[] base = Files.readAllBytes(Golden.path("base-bf16.safetensors"));
        Path truncated = Files.write(dir.resolve("truncated.safetensors"), Arrays.copyOf(base, base.length - 3));
        assertRefused(cli("merge", "--base", truncated.toString(), "--adapter", adapter, "--output", out.toString()), out,
                "truncated.safetensors", "DATA_SIZE_MISMATCH");
        Path past = withHeaderLength("base-bf16.safetensors", base.length, "past.safetensors");
        assertRefused(cli("merge", "--base", past.toString(), "--adapter", adapter, "--output", out.toString()), out,
                "past.safetensors", "HEADER_PAST_END");
        Path huge = withHeaderLength("base-bf16.safetensors", 100_000_001L, "huge.safetensors");
        assertRefused(cli("merge", "--base", huge.toString(), "--adapter", adapter, "--output", out.toString()), out,
                "huge.safetensors", "HEADER_TOO_LARGE", "100000001");
        Path overlap = crafted("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
        assertRefused(cli("merge", "--base", overlap.toString(), "--adapter", adapter, "--output", out.toString()), out,
                "overlap.safetensors", "OFFSET_OVERLAP");
        Path unknown = crafted("unknown.safetensors", "{\"a\":{\"dtype\":\"F9\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertRefused(cli("merge", "--base", unknown.toString(), "--adapter", adapter, "--output", out.toString()), out,
                "unknown.safetensors", "UNKNOWN_DTYPE", "F9");
        assertRefused(cli("init", "--base", truncated.toString(), "--target-modules", "q_proj", "--rank", "2", "--alpha", "2",
                "--output", dir.resolve("init").toString()), dir.resolve("init"), "DATA_SIZE_MISMATCH");
        assertRefused(cli("merge", "--base", dir.resolve("absent.safetensors").toString(), "--adapter", adapter,
                "--output", out.toString()), out, "no such file", "absent.safetensors");
    }

    @Test
    void adaptersThatDoNotFitOrAreMalformedAreRefusedWithOneLineAndNoOutput() throws Exception {
        Path out = dir.resolve("out.safetensors");
        String base = g("base-bf16.safetensors");
        // adapter/base shape mismatch: a copy of the base whose layer-0 q_proj is [16, 15]
        Path narrow = dir.resolve("narrow.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
            for (String n : in.names()) {
                if (n.equals("model.layers.0.self_attn.q_proj.weight")) {
                    w.add(n, Tensor.allocate(arena, DType.BF16, 16, 15));
                } else {
                    w.copy(in.shardOf(n).file(), n);
                }
            }
            w.write(narrow);
        }
        assertRefused(cli("merge", "--base", narrow.toString(), "--adapter", g("adapter-lora"), "--output", out.toString()), out,
                "model.layers.0.self_attn.q_proj", "[4, 16]", "[16, 4]", "[16, 15]", "shape mismatch");
        // missing key: the GPT-2 adapter over the Llama base
        assertRefused(cli("merge", "--base", base, "--adapter", g("adapter-gpt2"), "--output", out.toString()), out,
                "transformer.h.0.attn.c_attn.weight", "missing key");
        // missing key for an extra tensor: the rsLoRA adapter's lm_head over a base without it
        Path headless = dir.resolve("headless.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            BaseCheckpoint in = BaseCheckpoint.open(Golden.path("base-bf16.safetensors"), arena);
            SafetensorsWriter w = new SafetensorsWriter();
            in.names().stream().filter(n -> !n.equals("lm_head.weight")).forEach(n -> w.copy(in.shardOf(n).file(), n));
            w.write(headless);
        }
        assertRefused(cli("merge", "--base", headless.toString(), "--adapter", g("adapter-rslora"), "--output", out.toString()), out,
                "lm_head.weight", "missing key");
        String config = Files.readString(Golden.path("adapter-lora/adapter_config.json"));
        Path dora = adapterVariant("dora", config.replace("\"use_dora\": false", "\"use_dora\": true"), null);
        assertRefused(cli("merge", "--base", base, "--adapter", dora.toString(), "--output", out.toString()), out, "use_dora");
        assertRefused(cli("inspect", dora.toString()), null, "use_dora");
        byte[] weights = Files.readAllBytes(Golden.path("adapter-lora/adapter_model.safetensors"));
        Path cut = Files.write(dir.resolve("cut.bin"), Arrays.copyOf(weights, weights.length / 2));
        Path truncatedAdapter = adapterVariant("truncated-adapter", null, cut);
        assertRefused(cli("merge", "--base", base, "--adapter", truncatedAdapter.toString(), "--output", out.toString()), out,
                "adapter_model.safetensors", "DATA_SIZE_MISMATCH");
        assertRefused(cli("inspect", truncatedAdapter.toString()), null, "DATA_SIZE_MISMATCH");
        Path badJson = adapterVariant("bad-json", "{\"peft_type\": \"LORA\", \"r\": ", null);
        assertRefused(cli("inspect", badJson.toString()), null, "adapter_config.json", "not valid JSON");
        assertRefused(cli("merge", "--base", base, "--adapter", g("adapter-rslora"), "--output", out.toString(), "--unmerge"), out,
                "cannot unmerge", "lm_head.weight");
    }

    /**
     * A NaN in lora_A (or an Inf in lora_B) made every merged element it touched NaN (±Inf), and merge wrote
     * them into the checkpoint with exit 0 (2304 NaN in a GPT-2 c_attn): refused, naming the module and the
     * element, with no output. Unmerge refuses the same way.
     */
    @Test
    void anAdapterWithANonFiniteValueIsRefusedNotMergedIntoTheCheckpoint() throws Exception {
        Path out = dir.resolve("out.safetensors");
        String base = g("base-bf16.safetensors");
        String[][] cases = {{"lora_A", "NaN"}, {"lora_B", "Infinity"}};
        for (String[] c : cases) {
            Path weights = dir.resolve(c[0] + ".safetensors");
            try (Arena arena = Arena.ofConfined()) {
                BaseCheckpoint in = BaseCheckpoint.open(Golden.path("adapter-lora/adapter_model.safetensors"), arena);
                SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt");
                String target = in.names().stream().filter(n -> n.contains("." + c[0] + ".")).findFirst().orElseThrow();
                for (String n : in.names()) {
                    if (n.equals(target)) {
                        Tensor t = Tensor.allocate(arena, in.entry(n).dtype().compute(), in.entry(n).shape());
                        t.copyFrom(in.tensor(n));
                        t.set(0, Float.parseFloat(c[1]));
                        w.add(n, t);
                    } else {
                        w.copy(in.shardOf(n).file(), n);
                    }
                }
                w.write(weights);
            }
            Path adapter = adapterVariant("non-finite-" + c[0], null, weights);
            assertRefused(cli("merge", "--base", base, "--adapter", adapter.toString(), "--output", out.toString()), out,
                    "module ", "is not finite while W's element is");
            assertRefused(cli("merge", "--base", base, "--adapter", adapter.toString(), "--output", out.toString(), "--unmerge"),
                    out, "is not finite while W's element is");
        }
    }

    /**
     * A shard folder's subfolders and hidden files were left out of the merged folder without a word (exit 0):
     * the merge now names them in a note; the regular files are copied as before.
     */
    @Test
    void aShardFoldersSubfoldersAndHiddenFilesAreNamedWhenNotCopied() throws Exception {
        Path base = Files.createDirectory(dir.resolve("base-with-extras"));
        try (Stream<Path> files = Files.list(Golden.path("base-bf16-sharded"))) {
            for (Path f : files.toList()) {
                Files.copy(f, base.resolve(f.getFileName()));
            }
        }
        Files.createDirectory(base.resolve("original"));
        Files.writeString(base.resolve("original/params.json"), "{}");
        Files.writeString(base.resolve(".gitattributes"), "*.safetensors filter=lfs");
        Path out = dir.resolve("merged-extras");
        CliRun r = cli("merge", "--base", base.toString(), "--adapter", g("adapter-lora"), "--output", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("rslora merge: note: not copied from the base folder: .gitattributes (a hidden file),"
                + " original/ (a folder)"), r.err());
        assertTrue(Files.exists(out.resolve("config.json")) && Files.exists(out.resolve("model.safetensors.index.json")));
        assertFalse(Files.exists(out.resolve("original")) || Files.exists(out.resolve(".gitattributes")));
        CliRun plain = cli("merge", "--base", g("base-bf16-sharded"), "--adapter", g("adapter-lora"), "--output",
                dir.resolve("merged-plain").toString());
        assertEquals(0, plain.code(), plain.err());
        assertFalse(plain.err().contains("not copied"), plain.err());
    }

    @Test
    void anAdapterWithoutTensorsIsRefusedInsteadOfMergingAsACopyOfTheBase() throws Exception {
        // e.g. a weights file saved from the wrong object: a merge would exit 0 having changed nothing
        Path empty = dir.resolve("empty.safetensors");
        new SafetensorsWriter().metadata("format", "pt").write(empty);
        Path adapter = adapterVariant("empty-adapter", null, empty);
        Path out = dir.resolve("out.safetensors");
        assertRefused(cli("merge", "--base", g("base-bf16.safetensors"), "--adapter", adapter.toString(), "--output", out.toString()),
                out, "no LoRA modules");
    }

    @Test
    void aMergeOutputThatIsAnInputFileIsRefusedAndTheInputKept() throws Exception {
        Path adapter = adapterVariant("adapter", null, null);
        Path base = Files.copy(Golden.path("base-bf16.safetensors"), dir.resolve("base.safetensors"));
        for (Path in : List.of(adapter.resolve(AdapterSet.WEIGHTS_FILE), adapter.resolve(AdapterSet.CONFIG_FILE), base)) {
            byte[] before = Files.readAllBytes(in);
            LayerCommandTest.assertInputKept(cli("merge", "--base", base.toString(), "--adapter", adapter.toString(),
                    "--output", in.toString()), in, before);
        }
        // the base given through a symbolic link, the output naming the file itself
        Path link = Files.createSymbolicLink(dir.resolve("link.safetensors"), base);
        byte[] before = Files.readAllBytes(base);
        LayerCommandTest.assertInputKept(cli("merge", "--base", link.toString(), "--adapter", adapter.toString(),
                "--output", base.toString()), base, before);
    }

    @Test
    void aRankTooLargeToAllocateIsOneLineNotAStackTrace() throws Exception {
        Path out = dir.resolve("huge");
        assertRefused(cli("init", "--base", g("base-bf16.safetensors"), "--target-modules", "q_proj", "--rank", "2147483647",
                "--alpha", "8", "--output", out.toString()), out, "module model.layers.0.self_attn.q_proj: r=2147483647",
                "274877906816 bytes", "this machine");  // refused before allocating (more than MemAvailable) or by malloc
    }

    /** init and merge named their hidden staging folder (".../.merged.tmp-3f2a…") when the output's folder refused it. */
    @Test
    @EnabledOnOs(OS.LINUX)
    void anOutputFolderThatRefusesNewFilesIsNamedNotTheStagingFolder() throws Exception {
        // sysfs refuses to create anything, even for root (whom permission bits would not stop)
        Path sys = Path.of("/sys");
        assumeTrue(Files.isDirectory(sys));
        String base = g("base-bf16.safetensors");
        Path adapter = dir.resolve("adapter");
        assertEquals(0, cli("init", "--base", base, "--target-modules", "q_proj", "--rank", "2", "--alpha", "4",
                "--output", adapter.toString()).code());
        Path shards = Files.createDirectory(dir.resolve("shards"));
        Files.copy(Golden.path("base-bf16.safetensors"), shards.resolve("model.safetensors"));
        for (String[] args : List.of(
                new String[] {"init", "--base", base, "--target-modules", "q_proj", "--rank", "2", "--alpha", "4", "--output",
                        "/sys/rslora-adapter"},
                new String[] {"merge", "--base", base, "--adapter", adapter.toString(), "--output", "/sys/rslora-merged.safetensors"},
                new String[] {"merge", "--base", shards.toString(), "--adapter", adapter.toString(), "--output", "/sys/rslora-merged"})) {
            CliRun r = cli(args);
            String output = args[args.length - 1];
            assertEquals(1, r.code(), r.err());
            String line = r.err().strip();
            assertTrue(line.startsWith("rslora: error: " + output + ": cannot write in /sys"), line);
            assertFalse(line.contains(".tmp-"), line);
        }
    }
}
