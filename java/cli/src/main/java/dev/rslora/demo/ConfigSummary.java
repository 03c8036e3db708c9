package dev.rslora.demo;

import dev.rslora.core.Scaling;

import java.util.ArrayList;
import java.util.List;

/**
 * One row of the results: a (scaling, rank) pair aggregated over its seeds. The final loss of a run
 * is its mean loss over the last {@code finalWindow} steps; the sd is the sample standard
 * deviation over seeds (n − 1; 0 with one seed); the initial gradient norm is the global adapter
 * gradient norm at step 0.
 *
 * @param scaling             LoRA or rsLoRA
 * @param rank                the adapter rank r
 * @param seeds               the number of runs (seeds) aggregated
 * @param finalLossMean       the mean over seeds of each run's final loss (MSE)
 * @param finalLossSd         their sample standard deviation (0 with one seed)
 * @param initialGradNormMean the mean over seeds of the gradient norm at step 0
 */
public record ConfigSummary(Scaling scaling, int rank, int seeds, double finalLossMean, double finalLossSd,
                            double initialGradNormMean) {

    /**
     * Rows for every (scaling, rank) of {@code curves}, LoRA first, ranks ascending.
     *
     * @param curves      the runs of a sweep
     * @param finalWindow the number of last steps whose mean loss is a run's final loss
     * @return one row per (scaling, rank) present
     */
    public static List<ConfigSummary> of(List<RunCurve> curves, int finalWindow) {
        List<ConfigSummary> rows = new ArrayList<>();
        for (Scaling s : new Scaling[] {Scaling.LORA, Scaling.RSLORA}) {
            curves.stream().filter(c -> c.scaling() == s).mapToInt(RunCurve::rank).distinct().sorted().forEach(r -> {
                List<RunCurve> group = curves.stream().filter(c -> c.scaling() == s && c.rank() == r).toList();
                double[] fin = group.stream().mapToDouble(c -> c.finalLoss(finalWindow)).toArray();
                double g0 = group.stream().mapToDouble(c -> c.gradNorm()[0]).average().orElseThrow();
                rows.add(new ConfigSummary(s, r, group.size(), mean(fin), sampleSd(fin), g0));
            });
        }
        return rows;
    }

    static double mean(double[] v) {
        double s = 0;
        for (double x : v) {
            s += x;
        }
        return s / v.length;
    }

    static double sampleSd(double[] v) {
        if (v.length < 2) {
            return 0;
        }
        double m = mean(v);
        double s = 0;
        for (double x : v) {
            s += (x - m) * (x - m);
        }
        return Math.sqrt(s / (v.length - 1));
    }

    /**
     * "lora" or "rslora".
     *
     * @return the scaling's lower-case name
     */
    public String scalingName() {
        return RunCurve.label(scaling);
    }
}
