package dev.rslora.bench.report;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.XYStyler;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The PNG of R against r: one panel per reference shape that has data (CPU N=512 and N=2048 at
 * d=1024; GPU N=8192 at d=4096), one line per implementation (ours and the peers), x as log2(r)
 * labelled with r. A dashed line marks R = 1 (a free adapter).
 */
final class RatioPlot {
    /** The panels, in order; a panel without data is left out. */
    static final List<Panel> PANELS = List.of(new Panel(Platform.CPU, 512, 1024), new Panel(Platform.CPU, 2048, 1024),
            new Panel(Platform.GPU, 8192, 4096));

    record Panel(Platform platform, int n, int d) {
        String title() {
            return (platform == Platform.CPU ? "CPU fp32" : "GPU bf16, p=0.1") + ": N=" + n + ", d=" + d;
        }
    }

    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728),
            new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf)};

    private RatioPlot() {
    }

    /** The R values per implementation (in report order) at a panel's shape: impl → (r → R). */
    static Map<String, Map<Integer, Double>> series(Results res, Panel p) {
        Map<String, Map<Integer, Double>> out = new LinkedHashMap<>();
        for (Measurement m : Paired.sorted(res.of(p.platform(), Role.LORA))) {
            if (m.shape().n() != p.n() || m.shape().dIn() != p.d() || m.shape().dOut() != p.d()) {
                continue;
            }
            Paired.of(res, m).ifPresent(x -> out.computeIfAbsent(m.impl(), k -> new java.util.TreeMap<>()).put(m.shape().r(), x.r()));
        }
        return out;
    }

    /** Writes the PNG and returns the titles of its panels; writes nothing and returns none without data. */
    static List<String> write(Results res, Path png) throws IOException {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
        List<XYChart> charts = new ArrayList<>();
        List<String> titles = new ArrayList<>();
        Map<String, Color> colors = new LinkedHashMap<>(); // one colour per implementation across the panels
        for (Panel p : PANELS) {
            Map<String, Map<Integer, Double>> s = series(res, p);
            if (s.isEmpty()) {
                continue;
            }
            s.keySet().forEach(impl -> colors.computeIfAbsent(impl, k -> COLORS[colors.size() % COLORS.length]));
            charts.add(chart(p, s, colors));
            titles.add(p.title());
        }
        if (charts.isEmpty()) {
            return titles;
        }
        BitmapEncoder.saveBitmap(charts, 1, charts.size(), png.toString(), BitmapEncoder.BitmapFormat.PNG);
        return titles;
    }

    private static XYChart chart(Panel p, Map<String, Map<Integer, Double>> series, Map<String, Color> colors) {
        XYChart chart = new XYChartBuilder().width(560).height(560).title(p.title()).xAxisTitle("rank r")
                .yAxisTitle("R = LoRA fwd+bwd / base fwd+bwd").build();
        XYStyler st = chart.getStyler();
        st.setChartBackgroundColor(Color.WHITE);
        st.setPlotBackgroundColor(Color.WHITE);
        st.setLegendPosition(Styler.LegendPosition.OutsideS);
        st.setLegendBorderColor(Color.LIGHT_GRAY);
        st.setPlotBorderVisible(true);
        chart.setCustomXAxisTickLabelsFormatter(RatioPlot::powerOfTwo);
        double lo = Double.MAX_VALUE;
        double hi = -Double.MAX_VALUE;
        double yMax = 1.0;
        double yMin = 1.0;
        for (Map.Entry<String, Map<Integer, Double>> e : series.entrySet()) {
            double[] x = e.getValue().keySet().stream().mapToDouble(r -> log2(r)).toArray();
            double[] y = e.getValue().values().stream().mapToDouble(Double::doubleValue).toArray();
            for (int k = 0; k < x.length; k++) {
                lo = Math.min(lo, x[k]);
                hi = Math.max(hi, x[k]);
                yMax = Math.max(yMax, y[k]);
                yMin = Math.min(yMin, y[k]);
            }
            XYSeries s = chart.addSeries(Catalog.byId(e.getKey()).label(), x, y);
            Color c = colors.get(e.getKey());
            s.setMarker(SeriesMarkers.CIRCLE);
            s.setLineColor(c);
            s.setMarkerColor(c);
        }
        st.setXAxisMin(Math.floor(lo) - 1);
        st.setXAxisMax(Math.ceil(hi) + 1);
        // R lives near 1: start the axis just below the smallest value (or 0.9), not at 0
        st.setYAxisMin(Math.floor((yMin - 0.1) * 10) / 10);
        st.setYAxisMax(Math.ceil((yMax + 0.1) * 10) / 10);
        XYSeries one = chart.addSeries("R = 1 (free adapter)", new double[] {Math.floor(lo) - 1, Math.ceil(hi) + 1},
                new double[] {1, 1});
        one.setMarker(SeriesMarkers.NONE);
        one.setLineColor(Color.GRAY);
        one.setLineStyle(new java.awt.BasicStroke(1f, java.awt.BasicStroke.CAP_BUTT, java.awt.BasicStroke.JOIN_MITER, 10f,
                new float[] {6f, 4f}, 0f));
        return chart;
    }

    /** The label of x = log2(r) at integers ≥ 0, nothing elsewhere. */
    static String powerOfTwo(double x) {
        long k = Math.round(x);
        return Math.abs(x - k) > 1e-9 || k < 0 || k > 62 ? "" : Long.toString(1L << k);
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }
}
