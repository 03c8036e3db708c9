package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * native-build/test-build-kernels.sh in CI: the kernel build's checks (a spilling or stack-using
 * kernel of the families after v2, ptxas C7510/C7511/C7515, a table that disagrees with the images)
 * fail the build, and check-sass.sh's SASS assertions fail on a missing HGMMA/UTMALDG or on local
 * memory; with a fake compiler, plus a real nvcc build of a small bad kernel where nvcc is installed.
 */
class BuildKernelsScriptTest {
    private static final Path ROOT = Path.of("../..").toAbsolutePath().normalize();
    private static final Path SCRIPT = ROOT.resolve("native-build/test-build-kernels.sh");

    @Test
    void theBuildChecksRefuseWhatTheyMust() throws Exception {
        Assumptions.assumeTrue(Files.isRegularFile(SCRIPT), "no " + SCRIPT);
        CudaCpuEmulationTest.Run r = CudaCpuEmulationTest.run(900, "bash", SCRIPT.toString());
        System.out.println(r.out().lines().filter(l -> l.contains("passed,") || l.startsWith("FAIL") || l.startsWith("skip"))
                .reduce((a, b) -> a + "\n" + b).orElse(""));
        assertTrue(r.rc() == 0 && r.out().contains(" passed, 0 failed"), r.out());
    }
}
