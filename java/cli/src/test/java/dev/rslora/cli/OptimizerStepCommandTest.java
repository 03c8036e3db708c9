package dev.rslora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdamWConfig;
import dev.rslora.peft.Golden;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.GoldenValues;
import dev.rslora.testing.TestData;
import dev.rslora.train.Adafactor;
import dev.rslora.train.AdamW;
import dev.rslora.train.Optimizer;
import dev.rslora.train.Parameter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@code rslora optimizer-step} end to end: against the Hugging Face golden trajectories (the options
 * given under their HF names reach the optimizer), against the library's AdamW, and every bad input
 * refused with one line, a non-zero exit and no output file.
 */
class OptimizerStepCommandTest {
    @TempDir
    Path dir;

    private Path input(Arena arena, long[] shape, int steps, long pseed, long gseed) throws Exception {
        SafetensorsWriter w = new SafetensorsWriter();
        Tensor p = Tensor.allocate(arena, DType.F32, shape);
        for (long i = 0; i < p.numel(); i++) {
            p.set(i, 0.5f * GoldenValues.value(pseed, i));
        }
        w.add("param", p);
        for (int t = 1; t <= steps; t++) {
            Tensor g = Tensor.allocate(arena, DType.F32, shape);
            float scale = t % 7 == 0 ? 0x1p-12f : 0x1p-2f;
            for (long i = 0; i < g.numel(); i++) {
                g.set(i, GoldenValues.value(gseed + t, i) * scale);
            }
            w.add("grad." + (t - 1), g);
        }
        Path f = dir.resolve("in-" + pseed + ".safetensors");
        w.write(f);
        return f;
    }

    /** The CLI options of a golden case's Hugging Face config. */
    private static List<String> options(JsonNode c) {
        List<String> a = new ArrayList<>(List.of("--optimizer", "adafactor"));
        if (!c.get("lr").isNull()) {
            a.addAll(List.of("--lr", c.get("lr").asText()));
        }
        a.addAll(List.of("--eps1", c.get("eps1").asText(), "--eps2", c.get("eps2").asText(), "--clip-threshold",
                c.get("clip_threshold").asText(), "--decay-rate", c.get("decay_rate").asText(), "--weight-decay",
                c.get("weight_decay").asText(), "--scale-parameter", c.get("scale_parameter").asText(), "--relative-step",
                c.get("relative_step").asText(), "--warmup-init", c.get("warmup_init").asText()));
        if (!c.get("beta1").isNull()) {
            a.addAll(List.of("--beta1", c.get("beta1").asText()));
        }
        return a;
    }

    @Test
    void adafactorMatchesTheHuggingFaceGoldenTrajectories() throws Exception {
        Path goldenFile = Golden.path("adafactor/adafactor_golden.safetensors");
        try (Arena arena = Arena.ofShared()) {
            SafetensorsFile golden = SafetensorsFile.open(goldenFile, arena);
            JsonNode cases = new ObjectMapper().readTree(golden.metadata().get("cases"));
            int checked = 0;
            for (JsonNode c : cases) {
                String name = c.get("name").asText();
                if (!c.get("dtype").asText().equals("F32") || c.get("shape").size() > 2 || c.get("zero_rows").size() > 0) {
                    continue;  // the command takes F32 1-D/2-D parameters; zero masks are the library test's
                }
                long[] shape = new long[c.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = c.get("shape").get(i).asLong();
                }
                int steps = c.get("steps").asInt();
                Path in = input(arena, shape, steps, c.get("pseed").asLong(), c.get("gseed").asLong());
                Path out = dir.resolve(name + ".safetensors");
                List<String> args = new ArrayList<>(List.of("optimizer-step", "--input", in.toString(), "--output", out.toString()));
                args.addAll(options(c.get("config")));
                CliRun r = CliRun.of(args.toArray(String[]::new));
                assertEquals(0, r.code(), name + ": " + r.err());
                SafetensorsFile o = SafetensorsFile.open(out, arena);
                assertEquals(steps, o.names().size(), name);
                for (JsonNode snap : c.get("snapshots")) {
                    int t = snap.asInt();
                    MemorySegment want = golden.bytes(name + ".param." + t);
                    Tensor got = o.tensor("param." + t);
                    for (long i = 0; i < got.numel(); i++) {
                        double w = want.getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                        double p0 = 0.5f * GoldenValues.value(c.get("pseed").asLong(), i);
                        // the library test's bound, with the largest early step 1e-2 as lr_1
                        double tol = 2e-6 * Math.abs(w) + 1e-4 * (Math.abs(w - p0) + 1e-2);
                        assertTrue(Math.abs(got.get(i) - w) <= tol, name + " step " + t + " [" + i + "]: cli " + got.get(i)
                                + " Hugging Face " + w);
                    }
                }
                checked++;
            }
            assertTrue(checked >= 12, "F32 golden cases checked: " + checked);
        }
    }

