package dev.rslora.cli;


import dev.rslora.backend.Backend;
import dev.rslora.backend.FrozenWeight;
import dev.rslora.backend.LoraParams;
import dev.rslora.backend.reference.ReferenceBackend;
import dev.rslora.backend.GradMode;
import dev.rslora.core.Scaling;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code rslora layer} end to end, and its bad-input paths (one-line error, non-zero exit, no output). */
class LayerCommandTest {
    @TempDir
    Path dir;

    static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    private Path writeInput(Arena arena, DType dt, int n, int dIn, int dOut, int r, boolean bias, String skip,
                            String wrongShapeName) throws Exception {
        SplittableRandom rng = new SplittableRandom(31);
        SafetensorsWriter w = new SafetensorsWriter();
        add(w, "x", TestData.uniform(arena, dt, rng, 1, n, dIn), skip);
        add(w, "weight", TestData.uniform(arena, dt, rng, 1, dOut, dIn), skip);
        if (bias) {
            add(w, "bias", TestData.uniform(arena, dt, rng, 1, dOut), skip);
        }
        add(w, "lora_A", TestData.uniform(arena, dt, rng, 1, r, dIn), skip);
        long[] bShape = "lora_B".equals(wrongShapeName) ? new long[] {dOut, r + 1} : new long[] {dOut, r};
        add(w, "lora_B", TestData.uniform(arena, dt, rng, 1, bShape), skip);
        add(w, "grad_y", TestData.uniform(arena, dt, rng, 1, n, dOut), skip);
        Path p = dir.resolve("in-" + dt + ".safetensors");
        w.write(p);
        return p;
    }

