package dev.rslora.simd;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Multiply-add as this JVM can run it fast: fused, a·b + c rounded once ({@link Math#fma}), where
 * the JIT emits FMA instructions, else a·b rounded, then + c rounded. {@code Math.fma} and the
 * Vector API's {@code fma} are exact everywhere, but where the JIT cannot use an FMA instruction
 * (HotSpot's {@code UseFMA} off: x86 without FMA3, i.e. Intel before Haswell and Atom-class cores
 * up to Tremont, AMD before Piledriver, virtual CPUs that hide the flag such as QEMU's default
 * model, or {@code -XX:-UseFMA}) each call, and each lane of a vector fma, goes through
 * {@link java.math.BigDecimal}: one cpu-backend LoRA step at N = 64, d = 1024, r = 64 took over
 * 120 s with {@code -XX:-UseFMA} on the AMD EPYC development VM, against about 1 ms with it (2026-12-06).
 * <p>Decided once, when this class is initialised: HotSpot's {@code UseFMA} flag where the JVM
 * reports it ({@code jdk.management}); otherwise, on Linux x86, whether {@code /proc/cpuinfo} lists
 * {@code fma}; otherwise fused. Results are deterministic on a given machine either way; the two
 * roundings change the last bits, not the error bounds the tests hold the backends to.
 * <p>Vector code writes {@code FUSED ? a.fma(b, c) : a.mul(b).add(c)} at each call site: the Vector
 * API's methods are force-inlined, and C2 folds the constant; a helper of ours wrapping them was
 * left out of line at call sites its profile had seen rarely (a loop over n = 1 rows), and every
 * vector it returned was then boxed (AdapterRowsAllocationTest).
 */
public final class Fma {
    private record Decision(boolean fused, String source) {
    }

    private static final Decision DECISION = detect();
    /** Whether multiply-adds are fused ({@link Math#fma}) rather than a multiply then an add. */
    public static final boolean FUSED = DECISION.fused();

    private Fma() {
    }

    /** a·b + c: fused where {@link #FUSED}, else the product rounded, then the sum. */
    public static float fma(float a, float b, float c) {
        return FUSED ? Math.fma(a, b, c) : a * b + c;
    }

    /** How {@link #FUSED} was decided, for logs and benchmark reports. */
    public static String describe() {
        return (FUSED ? "fused multiply-add" : "multiply, then add (no FMA instructions: Math.fma would take BigDecimal)")
                + " [" + DECISION.source() + "]";
    }

    private static Decision detect() {
        Boolean flag = hotSpotFlag();
        if (flag != null) {
            return new Decision(flag, "HotSpot UseFMA=" + flag);
        }
        String arch = System.getProperty("os.arch", "");
        Path cpuinfo = Path.of("/proc/cpuinfo");
        if ((arch.equals("amd64") || arch.equals("x86_64")) && Files.isReadable(cpuinfo)) {
            try (var lines = Files.lines(cpuinfo)) {
                boolean fma = lines.filter(l -> l.startsWith("flags")).findFirst()
                        .map(l -> (" " + l.substring(l.indexOf(':') + 1) + " ").contains(" fma ")).orElse(true);
                return new Decision(fma, "/proc/cpuinfo flags" + (fma ? " list fma" : " lack fma"));
            } catch (IOException | RuntimeException e) {
                // unreadable: assume fused, as below
            }
        }
        return new Decision(true, "assumed: no UseFMA flag or cpu flags to read");
    }

    /** HotSpot's UseFMA flag, or null where the JVM has no such flag or no jdk.management. */
    private static Boolean hotSpotFlag() {
        String v = HotSpotFlags.value("UseFMA");
        return v == null ? null : Boolean.valueOf(v);
    }
}
