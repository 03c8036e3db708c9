package dev.rslora.demo;

import java.util.List;

/**
 * The outcome of a DPO experiment: the base row and, per trained row and seed, the held-out
 * evaluation and the training curves.
 *
 * @param config      the settings
 * @param backend     the backend name
 * @param baseScore   E_x E_{y~π_ref} r*(x, y): the base row's score
 * @param runs        one per (row, seed), rows in config order, seeds ascending within a row
 * @param wallSeconds the experiment's wall time
 */
public record DpoResult(DpoConfig config, String backend, double baseScore, List<Run> runs, double wallSeconds) {

    /** Copies the runs into an unmodifiable list. */
    public DpoResult {
        runs = List.copyOf(runs);
    }

    /**
     * One trained row of one seed.
     *
     * @param row            scaling and rank
     * @param seed           the training seed
     * @param score          expected true reward of the trained policy on the held-out prompts
     * @param rewardAccuracy held-out reward accuracy (TRL's: chosen implicit reward strictly larger)
     * @param kl             mean KL(π ‖ π_ref) over the held-out prompts
     * @param loss           DPO loss per step
     * @param margin         mean reward margin per step
     */
    public record Run(DpoConfig.Row row, long seed, double score, double rewardAccuracy, double kl, double[] loss, double[] margin) {
    }

    /**
     * Mean and sample standard deviation over the seeds of one row.
     *
     * @param row                scaling and rank
     * @param seeds              the number of seeds aggregated
     * @param scoreMean          the mean held-out score
     * @param scoreSd            its sample standard deviation (0 with one seed)
     * @param rewardAccuracyMean the mean held-out reward accuracy, in [0, 1]
     * @param klMean             the mean KL(π ‖ π_ref), nats
     * @param finalLossMean      the mean DPO loss over the last tenth of the steps
     */
    public record Summary(DpoConfig.Row row, int seeds, double scoreMean, double scoreSd, double rewardAccuracyMean, double klMean,
                          double finalLossMean) {
        /**
         * Score gain over the base row.
         *
         * @param baseScore the base row's score
         * @return scoreMean − baseScore
         */
        public double gain(double baseScore) {
            return scoreMean - baseScore;
        }
    }

    /**
     * The runs of {@code row}.
     *
     * @param row a configured row
     * @return its runs, seeds ascending (empty for an unknown row)
     */
    public List<Run> runsOf(DpoConfig.Row row) {
        return runs.stream().filter(r -> r.row().equals(row)).toList();
    }

    /**
     * One summary per configured row, in config order.
     *
     * @return the summaries
     */
    public List<Summary> summaries() {
        return config.rows().stream().map(this::summary).toList();
    }

    /**
     * The summary of {@code row}; the final loss is the mean over the last tenth of the steps.
     *
     * @param row a configured row
     * @return its mean and spread over the seeds
     */
    public Summary summary(DpoConfig.Row row) {
        List<Run> rs = runsOf(row);
        int n = rs.size();
        double mean = 0;
        double acc = 0;
        double kl = 0;
        double fl = 0;
        int window = Math.max(1, config.steps() / 10);
        for (Run r : rs) {
            mean += r.score() / n;
            acc += r.rewardAccuracy() / n;
            kl += r.kl() / n;
            double w = 0;
            for (int t = r.loss().length - window; t < r.loss().length; t++) {
                w += r.loss()[t] / window;
            }
            fl += w / n;
        }
        double var = 0;
        for (Run r : rs) {
            var += (r.score() - mean) * (r.score() - mean);
        }
        double sd = n > 1 ? Math.sqrt(var / (n - 1)) : 0.0;
        return new Summary(row, n, mean, sd, acc, kl, fl);
    }
}
