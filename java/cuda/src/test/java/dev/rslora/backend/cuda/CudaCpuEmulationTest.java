package dev.rslora.backend.cuda;

import dev.rslora.dropout.DropoutMask;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The kernels without a GPU: native-build/cpu-emulate.sh builds cuda/dev/rslora_dev.cu with g++
 * against the CPU emulation of cuda/dev/emu/cuda_emu.h (AddressSanitizer + UBSan), runs the emulation's
 * own self-test (cuda/dev/emu/emu_selftest.cpp: the emulated sm80/sm90 instructions against hand-derived
 * expectations, deadlock/divergence reports, deliberately broken kernels) and the harness's
 * validation of every family of cuda/kernels.table against the harness's double reference (quick set: every
 * shape and dtype, both dropout settings) and its n·d > 2^31 check of the 64-bit index math (UBSan
 * aborts on a 32-bit overflow) and of the fused AdamW and gradient norm (bit for bit against the
 * host mirror of the CPU AdamW over 30 steps per tensor mix); and the kernels' own mask code (rslora_philox.cuh, as
 * compiled into that binary) is compared bit for bit with {@link DropoutMask}. Skipped, with the
 * reason printed, where g++ or the CUDA headers are absent.
 */
class CudaCpuEmulationTest {
    private static final Path ROOT = Path.of("../..").toAbsolutePath().normalize();
    private static final Path SCRIPT = ROOT.resolve("native-build/cpu-emulate.sh");
    private static final Path BUILD = Path.of("target", "cuda-emu").toAbsolutePath();
    private static String skipped;

    record Run(int rc, String out) {
    }

    static Run run(long timeoutSeconds, String... command) throws IOException, InterruptedException {
        Path log = Files.createTempFile("rslora-cpu-emulate", ".log");
        try {
            Process p = new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true)
                    .redirectOutput(log.toFile()).start();
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                // the whole tree (make, g++, the emulated harness), not only the shell: an orphaned build
                // would keep writing the build folder the next test reads
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly().waitFor();
                fail(String.join(" ", command) + " did not finish within " + timeoutSeconds + " s:\n" + tail(Files.readString(log)));
            }
            return new Run(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    static String tail(String s) {
        List<String> lines = s.lines().toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
    }

    @BeforeAll
    static void build() throws Exception {
        if (!Files.isRegularFile(SCRIPT)) {
            skipped = SCRIPT + " not found (not run from the java/ module of a checkout)";
            return;
        }
        // one large translation unit under ASan/UBSan: minutes on a busy 2-core machine
        Run r = run(1200, "bash", SCRIPT.toString(), "build", BUILD.toString());
        System.out.println(r.out().strip());
        if (r.rc() == 3) {
            skipped = r.out().strip();
        } else if (r.rc() != 0) {
            fail("building the CPU emulation failed (rc " + r.rc() + "):\n" + tail(r.out()));
        }
    }

    @Test
    void everyKernelPassesTheHarnessValidationOnTheCpuEmulation() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        Run r = run(1800, "bash", SCRIPT.toString(), "quick", BUILD.toString());  // 4 families: ~15 min on a busy 2-core machine
        System.out.println(r.out().lines().filter(l -> l.startsWith("cpu-emulate")).reduce((a, b) -> a + "\n" + b).orElse(""));
        if (r.rc() != 0) {
            fail("cpu-emulate.sh quick failed (rc " + r.rc() + "):\n" + tail(r.out()));
        }
        assertTrue(r.out().contains("ok   emuself"), "the emulation's self-test did not pass:\n" + r.out());
        // every family of the table (v1, v2 and the tensor-core families with the memory-bound kernels)
        for (String family : KernelTable.read(ROOT.resolve("cuda/kernels.table")).families()) {
            assertTrue(r.out().contains("ok   validate " + family + " quick"), family + " not validated:\n" + r.out());
        }
        assertTrue(r.out().contains("ok   bigindex v1") && r.out().contains("ok   adamw quick")
                && r.out().contains("ok   adafactor quick") && r.out().contains("ok   seqlogprob quick"), r.out());
    }

