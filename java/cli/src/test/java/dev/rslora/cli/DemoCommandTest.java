package dev.rslora.cli;


import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.demo.SweepConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code rslora demo}: a tiny sweep end to end (files, JSON schema, table) and its bad-option paths. */
class DemoCommandTest {
    @TempDir
    Path dir;

    static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    private static SweepConfig parse(String... args) {
        DemoCommand cmd = new DemoCommand();
        new CommandLine(cmd).parseArgs(args);
        return cmd.config();
    }

    @Test
    void presetsAreThePrototypeSetupAndItsShortVersion() {
        SweepConfig d = parse();
        assertEquals(128, d.dim());
        assertEquals(256, d.batch());
        assertEquals(200, d.steps());
        assertEquals(List.of(4, 16, 64, 256), d.ranks());
        assertEquals(3, d.seeds());
        assertEquals(8.0, d.alpha());
        assertEquals(5e-5, d.optimizer().lr());
        assertEquals(20, d.finalWindow());
        SweepConfig q = parse("--quick");
        assertTrue(q.seeds() >= 3 && q.ranks().size() >= 4, "quick keeps >= 3 seeds and >= 4 ranks");
        assertEquals(100, q.steps());
        assertEquals(128, q.batch());
        SweepConfig o = parse("--quick", "--steps", "50", "--ranks", "8,2", "--seeds", "4", "--lr", "1e-3", "--seed", "7");
        assertEquals(50, o.steps());
        assertEquals(List.of(2, 8), o.ranks());
        assertEquals(List.of(7L, 8L, 9L, 10L), o.seedValues());
        assertEquals(1e-3, o.optimizer().lr());
        assertEquals(5, o.finalWindow());
    }

    @Test
    void tinySweepWritesTheTableCsvJsonAndPlots() throws Exception {
        Path out = dir.resolve("demo-out");
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--dim", "16", "--batch", "16", "--steps", "10",
                "--ranks", "1,2,4,8", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        // the table: a header and one row per (scaling, rank)
        List<String> rows = r.out().lines().filter(l -> l.matches("(lora|rslora) +\\d+ +3 +.*")).toList();
        assertEquals(8, rows.size(), r.out());
        assertTrue(r.err().contains("100%"), "plain progress lines when not on a terminal: " + r.err());

        List<String> csv = Files.readAllLines(out.resolve("rank_sweep.csv"));
        assertEquals("scaling,rank,seed,step,loss,grad_norm", csv.getFirst());
        assertEquals(1 + 2 * 4 * 3 * 10, csv.size());
        Set<String> keys = new HashSet<>();
        for (String line : csv.subList(1, csv.size())) {
            String[] f = line.split(",");
            assertEquals(6, f.length, line);
            assertTrue(f[0].equals("lora") || f[0].equals("rslora"), line);
            assertTrue(Double.parseDouble(f[4]) > 0 && Double.parseDouble(f[5]) > 0, line);
            keys.add(f[0] + "/" + f[1] + "/" + f[2] + "/" + f[3]);
        }
        assertEquals(csv.size() - 1, keys.size(), "one row per (scaling, rank, seed, step)");

        JsonNode json = new ObjectMapper().readTree(out.resolve("rank_sweep.json").toFile());
        assertEquals(List.of("config", "results"), names(json));
        JsonNode cfg = json.get("config");
        assertTrue(cfg.isObject());
        assertEquals(16, cfg.get("dim").asInt());
        assertEquals(10, cfg.get("steps").asInt());
        assertEquals("reference", cfg.get("backend").asText());
        assertEquals(8.0, cfg.get("alpha").asDouble());
        JsonNode results = json.get("results");
        assertEquals(8, results.size());
        List<String> seen = new ArrayList<>();
        for (JsonNode row : results) {
            assertEquals(List.of("scaling", "rank", "seeds", "final_loss_mean", "final_loss_sd", "initial_grad_norm_mean"),
                    names(row));
            assertTrue(row.get("scaling").isTextual() && row.get("rank").isInt() && row.get("seeds").isInt(), row.toString());
            assertEquals(3, row.get("seeds").asInt());
            for (String k : List.of("final_loss_mean", "final_loss_sd", "initial_grad_norm_mean")) {
                assertTrue(row.get(k).isDouble() && row.get(k).asDouble() >= 0, k + " in " + row);
            }
            seen.add(row.get("scaling").asText() + row.get("rank").asInt());
        }
        assertEquals(List.of("lora1", "lora2", "lora4", "lora8", "rslora1", "rslora2", "rslora4", "rslora8"), seen);

        BufferedImage loss = ImageIO.read(out.resolve("loss_curves.png").toFile());
        assertNotNull(loss, "loss_curves.png is a readable PNG");
        assertEquals(1400, loss.getWidth());
        assertEquals(500, loss.getHeight());
        BufferedImage grad = ImageIO.read(out.resolve("grad_norm_vs_rank.png").toFile());
        assertNotNull(grad, "grad_norm_vs_rank.png is a readable PNG");
        assertEquals(700, grad.getWidth());
    }

