package dev.rslora.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;

/**
 * {@code rank_sweep.json}: {@code {"config": {...}, "results": [{"scaling": "lora"|"rslora",
 * "rank": R, "seeds": S, "final_loss_mean": …, "final_loss_sd": …, "initial_grad_norm_mean": …}, …]}}.
 */
public final class JsonReport {
    /**
     * The file name, in the output folder.
     */
    public static final String FILE = "rank_sweep.json";

    private JsonReport() {
    }

    /**
     * The JSON tree of {@code result}.
     *
     * @param result the sweep
     * @return the settings, summaries and curves as JSON
     */
    public static ObjectNode tree(SweepResult result) {
        ObjectMapper om = new ObjectMapper();
        SweepConfig c = result.config();
        ObjectNode root = om.createObjectNode();
        ObjectNode cfg = root.putObject("config");
        cfg.put("network", "y = tanh(W2 tanh(W1 x)), W_l [d, d] frozen ~ N(0, 1/d), no biases");
        cfg.put("teacher", "W_l + U_l diag(s) V_l^T, U_l and V_l Haar-random orthogonal, s_i = teacher_scale/sqrt(1+i)");
        cfg.put("adapters", "LoraLinear on both layers, A ~ U(+-1/sqrt(d)), B = 0, F32");
        cfg.put("loss", "mse (mean over batch and outputs)");
        cfg.put("dim", c.dim());
        cfg.put("batch", c.batch());
        cfg.put("steps", c.steps());
        ArrayNode ranks = cfg.putArray("ranks");
        c.ranks().forEach(ranks::add);
        ArrayNode seeds = cfg.putArray("seeds");
        c.seedValues().forEach(seeds::add);
        cfg.put("alpha", c.alpha());
        cfg.put("teacher_scale", c.teacherScale());
        cfg.put("optimizer", "AdamW");
        cfg.put("lr", c.optimizer().lr());
        ArrayNode betas = cfg.putArray("betas");
        betas.add(c.optimizer().beta1());
        betas.add(c.optimizer().beta2());
        cfg.put("eps", c.optimizer().eps());
        cfg.put("weight_decay", c.optimizer().weightDecay());
        if (c.maxGradNorm() > 0) {
            cfg.put("max_grad_norm", c.maxGradNorm());
        } else {
            cfg.putNull("max_grad_norm");
        }
        cfg.put("final_loss_window", c.finalWindow());
        cfg.put("backend", result.backend());
        ArrayNode results = root.putArray("results");
        for (ConfigSummary s : result.summaries()) {
            ObjectNode row = results.addObject();
            row.put("scaling", s.scalingName());
            row.put("rank", s.rank());
            row.put("seeds", s.seeds());
            row.put("final_loss_mean", s.finalLossMean());
            row.put("final_loss_sd", s.finalLossSd());
            row.put("initial_grad_norm_mean", s.initialGradNormMean());
        }
        return root;
    }

    /**
     * Writes {@code dir}/rank_sweep.json (2-space indented); returns the path.
     *
     * @param result the sweep
     * @param dir    the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path write(SweepResult result, Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), tree(result));
        return file;
    }
}
