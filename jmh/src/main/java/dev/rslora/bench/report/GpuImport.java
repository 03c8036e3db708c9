package dev.rslora.bench.report;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;

/**
 * Moves a GPU check's machine-readable files into the committed GPU folder (bench/raw/gpu): the
 * newer run replaces the older one as a whole, and only when it holds at least one GPU result
 * (a JMH result, a PEFT timing or a cuda/dev kernel timing), so a check that skipped or failed
 * everywhere leaves the previous results in place. README.md in the folder is kept. The swap is
 * two directory renames ({@link #replace}), so an interrupted import never leaves a folder of
 * old and new files mixed.
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
     * parses; the new folder is built whole beside the GPU folder (the run's files, its README.md) and
     * takes the GPU folder's place by renames only ({@link #replace}).
     */
    private static Outcome run(Path logDir, Path gpuRaw, String commitRecord) throws IOException {
        int results = countResults(logDir, "GPU check folder");
        if (Files.isDirectory(gpuRaw) && Files.isSameFile(logDir, gpuRaw)) {
            throw new IOException("GPU check folder " + logDir + " is " + gpuRaw + " itself, the folder an import replaces");
        }
        if (Files.exists(gpuRaw, LinkOption.NOFOLLOW_LINKS) && !Files.isDirectory(gpuRaw, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("GPU folder " + gpuRaw + " is not a folder");
        }
        Path parent = gpuRaw.toAbsolutePath().getParent();
        refuseLeftovers(parent, gpuRaw);
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
        Files.createDirectories(parent);
        Path stage = Files.createTempDirectory(parent, STAGE_PREFIX);
        List<String> names = new ArrayList<>();
        String leftOver;
        try {
            Path readme = gpuRaw.resolve("README.md");
            if (Files.isRegularFile(readme)) {
                Files.copy(readme, stage.resolve("README.md"));
            }
            for (Path f : files) {
                Files.copy(f, stage.resolve(f.getFileName().toString()));
                names.add(f.getFileName().toString());
            }
            if (commitRecord != null) {
                Files.writeString(stage.resolve(COMMIT_FILE), commitRecord, StandardCharsets.UTF_8);
            }
            leftOver = replace(gpuRaw, stage);
        } finally {
            if (Files.exists(stage, LinkOption.NOFOLLOW_LINKS)) {
                deleteTree(stage);  // not moved in: the GPU folder is as it was
            }
        }
        return new Outcome(true, names, "imported " + results + " GPU results from " + logDir + " into " + gpuRaw + ": " + names
                + (leftOver.isEmpty() ? "" : "; " + leftOver));
    }

    /** The folders an import makes beside the GPU folder: the new one it builds, the old one it renames aside. */
    static final String STAGE_PREFIX = ".gpu-import-new-";
    static final String ASIDE_PREFIX = ".gpu-import-old-";

    /**
     * Puts the complete folder {@code stage} (on the same file system) in {@code target}'s place by
     * renames only: target, when it exists, is renamed aside ({@value #ASIDE_PREFIX}..., beside it),
     * stage is renamed to target, then the old folder is deleted. Interrupted anywhere, target is
     * whole: the old folder or the new one, never a mix; between the two renames it is absent and the
     * old one lies whole beside it (the next import names it). A failed rename of stage puts the old
     * folder back. Returns "" or why the old folder could not be deleted (target is the new one then).
     */
    static String replace(Path target, Path stage) throws IOException {
        Path aside = null;
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            aside = target.toAbsolutePath().getParent().resolve(ASIDE_PREFIX + ProcessHandle.current().pid() + "-" + System.nanoTime());
            Files.move(target, aside, StandardCopyOption.ATOMIC_MOVE);
        }
        try {
            Files.move(stage, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            if (aside != null) {
                try {
                    Files.move(aside, target, StandardCopyOption.ATOMIC_MOVE);
                } catch (IOException back) {
                    e.addSuppressed(back);
                    throw new IOException("cannot move " + stage + " to " + target + " (" + e + "), nor the previous folder back from "
                            + aside + " (" + back + "): move it back by hand", e);
                }
            }
            throw e;
        }
        if (aside != null) {
            try {
                deleteTree(aside);
            } catch (IOException e) {
                return "could not delete the previous folder " + aside + " (" + e + "): delete it before the next import";
            }
        }
        return "";
    }

    /** A folder an earlier import renamed aside and did not delete (it was interrupted) is refused, named. */
    private static void refuseLeftovers(Path parent, Path gpuRaw) throws IOException {
        if (!Files.isDirectory(parent)) {
            return;
        }
        try (DirectoryStream<Path> s = Files.newDirectoryStream(parent, ASIDE_PREFIX + "*")) {
            for (Path p : s) {
                throw new IOException("an interrupted GPU import left the previous GPU folder at " + p + ": "
                        + (Files.exists(gpuRaw, LinkOption.NOFOLLOW_LINKS) ? "delete it (" + gpuRaw + " holds the import after it)"
                                : "move it back to " + gpuRaw) + ", then import again");
            }
        }
    }

    /** Deletes a folder and everything in it (links themselves, never what they point to). */
    private static void deleteTree(Path dir) throws IOException {
        Files.walkFileTree(dir, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path f, BasicFileAttributes attrs) throws IOException {
                Files.delete(f);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                if (e != null) {
                    throw e;
                }
                Files.delete(d);
                return FileVisitResult.CONTINUE;
            }
        });
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
