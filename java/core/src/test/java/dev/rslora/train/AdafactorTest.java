package dev.rslora.train;

import dev.rslora.optim.AdafactorConfig;
import dev.rslora.optim.AdafactorSpec;
import dev.rslora.optim.AdafactorState;
import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Adafactor} beyond the golden trajectories: the reduction order of {@link FlatSum}, state
 * snapshots, save/load that resumes bit for bit, master weights, validation of configs and state
 * files, and schedules driving it.
 */
class AdafactorTest {
    @TempDir
    Path dir;

    @Test
    void flatSumIsTheWarpOrder() {
        // elements k go to lane k mod 32; lanes combine by the butterfly; segments of 2048 add in order
        SplittableRandom rnd = new SplittableRandom(5);
        for (int n : new int[] {0, 1, 31, 32, 33, 2047, 2048, 2049, 6000}) {
            double[] x = new double[n];
            for (int i = 0; i < n; i++) {
                x[i] = rnd.nextDouble() * Math.pow(2, rnd.nextInt(-30, 30));
            }
            double total = 0;
            for (int s = 0; s < n; s += 2048) {
                double[] lanes = new double[32];
                for (int k = s; k < Math.min(n, s + 2048); k++) {
                    lanes[(k - s) % 32] += x[k];
                }
                for (int h = 16; h > 0; h /= 2) {
                    for (int l = 0; l < h; l++) {
                        lanes[l] += lanes[l + h];
                    }
                }
                total += lanes[0];
            }
            FlatSum f = new FlatSum();
            f.reset();
            for (double v : x) {
                f.add(v);
            }
            assertEquals(Double.doubleToRawLongBits(total), Double.doubleToRawLongBits(f.finish()), "n=" + n);
        }
    }

    private record Setup(Arena arena, List<Parameter> params) implements AutoCloseable {
        static Setup of(SplittableRandom rnd, DType dtype) {
            Arena a = Arena.ofShared();
            List<Parameter> p = new ArrayList<>();
            long[][] shapes = {{7, 40}, {40, 7}, {33}, {1, 1}, {2, 3, 4}};
            for (int i = 0; i < shapes.length; i++) {
                p.add(new Parameter("p" + i, TestData.uniform(a, dtype, rnd, 0.5, shapes[i]), TestData.uniform(a, DType.F32, rnd, 1,
                        shapes[i])));
            }
            return new Setup(a, p);
        }

        void newGradients(SplittableRandom rnd) {
            for (Parameter p : params) {
                for (long i = 0; i < p.grad().numel(); i++) {
                    p.grad().set(i, (float) rnd.nextDouble(-1, 1));
                }
            }
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    @Test
    void saveLoadResumesBitForBit() throws IOException {
        AdafactorConfig c = AdafactorConfig.hfDefaults().withBeta1(0.9).withWeightDecay(0.01);
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            SplittableRandom gradsA = new SplittableRandom(11);
            SplittableRandom gradsB = new SplittableRandom(11);
            try (Setup a = Setup.of(new SplittableRandom(3), dt); Setup b = Setup.of(new SplittableRandom(3), dt);
                 Adafactor oa = new Adafactor(a.params(), c); Adafactor ob = new Adafactor(b.params(), c)) {
                for (int t = 0; t < 7; t++) {
                    a.newGradients(gradsA);
                    oa.step();
                    b.newGradients(gradsB);
                    ob.step();
                }
                Path file = dir.resolve("state-" + dt + ".safetensors");
                oa.save(file);
                // the file is plain safetensors with Hugging Face's state names
                try (Arena ar = Arena.ofConfined()) {
                    SafetensorsFile f = SafetensorsFile.open(file, ar);
                    assertEquals(AdafactorStateFile.FORMAT, f.metadata().get("format"));
                    assertArrayEquals(new long[] {7}, f.entry("p0.exp_avg_sq_row").shape());
                    assertArrayEquals(new long[] {40}, f.entry("p0.exp_avg_sq_col").shape());
                    assertArrayEquals(new long[] {2, 4}, f.entry("p4.exp_avg_sq_col").shape(), "S[:-2] + S[-1:]");
                    assertArrayEquals(new long[] {33}, f.entry("p2.exp_avg_sq").shape());
                    assertTrue(f.contains("p0.exp_avg"));
                    assertEquals(dt != DType.F32, f.contains("p0.master"));
                    assertEquals("None", f.metadata().get("lr"));
                }
                // a fresh optimizer over b's parameters restores a's state and continues identically
                try (Adafactor resumed = new Adafactor(b.params(), c)) {
                    resumed.load(file);
                    assertEquals(7, resumed.stepCount());
                    for (int t = 0; t < 5; t++) {
                        a.newGradients(gradsA);
                        oa.step();
                        b.newGradients(gradsB);
                        resumed.step();
                    }
                    for (int i = 0; i < a.params().size(); i++) {
                        assertArrayEquals(a.params().get(i).value().toFloatArray(), b.params().get(i).value().toFloatArray(),
                                dt + " parameter " + i);
                    }
                    AdafactorState sa = oa.snapshot();
                    AdafactorState sb = resumed.snapshot();
                    for (int i = 0; i < sa.entries().size(); i++) {
                        AdafactorState.Entry ea = sa.entries().get(i);
                        AdafactorState.Entry eb = sb.entries().get(i);
                        assertArrayEquals(ea.expAvgSqRow(), eb.expAvgSqRow());
                        assertArrayEquals(ea.expAvgSqCol(), eb.expAvgSqCol());
                        assertArrayEquals(ea.expAvgSq(), eb.expAvgSq());
                        assertArrayEquals(ea.expAvg(), eb.expAvg());
                        assertArrayEquals(ea.master(), eb.master());
                    }
                }
            }
        }
    }

