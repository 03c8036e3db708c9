package dev.rslora.peft;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The golden files of java/src/test/resources/golden (written by java/src/test/python/make_golden.py). */
public final class Golden {
    private Golden() {
    }

    /** {@code golden/<relative>} on the test classpath. */
    public static Path path(String relative) {
        try {
            Path root = Path.of(Golden.class.getResource("/golden").toURI());
            Path p = root.resolve(relative);
            if (!Files.exists(p)) {
                throw new IllegalStateException("missing golden file " + p + "; regenerate with java/src/test/python/make_golden.py");
            }
            return p;
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }
}
