package dev.rslora.demo;

import java.util.List;
import java.util.Locale;

/** The table the demo prints: one line per (scaling, rank). */
public final class SummaryTable {
    private SummaryTable() {
    }

    /**
     * Formats rows as a fixed-width text table (with a header and the final-loss window).
     *
     * @param rows        the rows to print
     * @param finalWindow the final-loss window, shown in the header
     * @return the table, lines separated by newlines
     */
    public static String format(List<ConfigSummary> rows, int finalWindow) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "%-8s %6s %6s   %-24s %s%n", "scaling", "rank", "seeds",
                "final loss (last " + finalWindow + ")", "initial grad norm"));
        for (ConfigSummary r : rows) {
            sb.append(String.format(Locale.ROOT, "%-8s %6d %6d   %.5f ± %.5f        %.5f%n", r.scalingName(), r.rank(),
                    r.seeds(), r.finalLossMean(), r.finalLossSd(), r.initialGradNormMean()));
        }
        return sb.toString();
    }
}
