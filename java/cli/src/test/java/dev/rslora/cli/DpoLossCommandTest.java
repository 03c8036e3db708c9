package dev.rslora.cli;

import dev.rslora.io.SafetensorsFile;
import dev.rslora.io.SafetensorsWriter;
import dev.rslora.tensor.DType;
import dev.rslora.tensor.Tensor;
import dev.rslora.testing.TestData;
import dev.rslora.train.DpoLoss;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledOnOs;
import org.junit.jupiter.api.condition.OS;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code rslora dpo-loss} end to end against {@link DpoLoss}, and its bad-input paths. */
class DpoLossCommandTest {
    @TempDir
    Path dir;

    private Path input(Arena arena, SplittableRandom rnd, int batch, String skip, String wrong) throws Exception {
        SafetensorsWriter w = new SafetensorsWriter();
        for (String name : DpoLossCommand.INPUTS) {
            if (name.equals(skip)) {
                continue;
            }
            Tensor t = TestData.uniform(arena, DType.F32, rnd, 1, name.equals(wrong) ? batch + 1 : batch);
            for (long i = 0; i < t.numel(); i++) {
                t.set(i, t.get(i) * 40 - 60);  // log-probs of ~-100..-20
            }
            w.add(name, t);
        }
        Path p = dir.resolve("in-" + skip + "-" + wrong + ".safetensors");
        w.write(p);
        return p;
    }

