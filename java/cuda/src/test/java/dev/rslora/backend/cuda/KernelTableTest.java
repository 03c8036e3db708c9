package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** cuda/kernels.table as the Java side reads it: grammar, completeness of each family, rank classes, and agreement with the shell's reader. */
class KernelTableTest {
    private static final Path ROOT = Path.of("../..").toAbsolutePath().normalize();
    private static final Path TABLE = ROOT.resolve("cuda/kernels.table");
    /** The steps every layer-step family must have a row for, at each of its dtypes. */
    private static final List<String> STEP = List.of("down", "forward", "vdb", "da", "dx", "merge");
    /** A rule of the header's "Grid rules" list: three spaces, its name, its grid. */
    private static final Pattern GRID_RULE = Pattern.compile("//   (\\w+)\\s.*");

    private static KernelTable table() throws IOException {
        return KernelTable.read(TABLE);
    }

    @Test
    void everyFamilyHasEveryStepAtEachOfItsDtypes() throws IOException {
        KernelTable t = table();
        assertTrue(t.families().contains("v1"), "v1 (the oracle) is in the table: " + t.families());
        for (String f : t.families()) {
            assertFalse(t.dtypes(f).isEmpty(), f);
            for (String dt : t.dtypes(f)) {
                for (String step : STEP) {
                    assertTrue(t.find(f, step, dt, 16).isPresent(), f + " has no " + step + " row at " + dt);
                }
                // partials need a reduction: a family with a vdb or da row has reduce (or vdb_reduce) rows
                assertTrue(t.find(f, "reduce", dt, 16).isPresent(), f + " has no reduce row at " + dt);
            }
        }
    }

    @Test
    void v1RowsCarryTheLaunchGeometryOfLaunchGeometry() throws IOException {
        for (KernelTable.Row r : table().rows()) {
            if (r.family().equals("v1")) {
                assertEquals(LaunchGeometry.THREADS, r.threads(), r.name());
                assertEquals(0, r.smem(), r.name());
                assertTrue(r.cluster().none(), r.name());
                assertEquals("main", r.image(), r.name());
            }
        }
        assertEquals(LaunchGeometry.THREADS_V2, table().find("v2", "forward", "bf16", 16).orElseThrow().threads());
    }

    @Test
    void rankClassesPickTheSmallestCoveringRowElseTheLargest() throws IOException {
        KernelTable t = table();
        assertEquals(16, t.find("v3", "down", "bf16", 1).orElseThrow().rmax());
        assertEquals(16, t.find("v3", "down", "bf16", 16).orElseThrow().rmax());
        assertEquals(64, t.find("v3", "down", "bf16", 17).orElseThrow().rmax());
        assertEquals(256, t.find("v3", "down", "f16", 256).orElseThrow().rmax());
        assertEquals(256, t.find("v3", "down", "f16", 512).orElseThrow().rmax());  // two rank chunks
        assertEquals(64, t.find("v3", "vdb", "bf16", 256).orElseThrow().rmax());   // four rank chunks
        assertEquals("rslora_reduce_groups_v1", t.find("v3", "reduce", "bf16", 64).orElseThrow().name());  // the any row
        assertTrue(t.find("v3", "forward", "f32", 16).isEmpty(), "v3 has no f32 rows");
        assertTrue(t.find("v9", "down", "bf16", 16).isEmpty());
    }

    @Test
    void vdbRowsDeclareTheSharedMemoryTheirChunkCapacityNeeds() throws IOException {
        for (KernelTable.Row r : table().rows()) {
            if (r.step().equals("vdb") && r.name().startsWith("rslora_mb_")) {
                // (chunk columns × (rmax + 4) f32 accumulator) + the staging, as rsmb::vdb_smem_bytes
                int cols = LaunchGeometry.mbVdbChunkCols(r.rmax());
                int stage = Math.max((64 * 72 + 2 * 64 * (r.rmax() + 8)) * 2, 64 * (r.rmax() + 4) * 4);
                assertEquals(cols * (r.rmax() + 4) * 4 + stage, r.smem(), r.name());
                assertTrue(r.smem() <= 99 * 1024, r.name() + " must launch on sm_86/89 (99 KB)");
            }
        }
    }

