package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.util.List;
import java.util.Locale;

/**
 * Which layer step the cuda backend runs for a layer shape: a {@code fused} family (every GEMM in
 * our kernels) or {@code split} ({@link SplitStep}: cuBLASLt for the two big GEMMs, our kernels for
 * the LoRA side). {@value #PROPERTY} = fused | split | auto (default auto) overrides.
 * <p>
 * The auto rule (a table, until hardware measurements decide per shape; issue 12):
 * <ul>
 *   <li>no cuBLASLt on this host → fused;</li>
 *   <li>a tensor-core fused family (v3, v4) validated on this architecture for the dtype, whose
 *       measured step time at this shape is known and below split's → fused with it;</li>
 *   <li>otherwise → split: the fused families available so far ran their GEMMs at 23–46 TFLOP/s on
 *       the 2026-12-04 H200 where cuBLAS ran the same shape at ~720–800, so split wins at any shape
 *       big enough to matter; at tiny shapes both are launch-bound.</li>
 * </ul>
 * Pure: the caller supplies what it knows; {@link CudaBackend} logs each distinct choice once.
 */
public final class StepPolicy {
    /** System property: fused, split or auto. */
    static final String PROPERTY = "rslora.cuda.step";

    /** The two kinds of layer step. */
    public enum Kind {
        /** Our kernels only (one fused family). */
        FUSED,
        /** cuBLASLt for the two big GEMMs, our kernels for the LoRA side ({@link SplitStep}). */
        SPLIT
    }

    /**
     * The choice and why, e.g. "split (cuBLASLt via ...; fused families here: v1, v2 ...)".
     *
     * @param kind   fused or split
     * @param reason why, for the log and {@code rslora info}
     */
    public record Choice(Kind kind, String reason) {
        @Override
        public String toString() {
            return kind.name().toLowerCase(Locale.ROOT) + " (" + reason + ")";
        }
    }

    /**
     * A fused family with a measured step time at this shape on this device (ms), or NaN when not
     * measured. {@code validatedHere}: the kernel table marks it validated on this architecture.
     */
    record Fused(String family, boolean tensorCores, boolean validatedHere, double measuredMs) {
    }

    private StepPolicy() {
    }

    /** Parses {@value #PROPERTY}; null or blank is auto. */
    static String requested(String value) {
        String v = value == null || value.isBlank() ? "auto" : value.strip().toLowerCase(Locale.ROOT);
        if (!v.equals("auto") && !v.equals("fused") && !v.equals("split")) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + value + ": expected fused, split or auto");
        }
        return v;
    }

    /**
     * The step for one layer shape. {@code lt} is the cuBLASLt binding's description or null when it
     * does not load ({@code ltMissing} says why); {@code splitMs} is split's measured time at this
     * shape or NaN; {@code fused} lists the families the selector could run here for the dtype.
     */
    static Choice choose(String requested, DType t, String lt, String ltMissing, double splitMs, List<Fused> fused) {
        String req = requested(requested);
        String families = fused.isEmpty() ? "none" : String.join(", ", fused.stream().map(Fused::family).toList());
        switch (req) {
            case "fused" -> {
                return new Choice(Kind.FUSED, "-D" + PROPERTY + "=fused; families here: " + families);
            }
            case "split" -> {
                if (lt == null) {
                    throw new IllegalStateException("-D" + PROPERTY + "=split but cuBLASLt is not usable here: " + ltMissing);
                }
                return new Choice(Kind.SPLIT, "-D" + PROPERTY + "=split; " + lt);
            }
            default -> {
            }
        }
        if (lt == null) {
            return new Choice(Kind.FUSED, "no cuBLASLt (" + ltMissing + "); families here: " + families);
        }
        for (Fused f : fused) {
            if (f.tensorCores() && f.validatedHere() && f.measuredMs() > 0 && splitMs > 0 && f.measuredMs() < splitMs) {
                return new Choice(Kind.FUSED, "fused " + f.family() + " measured " + f.measuredMs() + " ms < split " + splitMs
                        + " ms at this shape");
            }
        }
        return new Choice(Kind.SPLIT, lt + "; " + t.name().toLowerCase(Locale.ROOT) + " fused families here: " + families
                + " (none measured faster than split at this shape)");
    }
}
