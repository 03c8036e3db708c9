package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    @Test
    void everyLoopCompilesOnStackWithC1() throws IOException, InterruptedException {
        List<String> cmd = ChildJvm.java();
        cmd.addAll(List.of("-XX:TieredStopAtLevel=3", "-XX:Tier3InvocationThreshold=100000000",
                "-XX:Tier3MinInvocationThreshold=100000000", "-XX:Tier3CompileThreshold=100000000",
                // the interpreter reports a loop's back-edges every 2^6 (not 2^10) and a loop compiles at
                // 400: every loop that 15 repetitions at 2000 compiled (and a few more) in a third of the time
                "-XX:Tier0BackedgeNotifyFreqLog=6", "-XX:Tier3BackEdgeThreshold=400", "-XX:+PrintCompilation",
                "-cp", ChildJvm.classPath(), CompileTiersWorkload.class.getName(), "5"));
        ChildJvm.Result child = ChildJvm.run(cmd, 5);
        check(cmd, child.exit(), child.out());
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
        // AdapterRows' L-row groups (CompileTiersWorkload.groups), which the scalar shape does not have
        String adapterRows = MicroKernel.SCALAR ? "AdapterRows::" : "AdapterRows::group";
        for (String type : List.of("MicroKernel::", "RowGrads::", "GradGemm::", "Panels::", adapterRows)) {
            assertTrue(ours.stream().anyMatch(l -> l.contains(" % ") && l.contains("dev.rslora.backend.cpu." + type)),
                    () -> "no OSR compile of a method of " + type + " in the child JVM:\n" + String.join("\n", ours));
        }
    }
}
