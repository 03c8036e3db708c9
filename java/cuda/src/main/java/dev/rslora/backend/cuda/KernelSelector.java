package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Which kernel family runs a fused layer step ({@value #PROPERTY} = auto | v1 | v2 | v3 | v4,
 * default auto), from the kernel table ({@link KernelTable}):
 * <ul>
 *   <li>a family can run a step here when it has a row for every step of the layer step
 *       ({@link #STEPS}) at the dtype (or "any"), every row runs on this architecture, the host can
 *       launch it, and the shape passes the family's refusal rules ({@link #refusal}: 16-bit T, and
 *       TMA and cp.async's 16-byte rows and bases, {@link FamilyStep#gemmRefusal});</li>
 *   <li>auto: among the families that can run, those validated on this architecture in every row
 *       of the layer step at this rank ({@link KernelTable#validatedFor});
 *       the fastest measured one, else by expected speed v3, v4, v2, v1; none validated → v1, the
 *       oracle;</li>
 *   <li>an explicit family that cannot run falls back along v3 → v4 → v1 (v2 → v1), each skip with
 *       its reason: never a wrong answer, never a silent change.</li>
 * </ul>
 * Pure; {@link CudaBackend} logs each distinct selection once.
 */
final class KernelSelector {
    /** System property: auto (default) or a family name. */
    static final String PROPERTY = "rslora.cuda.kernels";
    /** The steps a fused layer step needs (prep and vdb_reduce are optional rows). */
    static final List<String> STEPS = List.of("down", "forward", "vdb", "reduce", "da", "dx");
    /** Expected speed, fastest first, when nothing is measured. */
    static final List<String> PREFERENCE = List.of("v3", "v4", "v2", "v1");

    /** The layer's shape and whether every tensor base is 16-byte aligned. */
    record Shape(long n, long dIn, long dOut, long r, boolean aligned16) {
    }

    /** The family chosen, why, and which were passed over with their reasons. */
    record Selection(String family, String reason, Map<String, String> skipped) {
        @Override
        public String toString() {
            return family + " (" + reason + (skipped.isEmpty() ? "" : "; passed over: " + skipped) + ")";
        }
    }

    private KernelSelector() {
    }

    /** "sm90" for compute capability 9.0: how the table's validated column names an architecture. */
    static String smArch(int ccMajor, int ccMinor) {
        return "sm" + ccMajor + ccMinor;
    }

    /** The table's dtype token of t ("bf16"). */
    static String dtypeToken(DType t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    /** sm80 rows (SASS sm_80/86/89/90 + compute_90 PTX) run on compute capability 8.0 and newer; sm90a rows on 9.0 only. */
    static boolean runsOn(KernelTable.Row row, int ccMajor, int ccMinor) {
        return row.arch().equals("sm90a") ? ccMajor == 9 && ccMinor == 0 : ccMajor * 10 + ccMinor >= 80;
    }

    static String requested(String value) {
        String v = value == null || value.isBlank() ? "auto" : value.strip().toLowerCase(Locale.ROOT);
        if (v.matches("[0-9]+")) {
            v = "v" + v;
        }
        if (!v.equals("auto") && !v.matches("v[0-9]+")) {
            throw new IllegalArgumentException("-D" + PROPERTY + "=" + value + ": expected auto or a family (v1, v2, v3, v4)");
        }
        return v;
    }

    /**
     * Why {@code kernel} (a row's exported name) cannot take this step, or null: the v3 (TMA) and v4
     * (cp.async) GEMMs have no f32 kernels; their shape and alignment rules are the launch headers',
     * as {@link FamilyStep#gemmRefusal} states them (the offending value named).
     */
    static String refusal(String kernel, DType t, Shape s) {
        boolean tma = kernel.contains("_v3_");
        boolean cpAsync = kernel.contains("_v4_");
        if (!tma && !cpAsync) {
            return null;
        }
        if (t == DType.F32) {
            return (tma ? "v3 (TMA)" : "v4 (cp.async)") + " has no f32 kernels";
        }
        return FamilyStep.gemmRefusal(kernel, s.n(), s.dIn(), s.dOut(), s.r(), s.aligned16());
    }

    /** Why {@code family} cannot run this step here, or null. */
    static String whyNot(KernelTable table, String family, int ccMajor, int ccMinor, DType t, Shape s, Predicate<KernelTable.Row> launchable) {
        if (!table.families().contains(family)) {
            return "not a layer-step family of the kernel table";
        }
        for (String step : STEPS) {
            var row = table.find(family, step, dtypeToken(t), (int) Math.max(1, s.r()));
            if (row.isEmpty()) {
                return "no " + step + " row for " + dtypeToken(t);
            }
            KernelTable.Row r = row.get();
            if (!runsOn(r, ccMajor, ccMinor)) {
                return r.name() + " is " + r.arch() + " code, not for compute capability " + ccMajor + "." + ccMinor;
            }
            if (!launchable.test(r)) {
                return "the Java host does not launch " + r.name() + " yet";
            }
            String refused = refusal(r.name(), t, s);
            if (refused != null) {
                return refused;
            }
        }
        return null;
    }

    /**
     * The family for one layer step. {@code measuredMs}: step times measured on this device at this
     * shape (may be empty).
     */
    static Selection select(String requested, KernelTable table, int ccMajor, int ccMinor, DType t, Shape s,
                            Predicate<KernelTable.Row> launchable, Map<String, Double> measuredMs) {
        String req = requested(requested);
        Map<String, String> skipped = new LinkedHashMap<>();
        String arch = smArch(ccMajor, ccMinor);
        if (!req.equals("auto")) {
            List<String> chain = new ArrayList<>(List.of(req));
            if (req.equals("v3")) {
                chain.add("v4");
            }
            if (!req.equals("v1")) {
                chain.add("v1");
            }
            for (String f : chain) {
                String why = whyNot(table, f, ccMajor, ccMinor, t, s, launchable);
                if (why == null) {
                    return new Selection(f, f.equals(req) ? "-D" + PROPERTY + "=" + req : "-D" + PROPERTY + "=" + req + ", fallback", skipped);
                }
                skipped.put(f, why);
            }
            throw new IllegalStateException("no kernel family can run this step: " + skipped);
        }
        List<String> runnable = new ArrayList<>();
        for (String f : table.families()) {
            String why = whyNot(table, f, ccMajor, ccMinor, t, s, launchable);
            if (why != null) {
                skipped.put(f, why);
                continue;
            }
            boolean validated = table.validatedFor(f, dtypeToken(t), (int) Math.max(1, s.r()), arch);
            if (validated) {
                runnable.add(f);
            } else {
                skipped.put(f, "not validated on " + arch);
            }
        }
        if (runnable.isEmpty()) {
            if (whyNot(table, "v1", ccMajor, ccMinor, t, s, launchable) == null) {
                skipped.remove("v1");
                return new Selection("v1", "auto: no family validated on " + arch + " yet; v1, the oracle", skipped);
            }
            throw new IllegalStateException("no kernel family can run this step: " + skipped);
        }
        String best = null;
        for (String f : runnable) {
            Double ms = measuredMs.get(f);
            if (ms != null && ms > 0 && (best == null || ms < measuredMs.getOrDefault(best, Double.MAX_VALUE))) {
                best = f;
            }
        }
        if (best != null) {
            return new Selection(best, "auto: fastest measured of " + runnable + " validated on " + arch, skipped);
        }
        for (String f : PREFERENCE) {
            if (runnable.contains(f)) {
                return new Selection(f, "auto: validated on " + arch + ", expected fastest of " + runnable, skipped);
            }
        }
        String f = runnable.getFirst();
        return new Selection(f, "auto: validated on " + arch, skipped);
    }
}
