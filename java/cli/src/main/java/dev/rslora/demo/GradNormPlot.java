package dev.rslora.demo;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.lines.SeriesLines;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code grad_norm_vs_rank.png}: the mean global adapter gradient norm at step 0 against the rank,
 * log–log, for both scalings, with a dashed r^−1/2 guide through LoRA's lowest rank.
 */
public final class GradNormPlot {
    /**
     * The file name, in the output folder.
     */
    public static final String FILE = "grad_norm_vs_rank.png";

    private GradNormPlot() {
    }

    /**
     * Writes {@code dir}/grad_norm_vs_rank.png; returns the path.
     *
     * @param result the sweep
     * @param dir    the output folder (must exist)
     * @return the written file
     * @throws IOException if it cannot be written
     */
    public static Path write(SweepResult result, Path dir) throws IOException {
        List<ConfigSummary> rows = result.summaries();
        List<ConfigSummary> lora = rows.stream().filter(r -> r.scalingName().equals("lora")).toList();
        List<ConfigSummary> rs = rows.stream().filter(r -> r.scalingName().equals("rslora")).toList();
        XYChart chart = PlotStyle.chart(700, 500, "Adapter gradient norm at step 0", "rank r (log scale)",
                "global gradient norm (log, mean of " + result.config().seeds() + " seeds)");
        // x is plotted as log2(r) on a linear axis labelled with r: a log axis labels 2…9 of every
        // decade and crowds; powers of two read better here.
        chart.setCustomXAxisTickLabelsFormatter(GradNormPlot::powerOfTwoLabel);
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setYAxisLogarithmicDecadeOnly(false);
        chart.getStyler().setYAxisDecimalPattern("0.####");
        chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideSW);
        double lo = log2(rows.stream().mapToInt(ConfigSummary::rank).min().orElse(1));
        double hi = log2(rows.stream().mapToInt(ConfigSummary::rank).max().orElse(1));
        // integer ends: XChart sizes its ticks from the labels of the axis ends
        chart.getStyler().setXAxisMin(Math.floor(lo) - 1);
        chart.getStyler().setXAxisMax(Math.ceil(hi) + 1);
        add(chart, "LoRA (γ = α/r)", lora, PlotStyle.color(0));
        add(chart, "rsLoRA (γ = α/√r)", rs, PlotStyle.color(1));
        if (lora.size() >= 2) {
            double[] x = lora.stream().mapToDouble(r -> log2(r.rank())).toArray();
            double[] y = new double[x.length];
            for (int i = 0; i < x.length; i++) {
                y[i] = lora.getFirst().initialGradNormMean() * Math.pow(2, -(x[i] - x[0]) / 2);
            }
            XYSeries guide = chart.addSeries("∝ r^-1/2", x, y);
            guide.setMarker(SeriesMarkers.NONE);
            guide.setLineStyle(SeriesLines.DASH_DASH);
            guide.setLineColor(Color.GRAY);
        }
        Path file = dir.resolve(FILE);
        BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        return file;
    }

    /** The label of x = log2(r): "r" at integers (≥ 0), "1/2^k" below 0, nothing between. */
    static String powerOfTwoLabel(double x) {
        long k = Math.round(x);
        if (Math.abs(x - k) > 1e-9 || Math.abs(k) > 62) {
            return "";
        }
        return k >= 0 ? Long.toString(1L << k) : "1/" + (1L << -k);
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }

    private static void add(XYChart chart, String name, List<ConfigSummary> rows, Color color) {
        double[] x = rows.stream().mapToDouble(r -> log2(r.rank())).toArray();
        double[] y = rows.stream().mapToDouble(ConfigSummary::initialGradNormMean).toArray();
        XYSeries s = chart.addSeries(name, x, y);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setLineColor(color);
        s.setMarkerColor(color);
    }
}
