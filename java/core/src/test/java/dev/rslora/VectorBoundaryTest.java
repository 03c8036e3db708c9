package dev.rslora;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.CodeElement;
import java.lang.classfile.FieldModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.reflect.AccessFlag;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No vector crosses a method boundary in the library's code: no method of java/core takes or
 * returns a type of {@code jdk.incubator.vector} (a vector, mask, shuffle, species or operator), and
 * no instance field holds one. C2 keeps a vector in registers only inside one compiled method and
 * what it inlines; where it leaves a call out of line, a vector passed or returned is boxed on the
 * heap at every call, and a species or operator passed in is no longer a constant, so the callee's
 * vector operations run in the Vector API's Java fallback. Which calls C2 inlines depends on the
 * profile of the run (a call site rare in it is not, "low call site frequency"; a callee already
 * compiled on its own into more than -XX:InlineSmallCode's bytes is not, "already compiled into a
 * big method"; over -XX:FreqInlineSize's 325 bytes of bytecode never), so a helper that passes
 * vectors allocates in some runs and not in others: 8–214 KB per step (d = 73, r = 24, N ≤ 146) with
 * any one of AdapterRows' scaled, combine or hsum, BlockTranspose's load, MaskBits' keep or
 * Convert's toBf16Bits left out of line (-XX:CompileCommand=dontinline, 2026-12-07); and e^x, over
 * the size limit, boxed two vectors per 16 logits in every run (SeqLogprobAllocationTest). Vector
 * code now loads, computes and stores inside one method, and helpers pass arrays, segments and
 * offsets. The cpu-no-inline test execution checks the same from the other side: with none of the
 * project's methods inlined, a training step and SeqLogprob still allocate next to nothing.
 * <p>The one exception is {@link #CLASS_INIT_ONLY}: helpers that build the static final masks and
 * shuffles, called only from static initializers (checked here), never from compiled code.
 */
class VectorBoundaryTest {
    private static final String VECTOR_PACKAGE = "Ljdk/incubator/vector/";
    /** Methods (the owner's internal name, a dot, the name) that may take or return vector types: only static initializers call them. */
    private static final Set<String> CLASS_INIT_ONLY = Set.of(
            "dev/rslora/backend/cpu/Lanes.xorShuffle", "dev/rslora/backend/cpu/Lanes.bit",
            "dev/rslora/backend/cpu/Lanes.xor", "dev/rslora/backend/cpu/Lanes.set", "dev/rslora/backend/cpu/Lanes.clear",
            "dev/rslora/backend/cpu/Lanes.pick");

    @Test
    void noMethodTakesOrReturnsAVectorAndNoInstanceFieldHoldsOne() throws IOException, URISyntaxException {
        Path classes = Path.of(dev.rslora.tensor.Tensor.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        assertTrue(Files.isDirectory(classes.resolve("dev/rslora/backend/cpu")),
                "expected the compiled main classes of java/core in a directory, got " + classes);
        List<String> problems = new ArrayList<>();
        List<String> allowedSeen = new ArrayList<>();
        int checked = 0;
        try (Stream<Path> files = Files.walk(classes)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
                ClassModel cm = ClassFile.of().parse(Files.readAllBytes(f));
                String owner = cm.thisClass().asInternalName();
                checked++;
                for (FieldModel field : cm.fields()) {
                    if (field.fieldType().stringValue().contains(VECTOR_PACKAGE) && !field.flags().has(AccessFlag.STATIC)) {
                        problems.add(owner + "." + field.fieldName() + ": an instance field of type " + field.fieldType());
                    }
                }
                for (MethodModel m : cm.methods()) {
                    String name = owner + "." + m.methodName().stringValue();
                    String descriptor = m.methodType().stringValue();
                    if (descriptor.contains(VECTOR_PACKAGE)) {
                        if (CLASS_INIT_ONLY.contains(name)) {
                            allowedSeen.add(name);
                        } else {
                            problems.add(name + descriptor + ": takes or returns a jdk.incubator.vector type");
                        }
                    }
                    if (m.code().isEmpty() || m.methodName().equalsString("<clinit>")) {
                        continue;
                    }
                    for (CodeElement e : m.code().get()) {
                        if (e instanceof InvokeInstruction call) {
                            String callee = call.owner().asInternalName() + "." + call.name().stringValue();
                            if (CLASS_INIT_ONLY.contains(callee)) {
                                problems.add(name + " calls " + callee + ", which only static initializers may call");
                            }
                        }
                    }
                }
            }
        }
        assertTrue(checked > 100, "only " + checked + " classes under " + classes);
        assertTrue(allowedSeen.containsAll(CLASS_INIT_ONLY), "stale exceptions: " + CLASS_INIT_ONLY + ", found " + allowedSeen);
        assertTrue(problems.isEmpty(), "a vector would cross a call (boxed wherever C2 does not inline it):\n  "
                + String.join("\n  ", problems));
    }
}
