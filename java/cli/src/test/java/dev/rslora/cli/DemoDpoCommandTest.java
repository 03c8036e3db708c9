package dev.rslora.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.rslora.demo.DpoConfig;
import dev.rslora.demo.DpoReport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** {@code rslora demo --experiment dpo}: presets, a tiny run end to end (table, CSV, JSON schema, plot), bad options. */
class DemoDpoCommandTest {
    @TempDir
    Path dir;

    private static DpoConfig parse(String... args) {
        DemoCommand cmd = new DemoCommand();
        new CommandLine(cmd).parseArgs(args);
        return cmd.dpoConfig();
    }

    @Test
    void presetsAreThePapersRowsAndRecipe() {
        DpoConfig d = parse("--experiment", "dpo");
        assertEquals(DpoConfig.PAPER_ROWS, d.rows());
        assertEquals(16.0, d.alpha());
        assertEquals(0.1, d.beta());
        assertEquals(0.1, d.dropout());
        assertEquals(0.1, d.warmupRatio());
        assertEquals(128, d.dim());
        assertEquals(256, d.responses());
        assertTrue(d.seeds() >= 3);
        DpoConfig q = parse("--experiment", "dpo", "--quick", "--steps", "20", "--seeds", "4", "--seed", "9", "--lr", "2e-4");
        assertEquals(20, q.steps());
        assertEquals(List.of(9L, 10L, 11L, 12L), q.seedValues());
        assertEquals(2e-4, q.lr());
    }

    @Test
    void tinyRunWritesTheTableCsvJsonAndPlot() throws Exception {
        Path out = dir.resolve("dpo");
        CliRun r = CliRun.of("demo", "--experiment", "dpo", "--quick", "--dim", "16", "--batch", "8", "--steps", "12", "--seeds", "2",
                "--out", out.toString());
        assertEquals(0, r.code(), r.err());
        List<String> rows = r.out().lines().filter(l -> l.matches("(base|LoRA r=16|LoRA r=256|rsLoRA r=256) .*")).toList();
        assertEquals(4, rows.size(), r.out());
        assertTrue(rows.get(0).contains("7.79") && rows.get(3).contains("8.09"), "the paper's column: " + rows);

        List<String> csv = Files.readAllLines(out.resolve(DpoReport.CSV));
        assertEquals(DpoReport.CSV_HEADER, csv.getFirst());
        assertEquals(1 + 1 + 3 * 2, csv.size(), "header, base, 3 rows x 2 seeds");
        assertTrue(csv.get(1).startsWith("base,0,,"), csv.get(1));
        for (String line : csv.subList(2, csv.size())) {
            String[] f = line.split(",");
            assertEquals(8, f.length, line);
            assertTrue(Double.isFinite(Double.parseDouble(f[4])) && Double.parseDouble(f[6]) >= 0, line);
        }

        JsonNode root = new ObjectMapper().readTree(out.resolve(DpoReport.JSON).toFile());
        JsonNode cfg = root.get("config");
        for (String k : new String[] {"dim", "responses", "batch", "steps", "alpha", "lr", "beta", "dropout", "warmup_ratio",
            "eval_prompts", "seeds", "backend", "optimizer", "schedule"}) {
            assertNotNull(cfg.get(k), "config." + k);
        }
        assertTrue(root.get("base").get("score").isDouble());
        JsonNode results = root.get("results");
        assertEquals(3, results.size());
        String[] scalings = {"lora", "lora", "rslora"};
        int[] ranks = {16, 256, 256};
        for (int i = 0; i < 3; i++) {
            JsonNode row = results.get(i);
            assertEquals(scalings[i], row.get("scaling").asText());
            assertEquals(ranks[i], row.get("rank").asInt());
            assertEquals(16.0, row.get("alpha").asDouble());
            assertEquals(2, row.get("seeds").asInt());
            for (String k : new String[] {"score_mean", "score_sd", "reward_accuracy_mean", "kl_mean"}) {
                assertTrue(row.get(k).isNumber(), k + " of row " + i);
            }
        }
        BufferedImage png = ImageIO.read(out.resolve("dpo_scores.png").toFile());
        assertNotNull(png);
        assertTrue(png.getWidth() >= 1200, "three panels side by side");
    }

    @Test
    void badOptionsAreRefusedWithOneLine() {
        Path out = dir.resolve("never");
        for (String[] args : new String[][] {
            {"demo", "--experiment", "dpo", "--ranks", "4,8", "--out", out.toString()},
            {"demo", "--experiment", "grpo", "--out", out.toString()},
            {"demo", "--experiment", "dpo", "--steps", "0", "--out", out.toString()},
            {"demo", "--experiment", "dpo", "--lr", "-1", "--out", out.toString()}}) {
            CliRun r = CliRun.of(args);
            assertTrue(r.code() != 0, String.join(" ", args));
            String line = r.err().strip();
            assertFalse(line.contains("\n"), line);
            assertTrue(line.startsWith("rslora: error: "), line);
        }
        assertFalse(Files.exists(out.resolve(DpoReport.JSON)));
    }
}
