package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 256-bit tile against OpenBLAS Haswell, measured twice with different JIT flags
 * (-XX:MaxVectorSize=32 as issue 14 spells it, -XX:UseAVX=2 as an AVX2 machine's JIT compiles):
 * the targets table gives each its own row, named by its flags and judged on its own figure,
 * instead of picking whichever run sorts first.
 */
class JitFlagRunsTest {
    @TempDir
    Path tmp;

    private static final String[] METRICS = {"oursNanos", "oursSteps", "peerNanos", "peerSteps"};

    /** ours 40 ms per 8 steps, OpenBLAS {@code peer} ms: the ratio peer ÷ 40. */
    private static ObjectNode run(double peerMs, String flag) {
        ObjectNode o = Synthetic.aux(Synthetic.B + "CpuVsOpenBlasBenchmark.oursThenOpenBlas", 500, new String[] {"n=512", "d=1024",
                "r=64", "core=Haswell", "tile=256", "busy=0"}, METRICS,
                new double[][] {{40e6, 40e6}, {8, 8}, {peerMs * 1e6, peerMs * 1e6}, {8, 8}});
        o.putArray("jvmArgs").add("--add-modules").add(flag);
        return o;
    }

    @Test
    void eachFlagSetGetsItsOwnTargetRow() throws IOException {
        Path raw = tmp.resolve("raw");
        // the UseAVX=2 run in a file that sorts first: ratio 1.1 (met); MaxVectorSize=32: 0.9 (not met)
        Synthetic.write(raw.resolve("cpu-a-avx2.json"), List.of(run(44, "-XX:UseAVX=2")));
        Synthetic.write(raw.resolve("cpu-vs-256.json"), List.of(run(36, "-XX:MaxVectorSize=32")));
        Results res = Results.load(raw, null);
        List<String> rows = CpuSideBySide.targets(res).lines()
                .filter(l -> l.contains("Haswell") && l.contains("N=512") && l.contains("all cores")).toList();
        assertEquals(2, rows.size(), String.join("\n", rows));
        assertTrue(rows.get(0).contains("wall time, -XX:MaxVectorSize=32)") && rows.get(0).contains("0.900 (")
                && rows.get(0).contains("**not met**"), rows.get(0));
        assertTrue(rows.get(1).contains("wall time, -XX:UseAVX=2)") && rows.get(1).contains("1.100 (")
                && rows.get(1).contains("**met**"), rows.get(1));
        // each row names the tile its own flags chose: AVX2's 16 registers give 6×16 on any host
        assertTrue(rows.get(1).startsWith("| ours (256-bit vectors, 6×16 tile) ÷"), rows.get(1));
        assertTrue(rows.get(0).startsWith("| ours (" + Catalog.tileName("256", "-XX:MaxVectorSize=32") + ") ÷"), rows.get(0));
        // the N=2048 target, not measured here, keeps one row saying so
        assertEquals(1, CpuSideBySide.targets(res).lines().filter(l -> l.contains("Haswell") && l.contains("N=2048")).count());
    }

    @Test
    void theTileNameFollowsTheRunsFlags() {
        // 16 registers (x86 without AVX-512): the 128-bit tiles that fit them, with and without FMA
        assertEquals("128-bit vectors, 6×8 tile", Catalog.tileName("128", "-XX:UseAVX=1"));
        assertEquals("128-bit vectors, 5×8 tile", Catalog.tileName("128", "-XX:UseAVX=1 -XX:-UseFMA"));
        // 32 registers with FMA (NEON, or AVX-512's EVEX code limited to 128 bits)
        assertEquals("128-bit vectors, 8×12 tile", Catalog.tileName("128", "-XX:UseAVX=3 -XX:+UseFMA"));
        // 256 bits: 6×16 where an AVX2 JIT has 16 registers, 8×16 where AVX-512's EVEX code has 32
        assertEquals("256-bit vectors, 6×16 tile", Catalog.tileName("256", "-XX:UseAVX=2"));
        assertEquals("256-bit vectors, 8×16 tile", Catalog.tileName("256", "-XX:UseAVX=3 -XX:MaxVectorSize=32 -XX:+UseFMA"));
        assertEquals(null, Catalog.tileName("96", ""));
    }

    /**
     * Tiles were named for the JVM regenerating the report (its FMA and registers), so RESULTS.md changed
     * 14 lines when regenerated under -XX:UseAVX=2; they are now named for the machine cpu-env.json records.
     */
    @Test
    void tilesAreNamedForTheRecordedMachineNotTheReportsJvm() throws IOException {
        String avx2 = "{\"isa\": \"avx2 fma\", \"os\": \"Linux 6.1 amd64\", \"openblas\": []}";
        String avx512 = "{\"isa\": \"avx2 fma avx512f\", \"os\": \"Linux 6.1 amd64\", \"openblas\": []}";
        String noFma = "{\"isa\": \"sse4_2\", \"os\": \"Linux 6.1 x86_64\", \"openblas\": []}";
        String arm = "{\"isa\": \"neon\", \"os\": \"Linux 6.1 aarch64\", \"openblas\": []}";
        try {
            Path raw = tmp.resolve("raw");
            Synthetic.lines(raw.resolve("cpu-env.json"), avx2);
            Results.load(raw, tmp.resolve("no-gpu"));
            assertEquals("256-bit vectors, 6×16 tile", Catalog.tileName("256"));
            assertEquals("128-bit vectors, 6×8 tile", Catalog.tileName("128"));
            Synthetic.lines(raw.resolve("cpu-env.json"), avx512);
            Results.load(raw, tmp.resolve("no-gpu"));
            assertEquals("256-bit vectors, 8×16 tile", Catalog.tileName("256"));
            assertEquals("256-bit vectors, 6×16 tile", Catalog.tileName("256", "-XX:UseAVX=2"), "the run's own flags still win");
            Synthetic.lines(raw.resolve("cpu-env.json"), noFma);
            Results.load(raw, tmp.resolve("no-gpu"));
            assertEquals("128-bit vectors, 5×8 tile", Catalog.tileName("128"));
            Synthetic.lines(raw.resolve("cpu-env.json"), arm);
            Results.load(raw, tmp.resolve("no-gpu"));
            assertEquals(Catalog.Machine.THIS_JVM.fma(), Catalog.Machine.of(new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(arm)).fma(), "no x86 ISA list to read FMA from: this JVM's");
            assertEquals(32, Catalog.Machine.of(new com.fasterxml.jackson.databind.ObjectMapper().readTree(arm)).registers());
        } finally {
            Catalog.machine(Catalog.Machine.THIS_JVM);
        }
    }
}
