package dev.rslora.bench.report;

import java.util.ArrayList;
import java.util.List;

/** The "every figure" table of a platform: each measurement once, with throughput and (for LoRA rows) R. */
final class FigureTable {
    private FigureTable() {
    }

    /** Throughput in GFLOP/s (CPU) or TFLOP/s (GPU). */
    static String throughput(Measurement m, boolean tera) {
        double g = m.gflops();
        return tera ? Fmt.num(g / 1e3, 1) : Fmt.num(g, 1);
    }

    static String write(Results res, Platform p) {
        boolean tera = p == Platform.GPU;
        List<Measurement> all = new ArrayList<>(res.of(p, Role.LORA));
        all.addAll(res.of(p, Role.BASE));
        List<List<String>> rows = new ArrayList<>();
        for (Measurement m : Paired.sorted(all)) {
            boolean lora = m.role() == Role.LORA;
            String r = lora ? Paired.of(res, m).map(x -> Fmt.ratio(x.r(), x.rError())).orElse("no base measured") : "—";
            rows.add(List.of(Integer.toString(m.shape().n()), m.shape().dLabel(), lora ? Integer.toString(m.shape().r()) : "—",
                    Catalog.byId(m.impl()).label(), Fmt.time(m.ms(), m.errorMs()), throughput(m, tera), r, m.errorKind()));
        }
        return Fmt.table(List.of("N", "d", "r", "implementation", "ms per step", tera ? "TFLOP/s" : "GFLOP/s", "R", "±"), rows);
    }
}
