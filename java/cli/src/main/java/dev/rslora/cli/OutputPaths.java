package dev.rslora.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks on an --output path made before any work: it must not be one of the command's input files. */
final class OutputPaths {
    private OutputPaths() {
    }

    /**
     * Refuses {@code output} when it is the same file as one of {@code inputs}: the atomic write would
     * replace that input with the result. An output that is a symbolic link is let through (the rename
     * replaces the link, not the file it points to).
     *
     * @param output the --output path
     * @param inputs the files the command reads (absent ones are skipped)
     * @throws IllegalArgumentException naming both paths when the output is an input
     * @throws IOException              if the files cannot be compared
     */
    static void requireNotAnInput(Path output, Path... inputs) throws IOException {
        if (!Files.exists(output) || Files.isSymbolicLink(output)) {
            return;
        }
        for (Path in : inputs) {
            if (Files.exists(in) && Files.isSameFile(output, in)) {
                throw new IllegalArgumentException("--output " + output + " is the input file " + in
                        + "; writing it would replace the input, choose another path");
            }
        }
    }
}
