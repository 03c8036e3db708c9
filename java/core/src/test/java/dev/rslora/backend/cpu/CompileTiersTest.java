package dev.rslora.backend.cpu;

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
 * Every method of the cpu backend compiles with C1 on stack (OSR), at this run's tile shape. A
 * method that C1 cannot compile ("COMPILE SKIPPED: out of virtual registers in linear scan") can
 * stay at tier 2 for the whole run once it got there (the JIT does that when C2's queue is long,
 * e.g. while another process holds a core), and its vector operations then run in the Vector API's
 * Java fallback: RowGrads.combineInto as one 938-byte method did that in 5 of 18 JMH forks of
 * N = 8, r = 16 started beside a competing process (the LoRA step 3.5–4.3× the base step instead of 1.1–1.3×).
 * The child JVM stops at tier 3 and only compiles loops on stack (invocation thresholds out of
 * reach), so every hot loop of {@link CompileTiersWorkload} gets an OSR compile at tier 3.
 */
class CompileTiersTest {
    /** The flags of this JVM that choose the tile shape and the multiply-add and open the modules, passed on to the child. */
    private static final List<String> INHERITED = List.of("--add-modules", "--enable-native-access", "-XX:UseAVX",
            "-XX:MaxVectorSize", "-XX:-UseFMA", "-XX:+UseFMA", "-Drslora.cpu.vectorBits");

    @Test
    void everyLoopCompilesOnStackWithC1() throws IOException, InterruptedException {
        List<String> cmd = childJava();
        cmd.addAll(List.of("-XX:TieredStopAtLevel=3", "-XX:Tier3InvocationThreshold=100000000",
                "-XX:Tier3MinInvocationThreshold=100000000", "-XX:Tier3CompileThreshold=100000000",
                // the interpreter reports a loop's back-edges every 2^6 (not 2^10) and a loop compiles at
                // 400: every loop that 15 repetitions at 2000 compiled (and a few more) in a third of the time
                "-XX:Tier0BackedgeNotifyFreqLog=6", "-XX:Tier3BackEdgeThreshold=400", "-XX:+PrintCompilation",
                "-cp", classPath(), CompileTiersWorkload.class.getName(), "5"));
        // output to a file, so that a hung child meets the timeout instead of a blocked read
        Path log = Files.createTempFile("compile-tiers", ".log");
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            if (!p.waitFor(5, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                fail("the child JVM did not finish in 5 minutes: " + cmd);
            }
            check(cmd, p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /** The child JVM's exit status and output (the -XX:+PrintCompilation lines) against what the test expects. */
    private static void check(List<String> cmd, int exit, String out) {
        assertEquals(0, exit, () -> "child JVM failed: " + cmd + "\n" + out);
        assertTrue(out.contains("done"), () -> "child JVM did not finish its workload:\n" + out);
        List<String> ours = out.lines().filter(l -> l.contains("dev.rslora.")).toList();
        // a bail-out that gives up on the tier ("retry at different tier", "not retryable"); a
        // transient one ("concurrent class loading") is retried and harmless
        List<String> skipped = ours.stream().filter(l -> l.contains("COMPILE SKIPPED")
                && (l.contains("retry at different tier") || l.contains("not retryable"))).toList();
        assertTrue(skipped.isEmpty(), () -> "C1 could not compile " + skipped.size() + " method(s) of the backend:\n"
                + String.join("\n", skipped));
        // not vacuous: loops of the kernels were compiled on stack
        for (String type : List.of("MicroKernel::", "RowGrads::", "GradGemm::", "Panels::", "AdapterRows::")) {
            assertTrue(ours.stream().anyMatch(l -> l.contains(" % ") && l.contains("dev.rslora.backend.cpu." + type)),
                    () -> "no OSR compile of a method of " + type + " in the child JVM:\n" + String.join("\n", ours));
        }
    }

    /** The java launcher of this JVM with its flags that choose the tile shape and open the modules (a child's start). */
    static List<String> childJava() {
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
        return mp == null || mp.isEmpty() ? cp : cp + java.io.File.pathSeparator + mp;
    }
}
