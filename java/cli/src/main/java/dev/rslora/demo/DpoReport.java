package dev.rslora.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The DPO experiment's files:
 * <ul>
 *   <li>{@code dpo_sweep.csv}: one line per run, {@code scaling,rank,alpha,seed,score,reward_accuracy,kl,final_loss};
 *       the base row has scaling "base", rank 0 and an empty seed;</li>
 *   <li>{@code dpo_sweep.json}: {@code {"config": {...}, "base": {"score": …, "reward_accuracy": 0, "kl": 0},
 *       "results": [{"scaling", "rank", "alpha", "seeds", "score_mean", "score_sd", "reward_accuracy_mean",
 *       "kl_mean", "final_loss_mean", "paper_score"}, …]}}, rows in config order.</li>
 * </ul>
 */
public final class DpoReport {
    /**
     * The CSV file name, in the output folder.
     */
    public static final String CSV = "dpo_sweep.csv";
    /**
     * The JSON file name, in the output folder.
     */
    public static final String JSON = "dpo_sweep.json";
    /**
     * The CSV header line: one row per (row, seed).
     */
    public static final String CSV_HEADER = "scaling,rank,alpha,seed,score,reward_accuracy,kl,final_loss";

    private DpoReport() {
    }

    /**
     * Writes {@code dir}/dpo_sweep.csv; returns the path.
     *
     * @param r   the experiment's result
     * @param dir the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path writeCsv(DpoResult r, Path dir) throws IOException {
        Path file = dir.resolve(CSV);
        int window = Math.max(1, r.config().steps() / 10);
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            w.write(CSV_HEADER);
            w.write('\n');
            w.write("base,0,," + "," + r.baseScore() + ",0.0,0.0,\n");
            for (DpoResult.Run run : r.runs()) {
                double fl = 0;
                for (int t = run.loss().length - window; t < run.loss().length; t++) {
                    fl += run.loss()[t] / window;
                }
                w.write(run.row().scalingName() + "," + run.row().rank() + "," + r.config().alpha() + "," + run.seed() + ","
                        + run.score() + "," + run.rewardAccuracy() + "," + run.kl() + "," + fl + "\n");
            }
        }
        return file;
    }

    /**
     * The JSON tree of {@code r}.
     *
     * @param r the experiment's result
     * @return the settings, per-row summaries and runs as JSON
     */
    public static ObjectNode tree(DpoResult r) {
        ObjectMapper om = new ObjectMapper();
        DpoConfig c = r.config();
        ObjectNode root = om.createObjectNode();
        ObjectNode cfg = root.putObject("config");
        cfg.put("policy", "pi(y|x) = softmax_y(E tanh(W2 tanh(W1 x))), W_l [d, d] ~ N(0, 1/d) frozen, E [K, d] ~ N(0, 1) frozen");
        cfg.put("true_reward", "r*(x, y) = E_y tanh(T2 tanh(T1 x)), T_l = W_l + U_l diag(s) V_l^T, s_i = teacher_scale/sqrt(1+i)");
        cfg.put("data", "per step: batch prompts x ~ N(0, I), two distinct responses from pi_ref, Bradley-Terry label on r*");
        cfg.put("adapters", "LoraLinear on W1 and W2, A ~ U(+-1/sqrt(d)), B = 0, F32, dropout on the adapter input");
        cfg.put("loss", "DPO sigmoid (TRL), reference = the same layers with the adapters disabled");
        cfg.put("optimizer", "Adafactor (HF Trainer optim=adafactor: scale_parameter=False, relative_step=False)");
        cfg.put("schedule", "linear with warmup_ratio (HF Trainer)");
        cfg.put("score", "E_x E_{y~pi} r*(x, y) over the held-out prompts");
        cfg.put("dim", c.dim());
        cfg.put("responses", c.responses());
        cfg.put("batch", c.batch());
        cfg.put("steps", c.steps());
        cfg.put("alpha", c.alpha());
        cfg.put("lr", c.lr());
        cfg.put("beta", c.beta());
        cfg.put("dropout", c.dropout());
        cfg.put("warmup_ratio", c.warmupRatio());
        cfg.put("teacher_scale", c.teacherScale());
        cfg.put("eval_prompts", c.evalPrompts());
        cfg.put("world_seed", c.worldSeed());
        ArrayNode seeds = cfg.putArray("seeds");
        c.seedValues().forEach(seeds::add);
        cfg.put("backend", r.backend());
        cfg.put("wall_seconds", r.wallSeconds());
        ObjectNode base = root.putObject("base");
        base.put("score", r.baseScore());
        base.put("reward_accuracy", 0.0);
        base.put("kl", 0.0);
        base.put("paper_score", DpoTable.PAPER_BASE);
        ArrayNode results = root.putArray("results");
        for (DpoResult.Summary s : r.summaries()) {
            ObjectNode row = results.addObject();
            row.put("scaling", s.row().scalingName());
            row.put("rank", s.row().rank());
            row.put("alpha", c.alpha());
            row.put("seeds", s.seeds());
            row.put("score_mean", s.scoreMean());
            row.put("score_sd", s.scoreSd());
            row.put("reward_accuracy_mean", s.rewardAccuracyMean());
            row.put("kl_mean", s.klMean());
            row.put("final_loss_mean", s.finalLossMean());
            double paper = DpoTable.paperScore(s.row(), c.alpha());
            if (Double.isNaN(paper)) {
                row.putNull("paper_score");
            } else {
                row.put("paper_score", paper);
            }
        }
        return root;
    }

    /**
     * Writes {@code dir}/dpo_sweep.json (2-space indented); returns the path.
     *
     * @param r   the experiment's result
     * @param dir the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path writeJson(DpoResult r, Path dir) throws IOException {
        Path file = dir.resolve(JSON);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), tree(r));
        return file;
    }
}
