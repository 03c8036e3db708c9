package dev.rslora.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CpuLayerBenchmark runs with -p dropout=… (which its javadoc offers) next to the headline
 * dropout-0 runs: the issue-14 targets, stated for the "dropout 0" section, must be judged on the
 * dropout-0 run only, and a row measured with dropout must say so.
 */
class DropoutRunsTest {
    @TempDir
    Path tmp;

    static final String[] L = {"loraNanos", "baseNanos", "steps"};

    private static String line(String md, String part) {
        for (String l : md.split("\n")) {
            if (l.contains(part)) {
                return l;
            }
        }
        throw new AssertionError("no line with " + part + " in:\n" + md);
    }

    @Test
    void theRTargetIsJudgedOnTheDropoutZeroRunAndDropoutRowsSaySo() throws IOException {
        Path raw = tmp.resolve("raw");
        // a dropout run whose file sorts first: R = 1.05 (would meet R ≤ 1.10)
        Synthetic.write(raw.resolve("cpu-a-dropout.json"), List.of(Synthetic.aux(Synthetic.B + "CpuLayerBenchmark.loraThenBase",
                2.05, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0.1", "tile=512", "busy=0"}, L,
                new double[][] {{105e6, 105e6}, {100e6, 100e6}, {100, 100}})));
        // the headline dropout-0 run: R = 1.3 (does not meet it)
        Synthetic.write(raw.resolve("cpu-r.json"), List.of(Synthetic.aux(Synthetic.B + "CpuLayerBenchmark.loraThenBase",
                2.3, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512", "busy=0"}, L,
                new double[][] {{130e6, 130e6}, {100e6, 100e6}, {100, 100}})));
        Results res = Results.load(raw, null);
        String targets = CpuSideBySide.targets(res);
        String r = line(targets, "R ≤ 1.10 at r=64");
        assertTrue(r.contains("R = 1.300") && r.contains("**not met**"), r);
        assertFalse(r.contains("**met**"), r);
        // the R table shows both runs, the dropout one labelled as such
        String table = CpuSideBySide.rTable(res);
        assertTrue(line(table, "| 1.050 (").contains("dropout 0.1"), table);
        assertFalse(line(table, "| 1.300 (").contains("dropout"), table);
        // and the README summary (which says "dropout 0 unless a row says otherwise") says so too
        String readme = ReadmeCpuBlock.write(res);
        assertTrue(line(readme, "| 1.05 (").contains("dropout 0.1"), readme);
    }

    @Test
    void decodingRunsInEvalModeSoTheForwardFlopRatioIgnoresTheDropoutParameter() throws IOException {
        Path raw = tmp.resolve("raw");
        // forwardThenBase is eval mode (LayerStep.decode: training false): no mask, so at N = 2048 ≥ 2·d_in the
        // forward forms W' whatever -p dropout says: 1 + r/d_out + r/N = 1 + 64/1024 + 64/2048 = 1.094
        Synthetic.write(raw.resolve("cpu-decode.json"), List.of(Synthetic.aux(Synthetic.B + "CpuLayerBenchmark.forwardThenBase",
                2.2, new String[] {"n=2048", "dIn=1024", "dOut=1024", "r=64", "dropout=0.1", "tile=512", "busy=0"}, L,
                new double[][] {{110e6, 110e6}, {100e6, 100e6}, {100, 100}})));
        String table = CpuSideBySide.decodeTable(Results.load(raw, null));
        assertEquals(1 + 64.0 / 1024 + 64.0 / 2048, new Shape(2048, 1024, 1024, 64).cpuForwardFlopRatio(false), 1e-12);
        assertTrue(line(table, "| 2048 | 1024 | 64 |").contains("| 1.094 |"), table);
    }

    @Test
    void aSeparateLoraRunWithDropoutIsNotTakenForTheDropoutZeroFigure() throws IOException {
        Path raw = tmp.resolve("raw");
        // the same shape and tile at p = 0 (6 ms) and p = 0.1 (9 ms), in the file that sorts first
        Synthetic.write(raw.resolve("cpu-a-dropout.json"), List.of(Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.loraForwardBackward",
                9.0, 0.05, "ms/op", "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0.1", "tile=512")));
        Synthetic.write(raw.resolve("cpu-ours.json"), List.of(
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.loraForwardBackward", 6.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512"),
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.baseForwardBackward", 5.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512")));
        Results res = Results.load(raw, null);
        List<Measurement> lora = res.of(Platform.CPU, Role.LORA);
        assertEquals(1, lora.size(), lora.toString());
        assertEquals(6.0, lora.getFirst().ms(), 1e-12);
        assertEquals(6.0, res.find("cpu@512", new Shape(512, 1024, 1024, 64)).orElseThrow().ms(), 1e-12);
        // the dropout run is listed apart, with its parameters
        assertTrue(res.unknown().stream().anyMatch(u -> "0.1".equals(u.params().get("dropout")) && u.ms() == 9.0), res.unknown().toString());
    }
}
