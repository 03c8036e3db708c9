package dev.rslora.backend.cpu;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * A child JVM for the tests that must watch the JIT from outside ({@link CompileTiersTest},
 * {@link TierBitsTest}, {@link TileCodeTest}): this JVM's launcher with the flags that choose the tile
 * shape and the multiply-add and open the modules, this JVM's class path, and a run whose output
 * goes to a file, so that a hung child meets the timeout instead of a blocked read.
 */
final class ChildJvm {
    /** The flags of this JVM that choose the tile shape and the multiply-add and open the modules, passed on to the child. */
    static final List<String> INHERITED = List.of("--add-modules", "--enable-native-access", "-XX:UseAVX",
            "-XX:MaxVectorSize", "-XX:-UseFMA", "-XX:+UseFMA", "-Drslora.cpu.vectorBits");

    /** What a child printed (stdout and stderr together) and its exit status. */
    record Result(int exit, String out) {
    }

    private ChildJvm() {
    }

    /** The java launcher of this JVM with its {@link #INHERITED} flags: the start of a child's command. */
    static List<String> java() {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        List<String> mine = List.of(ProcessHandle.current().info().arguments().orElse(new String[0]));
        for (int i = 0; i < mine.size(); i++) {
            String arg = mine.get(i);
            if (INHERITED.stream().anyMatch(arg::startsWith)) {
                cmd.add(arg);
                if (!arg.contains("=") && arg.startsWith("--") && i + 1 < mine.size()) {
                    cmd.add(mine.get(++i)); // "--add-modules jdk.incubator.vector" as two arguments
                }
            }
        }
        return cmd;
    }

    /**
     * This JVM's class path and module path as one class path
     * (surefire puts the module under test on the module path).
     */
    static String classPath() {
        String cp = System.getProperty("java.class.path", "");
        String mp = System.getProperty("jdk.module.path");
        return mp == null || mp.isEmpty() ? cp : cp + File.pathSeparator + mp;
    }

    /** Runs {@code cmd}; fails the test, after killing the child, if it takes more than {@code minutes}. */
    static Result run(List<String> cmd, int minutes) throws IOException, InterruptedException {
        Path log = Files.createTempFile("rslora-child-jvm", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(minutes, TimeUnit.MINUTES)) {
                p.destroyForcibly().waitFor();
                fail("the child JVM did not finish in " + minutes + " minutes: " + cmd);
            }
            return new Result(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }
}
