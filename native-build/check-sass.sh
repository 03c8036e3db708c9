#!/usr/bin/env bash
# The SASS checks that need cuobjdump (the GPU host has it; the development machines do not), on the
# fatbins that ship: every kernel of the sm90a image (cuda/kernels.table, image column) must hold
# HGMMA (wgmma) and UTMALDG (TMA loads), and no kernel of the families after v2 (kernel-table.sh
# strict: the v3/v4 GEMMs and the memory-bound rslora_mb_* kernels) may hold LDL/STL (local
# memory) in any arch's SASS.
#   native-build/check-sass.sh OUTDIR
# The fatbins come from gpu-bundle/lib/rslora-cuda-*.jar (what gpu-bundle.sh packed), else from
# java/cuda/target/classes, else from a fresh native-build/build-kernels.sh OUTDIR/classes. Writes
# OUTDIR/<image>.sass (the full disassembly) and prints one line per checked kernel and arch, then a
# summary line. Exit: 0 all hold; 1 a check failed (FAIL lines); 3 cuobjdump or the fatbins absent.
# Environment: CUOBJDUMP (path), RSLORA_FATBIN_DIR (take the fatbins from there), RSLORA_KERNEL_TABLE
# (table path; both for the tests of this script in test-build-kernels.sh).
set -uo pipefail
if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)" || { echo "check-sass: cannot create OUTDIR $1" >&2; exit 2; }
cd "$root"
# a malformed table would leave nothing (or only the rows above the bad line) to check: refuse it
if ! table_err="$("$here/kernel-table.sh" check 2>&1 >/dev/null)"; then
    echo "check-sass: FAIL: ${table_err:-kernel-table.sh check failed}"
    exit 1
fi
cuobjdump="${CUOBJDUMP:-$(command -v cuobjdump || { [[ -x /usr/local/cuda/bin/cuobjdump ]] && echo /usr/local/cuda/bin/cuobjdump; })}"
if [[ -z "$cuobjdump" || ! -x "$cuobjdump" ]]; then
    echo "check-sass: SKIPPED: cuobjdump not found (CUDA toolkit bin/)"
    exit 3
fi

# the fatbins
src=""
if [[ -n "${RSLORA_FATBIN_DIR:-}" ]]; then
    images="$RSLORA_FATBIN_DIR"
    src="$images"
fi
[[ -n "$src" ]] || jar="$(ls gpu-bundle/lib/rslora-cuda-*.jar 2>/dev/null | grep -v -e '-tests' -e '-sources' | head -1)"
if [[ -z "$src" && -n "${jar:-}" ]] && command -v python3 >/dev/null; then
    mkdir -p "$out/images"
    if python3 - "$jar" "$out/images" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.startswith("dev/rslora/cuda/") and n.endswith(".fatbin")]
    for n in names:
        open(sys.argv[2] + "/" + n.rsplit("/", 1)[1], "wb").write(z.read(n))
    sys.exit(0 if names else 1)
PY
    then src="$out/images (from $jar)"; images="$out/images"; fi
fi
if [[ -z "$src" && -f java/cuda/target/classes/dev/rslora/cuda/rslora_kernels.fatbin ]]; then
    images=java/cuda/target/classes/dev/rslora/cuda
    src="$images"
fi
if [[ -z "$src" ]]; then
    if "$here/build-kernels.sh" "$out/classes" >"$out/build-kernels.log" 2>&1; then
        images="$out/classes/dev/rslora/cuda"
        src="$images (built now)"
    else
        echo "check-sass: SKIPPED: no fatbins (no gpu-bundle jar, no Maven build, build-kernels.sh failed: $out/build-kernels.log)"
        exit 3
    fi
fi
echo "check-sass: fatbins from $src"

declare -A file=([main]="$images/rslora_kernels.fatbin" [sm90a]="$images/rslora_kernels_sm90a.fatbin")
strict=" $("$here/kernel-table.sh" strict | tr '\n' ' ') "
fails=0
checked=0
for img in main sm90a; do
    f="${file[$img]}"
    want="$("$here/kernel-table.sh" names "image=$img")"
    if [[ ! -f "$f" ]]; then
        if [[ -n "$want" ]]; then
            echo "FAIL $img image: $f missing, though the table lists kernels in it"
            fails=$((fails + 1))
        fi
        continue
    fi
    if ! "$cuobjdump" -sass "$f" >"$out/$img.sass" 2>"$out/$img.err"; then
        echo "FAIL $img image: cuobjdump -sass failed: $(head -2 "$out/$img.err" | tr '\n' ' ')"
        fails=$((fails + 1))
        continue
    fi
    # per (arch, function): which of HGMMA, UTMALDG, LDL, STL its SASS holds
    awk '
        /arch = sm_/ { match($0, /sm_[0-9a-z]+/); arch = substr($0, RSTART, RLENGTH) }
        /Function : / { if (fn != "") print arch, fn, h, u, l; fn = $NF; h = 0; u = 0; l = 0; next }
        fn != "" && /HGMMA/ { h = 1 }
        fn != "" && /UTMALDG/ { u = 1 }
        fn != "" && /[^A-Z](LDL|STL)[. ]/ { l = 1 }
        END { if (fn != "") print arch, fn, h, u, l }
    ' "$out/$img.sass" >"$out/$img.funcs"
    for k in $want; do
        if ! grep -q " $k " "$out/$img.funcs"; then
            echo "FAIL $k: in the table (image $img) but not in the SASS of $(basename "$f")"
            fails=$((fails + 1))
        fi
    done
    while read -r arch fn h u l; do
        why=""
        if [[ $img == sm90a ]]; then
            (( h == 1 )) || why+=" no HGMMA;"
            (( u == 1 )) || why+=" no UTMALDG;"
        fi
        if [[ "$strict" == *" $fn "* ]] && (( l == 1 )); then why+=" LDL/STL (local memory);"; fi
        if [[ $img == sm90a || "$strict" == *" $fn "* ]]; then
            checked=$((checked + 1))
            if [[ -n "$why" ]]; then
                echo "FAIL $fn $arch ($img):$why"
                fails=$((fails + 1))
            else
                echo "ok   $fn $arch ($img)$([[ $img == sm90a ]] && echo ': HGMMA, UTMALDG')"
            fi
        fi
    done <"$out/$img.funcs"
done
if (( fails > 0 )); then
    echo "check-sass: $fails failed of $checked kernel×arch checks"
    exit 1
fi
echo "$checked kernel×arch checks passed (sm90a kernels: HGMMA + UTMALDG; new families: no LDL/STL)"
