package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * C2 never delays a Vector API call that returns a vector while it compiles a method of the cpu
 * backend: that is how C2 came to box vectors in this backend.
 * <p>Why: past {@value #CUTOFF} nodes (HotSpot's NodeCountInliningCutoff, a constant in product
 * JVMs) C2 delays the force-inlined Vector API calls that are left and inlines them afterwards.
 * The vector a delayed call returns is then of unknown class where the next call uses it, and that
 * call is guarded by the type profile of the JDK method it sits in, a profile that every caller of
 * that JDK method in the JVM shares. Once other code has made that guard fail a few times, each new
 * compile keeps a virtual call on the guard's failing side, and that call needs the vector boxed:
 * one box per operation on every run of the method. That is how BlockTranspose's 16-lane block
 * (45 000 and 31 000 nodes in two methods) and RowGrads.sum4Pairs (35 000) came to allocate 8–51 KB
 * per training step in some orders of the cpu tests with -XX:-UseFMA, and 6.6 KB per dA in
 * AdapterRowsAllocationTest (three CI runs; reproduced with surefire's random order, seed 6, in 3
 * of 4 runs; JFR: FloatVector.blendTemplate under block16Stages84; -XX:+LogCompilation: virtual
 * calls to Float512Vector.byteSize and vspecies there, 2026-12-07).
 * <p>A delayed call that returns nothing, or no vector (the register tiles' last stores, a bulk
 * copy's internals), leaves no vector of unknown class behind and is allowed: the 512-bit tile
 * with -XX:-UseFMA and the 128-bit tile parse to about 18 300 nodes and delay only stores. The
 * test reads every C2 compile of every method of this package (kernels, and the callers C2
 * inlines kernels into) in a child JVM that runs {@link GraphSizeWorkload} with
 * -XX:+LogCompilation: a call C2 decided to inline but left as a direct call during the method's
 * own parse is a delayed one. It prints each vector method's node count at the end of that parse,
 * and every method that passed the cutoff. {@link OversizedVectorMethod} is its positive control:
 * the test fails if the parser does not find that method's delayed calls.
 * <p>Its first runs (2026-12-07) found delayed vector calls in MicroKernel.mma512 with -XX:-UseFMA
 * (27 700 nodes in all) and mma128 (30 500), Panels.transposeRows on the 128-bit tile (28 000),
 * BackwardPass.computeDx on the 128- and 256-bit tiles (AdapterRows.dx, the mask and the bf16
 * store inlined: 18 300–18 700 at the end of its parse) and Convert.storeScaled (18 400 in one run
 * of three): the tiles no longer load C (MicroKernel.mmaAdd), the block transpose and the mask
 * have one call site each, computeDx is two compile units, and storeScaled parses only its sink's
 * dtype (10 800–14 900 nodes, as C2 inlines its F32 vector loop or not). Without FMA instructions the
 * 128-bit shape takes a 5×8 tile (MicroKernel.mma128x5), which the cpu-no-fma execution runs.
 */
class GraphSizeTest {
    /** HotSpot's NodeCountInliningCutoff (a develop flag: this value in every product JVM). */
    static final int CUTOFF = 18_000;
    /** Rounds of {@link GraphSizeWorkload}'s problems: enough for C2 to compile each route's methods. */
    private static final String ROUNDS = "40";
    private static final String CONTROL = "OversizedVectorMethod.run";
    private static final Pattern TASK = Pattern.compile("^<task compile_id='(\\d+)' method='([\\w.$]+) ([\\w$<>&;]+) ");
    private static final Pattern NODES = Pattern.compile("nodes='(\\d+)'");
    private static final Pattern KLASS = Pattern.compile("^<klass id='(\\d+)' name='([^']*)'");
    private static final Pattern METHOD = Pattern.compile("^<method id='(\\d+)' holder='(\\d+)' name='([^']*)' return='(\\d+)'");
    private static final Pattern CALL = Pattern.compile("^<call method='(\\d+)'");

    /** One C2 compile: its node count at the end of its own parse, whether its own bytecode calls the Vector API, the calls it delayed. */
    record Compile(String method, int nodes, boolean vector, List<String> delayedVectors) {
    }

    @Test
    void c2DelaysNoCallThatReturnsAVector() throws IOException, InterruptedException {
        assumeFalse(MicroKernel.SCALAR, "the scalar tile runs no vector code");
        Path log = Files.createTempFile("rslora-c2", ".xml");
        try {
            List<String> cmd = ChildJvm.java();
            cmd.addAll(List.of("-XX:+UnlockDiagnosticVMOptions", "-XX:+LogCompilation", "-XX:LogFile=" + log,
                    "-cp", ChildJvm.classPath(), GraphSizeWorkload.class.getName(), ROUNDS));
            ChildJvm.Result child = ChildJvm.run(cmd, 5);
            assertEquals(0, child.exit(), () -> "child JVM failed: " + cmd + "\n" + child.out());
            List<Compile> compiles = parse(log);
            Map<String, Integer> nodes = new TreeMap<>();
            Map<String, Integer> past = new TreeMap<>();
            Map<String, Set<String>> delayed = new TreeMap<>();
            for (Compile c : compiles) {
                if (c.vector()) {
                    nodes.merge(c.method(), c.nodes(), Math::max);
                }
                if (c.nodes() >= CUTOFF) {
                    past.merge(c.method(), c.nodes(), Math::max);
                }
                if (!c.delayedVectors().isEmpty()) {
                    delayed.computeIfAbsent(c.method(), k -> new TreeSet<>()).addAll(c.delayedVectors());
                }
            }
            System.out.println(CpuBackend.tileShape() + ": C2's graph nodes per vector method, at the end of its own parse: " + nodes);
            System.out.println("past the inlining cutoff (" + CUTOFF + "): " + (past.isEmpty() ? "none" : past));
            System.out.println("largest methods of the package: " + compiles.stream()
                    .collect(Collectors.toMap(Compile::method, Compile::nodes, Math::max))
                    .entrySet().stream().sorted(Map.Entry.<String, Integer>comparingByValue().reversed()).limit(6).toList());
            System.out.println("delayed calls that return vectors: " + delayed);
            // not vacuous: the positive control was caught, and the tile and many vector methods were compiled
            assertTrue(delayed.containsKey(CONTROL), () -> "the parser found no delayed vector call in " + CONTROL
                    + ", which passes the cutoff by design: " + past);
            delayed.remove(CONTROL);
            assertTrue(delayed.isEmpty(), () -> "C2 delayed calls that return vectors (which can leave vectors boxed)"
                    + " while compiling these methods of the cpu backend:\n  " + delayed + "\nnodes: " + past);
            String tile = "MicroKernel." + MicroKernel.tileMethod();
            assertTrue(nodes.containsKey(tile), () -> "no C2 compile of " + tile + " in the child JVM: " + nodes);
            assertTrue(nodes.size() >= 15, () -> "C2 compiled only " + nodes.size() + " vector methods in the child JVM: " + nodes);
        } finally {
            Files.deleteIfExists(log);
        }
    }

    /**
     * Every C2 compile of a method of this package, as "Class.method" ("%" appended for on-stack
     * compiles). A delayed call: a {@code <call>} that C2 logged {@code <inline_success>} for, then
     * a {@code <direct_call>} instead of a {@code <parse>} of it, before the method's own parse
     * ended; listed as "Holder.name->ReturnClass" when it returns a class of jdk.incubator.vector.
     */
    static List<Compile> parse(Path log) throws IOException {
        List<Compile> compiles = new ArrayList<>();
        String method = null;
        int depth = 0;
        int nodes = -1;
        boolean vector = false;
        boolean inlining = false;  // the last call was decided inline and not parsed yet
        String callee = null;
        List<String> delayed = new ArrayList<>();
        // the log names klasses and methods by ids that hold within one task
        Map<String, String> klasses = new HashMap<>();
        Map<String, String[]> methods = new HashMap<>();  // id -> {holder name, name, return klass name}
        try (Stream<String> lines = Files.lines(log, StandardCharsets.ISO_8859_1)) {
            for (String line : (Iterable<String>) lines::iterator) {
                if (line.startsWith("<task ")) {
                    Matcher m = TASK.matcher(line);
                    // C1's tasks carry their tier (level='1' to '3'); C2's carry none
                    boolean ours = m.find() && m.group(2).startsWith("dev.rslora.backend.cpu.") && !line.contains(" level='");
                    method = ours ? m.group(2).substring(m.group(2).lastIndexOf('.') + 1) + "." + m.group(3)
                            + (line.contains("osr_bci=") ? "%" : "") : null;
                    depth = 0;
                    nodes = -1;
                    vector = false;
                    inlining = false;
                    delayed = new ArrayList<>();
                    klasses.clear();
                    methods.clear();
                } else if (method == null) {
                    continue;
                } else if (line.startsWith("<klass ")) {
                    Matcher m = KLASS.matcher(line);
                    if (m.find()) {
                        klasses.put(m.group(1), m.group(2));
                    }
                } else if (line.startsWith("<method ")) {
                    Matcher m = METHOD.matcher(line);
                    if (m.find()) {
                        methods.put(m.group(1), new String[] {klasses.getOrDefault(m.group(2), "?"), m.group(3),
                                klasses.getOrDefault(m.group(4), "")});
                    }
                } else if (line.startsWith("<task_done ")) {
                    if (nodes >= 0) {
                        compiles.add(new Compile(method, nodes, vector, delayed));
                    }
                    method = null;
                } else if (nodes >= 0) {
                    continue;  // the method's own parse is over: what follows is C2 inlining what it delayed
                } else if (line.startsWith("<call ")) {
                    Matcher m = CALL.matcher(line);
                    callee = m.find() ? m.group(1) : null;
                    inlining = false;
                    String[] c = methods.get(callee);
                    vector |= depth == 1 && c != null && c[0].startsWith("jdk.incubator.vector.");
                } else if (line.startsWith("<inline_success ")) {
                    inlining = callee != null;
                } else if (line.startsWith("<direct_call ") && inlining) {
                    String[] c = methods.get(callee);
                    if (c != null && c[2].startsWith("jdk.incubator.vector.")) {
                        delayed.add(c[0].substring(c[0].lastIndexOf('.') + 1) + "." + c[1] + "->"
                                + c[2].substring(c[2].lastIndexOf('.') + 1));
                    }
                    inlining = false;
                } else if (line.startsWith("<parse ")) {
                    depth++;
                    inlining = false;
                } else if (line.startsWith("<parse_done ") && --depth == 0) {
                    Matcher m = NODES.matcher(line);
                    nodes = m.find() ? Integer.parseInt(m.group(1)) : 0;
                }
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
        return compiles;
    }
}
