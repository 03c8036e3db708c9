#!/usr/bin/env bash
# Reads cuda/kernels.table (the one table of kernel versions; grammar in its header) for the shell
# side: the build checks, gpu-check.sh, cpu-emulate.sh and the harness Makefile.
#   native-build/kernel-table.sh check                 the grammar holds for every line (exit 1 with the line if not)
#   native-build/kernel-table.sh rows [FILTER...]      rows as tab-separated fields, in table order:
#       family step dtype name threads smem cluster arch image grid rmax validated
#   native-build/kernel-table.sh names [FILTER...]     the distinct exported names
#   native-build/kernel-table.sh families [FILTER...]  the layer-step families (those with a `down` row)
#   native-build/kernel-table.sh strict                the kernels the strict build and SASS checks cover: named by
#       a family after v2 and by no v1/v2 row (the v3/v4 GEMMs and the memory-bound rslora_mb_* kernels)
#   native-build/kernel-table.sh steps | grids         the names field 2 (step) and field 10 (grid) may take
# FILTER: family=v3, step=down, dtype=bf16, image=main, arch=sm90a, name=..., validated=none (all must hold).
# RSLORA_KERNEL_TABLE overrides the table path (tests).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
table="${RSLORA_KERNEL_TABLE:-$here/../cuda/kernels.table}"
[[ -f "$table" ]] || { echo "kernel-table: $table not found" >&2; exit 2; }
cmd="${1:-}"
[[ -n "$cmd" ]] || { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }
shift

# The names a row's step (field 2) and grid rule (field 10) may take, as the table's header lists them;
# any other is a typo the build or a run would otherwise meet later (a grid rule no launcher knows, a
# step no family lookup asks for). dev.rslora.backend.cuda.KernelTable.STEPS and GRIDS are the Java
# reader's copies; KernelTableTest compares them with `steps` and `grids`.
steps="down prep forward vdb vdb_reduce reduce da dx merge lora_up_add lora_dx_add dropout_apply dropout_add
    convert_to convert_from adamw grad_sumsq grad_norm_finish adafactor_stats adafactor_factors adafactor_update
    adafactor_clip adafactor_apply seq_logprob_rows seq_logprob_sum seq_logprob_backward"
grids="tiles_r_n tiles_dout_n tiles_din_n tiles_din_dout tiles_r_groups tiles_din_r_groups elementwise gradnorm one
    adafactor_items per_tensor tensor_threads rows batch_threads mb_rows flat_dout_128x256 flat_din_128x256
    flat_dout_128x128 flat_din_128x128 mb_vdb mb_da persistent_dout_n persistent_din_n"

