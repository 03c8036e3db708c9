package dev.rslora.backend.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The kernel table, {@code cuda/kernels.table}: every exported kernel once, with its family (v1…),
 * layer-step role, dtype, launch shape (threads, dynamic shared memory, cluster), the fatbin image
 * that holds it, its grid rule, its rank class and the archs it passed the GPU check on. The same
 * file is an X-macro for the C++ harness and is read by the shell scripts; the build copies it into
 * the jar as {@value #RESOURCE}. Grammar (the table's header has the field meanings): blank lines,
 * {@code //} comments, and rows {@code RS_KERNEL(f1, ..., f12)}, fields tokens of
 * {@code [A-Za-z0-9_+]}; steps and grid rules from {@link #STEPS} and {@link #GRIDS}; no two rows share
 * (family, step, dtype, rmax), and an rmax 0 row is the only row of its (family, step, dtype).
 */
final class KernelTable {
    static final String RESOURCE = "/dev/rslora/cuda/kernels.table";
    private static final Pattern ROW = Pattern.compile("^\\s*RS_KERNEL\\(([^()]*)\\)\\s*$");
    private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_+]+");
    private static final Pattern CLUSTER = Pattern.compile("(\\d+)x(\\d+)x(\\d+)");

    /**
     * The names a row's step (field 2) may take, as the table's header lists them; any other is refused
     * naming its line (a typo would otherwise surface later, as a family the selector passes over).
     * native-build/kernel-table.sh has the shell reader's copy ({@code kernel-table.sh steps}).
     */
    static final List<String> STEPS = List.of("down", "prep", "forward", "vdb", "vdb_reduce", "reduce", "da", "dx", "merge",
            "lora_up_add", "lora_dx_add", "dropout_apply", "dropout_add", "convert_to", "convert_from", "adamw", "grad_sumsq",
            "grad_norm_finish", "adafactor_stats", "adafactor_factors", "adafactor_update", "adafactor_clip", "adafactor_apply",
            "seq_logprob_rows", "seq_logprob_sum", "seq_logprob_backward");

    /**
     * The grid rules a row (field 10) may name, as the table's header lists them (cuda/dev/steps.cuh
     * grid_of and {@link LaunchGeometry} implement them); any other is refused naming its line.
     * native-build/kernel-table.sh has the shell reader's copy ({@code kernel-table.sh grids}).
     */
    static final List<String> GRIDS = List.of("tiles_r_n", "tiles_dout_n", "tiles_din_n", "tiles_din_dout", "tiles_r_groups",
            "tiles_din_r_groups", "elementwise", "gradnorm", "one", "adafactor_items", "per_tensor", "tensor_threads", "rows",
            "batch_threads", "mb_rows", "flat_dout_128x256", "flat_din_128x256", "flat_dout_128x128", "flat_din_128x128", "mb_vdb",
            "mb_da", "persistent_dout_n", "persistent_din_n");

    /** Cluster dims of a launch (1x1x1: no cluster). */
    record Cluster(int x, int y, int z) {
        boolean none() {
            return x == 1 && y == 1 && z == 1;
        }
    }

    /** One row; {@code line} is its 1-based line in the source. */
    record Row(String family, String step, String dtype, String name, int threads, int smem, Cluster cluster, String arch,
               String image, String grid, int rmax, Set<String> validated, int line) {
        /** "sm90" etc.: whether this row passed the GPU check on that arch. */
        boolean validatedOn(String smArch) {
            return validated.contains(smArch);
        }
    }

    private final List<Row> rows;

    private KernelTable(List<Row> rows) {
        this.rows = List.copyOf(rows);
    }

    /** Every row, in table order. */
    List<Row> rows() {
        return rows;
    }

    /** The table of this jar (the build's copy of cuda/kernels.table). */
    static KernelTable load() {
        try (InputStream in = KernelTable.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE.substring(1) + " is missing from this build (native-build/build-kernels.sh copies it)");
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList(), RESOURCE.substring(1));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + RESOURCE + ": " + e, e);
        }
    }

    static KernelTable read(Path file) throws IOException {
        return parse(Files.readAllLines(file, StandardCharsets.UTF_8), file.toString());
    }

    /** Parses the lines of a table; a malformed line is an IllegalArgumentException naming it. */
    static KernelTable parse(List<String> lines, String source) {
        List<Row> out = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        Map<String, Boolean> anyRank = new HashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            String t = line.strip();
            if (t.isEmpty() || t.startsWith("//")) {
                continue;
            }
            int no = i + 1;
            Matcher m = ROW.matcher(line);
            if (!m.matches()) {
                throw bad(source, no, "not a row, comment or blank line", line);
            }
            String[] f = m.group(1).split(",", -1);
            if (f.length != 12) {
                throw bad(source, no, "has " + f.length + " fields, not 12", line);
            }
            for (int k = 0; k < f.length; k++) {
                f[k] = f[k].strip();
                if (!TOKEN.matcher(f[k]).matches()) {
                    throw bad(source, no, "field " + (k + 1) + " \"" + f[k] + "\" is not a token of [A-Za-z0-9_+]", line);
                }
            }
            if (!f[0].matches("v\\d+")) {
                throw bad(source, no, "family " + f[0] + " is not v<N>", line);
            }
            if (!STEPS.contains(f[1])) {
                throw bad(source, no, "unknown step " + f[1] + " (steps: " + String.join(", ", STEPS) + ")", line);
            }
            if (!f[2].matches("f32|bf16|f16|any")) {
                throw bad(source, no, "dtype " + f[2], line);
            }
            Matcher c = CLUSTER.matcher(f[6]);
            if (!c.matches()) {
                throw bad(source, no, "cluster " + f[6] + " is not XxYxZ", line);
            }
            Cluster cluster = new Cluster(integer(c.group(1), source, no, line), integer(c.group(2), source, no, line),
                    integer(c.group(3), source, no, line));
            if (cluster.x() < 1 || cluster.y() < 1 || cluster.z() < 1) {
                throw bad(source, no, "cluster " + f[6] + " has a dimension 0 (1x1x1: no cluster)", line);
            }
            if (!f[7].matches("sm80|sm90a") || !f[8].matches("main|sm90a") || f[7].equals("sm90a") != f[8].equals("sm90a")) {
                throw bad(source, no, "arch " + f[7] + " / image " + f[8] + " (sm90a kernels live in the sm90a image, and only they)", line);
            }
            if (!GRIDS.contains(f[9])) {
                throw bad(source, no, "unknown grid rule " + f[9] + " (grid rules: " + String.join(", ", GRIDS) + ")", line);
            }
            if (!f[11].matches("none|sm\\d+(\\+sm\\d+)*")) {
                throw bad(source, no, "validated " + f[11], line);
            }
            int threads = integer(f[4], source, no, line);
            if (threads < 1 || threads > 1024) {
                throw bad(source, no, "threads " + threads, line);
            }
            int rmax = integer(f[10], source, no, line);
            String key = f[0] + "/" + f[1] + "/" + f[2];
            Integer first = seen.putIfAbsent(key + "/" + rmax, no);
            if (first != null) {
                throw bad(source, no, "second row for " + key + " rmax " + rmax + " (first on line " + first + ")", line);
            }
            if (anyRank.containsKey(key) && (anyRank.get(key) || rmax == 0)) {
                throw bad(source, no, "an rmax 0 row must be the only row of " + key, line);
            }
            anyRank.merge(key, rmax == 0, (a, b) -> a || b);
            Set<String> validated = new LinkedHashSet<>();
            if (!f[11].equals("none")) {
                validated.addAll(List.of(f[11].split("\\+")));
            }
            out.add(new Row(f[0], f[1], f[2], f[3], threads, integer(f[5], source, no, line), cluster,
                    f[7], f[8], f[9], rmax, Set.copyOf(validated), no));
        }
        return new KernelTable(out);
    }

    private static int integer(String s, String source, int no, String line) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            throw bad(source, no, "\"" + s + "\" is not an integer", line);
        }
    }

    private static IllegalArgumentException bad(String source, int line, String why, String text) {
        return new IllegalArgumentException(source + " line " + line + " " + why + ": " + text.strip());
    }

    /** The layer-step families (those with a {@code down} row), in table order. */
    List<String> families() {
        Set<String> out = new LinkedHashSet<>();
        for (Row r : rows) {
            if (r.step().equals("down")) {
                out.add(r.family());
            }
        }
        return List.copyOf(out);
    }

    /** The dtypes a family runs its layer step in (those with a {@code down} row). */
    List<String> dtypes(String family) {
        Set<String> out = new LinkedHashSet<>();
        for (Row r : rows) {
            if (r.family().equals(family) && r.step().equals("down")) {
                out.add(r.dtype());
            }
        }
        return List.copyOf(out);
    }

    /**
     * The row of (family, step, dtype) for rank r: among the rows of that exact dtype (else the
     * {@code any} rows), the rmax 0 row, else the smallest rmax >= r, else the largest rmax (the
     * kernel then runs ceil(r / rmax) rank chunks). Empty when the family has no such step.
     */
    Optional<Row> find(String family, String step, String dtype, int r) {
        List<Row> exact = new ArrayList<>();
        List<Row> any = new ArrayList<>();
        for (Row row : rows) {
            if (row.family().equals(family) && row.step().equals(step)) {
                if (row.dtype().equals(dtype)) {
                    exact.add(row);
                } else if (row.dtype().equals("any")) {
                    any.add(row);
                }
            }
        }
        Row fit = null;
        Row largest = null;
        for (Row row : exact.isEmpty() ? any : exact) {
            if (row.rmax() == 0) {
                return Optional.of(row);
            }
            if (row.rmax() >= r && (fit == null || row.rmax() < fit.rmax())) {
                fit = row;
            }
            if (largest == null || row.rmax() > largest.rmax()) {
                largest = row;
            }
        }
        return Optional.ofNullable(fit != null ? fit : largest);
    }

    /**
     * Whether every layer-step row ({@link #LAYER_STEPS}) that the family runs at dtype and rank r
     * (its rank class, {@link #find}) passed the GPU check on {@code smArch}: what the selector's
     * {@code auto} asks. False when the family has no row of its own at that dtype.
     */
    boolean validatedFor(String family, String dtype, int r, String smArch) {
        boolean any = false;
        for (String step : LAYER_STEPS) {
            Optional<Row> row = find(family, step, dtype, r);
            if (row.isPresent()) {
                any |= row.get().dtype().equals(dtype);  // dtype-generic rows alone do not make a family run at dtype
                if (!row.get().validatedOn(smArch)) {
                    return false;
                }
            }
        }
        return any;
    }

    /** The steps a family's layer step (and merge) runs: what "the family is validated" is about. */
    static final Set<String> LAYER_STEPS = Set.of("prep", "down", "forward", "vdb", "vdb_reduce", "reduce", "da", "dx", "merge");

    /**
     * Whether every layer-step row ({@link #LAYER_STEPS}) of the family at dtype passed the GPU check
     * on {@code smArch} ("sm90", ...). Rows outside the layer step (optimizers, conversions, the
     * sequence log-probs, the split step's LoRA-only kernels) are validated on their own.
     */
    boolean validatedOn(String family, String dtype, String smArch) {
        boolean any = false;
        for (Row r : rows) {
            if (r.family().equals(family) && LAYER_STEPS.contains(r.step()) && (r.dtype().equals(dtype) || r.dtype().equals("any"))) {
                any |= r.dtype().equals(dtype);
                if (!r.validatedOn(smArch)) {
                    return false;
                }
            }
        }
        return any;
    }
}