    @Test
    void theKernelsMaskEqualsDropoutMaskBitForBit() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        long[][] configs = {  // seed, step, layer, row0
            {0L, 0L, 0L, 0L},
            {0x1234_5678_9ABC_DEF0L, 0x1_0000_0005L, 9L, 0L},
            {-1L, 0xFFFF_FFFFL, 0x7FFF_FFFFL, 4_000_000L},
            {42L, 7L, 3L, 123_456_789L},
        };
        int rows = 6;
        int cols = 70;  // not a multiple of 4: the last Philox call covers a partial quad
        for (long[] c : configs) {
            for (float p : new float[] {0.1f, 0.5f, 0.9999f, 1e-7f}) {
                DropoutMask mask = new DropoutMask(c[0], c[1], (int) c[2], p);
                String context = "seed " + c[0] + " step " + c[1] + " layer " + c[2] + " p " + p + " row0 " + c[3];
                Run r = run(60, BUILD.resolve("rslora_dev_emu").toString(), "mask", Long.toUnsignedString(c[0]),
                        Long.toUnsignedString(c[1]), Long.toString(c[2]), Float.toString(p), Long.toString(c[3]),
                        Integer.toString(rows), Integer.toString(cols));
                assertEquals(0, r.rc(), r.out());
                List<String> lines = r.out().lines().toList();
                String[] head = lines.get(0).split(" ");  // "threshold T scale S" (S printed with %.9g: exact for a float)
                assertEquals(mask.threshold(), Integer.parseInt(head[1]), "threshold, " + context);
                assertEquals(mask.scale(), Float.parseFloat(head[3]), "scale, " + context);
                List<String> expected = new ArrayList<>();
                for (int i = 0; i < rows; i++) {
                    StringBuilder sb = new StringBuilder();
                    for (int k = 0; k < cols; k++) {
                        sb.append(mask.keep(c[3] + i, k) ? '1' : '0');
                    }
                    expected.add(sb.toString());
                }
                assertEquals(expected, lines.subList(1, 1 + rows), "mask rows, " + context);
            }
        }
    }


    /** The SM count the emulation reports (cudaDevAttrMultiProcessorCount; RS_EMU_SM_COUNT unset). */
    private static final int EMU_SMS = 132;

    /**
     * The harness's shape refusals (cuda/dev/steps.cuh refusal()): the v3 TMA GEMMs (persistent grid
     * rules) need d_in and d_out multiples of 8; a refused role runs the v1 kernel of its step.
     */
    private static boolean refusesShape(KernelTable.Row row, int dIn, int dOut) {
        return row.grid().startsWith("persistent_") && (dIn % 8 != 0 || dOut % 8 != 0);
    }

    /** The same for the v4 cp.async GEMMs (flat grid rules; cuda/kernels/lora_v4_launch.h rs_v4_refusal). */
    private static boolean v4RefusesShape(KernelTable.Row row, int dIn, int dOut) {
        return row.grid().startsWith("flat_") && (dIn % 8 != 0 || dOut % 8 != 0);
    }

    /**
     * The grid rules of cuda/kernels.table have one meaning: for every family, shape and workspace cap,
     * the grids the harness launches (its {@code geometry} command, the same code as validate/bench)
     * equal what {@link LaunchGeometry} computes for the row {@link KernelTable#find} picks.
     */
    @Test
    void theHarnessAndLaunchGeometryComputeTheSameGrids() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        KernelTable table = KernelTable.read(ROOT.resolve("cuda/kernels.table"));
        int[][] shapes = {{8192, 4096, 4096, 16}, {8192, 4096, 4096, 64}, {8192, 4096, 11008, 256}, {300, 33, 1030, 24},
            {600_037, 4104, 4101, 16}, {1, 1, 1, 1}, {2048, 11008, 4096, 512}, {130, 130, 71, 100}};
        long[] caps = {256L << 20, 1L << 40, 1};
        Path bin = BUILD.resolve("rslora_dev_emu");
        int checked = 0;
        for (String family : table.families()) {
            String dtype = table.dtypes(family).getLast();
            for (int[] s : shapes) {
                int n = s[0], dIn = s[1], dOut = s[2], r = s[3], rPad = (r + 7) / 8 * 8;
                for (long cap : caps) {
                    Run run = run(60, bin.toString(), "geometry", family, dtype, Integer.toString(n), Integer.toString(dIn),
                            Integer.toString(dOut), Integer.toString(r), Long.toString(cap));
                    assertEquals(0, run.rc(), run.out());
                    List<String> lines = run.out().lines().toList();
                    assertTrue(lines.size() >= 5, run.out());
                    for (String line : lines) {
                        String[] f = line.split(" ");
                        String role = f[0];
                        String step = role.startsWith("reduce") ? "reduce" : role;
                        KernelTable.Row row = table.find(family, step, dtype, r).orElseThrow();
                        if (refusesShape(row, dIn, dOut) || v4RefusesShape(row, dIn, dOut)) {  // the harness runs v1's kernel for that role
                            row = table.find("v1", step, dtype, r).orElseThrow();
                        }
                        String ctx = family + " " + dtype + " n=" + n + " d_in=" + dIn + " d_out=" + dOut + " r=" + r + " cap=" + cap + ": " + line;
                        assertEquals(row.name(), f[1], ctx);
                        assertEquals(row.threads(), Integer.parseInt(f[5]), ctx);
                        assertEquals(row.smem(), Integer.parseInt(f[6]), ctx);
                        LaunchGeometry.Grid want = switch (row.grid()) {
                            case "tiles_r_n" -> LaunchGeometry.down(n, r);
                            case "tiles_dout_n" -> LaunchGeometry.forward(n, dOut);
                            case "tiles_din_n" -> LaunchGeometry.backwardDx(n, dIn);
                            case "tiles_r_groups" -> LaunchGeometry.backwardVdb(r,
                                    LaunchGeometry.groups(n, LaunchGeometry.rowsPerGroup(n, (long) dOut * r, cap)));
                            case "tiles_din_r_groups" -> LaunchGeometry.backwardDa(dIn, r,
                                    LaunchGeometry.groups(n, LaunchGeometry.rowsPerGroup(n, (long) r * dIn, cap)));
                            case "elementwise" -> LaunchGeometry.elementwise(switch (role) {
                                case "prep" -> (long) r * dIn + (long) dOut * rPad;
                                case "vdb_reduce" -> (long) n * rPad + (long) dOut * r;
                                case "reduce(dB)" -> (long) dOut * r;
                                case "reduce(dA)" -> (long) r * dIn;
                                default -> throw new AssertionError("no element count for " + ctx);
                            });
                            case "mb_rows" -> LaunchGeometry.mbRows(n, r, row.rmax());
                            case "mb_vdb" -> LaunchGeometry.mbVdb(n, dOut, r, row.rmax(), cap).grid();
                            case "mb_da" -> LaunchGeometry.mbDa(n, dIn, r, row.rmax(), cap).grid();
                            case "persistent_dout_n", "persistent_din_n" -> LaunchGeometry.gemmGrid(row.grid(), EMU_SMS, n, dIn, dOut);
                            case "flat_dout_128x256", "flat_din_128x256" -> LaunchGeometry.gemmGrid(row.grid(), EMU_SMS, n, dIn, dOut);
                            default -> throw new AssertionError("LaunchGeometry has no rule " + row.grid() + ": " + ctx);
                        };
                        assertEquals(want, new LaunchGeometry.Grid(Integer.parseInt(f[2]), Integer.parseInt(f[3]), Integer.parseInt(f[4])), ctx);
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked > 300, "checked " + checked + " launches");
    }

    /**
     * The Java host launches what the harness launches: for every table-driven family (not v1/v2,
     * which run through {@link LoraKernels}) and shape, the launches {@link FamilyStep} records
     * (kernel, grid, threads, dynamic shared memory, in order, the v3/v4 refusals included) equal the
     * harness's {@code geometry} lines, which come from the same fill()/refusal() code as validate.
     */
    @Test
    void familyStepLaunchesWhatTheHarnessLaunches() throws Exception {
        Assumptions.assumeTrue(skipped == null, () -> "skipped: " + skipped);
        KernelTable table = KernelTable.read(ROOT.resolve("cuda/kernels.table"));
        int[][] shapes = {{8192, 4096, 4096, 16}, {8192, 4096, 11008, 256}, {300, 33, 1030, 24}, {300, 1024, 1030, 24},
            {600_037, 4104, 4101, 16}, {1, 8, 8, 1}, {2048, 11008, 4096, 512}, {130, 136, 72, 100}};
        long[] caps = {256L << 20, 1};
        CachingAllocator memory = new CachingAllocator(new CachingAllocatorTest.FakeDevice());
        int checked = 0;
        for (String family : table.families()) {
            if (!CudaBackend.tableFamily(family)) {
                continue;
            }
            for (String dtype : table.dtypes(family)) {
                dev.rslora.tensor.DType t = dev.rslora.tensor.DType.valueOf(dtype.toUpperCase(java.util.Locale.ROOT));
                for (int[] s : shapes) {
                    int n = s[0], dIn = s[1], dOut = s[2], r = s[3];
                    for (long cap : caps) {
                        Run run = run(60, BUILD.resolve("rslora_dev_emu").toString(), "geometry", family, dtype, Integer.toString(n),
                                Integer.toString(dIn), Integer.toString(dOut), Integer.toString(r), Long.toString(cap));
                        assertEquals(0, run.rc(), run.out());
                        List<String> harness = run.out().lines().map(l -> {
                            String[] f = l.split(" ");
                            return f[1] + " " + f[2] + "," + f[3] + "," + f[4] + " " + f[5] + " " + f[6];
                        }).toList();
                        FamilyStepV3V4Test.Recorder rec = new FamilyStepV3V4Test.Recorder();
                        FamilyStep fs = new FamilyStep(rec, table, family, t, n, dIn, dOut, r, cap);
                        FamilyStep.Sizes z = fs.plan();
                        List<DeviceBuffer> made = new ArrayList<>();
                        java.util.function.LongFunction<DeviceBuffer> buf = bytes -> {
                            DeviceBuffer b = memory.allocate(Math.max(16, Math.min(bytes, 1L << 20)));  // addresses only
                            made.add(b);
                            return b;
                        };
                        FamilyStep.Buffers f = new FamilyStep.Buffers(buf.apply(z.at()), buf.apply(z.bt()), buf.apply(z.ug()),
                                buf.apply(z.vg()), buf.apply(z.wsV()), buf.apply(z.wsDb()), buf.apply(z.wsDa()));
                        DeviceBuffer[] l = new DeviceBuffer[12];
                        for (int i = 0; i < l.length; i++) {
                            l[i] = buf.apply(1L << 20);
                        }
                        LoraKernels.Dropout d = new LoraKernels.Dropout(new DropoutMask(1, 2, 3, 0.1f), 1, 2, 3);
                        fs.forward(l[0], l[1], l[2], l[3], l[4], l[5], l[6], 2f, d, f);
                        fs.backward(l[0], l[7], l[1], l[3], l[4], l[5], l[8], l[9], l[10], l[11], 2f, d, false, f);
                        List<String> java = rec.launches.stream().map(x -> x.kernel() + " " + x.grid().x() + "," + x.grid().y() + ","
                                + x.grid().z() + " " + x.threads() + " " + x.smem()).toList();
                        assertEquals(harness, java, family + " " + dtype + " n=" + n + " d_in=" + dIn + " d_out=" + dOut + " r=" + r
                                + " cap=" + cap);
                        made.forEach(DeviceBuffer::close);
                        checked++;
                    }
                }
            }
        }
        assertTrue(checked >= 2 * 2 * 8 * 2, "checked " + checked + " steps");
    }
}