# One awk program: parses every line, fails on a malformed one, prints the matching rows as TSV (all
# of them at the end: a malformed table prints no row, never the rows above the bad line).
parse() {
    awk -v filters="$*" -v steps="$steps" -v grids="$grids" '
    BEGIN {
        split("family step dtype name threads smem cluster arch image grid rmax validated", key, " ")
        for (i = 1; i <= 12; i++) col[key[i]] = i
        ns = split(steps, s)
        for (i = 1; i <= ns; i++) { step_ok[s[i]] = 1; step_list = step_list (i > 1 ? ", " : "") s[i] }
        ng = split(grids, g)
        for (i = 1; i <= ng; i++) { grid_ok[g[i]] = 1; grid_list = grid_list (i > 1 ? ", " : "") g[i] }
        nf = split(filters, fl, " ")
        for (i = 1; i <= nf; i++) {
            eq = index(fl[i], "=")
            k = substr(fl[i], 1, eq - 1)
            if (eq < 2 || !(k in col)) { printf "kernel-table: bad filter %s\n", fl[i] > "/dev/stderr"; failed = 1; exit 2 }
            want[col[k]] = substr(fl[i], eq + 1)
        }
    }
    /^[ \t]*$/ || /^[ \t]*\/\// { next }
    {
        line = $0
        if (line !~ /^[ \t]*RS_KERNEL\([^()]*\)[ \t]*$/) { bad("not a row, comment or blank line") }
        body = line
        sub(/^[ \t]*RS_KERNEL\(/, "", body)
        sub(/\)[ \t]*$/, "", body)
        n = split(body, f, ",")
        if (n != 12) { bad("has " n " fields, not 12") }
        for (i = 1; i <= 12; i++) {
            gsub(/^[ \t]+|[ \t]+$/, "", f[i])
            if (f[i] !~ /^[A-Za-z0-9_+]+$/) { bad("field " i " (" key[i] ") \"" f[i] "\" is not a token of [A-Za-z0-9_+]") }
        }
        if (f[1] !~ /^v[0-9]+$/) bad("family " f[1] " is not v<N>")
        if (!(f[2] in step_ok)) bad("unknown step " f[2] " (steps: " step_list ")")
        if (f[3] !~ /^(f32|bf16|f16|any)$/) bad("dtype " f[3])
        if (f[5] !~ /^[0-9]+$/ || f[5] + 0 < 1 || f[5] + 0 > 1024) bad("threads " f[5])
        if (f[6] !~ /^[0-9]+$/ || !int32(f[6])) bad("smem " f[6])
        if (f[7] !~ /^[0-9]+x[0-9]+x[0-9]+$/) bad("cluster " f[7])
        if (f[8] !~ /^(sm80|sm90a)$/) bad("arch " f[8])
        if (f[9] !~ /^(main|sm90a)$/) bad("image " f[9])
        if (!(f[10] in grid_ok)) bad("unknown grid rule " f[10] " (grid rules: " grid_list ")")
        if (f[11] !~ /^[0-9]+$/ || !int32(f[11])) bad("rmax " f[11])
        if (f[12] !~ /^(none|sm[0-9]+(\+sm[0-9]+)*)$/) bad("validated " f[12])
        if ((f[8] == "sm90a") != (f[9] == "sm90a")) bad("arch sm90a kernels live in the sm90a image and only they")
        seen = f[1] SUBSEP f[2] SUBSEP f[3]
        if ((seen SUBSEP f[11]) in dup) bad("second row for " f[1] "/" f[2] "/" f[3] " rmax " f[11] " (first on line " dup[seen SUBSEP f[11]] ")")
        if ((seen in anyr) || (f[11] == 0 && (seen in rows))) bad("an rmax 0 row must be the only row of " f[1] "/" f[2] "/" f[3])
        dup[seen SUBSEP f[11]] = NR
        rows[seen] = 1
        if (f[11] == 0) anyr[seen] = 1
        for (c in want) if (f[c] != want[c]) next
        out = f[1]
        for (i = 2; i <= 12; i++) out = out "\t" f[i]
        rows_out = rows_out out "\n"
    }
    END { if (!failed) printf "%s", rows_out }
    function int32(v) { sub(/^0+/, "", v); return length(v) < 10 || (length(v) == 10 && v <= "2147483647") }  # a Java int
    function bad(why) { printf "kernel-table: %s line %d %s: %s\n", FILENAME, NR, why, $0 > "/dev/stderr"; failed = 1; exit 1 }
    ' "$table"
}

case "$cmd" in
    check) parse >/dev/null && echo "kernel-table: $(parse | wc -l) rows ok" ;;
    rows) parse "$@" ;;
    names) parse "$@" | cut -f4 | awk '!seen[$0]++' ;;
    families) parse "step=down" "$@" | cut -f1 | awk '!seen[$0]++' ;;
    steps) printf '%s\n' $steps ;;
    grids) printf '%s\n' $grids ;;
    strict) parse | awk -F'\t' '$1 == "v1" || $1 == "v2" { old[$4] = 1; next } !($4 in seen) { seen[$4] = 1; order[++n] = $4 }
                                 END { for (i = 1; i <= n; i++) if (!(order[i] in old)) print order[i] }' ;;
    *) echo "kernel-table: unknown command $cmd (check, rows, names, families, strict, steps, grids)" >&2; exit 2 ;;
esac