    @Test
    void writesTheLossRewardsAndGradientsOfTheLibrary() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = input(arena, new SplittableRandom(4), 13, null, null);
            for (String[] variant : new String[][] {{"sigmoid", "0"}, {"sigmoid", "0.1"}, {"hinge", "0"}, {"ipo", "0"}}) {
                Path out = dir.resolve("out-" + variant[0] + variant[1] + ".safetensors");
                CliRun r = CliRun.of("dpo-loss", "--input", in.toString(), "--output", out.toString(), "--beta", "0.1",
                        "--label-smoothing", variant[1], "--loss-type", variant[0]);
                assertEquals(0, r.code(), r.err());
                SafetensorsFile f = SafetensorsFile.open(in, arena);
                double[][] v = new double[4][13];
                for (int k = 0; k < 4; k++) {
                    for (int i = 0; i < 13; i++) {
                        v[k][i] = f.tensor(DpoLossCommand.INPUTS.get(k)).get(i);
                    }
                }
                DpoLoss.Result want = new DpoLoss(0.1, Double.parseDouble(variant[1]), DpoLoss.Type.fromName(variant[0]))
                        .compute(v[0], v[1], v[2], v[3]);
                SafetensorsFile o = SafetensorsFile.open(out, arena);
                assertEquals(Set.of("loss", "chosen_rewards", "rejected_rewards", "grad_policy_chosen_logps",
                        "grad_policy_rejected_logps"), new TreeSet<>(o.names()));
                assertEquals(0, o.entry("loss").rank(), "the mean loss is a scalar");
                assertEquals((float) want.loss(), o.tensor("loss").get(0));
                assertArrayEquals(f32(want.chosenRewards()), o.tensor("chosen_rewards").toFloatArray());
                assertArrayEquals(f32(want.rejectedRewards()), o.tensor("rejected_rewards").toFloatArray());
                assertArrayEquals(f32(want.gradPolicyChosen()), o.tensor("grad_policy_chosen_logps").toFloatArray());
                assertArrayEquals(f32(want.gradPolicyRejected()), o.tensor("grad_policy_rejected_logps").toFloatArray());
                assertEquals(Double.toString(want.rewardAccuracy()), o.metadata().get("rslora.reward_accuracy"));
            }
        }
    }

    private static float[] f32(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) {
            f[i] = (float) d[i];
        }
        return f;
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

    /** β = 1e300 overflows the fp32 outputs: written as computed, exit 0, one warning line per tensor; β = 0.1 none. */
    @Test
    void nonFiniteOutputsAreWrittenWithAWarning() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = input(arena, new SplittableRandom(5), 6, null, null);
            Path out = dir.resolve("huge-beta.safetensors");
            CliRun r = CliRun.of("dpo-loss", "--input", in.toString(), "--output", out.toString(), "--beta", "1e300");
            assertEquals(0, r.code(), r.err());
            for (String name : List.of("loss", "chosen_rewards", "rejected_rewards")) {
                assertTrue(r.err().contains("rslora dpo-loss: warning: " + name + " holds "), name + " in: " + r.err());
            }
            Path sane = dir.resolve("sane.safetensors");
            CliRun ok = CliRun.of("dpo-loss", "--input", in.toString(), "--output", sane.toString(), "--beta", "0.1");
            assertEquals(0, ok.code(), ok.err());
            assertFalse(ok.err().contains("warning"), ok.err());
        }
    }

    @Test
    void badInputsAreRefusedWithOneLineAndNoOutput() throws Exception {
        Path out = dir.resolve("never.safetensors");
        try (Arena arena = Arena.ofShared()) {
            SplittableRandom rnd = new SplittableRandom(9);
            Path ok = input(arena, rnd, 4, null, null);
            assertRefused(CliRun.of("dpo-loss", "--input", ok.toString(), "--output", out.toString(), "--beta", "0"), out, "beta=0.0");
            assertRefused(CliRun.of("dpo-loss", "--input", ok.toString(), "--output", out.toString(), "--beta", "0.1",
                    "--label-smoothing", "0.7"), out, "label_smoothing=0.7");
            assertRefused(CliRun.of("dpo-loss", "--input", ok.toString(), "--output", out.toString(), "--beta", "0.1",
                    "--loss-type", "hinge", "--label-smoothing", "0.1"), out, "sigmoid loss only");
            assertRefused(CliRun.of("dpo-loss", "--input", ok.toString(), "--output", out.toString(), "--beta", "0.1",
                    "--loss-type", "kto"), out, "kto");
            Path missing = input(arena, rnd, 4, "reference_rejected_logps", null);
            assertRefused(CliRun.of("dpo-loss", "--input", missing.toString(), "--output", out.toString(), "--beta", "0.1"), out,
                    "reference_rejected_logps");
            Path wrong = input(arena, rnd, 4, null, "policy_rejected_logps");
            assertRefused(CliRun.of("dpo-loss", "--input", wrong.toString(), "--output", out.toString(), "--beta", "0.1"), out,
                    "policy_rejected_logps [5]", "[4]");
            Path twoD = dir.resolve("2d.safetensors");
            SafetensorsWriter w = new SafetensorsWriter();
            for (String n : DpoLossCommand.INPUTS) {
                w.add(n, TestData.uniform(arena, DType.F32, rnd, 1, 2, 2));
            }
            w.write(twoD);
            assertRefused(CliRun.of("dpo-loss", "--input", twoD.toString(), "--output", out.toString(), "--beta", "0.1"), out, "1-D");
            Path inf = dir.resolve("inf.safetensors");
            w = new SafetensorsWriter();
            for (String n : DpoLossCommand.INPUTS) {
                Tensor t = TestData.uniform(arena, DType.F32, rnd, 1, 3);
                if (n.equals("policy_chosen_logps")) {
                    t.set(2, Float.NEGATIVE_INFINITY);
                }
                w.add(n, t);
            }
            w.write(inf);
            assertRefused(CliRun.of("dpo-loss", "--input", inf.toString(), "--output", out.toString(), "--beta", "0.1"), out,
                    "policy_chosen_logps", "Infinity", "index 2");
            // a β that overflows the loss: refused by name, nothing written (it wrote loss = Infinity)
            assertRefused(CliRun.of("dpo-loss", "--input", ok.toString(), "--output", out.toString(), "--beta", "1e308"), out,
                    "beta=1.0E308", "overflows");
            Path extra = dir.resolve("extra.safetensors");
            w = new SafetensorsWriter();
            for (String n : List.of("policy_chosen_logps", "policy_rejected_logps", "reference_chosen_logps", "reference_rejected_logps",
                    "labels")) {
                w.add(n, TestData.uniform(arena, DType.F32, rnd, 1, 3));
            }
            w.write(extra);
            assertRefused(CliRun.of("dpo-loss", "--input", extra.toString(), "--output", out.toString(), "--beta", "0.1"), out,
                    "unexpected tensor 'labels'");
        }
    }

    @Test
    void anOutputThatIsTheInputIsRefusedAndTheInputKept() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            Path in = input(arena, new SplittableRandom(5), 3, null, null);
            byte[] before = Files.readAllBytes(in);
            LayerCommandTest.assertInputKept(CliRun.of("dpo-loss", "--input", in.toString(), "--output", in.toString(), "--beta", "0.1"),
                    in, before);
        }
    }

    @Test
    @EnabledOnOs({OS.LINUX, OS.MAC})  // needs a file system with sparse files (ext4, xfs, APFS): NTFS would write 32 GiB
    void aBatchTooLargeForAnArrayIsRefusedNamingTheTensor() throws Exception {
        // a sparse file: four F32 [2^31] tensors (32 GiB declared, nothing read before the check)
        long n = 1L << 31;
        StringBuilder h = new StringBuilder("{");
        for (int k = 0; k < DpoLossCommand.INPUTS.size(); k++) {
            h.append(k == 0 ? "" : ",").append('"').append(DpoLossCommand.INPUTS.get(k)).append("\":{\"dtype\":\"F32\",\"shape\":[")
                    .append(n).append("],\"data_offsets\":[").append(k * 4 * n).append(',').append((k + 1) * 4 * n).append("]}");
        }
        byte[] header = h.append('}').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Path in = dir.resolve("huge.safetensors");
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(in.toFile(), "rw")) {
            f.write(java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            f.write(header);
            f.setLength(8 + header.length + 16 * n);
        }
        Path out = dir.resolve("never.safetensors");
        assertRefused(CliRun.of("dpo-loss", "--input", in.toString(), "--output", out.toString(), "--beta", "0.1"), out,
                "policy_chosen_logps", "[2147483648]", "batch <= 2147483639");
    }
}
