package dev.rslora.backend.cpu;

import dev.rslora.simd.Fma;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The register tile of this run's shape keeps its accumulators in registers, as compiled: a child
 * JVM with this JVM's shape flags runs {@link TileCodeWorkload} and prints C2's code for
 * {@code MicroKernel}'s tile method and its one-row form; in that code no loop that does FMAs
 * moves a vector or FP register to or from the stack (a spill), and none calls out (a vector boxed
 * on the heap, or a Java fallback: {@code Math.fma} without FMA instructions). Where the JIT has no
 * FMA instructions ({@link Fma#FUSED} false) the multiply-adds are counted as multiplies. The build runs the cpu tests once per tile shape
 * (java/core/pom.xml), so each shape is checked by its own run. The counts of every such loop are
 * printed (the steady-state loop is the shortest); general registers reloaded from the stack (row
 * offsets of A, three per k in the 512-bit tile's loop on JDK 25) cost a load each and are
 * allowed. x86-64 only (objdump disassembles the JIT's hex); skipped where objdump is missing.
 */
class TileCodeTest {

    @Test
    void c2KeepsTheTileAndItsRowFormInRegisters() throws IOException, InterruptedException {
        String arch = System.getProperty("os.arch", "");
        assumeTrue(arch.equals("amd64") || arch.equals("x86_64"), "x86-64 only, this is " + arch);
        assumeTrue(MachineCode.objdumpAvailable(), "objdump (binutils) is not installed: apt-get install binutils");
        String tile = "dev.rslora.backend.cpu.MicroKernel::" + MicroKernel.tileMethod();
        String row = "dev.rslora.backend.cpu.MicroKernel::" + MicroKernel.rowMethod();
        List<String> cmd = ChildJvm.java();
        cmd.addAll(List.of("-XX:+UnlockDiagnosticVMOptions", "-XX:CompileCommand=quiet",
                "-XX:CompileCommand=print," + tile, "-XX:CompileCommand=print," + row,
                "-cp", ChildJvm.classPath(), TileCodeWorkload.class.getName(), "3000"));
        ChildJvm.Result child = ChildJvm.run(cmd, 5);
        String out = child.out();
        assertEquals(0, child.exit(), () -> "child JVM failed: " + cmd + "\n" + tail(out));
        assertTrue(out.contains("done"), () -> "child JVM did not finish its workload:\n" + tail(out));
        int tileFmas = MicroKernel.MR * MicroKernel.NV;  // per k
        int rowFmas = MicroKernel.SCALAR ? MicroKernel.NV : 2 * MicroKernel.NV;  // per iteration (vectors: two k)
        check(out, tile, tileFmas);
        check(out, row, rowFmas);
    }

    /** {@code method}'s last C2 code in the log: its FMA loops hold no vector stack access and no call. */
    private static void check(String log, String method, int fmasPerIteration) throws IOException, InterruptedException {
        MachineCode code = MachineCode.lastC2(log, method);
        assertNotNull(code, () -> "no C2 compile of " + method + " in the child's log");
        // the multiply-adds: FMA instructions, or multiplies where the JIT has none (Fma.FUSED false)
        java.util.function.ToLongFunction<MachineCode.Loop> madds = Fma.FUSED ? MachineCode.Loop::fmas
                : MachineCode.Loop::multiplies;
        List<MachineCode.Loop> loops = MachineCode.innermostLoops(code.disassemble()).stream()
                .filter(l -> madds.applyAsLong(l) > 0).toList();
        System.out.println(CpuBackend.tileShape() + ", " + method + " (" + code.code.length + " bytes of C2 code):");
        loops.forEach(l -> System.out.println("  " + l.summary()));
        assertTrue(loops.stream().anyMatch(l -> madds.applyAsLong(l) >= fmasPerIteration),
                () -> method + ": no loop with " + fmasPerIteration + " multiply-adds per iteration; loops: " + loops);
        for (MachineCode.Loop l : loops) {
            assertTrue(l.vectorStack().isEmpty(), () -> method + ": a loop spills vector registers: "
                    + l.vectorStack() + "\n" + String.join("\n", l.body()));
            assertTrue(l.calls().isEmpty(), () -> method + ": a loop calls out: " + l.calls() + "\n"
                    + String.join("\n", l.body()));
        }
    }

    private static String tail(String out) {
        List<String> lines = out.lines().toList();
        return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
    }

    /**
     * The reading of a log, on hand-assembled code: two loops, one with a vector spill (that the
     * check must report) and one with a general register reloaded from the stack; an earlier
     * tier-4 compile and a later on-stack one of the same method are not the one read.
     */
    @Test
    void theReadingFindsASpillInALoop() throws IOException, InterruptedException {
        assumeTrue(MachineCode.objdumpAvailable(), "objdump (binutils) is not installed: apt-get install binutils");
        // jmp to 0x100 bytes below the code (a runtime stub: no loop), then
        // loop1: vfmadd231ps zmm0,zmm1,zmm2; vmovups [rsp+0x40],zmm3; dec ecx; jne loop1
        // loop2: vfmadd231ps zmm4,zmm1,zmm2; add r10,[rsp+0x98]; dec ecx; jne loop2; ret
        String bytes = "e9fbfeffff" + "62f27548b8c2" + "62f17c48115c2401" + "ffc9" + "75ee"
                + "62f27548b8e2" + "4c03942498000000" + "ffc9" + "75ee" + "c3";
        String log = compile("4", "", "c3c3c3c3") + compile("4", "", bytes) + compile("4", "%", "90909090");
        MachineCode code = MachineCode.lastC2(log, "x.Y::z");
        assertNotNull(code);
        assertEquals(0x7f0000001000L, code.base);
        assertEquals(bytes.length() / 2, code.code.length);
        List<MachineCode.Loop> loops = MachineCode.innermostLoops(code.disassemble());
        assertEquals(2, loops.size(), loops::toString);
        assertEquals(1, loops.get(0).fmas());
        assertEquals(List.of("vmovups ZMMWORD PTR [rsp+0x40],zmm3"), loops.get(0).vectorStack());
        assertTrue(loops.get(0).generalStack().isEmpty());
        assertTrue(loops.get(1).vectorStack().isEmpty());
        assertEquals(1, loops.get(1).generalStack().size(), loops.get(1)::toString);
        assertNull(MachineCode.lastC2(log, "x.Y::other"));
        String text = compile("4", "", "").replace("[MachCode]", "[MachCode]\n  0x00007f0000001000: mov eax, 1");
        assertThrows(IllegalArgumentException.class, () -> MachineCode.lastC2(text, "x.Y::z"));
    }

    /** A compile of x.Y::z as -XX:CompileCommand=print logs it, its code at 0x7f0000001000 in 4-byte words. */
    private static String compile(String tier, String osr, String hex) {
        StringBuilder words = new StringBuilder();
        for (int i = 0; i < hex.length(); i += 8) {
            String w = hex.substring(i, Math.min(hex.length(), i + 8));  // "8984 2400 | c0fe ff55", as the JIT prints
            words.append(w.length() > 4 ? w.substring(0, 4) + " " + w.substring(4) : w).append(i + 8 < hex.length() ? " | " : "");
        }
        HexFormat.of().parseHex(hex);  // well formed
        return String.format(Locale.ROOT, "Compiled method (c2) 100  7 %1s    %s       x.Y::z (10 bytes)%n"
                + "[MachCode]%n[Verified Entry Point]%n  0x00007f0000001000: %s%n[Exception Handler]%n[/MachCode]%n",
                osr, tier, words);
    }
}
