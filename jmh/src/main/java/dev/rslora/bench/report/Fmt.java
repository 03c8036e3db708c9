package dev.rslora.bench.report;

import java.util.List;
import java.util.Locale;

/** Number formatting and Markdown tables of the results file. */
final class Fmt {
    static final String NONE = "not yet measured";

    private Fmt() {
    }

    /** Decimals for a value of this magnitude: about three significant digits. */
    static int decimals(double v) {
        double a = Math.abs(v);
        return a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : 4;
    }

    static String num(double v, int decimals) {
        if (Double.isNaN(v)) {
            return "n/a";
        }
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    /**
     * "52.6 ± 4.1": the error at the value's decimals, or more (up to 4) so that it keeps one
     * significant digit ("20.5 ± 0.01"); "52.6 ± n/a" when the error is undefined.
     */
    static String time(double ms, double err) {
        int d = decimals(ms);
        int e = err > 0 && Double.isFinite(err) ? Math.min(4, Math.max(d, (int) Math.ceil(-Math.log10(err) - 1e-9))) : d;
        return num(ms, d) + " ± " + num(err, e);
    }

    /** A ratio with its error: "1.234 ± 0.012". */
    static String ratio(double v, double err) {
        return num(v, 3) + " ± " + num(err, 3);
    }

    /** First-order error of a/b from the half-widths of a and b. */
    static double quotientError(double a, double ea, double b, double eb) {
        return Math.abs(a / b) * Math.hypot(ea / a, eb / b);
    }

    /** A Markdown table; every row must have the header's width. */
    static String table(List<String> header, List<List<String>> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("| ").append(String.join(" | ", header)).append(" |\n");
        sb.append("|").append("---|".repeat(header.size())).append("\n");
        for (List<String> row : rows) {
            if (row.size() != header.size()) {
                throw new IllegalArgumentException("table row " + row + " has " + row.size() + " cells, header " + header.size());
            }
            sb.append("| ").append(String.join(" | ", row)).append(" |\n");
        }
        return sb.toString();
    }
}
