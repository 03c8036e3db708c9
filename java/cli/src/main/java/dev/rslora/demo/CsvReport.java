package dev.rslora.demo;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** {@code rank_sweep.csv}: one row per (scaling, rank, seed, step): {@code scaling,rank,seed,step,loss,grad_norm}. */
public final class CsvReport {
    /**
     * The file name, in the output folder.
     */
    public static final String FILE = "rank_sweep.csv";
    /**
     * The CSV header line.
     */
    public static final String HEADER = "scaling,rank,seed,step,loss,grad_norm";

    private CsvReport() {
    }

    /**
     * Writes the curves of {@code result} into {@code dir}/rank_sweep.csv; returns the path.
     *
     * @param result the sweep
     * @param dir    the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path write(SweepResult result, Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write(HEADER);
            w.write('\n');
            for (RunCurve c : result.curves()) {
                String prefix = c.scalingName() + "," + c.rank() + "," + c.seed() + ",";
                for (int t = 0; t < c.loss().length; t++) {
                    // Double.toString: locale-free, shortest text that reads back to the same double
                    w.write(prefix + t + "," + c.loss()[t] + "," + c.gradNorm()[t]);
                    w.write('\n');
                }
            }
        }
        return file;
    }
}
