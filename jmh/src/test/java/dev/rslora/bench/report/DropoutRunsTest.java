package dev.rslora.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** CpuLayerBenchmark runs with -p dropout=… (which its javadoc offers): what the report makes of them. */
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
}
