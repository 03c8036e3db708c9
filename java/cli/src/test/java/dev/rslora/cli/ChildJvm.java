package dev.rslora.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** {@code rslora} in a child JVM on this test's class path, for the tests that signal the process. */
final class ChildJvm {
    private ChildJvm() {
    }

    /**
     * The command line of {@code rslora ARGS} in a new JVM (256 MiB heap, the flags the tests run with).
     *
     * @param jvmOptions options placed before the main class (e.g. {@code -Dkey=value})
     * @param args       the rslora arguments
     * @return a process builder for it, nothing redirected yet
     */
    static ProcessBuilder rslora(List<String> jvmOptions, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "--add-modules", "jdk.incubator.vector", "-Xmx256m",
                "-cp", System.getProperty("java.class.path")));
        cmd.addAll(jvmOptions);
        cmd.add(Main.class.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd);
    }
}
