package dev.rslora.backend.cuda;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * With {@code --illegal-native-access=deny} and no {@code --enable-native-access}, loading the
 * driver library is refused before the library is even looked for: the probe names the denied
 * access and the flag, and does not claim there is no NVIDIA driver (it cannot know). Device-free:
 * the refusal comes before any search for libcuda.
 */
class NativeAccessDeniedTest {

    private static String run(List<String> flags) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(flags);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), ProbeMain.class.getName()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child JVM finished");
        assertEquals(0, p.exitValue(), cmd + "\n" + out);
        return out;
    }

    @Test
    void aDeniedNativeAccessIsNamedWithTheFlag() throws Exception {
        String out = run(List.of("--illegal-native-access=deny"));
        assertTrue(out.contains("driver: native access is denied to the class path (unnamed module) (loading "
                + DriverLibrary.libraryName() + " through java.lang.foreign): run java with --enable-native-access=ALL-UNNAMED"), out);
        assertTrue(out.contains("cuda: native access is denied"), out);
        assertFalse(out.contains("no NVIDIA driver"), out);
    }

    @Test
    void grantedAccessReachesTheDriverCheck() throws Exception {
        String out = run(List.of("--illegal-native-access=deny", "--enable-native-access=ALL-UNNAMED"));
        assertFalse(out.contains("native access is denied"), out);
        assertTrue(out.contains("driver: null") || out.contains("driver: no NVIDIA driver: " + DriverLibrary.libraryName()), out);
    }
}
