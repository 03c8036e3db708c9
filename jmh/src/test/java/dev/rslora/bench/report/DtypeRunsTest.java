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
 * CpuLayerBenchmark runs with -p dtype=BF16 (a bf16 model: X, W and dY in bf16, the adapter fp32)
 * next to the fp32 runs: issue 14's targets are fp32's and must be judged on the fp32 run only, a
 * bf16 row must say so, and a separate bf16 run must not stand in for an fp32 figure.
 */
class DtypeRunsTest {
    @TempDir
    Path tmp;

    private static String line(String md, String part) {
        for (String l : md.split("\n")) {
            if (l.contains(part)) {
                return l;
            }
        }
        throw new AssertionError("no line with " + part + " in:\n" + md);
    }

    private static void interleaved(Path file, double lora, String... params) throws IOException {
        Synthetic.write(file, List.of(Synthetic.aux(Synthetic.B + "CpuLayerBenchmark.loraThenBase", 2.0, params,
                DropoutRunsTest.L, new double[][] {{lora, lora}, {100e6, 100e6}, {100, 100}})));
    }

    @Test
    void theRTargetIsJudgedOnTheFp32RunAndBf16RowsSaySo() throws IOException {
        Path raw = tmp.resolve("raw");
        // bf16 runs whose file sorts first: R = 1.05 at r = 64 (would meet R ≤ 1.10), 1.02 at r = 16
        interleaved(raw.resolve("cpu-a-bf16.json"), 105e6,
                "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "dtype=BF16", "tile=512", "busy=0");
        interleaved(raw.resolve("cpu-a-bf16-r16.json"), 102e6,
                "n=512", "dIn=1024", "dOut=1024", "r=16", "dropout=0", "dtype=BF16", "tile=512", "busy=0");
        // the fp32 run, with the parameter (R = 1.3, not met) ...
        interleaved(raw.resolve("cpu-r.json"), 130e6,
                "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "dtype=F32", "tile=512", "busy=0");
        Results res = Results.load(raw, null);
        String r = line(CpuSideBySide.targets(res), "R ≤ 1.10 at r=64");
        assertTrue(r.contains("R = 1.300") && r.contains("**not met**"), r);
        assertFalse(r.contains("**met**"), r);
        String table = CpuSideBySide.rTable(res);
        assertTrue(line(table, "| 1.050 (").contains("bf16 X, W and dY (adapter fp32)"), table);
        assertFalse(line(table, "| 1.300 (").contains("bf16"), table);
        // the README summary names the dtype too, and keeps bf16 rows to r = 64 (RESULTS.md has every rank)
        String readme = ReadmeCpuBlock.write(res);
        assertTrue(line(readme, "| 1.05 (").contains("bf16"), readme);
        assertFalse(readme.contains("| 1.02 ("), readme);
        assertTrue(table.contains("| 1.020 ("), table);
    }

    @Test
    void theReadmeKeepsBf16ForwardRowsToRank64AsTheStepRows() throws IOException {
        Path raw = tmp.resolve("raw");
        for (int r : new int[] {16, 64}) {
            double lora = r == 16 ? 103e6 : 107e6;
            Synthetic.write(raw.resolve("cpu-fwd-" + r + ".json"), List.of(Synthetic.aux(Synthetic.B + "CpuLayerBenchmark.forwardThenBase",
                    2.0, new String[] {"n=512", "dIn=1024", "dOut=1024", "r=" + r, "dropout=0", "dtype=BF16", "tile=512", "busy=0"},
                    DropoutRunsTest.L, new double[][] {{lora, lora}, {100e6, 100e6}, {100, 100}})));
        }
        String readme = ReadmeCpuBlock.write(Results.load(raw, null));
        assertTrue(line(readme, "| 1.07 (").contains("bf16"), readme);
        assertFalse(readme.contains("| 1.03 ("), readme);
    }

    @Test
    void aRunWithoutTheDtypeParameterIsFp32() throws IOException {
        Path raw = tmp.resolve("raw");
        // files from before the parameter existed
        interleaved(raw.resolve("cpu-r.json"), 108e6, "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512", "busy=0");
        Results res = Results.load(raw, null);
        assertTrue(line(CpuSideBySide.targets(res), "R ≤ 1.10 at r=64").contains("R = 1.080"));
        assertFalse(CpuSideBySide.rTable(res).contains("bf16"));
    }

    @Test
    void aSeparateBf16RunIsNotTakenForTheFp32Figures() throws IOException {
        Path raw = tmp.resolve("raw");
        Synthetic.write(raw.resolve("cpu-a-bf16.json"), List.of(
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.loraForwardBackward", 9.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "dtype=BF16", "tile=512"),
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.baseForwardBackward", 8.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "dtype=BF16", "tile=512")));
        Synthetic.write(raw.resolve("cpu-ours.json"), List.of(
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.loraForwardBackward", 6.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "dtype=F32", "tile=512"),
                Synthetic.jmh(Synthetic.B + "CpuLayerBenchmark.baseForwardBackward", 5.0, 0.05, "ms/op",
                        "n=512", "dIn=1024", "dOut=1024", "r=64", "dropout=0", "tile=512")));
        Results res = Results.load(raw, null);
        assertEquals(6.0, res.find("cpu@512", new Shape(512, 1024, 1024, 64)).orElseThrow().ms(), 1e-12);
        assertEquals(5.0, res.find("cpu-base@512", new Shape(512, 1024, 1024, 64)).orElseThrow().ms(), 1e-12);
        assertTrue(res.unknown().stream().anyMatch(u -> "BF16".equals(u.params().get("dtype")) && u.ms() == 9.0),
                res.unknown().toString());
    }
}