    @Test
    void adamwAndAdafactorEqualTheLibraryBitForBit() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = input(arena, new long[] {6, 11}, 9, 3, 4);
            SafetensorsFile f = SafetensorsFile.open(in, arena);
            for (String opt : new String[] {"adamw", "adafactor"}) {
                Path out = dir.resolve(opt + ".safetensors");
                CliRun r = opt.equals("adamw")
                        ? CliRun.of("optimizer-step", "--input", in.toString(), "--output", out.toString(), "--optimizer", "adamw",
                                "--lr", "0.01", "--beta1", "0.8", "--beta2", "0.99", "--eps", "1e-6", "--weight-decay", "0.1")
                        : CliRun.of("optimizer-step", "--input", in.toString(), "--output", out.toString(), "--optimizer", "adafactor",
                                "--lr", "0.01", "--relative-step", "false", "--beta1", "0.9", "--weight-decay", "0.05");
                assertEquals(0, r.code(), r.err());
                Tensor p = Tensor.allocate(arena, DType.F32, 6, 11);
                p.copyFrom(f.tensor("param"));
                Tensor g = Tensor.allocate(arena, DType.F32, 6, 11);
                List<Parameter> params = List.of(new Parameter("param", p, g));
                SafetensorsFile o = SafetensorsFile.open(out, arena);
                assertEquals(opt, o.metadata().get("rslora.optimizer"));
                try (Optimizer lib = opt.equals("adamw") ? new AdamW(params, new AdamWConfig(0.01, 0.8, 0.99, 1e-6, 0.1))
                        : new Adafactor(params, AdafactorConfig.hfDefaults().withRelativeStep(false, 0.01, false).withBeta1(0.9)
                        .withWeightDecay(0.05))) {
                    for (int t = 0; t < 9; t++) {
                        g.copyFrom(f.tensor("grad." + t));
                        lib.step();
                        assertArrayEquals(p.toFloatArray(), o.tensor("param." + (t + 1)).toFloatArray(), opt + " step " + (t + 1));
                    }
                }
            }
        }
    }

    private void assertRefused(CliRun r, Path out, String... fragments) {
        assertTrue(r.code() != 0, "non-zero exit: " + r.err());
        String line = r.err().strip();
        assertFalse(line.contains("\n"), "one line: " + line);
        assertTrue(line.startsWith("rslora: error: "), line);
        for (String f : fragments) {
            assertTrue(line.contains(f), "'" + f + "' in: " + line);
        }
        assertFalse(Files.exists(out), "no output file left behind");
    }

    private CliRun run(Path in, Path out, String... opts) {
        List<String> a = new ArrayList<>(List.of("optimizer-step", "--input", in.toString(), "--output", out.toString()));
        a.addAll(List.of(opts));
        return CliRun.of(a.toArray(String[]::new));
    }

    /**
     * Finite inputs and extreme settings can make the parameter NaN or ±Inf (AdamW with ε = 0 over a zero
     * gradient: 0/0; a learning rate of 1e300): written as computed, exit 0, but with one warning line per
     * such step, as `layer` warns. Before, nothing said so. A sane run prints no warning.
     */
    @Test
    void aNonFiniteParameterIsWrittenWithAWarning() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            SafetensorsWriter w = new SafetensorsWriter();
            w.add("param", Tensor.of(arena, DType.F32, new float[] {1, 2, 3, 4}, 4));
            w.add("grad.0", Tensor.allocate(arena, DType.F32, 4));
            Path zeroGrad = dir.resolve("zero-grad.safetensors");
            w.write(zeroGrad);
            Path out = dir.resolve("nan.safetensors");
            CliRun r = run(zeroGrad, out, "--optimizer", "adamw", "--lr", "1e-2", "--eps", "0");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.err().contains("rslora optimizer-step: warning: param.1 holds 4 non-finite values (the first at flat"
                    + " index 0, NaN)"), r.err());
            try (Arena a2 = Arena.ofConfined()) {
                assertTrue(Float.isNaN(SafetensorsFile.open(out, a2).tensor("param.1").get(0)), "written as computed");
            }
            Path sane = dir.resolve("sane.safetensors");
            CliRun ok = run(input(arena, new long[] {3, 4}, 2, 1, 2), sane, "--optimizer", "adamw", "--lr", "1e-2");
            assertEquals(0, ok.code(), ok.err());
            assertFalse(ok.err().contains("warning"), ok.err());
        }
    }

    @Test
    void badInputsAreRefusedWithOneLineAndNoOutput() throws Exception {
        Path out = dir.resolve("never.safetensors");
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rnd = new SplittableRandom(2);
            Path ok = input(arena, new long[] {3, 4}, 2, 1, 2);
            // options
            assertRefused(run(ok, out, "--optimizer", "sgd", "--lr", "1"), out, "adafactor or adamw", "sgd");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--lr", "1e-3"), out, "--relative-step true", "--lr");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--relative-step", "false"), out, "--lr is required");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--relative-step", "maybe"), out, "maybe");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--lr", "1e-3", "--relative-step", "false", "--warmup-init", "true"),
                    out, "warmup_init");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--beta2", "0.9"), out, "--beta2", "adafactor");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--lr", "1e-3", "--relative-step", "false", "--beta1", "1.5"), out,
                    "beta1=1.5");
            assertRefused(run(ok, out, "--optimizer", "adafactor", "--clip-threshold", "0"), out, "clip_threshold=0.0");
            assertRefused(run(ok, out, "--optimizer", "adamw"), out, "--lr is required");
            assertRefused(run(ok, out, "--optimizer", "adamw", "--lr", "1e-3", "--eps1", "1e-30"), out, "--eps1", "adamw");
            assertRefused(run(ok, out, "--optimizer", "adamw", "--lr", "-1"), out, "lr=-1.0");
            // tensors
            Path noGrad = dir.resolve("nograd.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 3)).write(noGrad);
            assertRefused(run(noGrad, out, "--optimizer", "adamw", "--lr", "1"), out, "grad.0");
            Path gap = dir.resolve("gap.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 3))
                    .add("grad.0", TestData.uniform(arena, DType.F32, rnd, 1, 3))
                    .add("grad.2", TestData.uniform(arena, DType.F32, rnd, 1, 3)).write(gap);
            assertRefused(run(gap, out, "--optimizer", "adamw", "--lr", "1"), out, "grad.2", "without gaps");
            Path shape = dir.resolve("shape.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 2, 3))
                    .add("grad.0", TestData.uniform(arena, DType.F32, rnd, 1, 3, 2)).write(shape);
            assertRefused(run(shape, out, "--optimizer", "adamw", "--lr", "1"), out, "grad.0 [3, 2]", "param [2, 3]");
            Path rank3 = dir.resolve("rank3.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 2, 2, 2))
                    .add("grad.0", TestData.uniform(arena, DType.F32, rnd, 1, 2, 2, 2)).write(rank3);
            assertRefused(run(rank3, out, "--optimizer", "adamw", "--lr", "1"), out, "1-D or 2-D");
            Path bf16 = dir.resolve("bf16.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.BF16, rnd, 1, 3))
                    .add("grad.0", TestData.uniform(arena, DType.BF16, rnd, 1, 3)).write(bf16);
            assertRefused(run(bf16, out, "--optimizer", "adamw", "--lr", "1"), out, "BF16", "F32");
            Path extra = dir.resolve("extra.safetensors");
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 3))
                    .add("grad.0", TestData.uniform(arena, DType.F32, rnd, 1, 3))
                    .add("momentum", TestData.uniform(arena, DType.F32, rnd, 1, 3)).write(extra);
            assertRefused(run(extra, out, "--optimizer", "adamw", "--lr", "1"), out, "unexpected tensor 'momentum'");
            Path nan = dir.resolve("nan.safetensors");
            Tensor g = TestData.uniform(arena, DType.F32, rnd, 1, 3);
            g.set(1, Float.NaN);
            new SafetensorsWriter().add("param", TestData.uniform(arena, DType.F32, rnd, 1, 3)).add("grad.0", g).write(nan);
            assertRefused(run(nan, out, "--optimizer", "adamw", "--lr", "1"), out, "grad.0", "NaN", "index 1");
            assertRefused(run(dir.resolve("absent.safetensors"), out, "--optimizer", "adamw", "--lr", "1"), out, "no such file");
        }
    }

    @Test
    void anOutputThatIsTheInputIsRefusedAndTheInputKept() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = input(arena, new long[] {2, 2}, 2, 1, 2);
            byte[] before = Files.readAllBytes(in);
            LayerCommandTest.assertInputKept(run(in, in, "--optimizer", "adamw", "--lr", "1e-3"), in, before);
        }
    }
}
