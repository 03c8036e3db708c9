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
            java.util.Optional<Paired> pair = lora ? Paired.of(res, m) : java.util.Optional.empty();
            String r = lora ? pair.map(x -> Fmt.ratio(x.r(), x.rError())).orElse("no base measured") : "—";
            List<String> row = new ArrayList<>(List.of(Integer.toString(m.shape().n()), m.shape().dLabel(),
                    lora ? Integer.toString(m.shape().r()) : "—", Catalog.byId(m.impl()).label(), Fmt.time(m.ms(), m.errorMs()),
                    throughput(m, tera), r));
            if (tera) {  // the GPU's R divides by the fastest base of the run: say which
                row.add(pair.map(x -> baseName(x.base())).orElse("—"));
            }
            row.add(m.errorKind());
            rows.add(row);
        }
        List<String> header = new ArrayList<>(List.of("N", "d", "r", "implementation", "ms per step", tera ? "TFLOP/s" : "GFLOP/s", "R"));
        if (tera) {
            header.add("R ÷");
        }
        header.add("±");
        return Fmt.table(header, rows);
    }

    /** "torch-base 0.684 ms (peft.jsonl)": the base an R divides by. */
    static String baseName(Measurement b) {
        return b.impl() + " " + Fmt.num(b.ms(), 3) + " ms (" + b.source() + ")";
    }
}