    @Test
    void validatedRecordsWhatPassedOnHardware() throws IOException {
        KernelTable t = table();
        assertTrue(t.validatedOn("v1", "bf16", "sm90"), "v1 passed the 2026-12-04 H200 run");
        assertTrue(t.validatedOn("v2", "f16", "sm90"));
        assertFalse(t.validatedOn("v1", "bf16", "sm80"), "nothing has run on an sm_80 card yet");
        for (String f : t.families()) {
            if (!f.equals("v1") && !f.equals("v2")) {
                assertFalse(t.validatedOn(f, "bf16", "sm90"), f + " has not run on hardware");
            }
        }
    }

    /** What auto asks (validatedFor: the rows the layer step runs at this rank) and what the family table says (validatedOn: every rank class). */
    @Test
    void validatedForLooksAtTheRowsOfThisRankAndEveryLayerStep() {
        List<String> rows = new java.util.ArrayList<>();
        for (String step : List.of("down", "forward", "vdb", "reduce", "da", "dx", "merge")) {
            String dtype = step.equals("reduce") ? "any" : "bf16";
            rows.add("RS_KERNEL(v3, " + step + ", " + dtype + ", k_" + step + ", 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, sm90)");
        }
        rows.set(0, "RS_KERNEL(v3, down, bf16, k_down16, 256, 0, 1x1x1, sm80, main, mb_rows, 16, sm90)");
        rows.add("RS_KERNEL(v3, down, bf16, k_down64, 256, 0, 1x1x1, sm80, main, mb_rows, 64, none)");
        rows.add("RS_KERNEL(v3, adafactor_stats, any, k_opt, 256, 0, 1x1x1, sm80, main, elementwise, 0, none)");
        KernelTable t = KernelTable.parse(rows, "t");
        assertTrue(t.validatedFor("v3", "bf16", 16, "sm90"), "rank 16 runs only validated rows");
        assertFalse(t.validatedFor("v3", "bf16", 64, "sm90"), "rank 64 runs the unvalidated down row");
        assertFalse(t.validatedOn("v3", "bf16", "sm90"), "not every rank class is validated");
        assertFalse(t.validatedFor("v3", "bf16", 16, "sm80"));
        assertFalse(t.validatedFor("v3", "f16", 16, "sm90"), "no f16 rows");
        List<String> noMerge = new java.util.ArrayList<>(rows);
        noMerge.replaceAll(l -> l.contains(", merge,") ? l.replace("sm90)", "none)") : l);
        assertFalse(KernelTable.parse(noMerge, "t").validatedFor("v3", "bf16", 16, "sm90"), "merge is part of the layer's kernels");
    }

