package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * Moves a GPU check's machine-readable files into the committed GPU folder (bench/raw/gpu): the
 * newer run replaces the older one as a whole, and only when it holds at least one GPU result
 * (a JMH result, a PEFT timing or a cuda/dev kernel timing), so a check that skipped or failed
 * everywhere leaves the previous results in place. README.md in the folder is kept.
 */
final class GpuImport {
    /** What the import did. */
    record Outcome(boolean imported, List<String> files, String message) {
    }

    private GpuImport() {
    }

    /**
     * The check files this import takes: nvidia-smi CSVs (card, and the clocks sampled during the
     * benchmarks), the summary, the bundle's BUNDLE.txt (which commit was packed), PEFT, Java
     * event-timed and cuda/dev JSON lines, GPU JMH JSON.
     */
    static boolean wanted(String name) {
        return name.equals("gpu-info.csv") || name.equals("gpu-clocks.csv") || name.equals("summary.txt") || name.equals("BUNDLE.txt")
                || (name.startsWith("peft") && name.endsWith(".jsonl")) || (name.startsWith("java-events") && name.endsWith(".jsonl"))
                || (name.startsWith("dev-bench") && name.endsWith(".jsonl")) || (name.startsWith("jmh-gpu") && name.endsWith(".json"));
    }

    /** The file holding a commit given at import ({@code --commit}), for runs whose folder has no BUNDLE.txt. */
    static final String COMMIT_FILE = "commit.txt";

    /** Whether {@code commit} looks like a git commit id (7 to 40 lower-case hex digits). */
    static boolean isCommitId(String commit) {
        return commit.matches("[0-9a-f]{7,40}");
    }

    /**
     * Imports like {@link #run(Path, Path)}; when {@code commit} is not null it is recorded in
     * {@value #COMMIT_FILE} as the commit the run's bundle was packed from (with {@code why}). A commit
     * that is not a commit id is refused before anything is touched.
     */
    static Outcome run(Path logDir, Path gpuRaw, String commit, String why) throws IOException {
        if (commit != null && !isCommitId(commit)) {
            throw new IOException("--commit " + commit + " is not a git commit id (7 to 40 hex digits)");
        }
        return run(logDir, gpuRaw, commit == null ? null
                : "commit: " + commit + "\nsource: " + (why == null ? "given at import" : why) + "\n");
    }

    static Outcome run(Path logDir, Path gpuRaw) throws IOException {
        return run(logDir, gpuRaw, null);
    }

    /** The GPU results in {@code dir} (a gpu-check folder, or the committed one); refuses a missing folder. */
    static int countResults(Path dir, String what) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new IOException(what + " " + dir + (Files.exists(dir) ? " is not a folder" : " does not exist"));
        }
        int results = 0;
        for (Path f : Results.files(dir, "")) {
            if (wanted(f.getFileName().toString())) {
                results += countResults(f);
            }
        }
        return results;
    }

    /**
     * The import: nothing changes unless LOGDIR holds GPU results and every file the report reads from it
     * parses; the files are copied next to the GPU folder first and replace its old ones only then.
     */
    private static Outcome run(Path logDir, Path gpuRaw, String commitRecord) throws IOException {
        int results = countResults(logDir, "GPU check folder");
        if (Files.isDirectory(gpuRaw) && Files.isSameFile(logDir, gpuRaw)) {
            throw new IOException("GPU check folder " + logDir + " is " + gpuRaw + " itself, the folder an import replaces");
        }
        if (results == 0) {
            return new Outcome(false, List.of(), "no GPU results in " + logDir + " (no JMH result, PEFT timing or cuda/dev kernel "
                    + "timing): kept the previous " + gpuRaw);
        }
        Results.loadGpu(logDir);  // a file the report cannot read is refused here, before the old results go
        List<Path> files = new ArrayList<>();
        for (Path f : Results.files(logDir, "")) {
            if (wanted(f.getFileName().toString())) {
                files.add(f);
            }
        }
        Files.createDirectories(gpuRaw);
        Path stage = Files.createTempDirectory(gpuRaw.toAbsolutePath().getParent(), ".gpu-import-");
        List<String> names = new ArrayList<>();
        try {
            for (Path f : files) {
                Files.copy(f, stage.resolve(f.getFileName().toString()));
                names.add(f.getFileName().toString());
            }
            if (commitRecord != null) {
                Files.writeString(stage.resolve(COMMIT_FILE), commitRecord, StandardCharsets.UTF_8);
            }
            for (Path old : Results.files(gpuRaw, "")) {
                if (!old.getFileName().toString().equals("README.md")) {
                    Files.delete(old);
                }
            }
            for (Path f : Results.files(stage, "")) {
                Files.move(f, gpuRaw.resolve(f.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            for (Path f : Results.files(stage, "")) {
                Files.deleteIfExists(f);
            }
            Files.deleteIfExists(stage);
        }
        return new Outcome(true, names, "imported " + results + " GPU results from " + logDir + " into " + gpuRaw + ": " + names);
    }

    /** Results in one file: JMH array elements, PEFT "timing" lines, cuda/dev "kernel" lines. */
    static int countResults(Path f) throws IOException {
        String name = f.getFileName().toString();
        if (name.endsWith(".json")) {
            JsonNode root = Results.readJson(new ObjectMapper(), f);
            return root != null && JmhJson.isJmh(root) ? root.size() : 0;
        }
        if (name.endsWith(".jsonl")) {
            ObjectMapper json = new ObjectMapper();
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            int n = 0;
            for (int i = 0; i < lines.size(); i++) {
                if (lines.get(i).isBlank()) {
                    continue;
                }
                JsonNode o;
                try {
                    o = json.readTree(lines.get(i));
                } catch (IOException e) {
                    continue; // counted only; GpuLines says which line is broken when the report reads it
                }
                String kind = o.path("kind").asText("");
                if (kind.equals("timing") || kind.equals("kernel")) {
                    n++;
                }
            }
            return n;
        }
        return 0;
    }
}
