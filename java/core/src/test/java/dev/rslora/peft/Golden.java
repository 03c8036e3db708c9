package dev.rslora.peft;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The golden files of java/core/src/test/resources/golden (written by
 * java/core/src/test/python/make_golden.py). In rslora-core's own tests they are a folder on the
 * class path; other modules get them inside the rslora-core test-jar, and then they are copied
 * once to a temporary folder (deleted at exit) so the CLI can be given real file paths.
 */
public final class Golden {
    private static Path root;

    private Golden() {
    }

    /** {@code golden/<relative>} on the test classpath, as a file-system path. */
    public static Path path(String relative) {
        Path p = root().resolve(relative);
        if (!Files.exists(p)) {
            throw new IllegalStateException("missing golden file " + p + "; regenerate with java/core/src/test/python/make_golden.py");
        }
        return p;
    }

    private static synchronized Path root() {
        if (root == null) {
            try {
                URI uri = Golden.class.getResource("/golden").toURI();
                root = "jar".equals(uri.getScheme()) ? extract(uri) : Path.of(uri);
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return root;
    }

    private static Path extract(URI uri) throws IOException {
        Path tmp = Files.createTempDirectory("rslora-golden");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(tmp)));
        try (FileSystem jar = FileSystems.newFileSystem(uri, Map.of());
             Stream<Path> files = Files.walk(jar.getPath("/golden"))) {
            for (Path src : (Iterable<Path>) files::iterator) {
                Path dst = tmp.resolve(jar.getPath("/golden").relativize(src).toString());
                if (Files.isDirectory(src)) {
                    Files.createDirectories(dst);
                } else {
                    Files.copy(src, dst);
                }
            }
        }
        return tmp;
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort at exit: a leftover temporary folder is harmless
        }
    }
}
