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
 * against the CPU emulation of cuda/dev/emu/cuda_emu.h (AddressSanitizer + UBSan) and runs its
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
        Run r = run(1200, "bash", SCRIPT.toString(), "quick", BUILD.toString());
        System.out.println(r.out().lines().filter(l -> l.startsWith("cpu-emulate")).reduce((a, b) -> a + "\n" + b).orElse(""));
        if (r.rc() != 0) {
            fail("cpu-emulate.sh quick failed (rc " + r.rc() + "):\n" + tail(r.out()));
        }
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

}
