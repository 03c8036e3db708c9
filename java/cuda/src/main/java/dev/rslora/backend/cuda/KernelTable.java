package dev.rslora.backend.cuda;

import dev.rslora.tensor.DType;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The one table of kernel versions ({@code cuda/kernels.table}, copied into the jar as
 * {@value #RESOURCE}; grammar in its header): one row per (family, step, dtype) with the exported
 * name, threads per block, dynamic shared memory, cluster, architecture, image, grid rule, rmax and
 * the architectures it was validated on. This reader checks the same grammar as
 * native-build/kernel-table.sh (12 fields, tokens, value sets, arch sm90a ⇔ image sm90a, no duplicate
 * row) and fails naming the line. Pure: reading it loads nothing native.
 */
final class KernelTable {
    static final String RESOURCE = "/dev/rslora/cuda/kernels.table";
    private static final Pattern ROW = Pattern.compile("^\\s*RS_KERNEL\\(([^()]*)\\)\\s*$");
    private static final Pattern TOKEN = Pattern.compile("[A-Za-z0-9_+]+");
    private static final Pattern VALIDATED = Pattern.compile("none|sm[0-9]+(\\+sm[0-9]+)*");

    /** One row; {@code line} is its line number in the table. */
    record Row(String family, String step, String dtype, String name, int threads, int smem, DriverFfm.Cluster cluster, String arch,
               String image, String grid, int rmax, Set<String> validated, int line) {
        /** sm80 kernels (SASS sm_80/86/89/90 + compute_90 PTX) run on compute capability 8.0 and newer; sm90a only on 9.0. */
        boolean runsOn(int ccMajor, int ccMinor) {
            return arch.equals("sm90a") ? ccMajor == 9 && ccMinor == 0 : ccMajor * 10 + ccMinor >= 80;
        }

        boolean validatedOn(String smArch) {
            return validated.contains(smArch);
        }
    }

    private final List<Row> rows;
    private final String source;

    private KernelTable(List<Row> rows, String source) {
        this.rows = List.copyOf(rows);
        this.source = source;
    }

    List<Row> rows() {
        return rows;
    }

    String source() {
        return source;
    }

    /** "sm90" for compute capability 9.0: how the table's validated column names an architecture. */
    static String smArch(int ccMajor, int ccMinor) {
        return "sm" + ccMajor + ccMinor;
    }

    static String dtypeToken(DType t) {
        return t.name().toLowerCase(Locale.ROOT);
    }

    /** The table in this jar, or null when the build did not put one there. */
    static KernelTable load() {
        try (InputStream in = KernelTable.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return null;
            }
            return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), RESOURCE.substring(1));
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + RESOURCE + ": " + e, e);
        }
    }

    /** Parses the table; throws IllegalArgumentException naming {@code source}, the line and what is wrong. */
    static KernelTable parse(String text, String source) {
        List<Row> rows = new ArrayList<>();
        Map<String, Integer> seen = new HashMap<>();
        String[] lines = text.split("\n", -1);
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            int no = i + 1;
            if (line.isEmpty() || line.startsWith("//")) {
                continue;
            }
            var m = ROW.matcher(line);
            if (!m.matches()) {
                throw bad(source, no, "not a row, comment or blank line: " + line);
            }
            String[] f = m.group(1).split(",", -1);
            if (f.length != 12) {
                throw bad(source, no, "has " + f.length + " fields, not 12");
            }
            for (int k = 0; k < 12; k++) {
                f[k] = f[k].strip();
                if (!TOKEN.matcher(f[k]).matches()) {
                    throw bad(source, no, "field " + (k + 1) + " \"" + f[k] + "\" is not a token of [A-Za-z0-9_+]");
                }
            }
            if (!f[0].matches("v[0-9]+")) {
                throw bad(source, no, "family " + f[0] + " is not v<N>");
            }
            if (!Set.of("f32", "bf16", "f16", "any").contains(f[2])) {
                throw bad(source, no, "dtype " + f[2]);
            }
            int threads = integer(source, no, "threads", f[4]);
            if (threads < 1 || threads > 1024) {
                throw bad(source, no, "threads " + threads);
            }
            int smem = integer(source, no, "smem", f[5]);
            DriverFfm.Cluster cluster;
            try {
                cluster = DriverFfm.Cluster.parse(f[6]);
            } catch (IllegalArgumentException e) {
                throw bad(source, no, "cluster " + f[6]);
            }
            if (!f[7].equals("sm80") && !f[7].equals("sm90a")) {
                throw bad(source, no, "arch " + f[7]);
            }
            if (!f[8].equals("main") && !f[8].equals("sm90a")) {
                throw bad(source, no, "image " + f[8]);
            }
            if (f[7].equals("sm90a") != f[8].equals("sm90a")) {
                throw bad(source, no, "arch sm90a kernels live in the sm90a image and only they");
            }
            int rmax = integer(source, no, "rmax", f[10]);
            if (!VALIDATED.matcher(f[11]).matches()) {
                throw bad(source, no, "validated " + f[11]);
            }
            String key = f[0] + "/" + f[1] + "/" + f[2];
            Integer first = seen.putIfAbsent(key, no);
            if (first != null) {
                throw bad(source, no, "second row for " + key + " (first on line " + first + ")");
            }
            Set<String> validated = f[11].equals("none") ? Set.of() : new LinkedHashSet<>(List.of(f[11].split("\\+")));
            rows.add(new Row(f[0], f[1], f[2], f[3], threads, smem, cluster, f[7], f[8], f[9], rmax, validated, no));
        }
        return new KernelTable(rows, source);
    }

    private static int integer(String source, int line, String what, String v) {
        try {
            int x = Integer.parseInt(v);
            if (x >= 0) {
                return x;
            }
        } catch (NumberFormatException e) {
            // below
        }
        throw bad(source, line, what + " " + v + " is not a non-negative integer");
    }

    private static IllegalArgumentException bad(String source, int line, String what) {
        return new IllegalArgumentException(source + " line " + line + ": " + what);
    }

    /** The families in table order. */
    List<String> families() {
        return rows.stream().map(Row::family).distinct().toList();
    }

    /** The row of (family, step) for dtype t: the t row, else the dtype-generic ("any") one. */
    Optional<Row> row(String family, String step, DType t) {
        String d = dtypeToken(t);
        Optional<Row> exact = rows.stream().filter(r -> r.family().equals(family) && r.step().equals(step) && r.dtype().equals(d))
                .findFirst();
        return exact.or(() -> rows.stream().filter(r -> r.family().equals(family) && r.step().equals(step) && r.dtype().equals("any"))
                .findFirst());
    }
}
