package dev.rslora.bench.report;

import java.util.Comparator;
import java.util.List;
import java.util.Optional;

/**
 * A LoRA measurement with the frozen base its R divides by: on the CPU the implementation's own base
 * (same family, shape and run); on the GPU the fastest frozen base measured in the same run at that
 * N, d_in, d_out, whoever measured it (ours through cuBLAS or cuBLASLt, or torch's), named in the report.
 */
record Paired(Measurement lora, Measurement base) {

    /** R = LoRA time / base time. */
    double r() {
        return lora.ms() / base.ms();
    }

    double rError() {
        return Fmt.quotientError(lora.ms(), lora.errorMs(), base.ms(), base.errorMs());
    }

    /** The pair of {@code lora}, when its base was measured. */
    static Optional<Paired> of(Results res, Measurement lora) {
        Catalog.Impl impl = Catalog.byId(lora.impl());
        if (impl == null || impl.baseId() == null) {
            return Optional.empty();
        }
        if (impl.baseId().equals(Catalog.BEST_BASE)) {
            return res.bestBase(impl.platform(), lora.shape()).map(b -> new Paired(lora, b));
        }
        return res.base(impl.baseId(), lora.shape()).map(b -> new Paired(lora, b));
    }

    /** Report order: N, d_in, d_out, LoRA before base, r, then ours before the peers. */
    static final Comparator<Measurement> ORDER = Comparator.<Measurement>comparingInt(m -> m.shape().n())
            .thenComparingInt(m -> m.shape().dIn()).thenComparingInt(m -> m.shape().dOut())
            .thenComparing(Measurement::role).thenComparingInt(m -> m.role() == Role.LORA ? m.shape().r() : 0)
            .thenComparingInt(m -> order(m.impl())).thenComparing(Measurement::impl);

    static int order(String impl) {
        Catalog.Impl i = Catalog.byId(impl);
        return i == null ? 1000 : i.order();
    }

    static List<Measurement> sorted(List<Measurement> ms) {
        return ms.stream().sorted(ORDER).toList();
    }
}