    private static void add(SafetensorsWriter w, String name, Tensor t, String skip) {
        if (!name.equals(skip)) {
            w.add(name, t);
        }
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void layerMatchesTheReferenceBackendAndWritesTheInputDtype(DType dt) throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = writeInput(arena, dt, 5, 12, 7, 3, true, null, null);
            Path out = dir.resolve("out.safetensors");
            CliRun r = cli("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "6",
                    "--dropout", "0.2", "--seed", "9", "--backend", "reference");
            assertEquals(0, r.code(), r.err());
            SafetensorsFile inF = SafetensorsFile.open(in, arena);
            SafetensorsFile outF = SafetensorsFile.open(out, arena);
            assertEquals(java.util.Set.of("y", "grad_x", "grad_lora_A", "grad_lora_B"), new java.util.HashSet<>(outF.names()));
            for (String name : outF.names()) {
                assertEquals(dt, outF.tensor(name).dtype(), name);
            }
            // the same step computed directly: (seed 9, step 0, layer 0), γ = 6/√3
            Backend ref = new ReferenceBackend();
            LoraParams p = new LoraParams(5, 12, 7, 3, Scaling.RSLORA.gamma(6, 3), 0.2f, 9, 0, 0, true, true, GradMode.ASSIGN);
            FrozenWeight fw = ref.prepare(inF.tensor("weight"), inF.tensor("bias"));
            Tensor u = Tensor.allocate(arena, DType.F32, 5, 3);
            Tensor y = Tensor.allocate(arena, dt, 5, 7);
            Tensor dx = Tensor.allocate(arena, dt, 5, 12);
            Tensor dA = Tensor.allocate(arena, dt, 3, 12);
            Tensor dB = Tensor.allocate(arena, dt, 7, 3);
            ref.forward(p, fw, inF.tensor("x"), inF.tensor("lora_A"), inF.tensor("lora_B"), u, y);
            ref.backward(p, fw, inF.tensor("x"), inF.tensor("lora_A"), inF.tensor("lora_B"), u, inF.tensor("grad_y"), dx, dA, dB);
            assertArrayEquals(y.toFloatArray(), outF.tensor("y").toFloatArray());
            assertArrayEquals(dx.toFloatArray(), outF.tensor("grad_x").toFloatArray());
            assertArrayEquals(dA.toFloatArray(), outF.tensor("grad_lora_A").toFloatArray());
            assertArrayEquals(dB.toFloatArray(), outF.tensor("grad_lora_B").toFloatArray());
        }
    }

    /** Without --backend, -Drslora.backend picks the backend (./rslora passes leading -D options to the JVM). */
    @Test
    void theBackendPropertyIsTheDefaultOfBackend() throws Exception {
        String old = System.getProperty(dev.rslora.backend.Backends.PROPERTY);
        try (Arena arena = Arena.ofShared()) {
            Path in = writeInput(arena, DType.F32, 3, 8, 5, 2, false, null, null);
            System.setProperty(dev.rslora.backend.Backends.PROPERTY, "reference");
            Path out = dir.resolve("prop.safetensors");
            CliRun r = cli("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "4");
            assertEquals(0, r.code(), r.err());
            assertTrue(r.err().contains("backend=reference"), r.err());
            System.setProperty(dev.rslora.backend.Backends.PROPERTY, "no-such-backend");
            Path bad = dir.resolve("bad.safetensors");
            CliRun b = cli("layer", "--input", in.toString(), "--output", bad.toString(), "--alpha", "4");
            assertRefused(b, bad, "no-such-backend");
        } finally {
            if (old == null) {
                System.clearProperty(dev.rslora.backend.Backends.PROPERTY);
            } else {
                System.setProperty(dev.rslora.backend.Backends.PROPERTY, old);
            }
        }
    }

    private void assertRefused(CliRun r, Path out, String... fragments) {
        assertEquals(1, r.code(), r.err());
        String line = r.err().strip();
        assertFalse(line.contains("\n"), "one line: " + line);
        assertFalse(line.contains("\tat "), "no stack trace: " + line);
        for (String f : fragments) {
            assertTrue(line.contains(f), "'" + f + "' in: " + line);
        }
        assertFalse(Files.exists(out), "no output file left behind");
    }

    @Test
    void badInputsAreRefusedWithOneLineAndNoOutput() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path out = dir.resolve("never.safetensors");
            Path shape = writeInput(arena, DType.F32, 4, 6, 5, 2, false, null, "lora_B");
            assertRefused(cli("layer", "--input", shape.toString(), "--output", out.toString(), "--alpha", "8",
                    "--backend", "reference"), out, "lora_B [5, 3]", "lora_A [2, 6]", "r");

            Path missing = writeInput(arena, DType.F32, 4, 6, 5, 2, false, "grad_y", null);
            assertRefused(cli("layer", "--input", missing.toString(), "--output", out.toString(), "--alpha", "8"), out,
                    "grad_y");

            SplittableRandom rng = new SplittableRandom(1);
            Path mixed = dir.resolve("mixed.safetensors");
            new SafetensorsWriter()
                    .add("x", TestData.uniform(arena, DType.F32, rng, 1, 2, 3))
                    .add("weight", TestData.uniform(arena, DType.BF16, rng, 1, 4, 3))
                    .add("lora_A", TestData.uniform(arena, DType.F32, rng, 1, 1, 3))
                    .add("lora_B", TestData.uniform(arena, DType.F32, rng, 1, 4, 1))
                    .add("grad_y", TestData.uniform(arena, DType.F32, rng, 1, 2, 4))
                    .write(mixed);
            assertRefused(cli("layer", "--input", mixed.toString(), "--output", out.toString(), "--alpha", "8"), out,
                    "weight", "BF16", "F32");

            Path ok = writeInput(arena, DType.F32, 2, 3, 4, 1, false, null, null);
            assertRefused(cli("layer", "--input", ok.toString(), "--output", out.toString(), "--alpha", "-1"), out, "alpha=-1.0");
            assertRefused(cli("layer", "--input", ok.toString(), "--output", out.toString(), "--alpha", "8", "--dropout", "1.5"),
                    out, "dropout=1.5");
            assertRefused(cli("layer", "--input", ok.toString(), "--output", out.toString(), "--alpha", "8", "--scaling", "nope"),
                    out, "scaling must be rslora or lora", "nope");
            if (!dev.rslora.backend.Backends.probeAll().get("cuda").available()) {
                assertRefused(cli("layer", "--input", ok.toString(), "--output", out.toString(), "--alpha", "8", "--backend", "cuda"),
                        out, "cuda", "unavailable");
            }

            Path truncated = dir.resolve("truncated.safetensors");
            byte[] bytes = Files.readAllBytes(ok);
            Files.write(truncated, java.util.Arrays.copyOf(bytes, bytes.length - 3));
            assertRefused(cli("layer", "--input", truncated.toString(), "--output", out.toString(), "--alpha", "8"), out,
                    truncated.getFileName().toString());

            assertRefused(cli("layer", "--input", dir.resolve("absent.safetensors").toString(), "--output", out.toString(),
                    "--alpha", "8"), out, "no such file", "absent.safetensors");
        }
    }

    @Test
    void anUnexpectedTensorIsRefusedNotIgnored() throws Exception {
        // a misspelled "bias" must not silently run the layer without its bias
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rng = new SplittableRandom(5);
            Path in = dir.resolve("typo.safetensors");
            new SafetensorsWriter()
                    .add("x", TestData.uniform(arena, DType.F32, rng, 1, 2, 3))
                    .add("weight", TestData.uniform(arena, DType.F32, rng, 1, 4, 3))
                    .add("Bias", TestData.uniform(arena, DType.F32, rng, 1, 4))
                    .add("lora_A", TestData.uniform(arena, DType.F32, rng, 1, 1, 3))
                    .add("lora_B", TestData.uniform(arena, DType.F32, rng, 1, 4, 1))
                    .add("grad_y", TestData.uniform(arena, DType.F32, rng, 1, 2, 4))
                    .write(in);
            Path out = dir.resolve("never.safetensors");
            assertRefused(cli("layer", "--input", in.toString(), "--output", out.toString(), "--alpha", "8"), out,
                    "unexpected tensor 'Bias'", "bias");
        }
    }

    @Test
    void infoListsEveryBackendWithAReason() {
        CliRun r = cli("info");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("java: "), r.out());
        for (String b : new String[] {"cuda", "cpu", "reference"}) {
            assertTrue(r.out().contains("  " + b + " "), b + " in " + r.out());
        }
        assertTrue(r.out().contains("auto -> "));
    }

    @Test
    void anOutputThatIsTheInputIsRefusedAndTheInputKept() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = writeInput(arena, DType.F32, 2, 3, 4, 1, false, null, null);
            byte[] before = Files.readAllBytes(in);
            String same = dir.resolve(".").resolve(in.getFileName()).toString();
            assertInputKept(cli("layer", "--input", in.toString(), "--output", same, "--alpha", "8"), in, before);
        }
    }

    /** Exit 1 with one line naming --output and the input, and the input file unchanged. */
    static void assertInputKept(CliRun r, Path in, byte[] before) throws Exception {
        assertEquals(1, r.code(), r.err());
        String line = r.err().strip();
        assertTrue(line.startsWith("rslora: error: --output ") && !line.contains("\n"), line);
        assertTrue(line.contains("is the input file") && line.contains(in.getFileName().toString()), line);
        assertArrayEquals(before, Files.readAllBytes(in), "the input is unchanged");
    }
}
