package dev.rslora.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Test data written by other tools, kept outside the repository in {@code ../shared/data}
 * (see its README): never copied into the project; tests skip with a printed reason when absent.
 */
public final class SharedData {
    private SharedData() {
    }

    /** -Drslora.shared.data=DIR, else the first {@code shared/data} found walking up from the working directory, else null. */
    public static Path root() {
        String prop = System.getProperty("rslora.shared.data");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
            Path c = d.resolve("shared").resolve("data");
            if (Files.isDirectory(c)) {
                return c;
            }
        }
        return null;
    }

    /** The PEFT GPT-2 sequence-classification adapter folder, or null when it is not there. */
    public static Path peftGpt2Adapter() {
        Path data = root();
        Path p = data == null ? null : data.resolve("peft-gpt2-seqcls-lora");
        return p != null && Files.isRegularFile(p.resolve("adapter_model.safetensors")) ? p : null;
    }

    /** Why {@link #peftGpt2Adapter()} is null, for the skip message. */
    public static String whyAbsent() {
        Path data = root();
        return "skipped: PEFT adapter peft-gpt2-seqcls-lora not found ("
                + (data == null ? "no shared/data folder above " + Path.of("").toAbsolutePath() : "not in " + data)
                + "); set -Drslora.shared.data=DIR to point at it";
    }
}
