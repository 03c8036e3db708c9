package dev.rslora.demo;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.internal.chartpart.Chart;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code dpo_scores.png}, three panels: the toy's score gain over the base policy per trained row
 * (mean over seeds, error bar = sd); the paper's MT-Bench gain over its base model for the same rows
 * (in its own units: the two are compared by their ordering and relative spacing, not by value); and
 * the DPO training reward margin per step of each row (mean over seeds, a trailing average over a
 * thirtieth of the steps).
 */
public final class DpoPlot {
    /**
     * The file name, in the output folder.
     */
    public static final String FILE = "dpo_scores.png";

    private DpoPlot() {
    }

    /**
     * Writes {@code dir}/dpo_scores.png; returns the path.
     *
     * @param r   the experiment's result
     * @param dir the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path write(DpoResult r, Path dir) throws IOException {
        PlotStyle.headless();
        List<DpoResult.Summary> rows = r.summaries();
        List<String> names = new ArrayList<>();
        List<Double> gains = new ArrayList<>();
        List<Double> sds = new ArrayList<>();
        List<String> paperNames = new ArrayList<>();
        List<Double> paperGains = new ArrayList<>();
        for (DpoResult.Summary s : rows) {
            names.add(s.row().label());
            gains.add(s.gain(r.baseScore()));
            sds.add(s.scoreSd());
            double p = DpoTable.paperScore(s.row(), r.config().alpha());
            if (!Double.isNaN(p)) {
                paperNames.add(s.row().label());
                paperGains.add(p - DpoTable.PAPER_BASE);
            }
        }
        CategoryChart toy = bars("This library, toy DPO: score − base (mean ± sd of " + r.config().seeds() + " seeds)",
                "expected true reward gain", names, gains, sds, PlotStyle.color(0));
        List<Chart<?, ?>> charts = new ArrayList<>();
        charts.add(toy);
        if (!paperNames.isEmpty()) {
            charts.add(bars("rsLoRA paper (Table): MT-Bench score − base 7.79", "judge score gain", paperNames, paperGains, null,
                    PlotStyle.color(1)));
        }
        int window = Math.max(1, r.config().steps() / 30);
        XYChart curves = PlotStyle.chart(600, 450, "DPO reward margin (mean of seeds, " + window + "-step average)", "step",
                "chosen − rejected implicit reward");
        double[] steps = new double[r.config().steps()];
        for (int t = 0; t < steps.length; t++) {
            steps[t] = t + 1;
        }
        for (int i = 0; i < rows.size(); i++) {
            List<DpoResult.Run> runs = r.runsOf(rows.get(i).row());
            double[] mean = new double[steps.length];
            for (DpoResult.Run run : runs) {
                for (int t = 0; t < steps.length; t++) {
                    mean[t] += run.margin()[t] / runs.size();
                }
            }
            XYSeries s = curves.addSeries(rows.get(i).row().label(), steps, movingAverage(mean, window));
            s.setMarker(SeriesMarkers.NONE);
            s.setLineColor(PlotStyle.color(i));
        }
        curves.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        curves.getStyler().setXAxisDecimalPattern("0");
        curves.getStyler().setXAxisLabelRotation(60);
        curves.getStyler().setYAxisDecimalPattern("0.000");
        charts.add(curves);
        Path file = dir.resolve(FILE);
        BitmapEncoder.saveBitmap(charts, 1, charts.size(), file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    /** The trailing mean over the last {@code w} values (fewer at the start). */
    static double[] movingAverage(double[] x, int w) {
        double[] out = new double[x.length];
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            sum += x[i];
            if (i >= w) {
                sum -= x[i - w];
            }
            out[i] = sum / Math.min(i + 1, w);
        }
        return out;
    }

    private static CategoryChart bars(String title, String yTitle, List<String> names, List<Double> values, List<Double> errors,
                                      Color color) {
        CategoryChart c = new CategoryChartBuilder().width(600).height(450).title(title).xAxisTitle("model").yAxisTitle(yTitle)
                .build();
        Styler s = c.getStyler();
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setLegendVisible(false);
        s.setPlotBorderVisible(true);
        c.getStyler().setYAxisDecimalPattern("0.0000");
        CategorySeries series = errors == null ? c.addSeries("gain", names, values) : c.addSeries("gain", names, values, errors);
        series.setFillColor(color);
        return c;
    }
}
