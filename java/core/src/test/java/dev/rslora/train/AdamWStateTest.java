package dev.rslora.train;

import dev.rslora.optim.AdamWConfig;
import dev.rslora.optim.AdamWState;

import dev.rslora.io.SafetensorsException;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class AdamWStateTest {
    private static final AdamWConfig CONFIG = AdamWConfig.torchDefaults().withLr(3e-3).withWeightDecay(0.05);
    private static final long[][] SHAPES = {{5, 9}, {9, 5}, {1}};

    /** Parameters with gradients that are a fixed function of (seed, step), so two runs see the same gradients. */
    private static final class Run {
        final List<Parameter> params = new ArrayList<>();

        Run(Arena arena, DType dtype, long seed) {
            SplittableRandom rng = new SplittableRandom(seed);
            for (int k = 0; k < SHAPES.length; k++) {
                params.add(new Parameter("layer" + k + ".lora_A.weight", TestData.uniform(arena, dtype, rng, 1, SHAPES[k]),
                        Tensor.allocate(arena, dtype, SHAPES[k])));
            }
        }

        void steps(AdamW opt, int from, int to) {
            for (int t = from; t < to; t++) {
                SplittableRandom rng = new SplittableRandom(1000 + t);
                for (Parameter p : params) {
                    for (long i = 0; i < p.grad().numel(); i++) {
                        p.grad().set(i, (float) rng.nextDouble(-1, 1));
                    }
                }
                opt.step();
            }
        }

        List<float[]> values() {
            return params.stream().map(p -> p.value().toFloatArray()).toList();
        }

        void setValues(List<float[]> v) {
            for (int k = 0; k < params.size(); k++) {
                Tensor t = params.get(k).value();
                for (int i = 0; i < v.get(k).length; i++) {
                    t.set(i, v.get(k)[i]);
                }
            }
        }
    }

    private static void assertBitEqual(List<float[]> want, List<float[]> got) {
        for (int k = 0; k < want.size(); k++) {
            for (int i = 0; i < want.get(k).length; i++) {
                assertEquals(Float.floatToRawIntBits(want.get(k)[i]), Float.floatToRawIntBits(got.get(k)[i]),
                        "parameter " + k + " element " + i);
            }
        }
    }

    /** K steps, snapshot, M more steps; a fresh optimizer restored from the snapshot repeats the M steps bit for bit. */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void snapshotRestoreContinuesIdentically(DType dtype, @TempDir Path dir) throws IOException {
        try (Arena arena = Arena.ofShared()) {
            Run a = new Run(arena, dtype, 5);
            try (AdamW opt = new AdamW(a.params, CONFIG)) {
                a.steps(opt, 0, 7);
                AdamWState snap = opt.snapshot();
                List<float[]> atSnapshot = a.values();
                Path file = dir.resolve("adamw.safetensors");
                opt.save(file);
                a.steps(opt, 7, 20);
                List<float[]> want = a.values();

                // in memory, into a fresh optimizer over fresh parameters holding the snapshot's values
                Run b = new Run(arena, dtype, 99);
                b.setValues(atSnapshot);
                try (AdamW fresh = new AdamW(b.params, AdamWConfig.torchDefaults())) {
                    fresh.restore(snap);
                    assertEquals(7, fresh.stepCount());
                    assertEquals(CONFIG, fresh.config());
                    b.steps(fresh, 7, 20);
                }
                assertBitEqual(want, b.values());

                // through the file
                Run c = new Run(arena, dtype, 123);
                c.setValues(atSnapshot);
                try (AdamW fresh = new AdamW(c.params, AdamWConfig.torchDefaults())) {
                    fresh.load(file);
                    c.steps(fresh, 7, 20);
                }
                assertBitEqual(want, c.values());
            }
        }
    }

    @Test
    void fileRoundTripKeepsEveryField(@TempDir Path dir) throws IOException {
        AdamWState s = new AdamWState(42, CONFIG, List.of(
                new AdamWState.Entry("a", new long[] {2, 2}, new float[] {1, -2, 3e-20f, Float.MIN_VALUE},
                        new float[] {0, 1, 2, 3}, new float[] {9, 8, 7, 6}),
                new AdamWState.Entry("b.ü", new long[] {0}, new float[0], new float[0], null),
                new AdamWState.Entry("scalar", new long[0], new float[] {5}, new float[] {6}, null)));
        Path f = dir.resolve("s.safetensors");
        AdamWStateFile.write(s, f);
        AdamWState r = AdamWStateFile.read(f);
        assertEquals(42, r.step());
        assertEquals(CONFIG, r.config());
        assertEquals(3, r.entries().size());
        for (int i = 0; i < 3; i++) {
            AdamWState.Entry w = s.entries().get(i);
            AdamWState.Entry g = r.entries().get(i);
            assertEquals(w.name(), g.name());
            assertArrayEquals(w.shape(), g.shape());
            assertArrayEquals(w.m(), g.m());
            assertArrayEquals(w.v(), g.v());
            assertArrayEquals(w.master(), g.master());
        }
    }

    @Test
    void corruptTruncatedOrForeignFilesAreRejected(@TempDir Path dir) throws IOException {
        AdamWState s = new AdamWState(3, CONFIG, List.of(new AdamWState.Entry("w", new long[] {3},
                new float[] {1, 2, 3}, new float[] {4, 5, 6}, null)));
        Path f = dir.resolve("s.safetensors");
        AdamWStateFile.write(s, f);
        byte[] good = Files.readAllBytes(f);

        byte[] flipped = good.clone();
        flipped[good.length - 2] ^= 1; // inside the data of the last tensor
        Files.write(f, flipped);
        IOException e = assertThrows(IOException.class, () -> AdamWStateFile.read(f));
        assertTrue(e.getMessage().contains("checksum mismatch") && e.getMessage().contains("'w."), e.getMessage());

        Files.write(f, Arrays.copyOf(good, good.length - 7));
        e = assertThrows(SafetensorsException.class, () -> AdamWStateFile.read(f));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());

        try (Arena arena = Arena.ofConfined()) {
            Tensor t = Tensor.of(arena, DType.F32, new float[] {1, 2, 3}, 3);
            new SafetensorsWriter().metadata("format", "pt").add("w.exp_avg", t).write(f);
            e = assertThrows(IOException.class, () -> AdamWStateFile.read(f));
            assertTrue(e.getMessage().contains("not an AdamW state file (metadata format=pt"), e.getMessage());
        }
    }

    @Test
    void aStateFileWithAnUnlistedTensorOrAMissingOneIsRefused(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("s.safetensors");
        AdamWStateFile.write(new AdamWState(1, CONFIG, List.of(new AdamWState.Entry("w", new long[] {2},
                new float[] {1, 2}, new float[] {3, 4}, null))), f);
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsFile good = SafetensorsFile.open(f, arena);
            Path extra = dir.resolve("extra.safetensors");
            new SafetensorsWriter().metadata(good.metadata()).copy(good, "w.exp_avg").copy(good, "w.exp_avg_sq")
                    .add("stray", Tensor.allocate(arena, DType.F32, 1)).write(extra);
            IOException e = assertThrows(IOException.class, () -> AdamWStateFile.read(extra));
            assertTrue(e.getMessage().contains("unexpected tensor 'stray'"), e.getMessage());
            Path missing = dir.resolve("missing.safetensors");
            new SafetensorsWriter().metadata(good.metadata()).copy(good, "w.exp_avg").write(missing);
            e = assertThrows(IOException.class, () -> AdamWStateFile.read(missing));
            assertTrue(e.getMessage().contains("missing tensor 'w.exp_avg_sq'"), e.getMessage());
        }
    }

    @Test
    void restoreRefusesAStateOfOtherParameters() {
        try (Arena arena = Arena.ofShared()) {
            Run a = new Run(arena, DType.F32, 1);
            try (AdamW opt = new AdamW(a.params, CONFIG)) {
                AdamWState snap = opt.snapshot();
                List<Parameter> renamed = new ArrayList<>(a.params);
                renamed.set(1, new Parameter("other", a.params.get(1).value(), a.params.get(1).grad()));
                try (AdamW other = new AdamW(renamed, CONFIG)) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.restore(snap));
                    assertTrue(e.getMessage().contains("'layer1.lora_A.weight'") && e.getMessage().contains("'other'"),
                            e.getMessage());
                }
                try (AdamW shorter = new AdamW(a.params.subList(0, 2), CONFIG)) {
                    assertThrows(IllegalArgumentException.class, () -> shorter.restore(snap));
                }
            }
            Run bf = new Run(arena, DType.BF16, 1);
            try (AdamW withMaster = new AdamW(bf.params, CONFIG, true);
                 AdamW without = new AdamW(bf.params, CONFIG, false)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> without.restore(withMaster.snapshot()));
                assertTrue(e.getMessage().contains("master"), e.getMessage());
            }
        }
    }

    /**
     * A state that save wrote for a parameter with a 70 000-character name failed to load (Jackson's default
     * limit on a JSON key); both optimizers now read it back. A null parameter list or element was a bare
     * NullPointerException from inside; it is an IllegalArgumentException naming it.
     */
    @Test
    void aLongParameterNameLoadsBackAndNullParametersAreNamed(@TempDir Path dir) throws IOException {
        String name = "p".repeat(70_000);
        try (Arena arena = Arena.ofShared()) {
            Tensor v = Tensor.allocate(arena, DType.F32, 3);
            Tensor g = Tensor.allocate(arena, DType.F32, 3);
            v.fill(1f);
            g.fill(0.5f);
            List<Parameter> ps = List.of(new Parameter(name, v, g));
            try (AdamW a = new AdamW(ps, AdamWConfig.torchDefaults()); Adafactor f = new Adafactor(ps,
                    dev.rslora.optim.AdafactorConfig.hfDefaults())) {
                a.step();
                f.step();
                a.save(dir.resolve("adamw.safetensors"));
                f.save(dir.resolve("adafactor.safetensors"));
                try (AdamW a2 = new AdamW(ps, AdamWConfig.torchDefaults()); Adafactor f2 = new Adafactor(ps,
                        dev.rslora.optim.AdafactorConfig.hfDefaults())) {
                    a2.load(dir.resolve("adamw.safetensors"));
                    f2.load(dir.resolve("adafactor.safetensors"));
                    assertEquals(1, a2.stepCount());
                    assertEquals(1, f2.stepCount());
                }
            }
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new AdamW(null, AdamWConfig.torchDefaults()));
            assertEquals("AdamW needs at least one parameter, got null", e.getMessage());
            List<Parameter> withNull = new ArrayList<>();
            withNull.add(null);
            e = assertThrows(IllegalArgumentException.class, () -> new Adafactor(withNull, dev.rslora.optim.AdafactorConfig.hfDefaults()));
            assertTrue(e.getMessage().endsWith(": parameter 0 of the list is null"), e.getMessage());
        }
    }

    /**
     * A null state or file was a bare NullPointerException from inside the JDK ("because \"target\" is null");
     * it is an IllegalArgumentException naming the method and the argument, and nothing is changed.
     */
    @Test
    void nullStatesAndFilesAreNamed(@TempDir Path dir) throws IOException {
        try (Arena arena = Arena.ofShared()) {
            Run a = new Run(arena, DType.BF16, 1);
            try (AdamW opt = new AdamW(a.params, CONFIG)) {
                a.steps(opt, 0, 2);
                AdamWState before = opt.snapshot();
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> opt.restore(null));
                assertEquals("AdamW.restore: state is null", e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> opt.save(null));
                assertEquals("AdamW.save: file is null", e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> opt.load(null));
                assertEquals("AdamW.load: file is null", e.getMessage());
                assertEquals(2, opt.stepCount());
                assertBitEqual(List.of(before.entries().get(0).m()), List.of(opt.snapshot().entries().get(0).m()));

                e = assertThrows(IllegalArgumentException.class, () -> AdamWStateFile.write(null, dir.resolve("s")));
                assertEquals("AdamWStateFile.write: state is null", e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> AdamWStateFile.write(before, null));
                assertEquals("AdamWStateFile.write: file is null", e.getMessage());
                e = assertThrows(IllegalArgumentException.class, () -> AdamWStateFile.read(null));
                assertEquals("AdamWStateFile.read: file is null", e.getMessage());
            }
        }
    }

    /**
     * load of a path that is not a state file: each refusal names the file (typed exceptions, no
     * Jackson or JDK stack dump as the only information), and a state for other shapes names both shapes.
     */
    @Test
    void loadOfAMissingEmptyTruncatedOrMisshapenFileNamesIt(@TempDir Path dir) throws IOException {
        try (Arena arena = Arena.ofShared()) {
            Run a = new Run(arena, DType.F32, 1);
            try (AdamW opt = new AdamW(a.params, CONFIG)) {
                Path missing = dir.resolve("missing.safetensors");
                java.nio.file.NoSuchFileException nf = assertThrows(java.nio.file.NoSuchFileException.class, () -> opt.load(missing));
                assertEquals(missing.toString(), nf.getFile());
                java.nio.file.FileSystemException folder = assertThrows(java.nio.file.FileSystemException.class,
                        () -> opt.load(dir));
                assertTrue(folder.getMessage().contains(dir + ": is a folder"), folder.getMessage());
                Path empty = Files.createFile(dir.resolve("empty.safetensors"));
                IOException e = assertThrows(SafetensorsException.class, () -> opt.load(empty));
                assertTrue(e.getMessage().contains(empty.toString()) && e.getMessage().contains("holds 0 bytes"), e.getMessage());
                Path good = dir.resolve("good.safetensors");
                opt.save(good);
                byte[] bytes = Files.readAllBytes(good);
                Path cut = dir.resolve("cut.safetensors");
                Files.write(cut, Arrays.copyOf(bytes, 40));  // inside the JSON header
                e = assertThrows(SafetensorsException.class, () -> opt.load(cut));
                assertTrue(e.getMessage().contains(cut.toString()) && e.getMessage().contains("holds 40"), e.getMessage());
                assertEquals(0, opt.stepCount());
            }
            List<Parameter> transposed = new ArrayList<>(a.params);
            transposed.set(0, new Parameter(a.params.get(0).name(), Tensor.allocate(arena, DType.F32, 9, 5),
                    Tensor.allocate(arena, DType.F32, 9, 5)));
            try (AdamW opt = new AdamW(a.params, CONFIG); AdamW other = new AdamW(transposed, CONFIG)) {
                Path good = dir.resolve("good.safetensors");
                opt.save(good);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> other.load(good));
                assertEquals("state parameter 'layer0.lora_A.weight' has shape [5, 9], the parameter [9, 5]", e.getMessage());
            }
        }
    }
}
