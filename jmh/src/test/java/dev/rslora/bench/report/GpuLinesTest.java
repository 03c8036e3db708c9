package dev.rslora.bench.report;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cuda/dev bench lines of any kernel family (cuda/kernels.table): the family comes from the lines, not from a list here. */
class GpuLinesTest {
    private static String line(String family, String kernel, double ms) {
        return String.format(Locale.ROOT, "{\"kind\": \"kernel\", \"device\": \"NVIDIA H200\", \"sm\": \"90\", \"family\": \"%s\", "
                + "\"version\": %s, \"kernel\": \"%s\", \"kernels\": \"a+b\", \"dtype\": \"bf16\", \"n\": 8192, \"d_in\": 4096, "
                + "\"d_out\": 4096, \"r\": 64, \"dropout\": 0.1, \"reps\": 20, \"median_ms\": %.6f, \"flop\": 1e9, \"bytes\": 7e7, "
                + "\"floor_ms\": 0.016}", family, family.substring(1), kernel, ms);
    }

    @Test
    void aNewFamilysPartsSumToItsStepIncludingPrep(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("dev-bench-v7.jsonl");
        Files.write(f, List.of(line("v7", "prep", 0.005), line("v7", "down", 0.02), line("v7", "forward", 0.4),
                line("v7", "vdb", 0.03), line("v7", "da", 0.02), line("v7", "dx", 0.41),
                "{\"kind\": \"launch\", \"device\": \"NVIDIA H200\", \"family\": \"v7\", \"role\": \"vdb_reduce\", \"name\": \"k\", "
                        + "\"n\": 8192, \"d_in\": 4096, \"d_out\": 4096, \"r\": 64, \"median_ms\": 0.004}"));
        GpuLines.Content c = GpuLines.read(List.of(f));
        assertEquals(6, c.kernels().size(), "launch lines are not parts");
        assertEquals("v7", c.kernels().getFirst().family());
        assertEquals(0.016, c.kernels().getFirst().floorMs(), 1e-12);
        assertEquals(1, c.measurements().size());
        Measurement m = c.measurements().getFirst();
        assertEquals("cuda-dev-v7", m.impl());
        assertEquals(0.885, m.ms(), 1e-9);
        assertTrue(Catalog.byId("cuda-dev-v7").label().contains("v7"), Catalog.byId("cuda-dev-v7").label());
    }

    @Test
    void linesWithoutAFamilyAreVersionNumbers(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("dev-bench-v1.jsonl");
        Files.write(f, List.of(line("v1", "down", 0.4).replace("\"family\": \"v1\", ", "")));
        assertEquals("v1", GpuLines.read(List.of(f)).kernels().getFirst().family());
        Files.write(f, List.of(line("v1", "down", 0.4).replace("\"family\": \"v1\"", "\"family\": \"x\"")));
        IOException e = assertThrows(IOException.class, () -> GpuLines.read(List.of(f)));
        assertTrue(e.getMessage().contains("family 'x'"), e.getMessage());
    }
}