    private static List<String> names(JsonNode n) {
        List<String> out = new ArrayList<>();
        n.fieldNames().forEachRemaining(out::add);
        return out;
    }

    /** --lr 1e30 diverged and printed "NaN ± 0.00000" with exit 0 and no word: a warning names the runs. */
    @Test
    void aDivergedSweepSaysSo() throws Exception {
        Path out = dir.resolve("diverged");
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--dim", "8", "--batch", "8", "--steps", "10", "--ranks", "2",
                "--seeds", "1", "--lr", "1e30", "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("rslora demo: warning: the loss is not finite for lora r=2, rslora r=2: those runs diverged"),
                r.err());
        CliRun ok = cli("demo", "--quick", "--backend", "reference", "--dim", "8", "--batch", "8", "--steps", "10", "--ranks", "2",
                "--seeds", "1", "--out", dir.resolve("sane").toString());
        assertEquals(0, ok.code(), ok.err());
        assertFalse(ok.err().contains("warning"), ok.err());
    }

    @Test
    void badOptionsGiveOneLineErrors() {
        record Case(int code, String fragment, String[] args) {
        }
        List<Case> cases = List.of(
                new Case(2, "--steps", new String[] {"demo", "--steps", "abc"}),
                new Case(2, "Unknown option: '--bogus' (see 'rslora help demo')", new String[] {"demo", "--bogus"}),
                new Case(1, "steps must be >= 1, got steps=0", new String[] {"demo", "--steps", "0"}),
                // 2147483647 seeds ran out of memory listing them, with a message naming no option
                new Case(1, "seeds must be in [1, 10000], got seeds=2147483647", new String[] {"demo", "--seeds", "2147483647"}),
                new Case(1, "seeds must be in [1, 10000], got 10001", new String[] {"demo", "--experiment", "dpo", "--seeds", "10001"}),
                new Case(1, "ranks must be ascending and distinct", new String[] {"demo", "--ranks", "4,4"}),
                new Case(1, "unknown backend 'nope'", new String[] {"demo", "--backend", "nope"}),
                new Case(1, "lr must be finite and >= 0", new String[] {"demo", "--lr", "-1"}),
                // named as the options the user typed, not as the config's fields (finalWindow, maxGradNorm)
                new Case(1, "(--final-window) must be in [1, steps=200], got 0", new String[] {"demo", "--final-window", "0"}),
                new Case(1, "(--max-grad-norm) must be finite and >= 0, got -1.0", new String[] {"demo", "--max-grad-norm", "-1"}));
        for (Case c : cases) {
            Path out = dir.resolve("never");
            String[] args = java.util.stream.Stream.concat(java.util.Arrays.stream(c.args()),
                    java.util.stream.Stream.of("--out", out.toString())).toArray(String[]::new);
            CliRun r = cli(args);
            assertEquals(c.code(), r.code(), String.join(" ", args) + ": " + r.err());
            assertEquals(1, r.err().lines().count(), "one line: " + r.err());
            assertTrue(r.err().startsWith("rslora: error: ") && r.err().contains(c.fragment()), r.err());
            assertFalse(Files.exists(out), "nothing written for " + String.join(" ", args));
        }
    }

    @Test
    void anOutFolderThatIsAFileIsNamedInTheError() throws Exception {
        Path file = Files.writeString(dir.resolve("results"), "keep");
        for (String experiment : List.of("rank", "dpo")) {
            CliRun r = cli("demo", "--experiment", experiment, "--out", file.toString());
            assertEquals(1, r.code(), r.err());
            assertEquals(1, r.err().lines().count(), "one line: " + r.err());
            assertTrue(r.err().startsWith("rslora: error: " + file + ": ") && r.err().contains("--out must be a folder"), r.err());
            assertEquals("keep", Files.readString(file));
        }
    }

    @Test
    void resultsAreStagedSoAFailedMoveLeavesWholeFilesAndNoTemporaryFolder() throws Exception {
        Path out = Files.createDirectories(dir.resolve("staged"));
        Files.writeString(out.resolve("rank_sweep.json"), "old");
        // a non-empty folder where rank_sweep.csv goes: moving the staged CSV over it fails
        Files.writeString(Files.createDirectories(out.resolve("rank_sweep.csv")).resolve("x"), "x");
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--dim", "8", "--batch", "8", "--steps", "3",
                "--ranks", "1,2", "--seeds", "1", "--out", out.toString());
        assertEquals(1, r.code(), r.err());
        assertTrue(r.err().contains("rank_sweep.csv"), r.err());
        try (var entries = Files.list(dir)) {
            assertEquals(List.of("staged"), entries.map(p -> p.getFileName().toString()).toList(),
                    "the staging folder next to --out is gone");
        }
        String json = Files.readString(out.resolve("rank_sweep.json"));
        // moved before the CSV failed (whole) or not at all (the old file): never a partial file
        assertTrue(json.equals("old") || new ObjectMapper().readTree(json).has("results"), json);
    }

    @Test
    void aRunThatFailsAfterMakingTheOutFolderRemovesIt() throws Exception {
        Path out = dir.resolve("made");
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--dim", "2000000000", "--out", out.toString());
        assertEquals(1, r.code(), r.err());
        assertEquals(1, r.err().lines().count(), "one line: " + r.err());
        assertFalse(Files.exists(out), "the --out folder this run made is removed again");
    }

    /** --out a/b/c made a and a/b too; a failed run removed only c, leaving the empty folders a/b. */
    @Test
    void aRunThatFailsAfterMakingTheOutFolderRemovesTheParentsItMadeToo() throws Exception {
        Path top = dir.resolve("new");
        Path out = top.resolve("sub").resolve("out");
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--dim", "2000000000", "--out", out.toString());
        assertEquals(1, r.code(), r.err());
        assertFalse(Files.exists(top), "the folders this run made are removed again");
        assertTrue(Files.isDirectory(dir), "the folder that existed is kept");
    }

    @Test
    void anOutFolderThatIsADanglingLinkIsNamedWithWhatIsWrong() throws Exception {
        // Files.createDirectories throws FileAlreadyExistsException(path) with no reason: the line was "rslora: error: PATH"
        Path link = Files.createSymbolicLink(dir.resolve("link"), dir.resolve("nowhere"));
        CliRun r = cli("demo", "--quick", "--backend", "reference", "--out", link.toString());
        assertEquals(1, r.code(), r.err());
        String line = r.err().strip();
        assertEquals("rslora: error: already exists: " + link, line);
        assertTrue(Files.isSymbolicLink(link), "the failed run removes only a folder it made, not the user's link");
    }

    @Test
    void anEmptyPathIsAUsageErrorNotTheWorkingFolder() {
        for (String[] args : List.of(new String[] {"demo", "--out", ""}, new String[] {"init", "--base", "b.safetensors",
                "--output", "", "--rank", "4", "--target-modules", "q_proj"}, new String[] {"layer", "--input", " ", "--output", "o"})) {
            CliRun r = cli(args);
            assertEquals(2, r.code(), String.join(" ", args) + ": " + r.err());
            assertTrue(r.err().contains("a path must not be empty"), r.err());
        }
    }
}
