package dev.rslora.backend.cpu;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A method's x86-64 machine code as C2 compiled it, read from a {@code -XX:CompileCommand=print}
 * log, and the loops in it. With no hsdis disassembler installed the JIT prints the code as hex
 * words; they are disassembled here by binutils' {@code objdump}. Used by {@link TileCodeTest}.
 */
final class MachineCode {
    /** One instruction: its address and objdump's Intel-syntax text. */
    record Instruction(long address, String text) {
    }

    /**
     * A loop: the instructions from a backward branch's target to the branch, the loops whose
     * range holds no other loop's (the innermost ones).
     */
    record Loop(long start, long end, List<String> body) {
        /** FMA instructions (vfmadd…, packed or scalar). */
        long fmas() {
            return body.stream().filter(t -> t.startsWith("vfmadd") || t.startsWith("vfnmadd")).count();
        }

        /** Multiplies (vmul…, or SSE's mul…): a multiply-add's first half where the JIT has no FMA instructions. */
        long multiplies() {
            return body.stream().filter(t -> t.startsWith("vmul") || t.startsWith("mulp") || t.startsWith("muls")).count();
        }

        /** Instructions that move a vector or FP register to or from the stack: spill stores and reloads. */
        List<String> vectorStack() {
            return body.stream().filter(t -> VECTOR_REG.matcher(t).find() && t.contains("[rsp")).toList();
        }

        /** Instructions with a stack operand and no vector register: general registers spilled or reloaded. */
        List<String> generalStack() {
            return body.stream().filter(t -> !VECTOR_REG.matcher(t).find() && t.contains("[rsp")).toList();
        }

        /** Calls out of the loop (a runtime stub or a method left out of line: a boxed vector). */
        List<String> calls() {
            return body.stream().filter(t -> t.startsWith("call")).toList();
        }

        String summary() {
            return String.format("loop of %d instructions: %d FMAs, %d multiplies, %d vector stack accesses, "
                    + "%d general-register stack accesses, %d calls", body.size(), fmas(), multiplies(),
                    vectorStack().size(), generalStack().size(), calls().size());
        }
    }

    private static final Pattern VECTOR_REG = Pattern.compile("\\b[xyz]mm\\d+\\b");
    private static final Pattern HEX_LINE = Pattern.compile("^\\s*0x([0-9a-f]+): ([0-9a-f][0-9a-f |]*)$");
    private static final Pattern OBJDUMP_LINE = Pattern.compile("^\\s*([0-9a-f]+):\\t[0-9a-f ]+\\t(.+)$");
    private static final Pattern BRANCH = Pattern.compile("^j[a-z]+\\s+(?:0x)?([0-9a-f]+)\\b");

    final long base;
    final byte[] code;

    MachineCode(long base, byte[] code) {
        this.base = base;
        this.code = code;
    }

    /**
     * The main code (from the verified entry point up to the exception handler) of the last
     * tier-4 (C2), not on-stack, compile of {@code method} ("pkg.Class::name") in {@code log},
     * or null when the log has none.
     *
     * @throws IllegalArgumentException when that compile's code is not printed as hex words (a
     *                                  disassembler plug-in printed instructions instead) or has gaps
     */
    static MachineCode lastC2(String log, String method) {
        List<String> lines = log.lines().toList();
        int at = -1;
        for (int i = 0; i < lines.size(); i++) {
            String l = lines.get(i);
            if (l.startsWith("Compiled method (c2)") && !l.contains(" % ") && l.matches(".*\\s4\\s+" + Pattern.quote(method) + " .*")) {
                at = i;
            }
        }
        if (at < 0) {
            return null;
        }
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        long base = -1;
        boolean inCode = false;
        for (int i = at + 1; i < lines.size() && !lines.get(i).startsWith("Compiled method"); i++) {
            String l = lines.get(i);
            if (l.startsWith("[Verified Entry Point]")) {
                inCode = true;
            } else if (l.startsWith("[Exception Handler]") || l.startsWith("[Stub Code]") || l.startsWith("[/MachCode]")) {
                break;
            }
            Matcher m = inCode ? HEX_LINE.matcher(l) : null;
            if (m == null || !m.matches()) {
                continue;
            }
            long address = Long.parseUnsignedLong(m.group(1), 16);
            if (base < 0) {
                base = address;
            } else if (address != base + bytes.size()) {
                throw new IllegalArgumentException(method + ": code at 0x" + Long.toHexString(address) + " where 0x"
                        + Long.toHexString(base + bytes.size()) + " was expected");
            }
            String hex = m.group(2).replace("|", "").replace(" ", "");
            for (int k = 0; k + 1 < hex.length(); k += 2) {
                bytes.write(Integer.parseInt(hex, k, k + 2, 16));
            }
        }
        if (bytes.size() == 0) {
            throw new IllegalArgumentException(method + ": the log has its C2 compile but no code as hex words"
                    + " (a disassembler plug-in, hsdis, printed instructions instead?)");
        }
        return new MachineCode(base, bytes.toByteArray());
    }

    /** The code disassembled by objdump (Intel syntax), in address order. */
    List<Instruction> disassemble() throws IOException, InterruptedException {
        Path bin = Files.createTempFile("c2-code", ".bin");
        Path out = Files.createTempFile("c2-code", ".txt");
        try {
            Files.write(bin, code);
            Process p = new ProcessBuilder("objdump", "-D", "-b", "binary", "-m", "i386:x86-64", "-M", "intel",
                    "--insn-width=16", "--adjust-vma=0x" + Long.toHexString(base), bin.toString())
                    .redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!p.waitFor(1, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException("objdump did not finish in a minute");
            }
            String text = Files.readString(out, StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new IOException("objdump failed (exit " + p.exitValue() + "):\n" + text);
            }
            List<Instruction> ins = new ArrayList<>();
            for (String l : text.lines().toList()) {
                Matcher m = OBJDUMP_LINE.matcher(l);
                if (m.matches()) {
                    ins.add(new Instruction(Long.parseUnsignedLong(m.group(1), 16), m.group(2).strip()));
                }
            }
            return ins;
        } finally {
            Files.deleteIfExists(bin);
            Files.deleteIfExists(out);
        }
    }

    /** Whether binutils' objdump can be run here. */
    static boolean objdumpAvailable() {
        try {
            Process p = new ProcessBuilder("objdump", "--version").redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            return false;
        }
    }

    /**
     * The innermost loops of {@code ins}: each backward branch to a target inside the code (a jump
     * to a runtime stub below it is no loop) and its target, those that hold no other.
     */
    static List<Loop> innermostLoops(List<Instruction> ins) {
        List<long[]> ranges = new ArrayList<>();
        long first = ins.isEmpty() ? 0 : ins.get(0).address();
        for (Instruction i : ins) {
            Matcher m = BRANCH.matcher(i.text());
            if (m.find()) {
                long target = Long.parseUnsignedLong(m.group(1), 16);
                if (first <= target && target <= i.address()) {
                    ranges.add(new long[] {target, i.address()});
                }
            }
        }
        List<Loop> loops = new ArrayList<>();
        for (long[] r : ranges) {
            boolean holdsAnother = ranges.stream().anyMatch(o -> o != r && r[0] <= o[0] && o[1] <= r[1]
                    && (o[0] != r[0] || o[1] != r[1]));
            if (!holdsAnother) {
                List<String> body = ins.stream().filter(i -> r[0] <= i.address() && i.address() <= r[1])
                        .map(Instruction::text).toList();
                loops.add(new Loop(r[0], r[1], body));
            }
        }
        return loops;
    }
}