    @Test
    void badStateFilesAreRefusedNamingTheProblem() throws IOException {
        try (Setup s = Setup.of(new SplittableRandom(1), DType.F32); Adafactor o = new Adafactor(s.params(), AdafactorConfig.trainer(1e-3))) {
            s.newGradients(new SplittableRandom(2));
            o.step();
            Path good = dir.resolve("good.safetensors");
            o.save(good);
            // a flipped data byte: checksum
            byte[] bytes = Files.readAllBytes(good);
            bytes[bytes.length - 3] ^= 1;
            Path flipped = dir.resolve("flipped.safetensors");
            Files.write(flipped, bytes);
            IOException e = assertThrows(IOException.class, () -> AdafactorStateFile.read(flipped));
            assertTrue(e.getMessage().contains("checksum mismatch"), e.getMessage());
            // an AdamW state file is not an Adafactor one
            Path other;
            try (Arena ar = Arena.ofConfined()) {
                other = dir.resolve("other.safetensors");
                new SafetensorsWriter().metadata("format", AdamWStateFile.FORMAT).add("x", Tensor.allocate(ar, DType.F32, 1))
                        .write(other);
            }
            e = assertThrows(IOException.class, () -> AdafactorStateFile.read(other));
            assertTrue(e.getMessage().contains("not an Adafactor state file"), e.getMessage());
            // a state of other parameters
            try (Setup t = Setup.of(new SplittableRandom(1), DType.F32)) {
                List<Parameter> fewer = t.params().subList(0, 2);
                try (Adafactor o2 = new Adafactor(fewer, AdafactorConfig.trainer(1e-3))) {
                    IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> o2.load(good));
                    assertTrue(x.getMessage().contains("5 parameters") && x.getMessage().contains("2"), x.getMessage());
                }
                try (Adafactor o3 = new Adafactor(t.params(), AdafactorConfig.trainer(1e-3).withBeta1(0.9))) {
                    IllegalArgumentException x = assertThrows(IllegalArgumentException.class, () -> o3.load(good));
                    assertTrue(x.getMessage().contains("beta1"), x.getMessage());
                }
            }
        }
    }

    @Test
    void mastersKeepSmallUpdatesThatBf16RoundingLoses() {
        // lr 1e-6 on values near 1: every update is below half a bf16 step, so without masters the
        // parameter never moves (as in Hugging Face); with masters it moves after enough steps
        AdafactorConfig c = AdafactorConfig.trainer(1e-4);
        try (Arena a = Arena.ofConfined()) {
            Tensor withM = Tensor.allocate(a, DType.BF16, 4, 4);
            Tensor without = Tensor.allocate(a, DType.BF16, 4, 4);
            withM.fill(1f);
            without.fill(1f);
            Tensor g = Tensor.allocate(a, DType.F32, 4, 4);
            g.fill(1f);
            try (Adafactor m = new Adafactor(List.of(new Parameter("w", withM, g)), c, true);
                 Adafactor n = new Adafactor(List.of(new Parameter("w", without, g)), c, false)) {
                for (int t = 0; t < 60; t++) {
                    m.step();
                    n.step();
                }
                assertEquals(1f, without.get(0), "bf16 without masters: every step rounds back to 1");
                assertTrue(withM.get(0) < 1f, "masters accumulate 60·1e-4: " + withM.get(0));
                float master = m.snapshot().entries().getFirst().master()[0];
                assertEquals(1 - 60 * 1e-4, master, 1e-6);
                assertNull(n.snapshot().entries().getFirst().master());
            }
        }
    }

