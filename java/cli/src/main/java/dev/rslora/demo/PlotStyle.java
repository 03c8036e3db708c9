package dev.rslora.demo;

import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.style.Styler;

import java.awt.Color;

/** Shared look of the demo's PNG plots (XChart, rendered headless). */
final class PlotStyle {
    /** Matplotlib's "tab10" colours, cycled by series index. */
    private static final Color[] PALETTE = {new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c),
            new Color(0xd62728), new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f),
            new Color(0xbcbd22), new Color(0x17becf)};

    private PlotStyle() {
    }

    /** Renders without a display (the demo runs on servers and in CI). */
    static void headless() {
        if (System.getProperty("java.awt.headless") == null) {
            System.setProperty("java.awt.headless", "true");
        }
    }

    static Color color(int i) {
        return PALETTE[i % PALETTE.length];
    }

    /** A white XY chart with the legend inside the top-right corner. */
    static XYChart chart(int width, int height, String title, String xTitle, String yTitle) {
        headless();
        XYChart chart = new XYChartBuilder().width(width).height(height).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        Styler s = chart.getStyler();
        s.setChartBackgroundColor(Color.WHITE);
        s.setPlotBackgroundColor(Color.WHITE);
        s.setLegendPosition(Styler.LegendPosition.InsideNE);
        s.setLegendBorderColor(Color.LIGHT_GRAY);
        s.setPlotBorderVisible(true);
        return chart;
    }
}
