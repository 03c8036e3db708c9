package dev.rslora.demo;

import dev.rslora.core.Scaling;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code loss_curves.png}: training loss vs step, one line per rank (mean over seeds), LoRA
 * (γ = α/r) on the left and rsLoRA (γ = α/√r) on the right with the same y range.
 */
public final class LossCurvePlot {
    /**
     * The file name, in the output folder.
     */
    public static final String FILE = "loss_curves.png";

    private LossCurvePlot() {
    }

    /** The mean loss per step over the seeds of (scaling, rank). */
    static double[] meanLoss(List<RunCurve> curves, Scaling scaling, int rank) {
        List<RunCurve> group = curves.stream().filter(c -> c.scaling() == scaling && c.rank() == rank).toList();
        int steps = group.getFirst().loss().length;
        double[] mean = new double[steps];
        for (RunCurve c : group) {
            for (int t = 0; t < steps; t++) {
                mean[t] += c.loss()[t] / group.size();
            }
        }
        return mean;
    }

    /**
     * Writes {@code dir}/loss_curves.png; returns the path.
     *
     * @param result the sweep
     * @param dir    the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path write(SweepResult result, Path dir) throws IOException {
        SweepConfig c = result.config();
        double[] steps = new double[c.steps()];
        for (int t = 0; t < steps.length; t++) {
            steps[t] = t;
        }
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        XYChart left = PlotStyle.chart(700, 500, "LoRA, γ = α/r", "step", "training loss (MSE, mean of " + c.seeds() + " seeds)");
        XYChart right = PlotStyle.chart(700, 500, "rsLoRA, γ = α/√r", "step", "training loss (MSE, mean of " + c.seeds() + " seeds)");
        for (int i = 0; i < c.ranks().size(); i++) {
            int r = c.ranks().get(i);
            for (Scaling s : new Scaling[] {Scaling.LORA, Scaling.RSLORA}) {
                double[] mean = meanLoss(result.curves(), s, r);
                for (double v : mean) {
                    if (Double.isFinite(v)) {
                        lo = Math.min(lo, v);
                        hi = Math.max(hi, v);
                    }
                }
                XYSeries series = (s == Scaling.LORA ? left : right).addSeries("r = " + r, steps, mean);
                series.setMarker(SeriesMarkers.NONE);
                series.setLineColor(PlotStyle.color(i));
            }
        }
        if (lo <= hi) {
            double pad = 0.03 * (hi - lo);
            for (XYChart ch : List.of(left, right)) {
                ch.getStyler().setYAxisMin(lo - pad);
                ch.getStyler().setYAxisMax(hi + pad);
            }
        }
        for (XYChart ch : List.of(left, right)) {
            ch.getStyler().setYAxisDecimalPattern("0.0000");
            ch.getStyler().setXAxisDecimalPattern("0");
            ch.getStyler().setXAxisMaxLabelCount(11);
            ch.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideSW);
        }
        Path file = dir.resolve(FILE);
        BitmapEncoder.saveBitmap(List.of(left, right), 1, 2, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }
}