    @Test
    void configsFollowHuggingFacesRules() {
        AdafactorConfig d = AdafactorConfig.hfDefaults();
        assertNull(d.lr());
        assertTrue(d.relativeStep() && d.scaleParameter() && !d.warmupInit());
        assertEquals(1e-30, d.eps1());
        assertEquals(1e-3, d.eps2());
        assertEquals(-0.8, d.decayRate());
        AdafactorConfig trainer = AdafactorConfig.trainer(5e-7);
        assertTrue(!trainer.relativeStep() && !trainer.scaleParameter());
        assertEquals(5e-7, trainer.lr());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AdafactorConfig(1e-3, 1e-30, 1e-3, 1, -0.8, null, 0, true, true, false));
        assertTrue(e.getMessage().contains("relative_step"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new AdafactorConfig(1e-3, 1e-30, 1e-3, 1, -0.8, null, 0, true, false, true),
                "warmup_init without relative_step");
        assertThrows(IllegalArgumentException.class, () -> new AdafactorConfig(null, 1e-30, 1e-3, 1, -0.8, null, 0, true, false, false),
                "no lr without relative_step");
        assertThrows(IllegalArgumentException.class, () -> trainer.withBeta1(1.0));
        assertThrows(IllegalArgumentException.class, () -> trainer.withClipThreshold(0));
        assertThrows(IllegalArgumentException.class, () -> trainer.withDecayRate(0.5));
        assertThrows(IllegalStateException.class, () -> d.withLr(1e-3), "relative step has no lr to set");
        // ρ_t: min(1e-2, 1/√t), or min(1e-6·t, 1/√t) with warmup_init; β2_t = 1 − t^−0.8
        assertEquals(1e-2, AdafactorSpec.step(d, 1).rho());
        assertEquals(1e-2, AdafactorSpec.step(d, 10_000).rho());
        assertEquals(1 / Math.sqrt(40_000), AdafactorSpec.step(d, 40_000).rho());
        AdafactorConfig w = d.withRelativeStep(true, null, true);
        assertEquals(1e-6 * 3, AdafactorSpec.step(w, 3).rho());
        assertEquals(0f, AdafactorSpec.step(d, 1).beta2(), "β2_1 = 1 − 1 = 0: the first step takes grad² as it is");
        assertEquals((float) (1 - Math.pow(2, -0.8)), AdafactorSpec.step(d, 2).beta2());
        // lr_t: max(eps2, RMS)·ρ as Python's max (NaN RMS gives eps2)
        AdafactorSpec.Step s = AdafactorSpec.step(d, 1);
        assertEquals(1e-3 * 1e-2, s.lr(1e-5));
        assertEquals(0.5 * 1e-2, s.lr(0.5));
        assertEquals(1e-3 * 1e-2, s.lr(Double.NaN));
        assertEquals(1f, s.clipDivisor(0.3));
        assertEquals(2f, s.clipDivisor(2.0));
        assertTrue(Float.isNaN(s.clipDivisor(Double.NaN)));
    }

    @Test
    void schedulesDriveIt() {
        try (Setup s = Setup.of(new SplittableRandom(4), DType.F32);
             Adafactor o = new Adafactor(s.params(), AdafactorConfig.trainer(1.0))) {
            LrSchedule sched = LrSchedule.withWarmupRatio(LrSchedule.Kind.LINEAR, 1e-2, 0.1, 20);
            float[] before = s.params().getFirst().value().toFloatArray();
            sched.apply(o);
            assertEquals(0.0, o.config().lr(), "the first step of a warmup runs with lr 0 (λ(0) = 0)");
            s.newGradients(new SplittableRandom(1));
            o.step();
            assertArrayEquals(before, s.params().getFirst().value().toFloatArray(), "lr 0: nothing moves");
            sched.apply(o);
            assertEquals(1e-2 * 1 / 2, o.config().lr(), 1e-18, "W = ceil(20·0.1) = 2: step 2 runs with λ(1) = 1/2");
        }
    }

