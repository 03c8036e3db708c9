package dev.rslora.demo;

import dev.rslora.core.Scaling;

import java.util.Locale;

/**
 * The console table of the DPO experiment, laid out like the rsLoRA paper's (one line per model,
 * base first), with the paper's judge scores beside the toy's for the rows the paper has:
 * base 7.79, LoRA r = 16 7.93, LoRA r = 256 7.96, rsLoRA r = 256 8.09 (all α = 16).
 */
public final class DpoTable {
    private DpoTable() {
    }

    /**
     * The paper's score of {@code row} at α = 16, or NaN when the paper has no such row.
     *
     * @param row   scaling and rank
     * @param alpha α
     * @return the paper's score, or NaN
     */
    public static double paperScore(DpoConfig.Row row, double alpha) {
        if (alpha != 16.0) {
            return Double.NaN;
        }
        if (row.scaling() == Scaling.LORA && row.rank() == 16) {
            return 7.93;
        }
        if (row.scaling() == Scaling.LORA && row.rank() == 256) {
            return 7.96;
        }
        if (row.scaling() == Scaling.RSLORA && row.rank() == 256) {
            return 8.09;
        }
        return Double.NaN;
    }

    /** The paper's base-model score. */
    public static final double PAPER_BASE = 7.79;

    /**
     * The table as fixed-width text.
     *
     * @param r the experiment's result
     * @return one line per row with ours and the paper's scores
     */
    public static String format(DpoResult r) {
        DpoConfig c = r.config();
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "score = expected true reward of the policy on %d held-out prompts "
                + "(the paper's column: its MT-Bench score)%n", c.evalPrompts()));
        sb.append(String.format(Locale.ROOT, "%-13s %5s %6s %6s   %-22s %10s   %10s %12s   %6s%n", "model", "rank", "alpha", "seeds",
                "score (mean ± sd)", "Δ vs base", "reward acc", "KL(π‖π_ref)", "paper"));
        sb.append(String.format(Locale.ROOT, "%-13s %5s %6s %6s   %-22s %10s   %10s %12s   %6.2f%n", "base", "-", "-", "-",
                String.format(Locale.ROOT, "%.5f", r.baseScore()), "-", "-", "0", PAPER_BASE));
        for (DpoResult.Summary s : r.summaries()) {
            double paper = paperScore(s.row(), c.alpha());
            sb.append(String.format(Locale.ROOT, "%-13s %5d %6s %6d   %-22s %+10.5f   %10.3f %12.6f   %6s%n", s.row().label(),
                    s.row().rank(), fmt(c.alpha()), s.seeds(),
                    String.format(Locale.ROOT, "%.5f ± %.5f", s.scoreMean(), s.scoreSd()), s.gain(r.baseScore()),
                    s.rewardAccuracyMean(), s.klMean(), Double.isNaN(paper) ? "-" : String.format(Locale.ROOT, "%.2f", paper)));
        }
        return sb.toString();
    }

    private static String fmt(double a) {
        return a == Math.rint(a) ? Long.toString((long) a) : Double.toString(a);
    }
}
