package dev.rslora.bench.report;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.ToIntFunction;

/**
 * The scaling tables: LoRA fwd+bwd time against r at fixed N and d, and against N at fixed r and d,
 * one column per implementation, each cell "ms (×growth over the first row)", so that how the
 * time grows is visible next to how the work grows (LoRA FLOPs ratio in its own column).
 */
final class Scaling {
    private Scaling() {
    }

    /** Time vs r, one table per (N, d); only groups with at least two ranks. */
    static String byRank(List<Measurement> lora) {
        return tables(lora, m -> m.shape().r(), "r", m -> "N = " + m.shape().n() + ", d = " + m.shape().dLabel(),
                m -> m.shape().n() + "/" + m.shape().dIn() + "/" + m.shape().dOut());
    }

    /** Time vs N, one table per (r, d); only groups with at least two N. */
    static String byTokens(List<Measurement> lora) {
        return tables(lora, m -> m.shape().n(), "N", m -> "r = " + m.shape().r() + ", d = " + m.shape().dLabel(),
                m -> m.shape().r() + "/" + m.shape().dIn() + "/" + m.shape().dOut());
    }

    private static String tables(List<Measurement> lora, ToIntFunction<Measurement> x, String xName,
                                 java.util.function.Function<Measurement, String> title,
                                 java.util.function.Function<Measurement, String> groupKey) {
        Map<String, List<Measurement>> groups = new LinkedHashMap<>();
        for (Measurement m : Paired.sorted(lora)) {
            groups.computeIfAbsent(groupKey.apply(m), k -> new ArrayList<>()).add(m);
        }
        StringBuilder sb = new StringBuilder();
        for (List<Measurement> g : groups.values()) {
            TreeSet<Integer> xs = new TreeSet<>();
            g.forEach(m -> xs.add(x.applyAsInt(m)));
            if (xs.size() < 2) {
                continue;
            }
            List<String> impls = g.stream().sorted(Paired.ORDER).map(Measurement::impl).distinct()
                    .sorted(java.util.Comparator.comparingInt(Paired::order)).toList();
            List<String> header = new ArrayList<>(List.of(xName, "work (×)"));
            impls.forEach(i -> header.add(Catalog.byId(i).label() + ", ms (×)"));
            List<List<String>> rows = new ArrayList<>();
            Measurement first = g.getFirst();
            double work0 = g.stream().filter(m -> x.applyAsInt(m) == xs.first()).findFirst().orElse(first).shape().loraFlop();
            for (int v : xs) {
                List<String> row = new ArrayList<>();
                row.add(Integer.toString(v));
                Measurement any = g.stream().filter(m -> x.applyAsInt(m) == v).findFirst().orElseThrow();
                row.add(Fmt.num(any.shape().loraFlop() / work0, 2));
                for (String impl : impls) {
                    Measurement at = g.stream().filter(m -> m.impl().equals(impl) && x.applyAsInt(m) == v).findFirst().orElse(null);
                    Measurement ref = g.stream().filter(m -> m.impl().equals(impl)).findFirst().orElse(null);
                    row.add(at == null ? "—" : Fmt.num(at.ms(), Fmt.decimals(at.ms())) + " (×" + Fmt.num(at.ms() / ref.ms(), 2) + ")");
                }
                rows.add(row);
            }
            sb.append("\n").append(title.apply(first)).append(":\n\n").append(Fmt.table(header, rows));
        }
        return sb.toString();
    }
}