    @Test
    void refusesBadParameterLists() {
        try (Arena a = Arena.ofConfined()) {
            Tensor v = Tensor.allocate(a, DType.F32, 2);
            Tensor g = Tensor.allocate(a, DType.F32, 2);
            assertThrows(IllegalArgumentException.class, () -> new Adafactor(List.of(), AdafactorConfig.trainer(1e-3)));
            assertThrows(IllegalArgumentException.class, () -> new Adafactor(List.of(new Parameter("x", v, g), new Parameter("x", v, g)),
                    AdafactorConfig.trainer(1e-3)));
            Tensor empty = Tensor.allocate(a, DType.F32, 0, 3);
            assertThrows(IllegalArgumentException.class, () -> new Adafactor(List.of(new Parameter("e", empty, empty)),
                    AdafactorConfig.trainer(1e-3)));
            Adafactor o = new Adafactor(List.of(new Parameter("x", v, g)), AdafactorConfig.trainer(1e-3));
            o.close();
            assertThrows(IllegalStateException.class, o::step);
        }
    }

    /** The same value under two names was updated twice per step; refused like AdamW's. */
    @Test
    void parametersThatShareMemoryAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            Tensor v = Tensor.allocate(arena, DType.F32, 2, 3);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Adafactor(List.of(
                    new Parameter("a", v, Tensor.allocate(arena, DType.F32, 2, 3)),
                    new Parameter("b", Tensor.wrap(v.segment(), DType.F32, 2, 3), Tensor.allocate(arena, DType.F32, 2, 3))),
                    AdafactorConfig.trainer(1e-3)));
            assertTrue(e.getMessage().contains("parameter 'b': its value shares memory with the value of parameter 'a'"),
                    e.getMessage());
        }
    }

    @Test
    void setLearningRateAfterCloseIsRefused() {
        try (Arena arena = Arena.ofShared()) {
            Adafactor opt = new Adafactor(List.of(new Parameter("a", Tensor.allocate(arena, DType.F32, 2),
                    Tensor.allocate(arena, DType.F32, 2))), AdafactorConfig.trainer(1e-3));
            opt.close();
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> opt.setLearningRate(1e-4));
            assertEquals("optimizer is closed", e.getMessage());
        }
    }

    /**
     * A null state or file was a bare NullPointerException from inside the JDK; it is an
     * IllegalArgumentException naming the method and the argument, and nothing is changed.
     */
    @Test
    void nullStatesAndFilesAreNamed() throws IOException {
        try (Setup s = Setup.of(new SplittableRandom(1), DType.F32); Adafactor o = new Adafactor(s.params(), AdafactorConfig.trainer(1e-3))) {
            s.newGradients(new SplittableRandom(2));
            o.step();
            AdafactorState before = o.snapshot();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> o.restore(null));
            assertEquals("Adafactor.restore: state is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> o.save(null));
            assertEquals("Adafactor.save: file is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> o.load(null));
            assertEquals("Adafactor.load: file is null", e.getMessage());
            assertEquals(1, o.stepCount());
            assertArrayEquals(before.entries().get(0).expAvgSqRow(), o.snapshot().entries().get(0).expAvgSqRow());

            e = assertThrows(IllegalArgumentException.class, () -> AdafactorStateFile.write(null, dir.resolve("s")));
            assertEquals("AdafactorStateFile.write: state is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AdafactorStateFile.write(before, null));
            assertEquals("AdafactorStateFile.write: file is null", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> AdafactorStateFile.read(null));
            assertEquals("AdafactorStateFile.read: file is null", e.getMessage());
            // not a state file at all: named by the typed exceptions of the safetensors reader
            Path empty = Files.createFile(dir.resolve("empty.safetensors"));
            IOException io = assertThrows(IOException.class, () -> o.load(empty));
            assertTrue(io.getMessage().contains(empty.toString()), io.getMessage());
            io = assertThrows(IOException.class, () -> o.load(dir));
            assertTrue(io.getMessage().contains(dir + ": is a folder"), io.getMessage());
        }
    }
}