    @Test
    void malformedLinesAreRefusedWithTheirLineNumber() {
        String ok = "RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)";
        assertEquals(1, KernelTable.parse(List.of("// c", "", ok), "t").rows().size());
        assertEquals(3, KernelTable.parse(List.of("// c", "", ok), "t").rows().get(0).line());
        record Bad(String line, String why) {
        }
        for (Bad b : List.of(new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0)", "11 fields"),
                new Bad("RS_KERNEL(v1, down, f32, k k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)", "not a token"),
                new Bad("RS_KERNEL(x1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)", "family"),
                new Bad("RS_KERNEL(v1, down, f64, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)", "dtype"),
                new Bad("RS_KERNEL(v1, down, f32, k, 2048, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)", "threads"),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1, sm80, main, tiles_r_n, 0, none)", "cluster"),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 99999999999x1x1, sm80, main, tiles_r_n, 0, none)",
                        "\"99999999999\" is not an integer"),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 2x0x1, sm80, main, tiles_r_n, 0, none)", "cluster 2x0x1 has a dimension 0"),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm90a, main, tiles_r_n, 0, none)", "image"),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, sm90+)", "validated"),
                new Bad("RS_KERNEL(v1, dwon, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none)", "unknown step dwon (steps: down, "),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_m, 0, none)",
                        "unknown grid rule tiles_r_m (grid rules: tiles_r_n, "),
                new Bad("RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none) x", "not a row"),
                new Bad("  rs_kernel(v1, down)", "not a row"))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> KernelTable.parse(List.of("", b.line()), "t"), b.line());
            assertTrue(e.getMessage().startsWith("t line 2 ") && e.getMessage().contains(b.why()), e.getMessage());
        }
        assertFalse(KernelTable.parse(List.of(ok.replace("1x1x1", "2147483647x2147483647x1")), "t").rows().get(0).cluster().none(),
                "a cluster whose product overflows to 1 is still a cluster");
        IllegalArgumentException dup = assertThrows(IllegalArgumentException.class, () -> KernelTable.parse(List.of(ok, ok), "t"));
        assertTrue(dup.getMessage().contains("second row") && dup.getMessage().contains("first on line 1"), dup.getMessage());
        String r16 = "RS_KERNEL(v1, down, f32, k, 256, 0, 1x1x1, sm80, main, tiles_r_n, 16, none)";
        IllegalArgumentException mixed = assertThrows(IllegalArgumentException.class, () -> KernelTable.parse(List.of(r16, ok), "t"));
        assertTrue(mixed.getMessage().contains("only row"), mixed.getMessage());
    }

    /** The shell's reader (native-build/kernel-table.sh rows, used by the build and the GPU check) sees the same rows. */
    @Test
    void theShellReaderAgreesRowForRow() throws Exception {
        Path script = ROOT.resolve("native-build/kernel-table.sh");
        Assumptions.assumeTrue(Files.isRegularFile(script), "no " + script);
        Process p = new ProcessBuilder("bash", script.toString(), "rows").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "kernel-table.sh did not finish");
        assertEquals(0, p.exitValue(), out);
        List<String> java = new ArrayList<>();
        for (KernelTable.Row r : table().rows()) {
            java.add(String.join("\t", r.family(), r.step(), r.dtype(), r.name(), Integer.toString(r.threads()),
                    Integer.toString(r.smem()), r.cluster().x() + "x" + r.cluster().y() + "x" + r.cluster().z(), r.arch(), r.image(),
                    r.grid(), Integer.toString(r.rmax()), r.validated().isEmpty() ? "none" : String.join("+", sortedAsWritten(r))));
        }
        assertEquals(java, out.lines().toList());
    }

    /**
     * The step names and grid rules the readers accept are the lists of the table's header (field 2's
     * list; the "Grid rules" list), and the shell reader's (kernel-table.sh steps, grids) are the same.
     */
    @Test
    void theStepAndGridListsAreTheHeadersAndTheShellReaders() throws Exception {
        List<String> lines = Files.readAllLines(TABLE);
        StringBuilder stepText = new StringBuilder();
        List<String> grids = new ArrayList<>();
        boolean inSteps = false;
        boolean inGrids = false;
        for (String l : lines) {
            if (!l.startsWith("//")) {
                break;
            }
            inSteps = inSteps ? !l.matches("//\\s+3 dtype.*") : l.matches("//\\s+2 step\\s.*");
            if (inSteps) {
                stepText.append(' ').append(l.substring(2));
            }
            inGrids = inGrids ? !l.startsWith("// A kernel may refuse") : l.startsWith("// Grid rules");
            Matcher g = GRID_RULE.matcher(l);
            if (inGrids && g.matches()) {
                grids.add(g.group(1));
            }
        }
        String st = stepText.toString().replaceFirst("^\\s*2 step\\s+", "");
        List<String> steps = List.of(st.substring(0, st.indexOf('(')).strip().split("[\\s|]+"));
        assertEquals(steps, KernelTable.STEPS, "field 2's list in the header");
        assertEquals(grids, KernelTable.GRIDS, "the header's grid rules");
        Path script = ROOT.resolve("native-build/kernel-table.sh");
        Assumptions.assumeTrue(Files.isRegularFile(script), "no " + script);
        for (String cmd : List.of("steps", "grids")) {
            Process p = new ProcessBuilder("bash", script.toString(), cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "kernel-table.sh did not finish");
            assertEquals(0, p.exitValue(), out);
            assertEquals(cmd.equals("steps") ? KernelTable.STEPS : KernelTable.GRIDS, out.lines().toList(), "kernel-table.sh " + cmd);
        }
    }

    private static List<String> sortedAsWritten(KernelTable.Row r) throws IOException {
        // the validated set keeps the table's order: read it back from the line
        String line = Files.readAllLines(TABLE).get(r.line() - 1);
        String last = line.substring(line.lastIndexOf(',') + 1, line.lastIndexOf(')')).strip();
        return List.of(last.split("\\+"));
    }

    /** The jar's copy (written by build-kernels.sh) is the table itself. */
    @Test
    void theBuildCopiesTheTableIntoTheJar() throws IOException {
        try (InputStream in = KernelTable.class.getResourceAsStream(KernelTable.RESOURCE)) {
            Assumptions.assumeTrue(in != null, "no " + KernelTable.RESOURCE + " on the class path (not a Maven build)");
            assertEquals(Files.readString(TABLE), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        }
        assertEquals(table().rows(), KernelTable.load().rows());
    }
}
