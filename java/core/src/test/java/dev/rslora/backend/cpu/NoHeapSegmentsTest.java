package dev.rslora.backend.cpu;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * No main code of this module wraps a heap array in a memory segment. The vector loops read and
 * write segments, and the JDK keeps one type profile for the segment accesses of all vector loads
 * and stores: one heap segment among them made the micro-kernel 1.75× slower for the rest of the
 * JVM's life ({@link TileOps#allFinite(float[], int, int)}). No functional test can see that, so
 * this one reads the sources. A heap array goes to a vector loop through {@code fromArray}; a
 * user's heap tensor through the scalar loops ({@link Convert#vectorOk}).
 */
class NoHeapSegmentsTest {
    @Test
    void mainSourcesNeverWrapAHeapArrayInASegment() throws IOException {
        Path main = Path.of("src/main/java");
        assertTrue(Files.isDirectory(main.resolve("dev/rslora/backend/cpu")), "run from the rslora-core module: " + main.toAbsolutePath());
        List<String> found;
        try (Stream<Path> files = Files.walk(main)) {
            found = files.filter(f -> f.toString().endsWith(".java")).flatMap(f -> {
                try {
                    List<String> lines = Files.readAllLines(f);
                    return java.util.stream.IntStream.range(0, lines.size())
                            .filter(i -> lines.get(i).contains("MemorySegment.ofArray(") && !lines.get(i).strip().startsWith("*"))
                            .mapToObj(i -> main.relativize(f) + ":" + (i + 1) + ": " + lines.get(i).strip());
                } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                }
            }).toList();
        }
        assertEquals(List.of(), found, "heap segments in main code (use FloatVector.fromArray, or a native buffer)");
    }
}
