#!/usr/bin/env bash
# Compiles the kernel fatbins, one per translation unit (cuda/kernels.table's `image` column says
# which kernel lives in which):
#   main   cuda/rslora_kernels.cu        → rslora_kernels.fatbin: SASS sm_80, sm_86, sm_89, sm_90 + compute_90 PTX
#   sm90a  cuda/rslora_kernels_sm90a.cu  → rslora_kernels_sm90a.fatbin: SASS sm_90a only (wgmma, setmaxnreg)
# Usage: native-build/build-kernels.sh OUTDIR      (Maven passes java/cuda/target/classes)
# Writes into OUTDIR/dev/rslora/cuda/: both fatbins, kernels.table (a copy of cuda/kernels.table,
# read by the Java side), kernels.properties (built=true|false and why: the Java side reports
# "kernels not built: ..." from it); and the ptxas -v report (registers, shared memory, stack,
# spills per kernel and arch, both images) to OUTDIR/../ptxas-report.txt, with a "SPILL WARNING"
# line per kernel that spills.
# The build FAILS (exit 1, nothing half-written left as current) when
#   - a kernel does not compile;
#   - the table is malformed (native-build/kernel-table.sh check);
#   - a kernel named in the table is missing from its image, or an image exports a kernel the
#     table does not name;
#   - a kernel of the new families (a row of a family other than v1/v2 whose kernel no v1/v2 row
#     uses: the v3/v4 GEMMs and the memory-bound rslora_mb_* kernels) has a stack frame or spills;
#   - ptxas warns C7510, C7511 or C7515 (wgmma serialised, accumulators touched outside wgmma).
# v1/v2 spills stay warnings (SPILL WARNING lines), as before. Where nvcc is absent it says so and exits 0.
# Environment: NVCC (path to nvcc), RSLORA_NVCC_THREADS (nvcc --threads, default 2),
# RSLORA_NVCC_EXTRA (extra nvcc flags, e.g. -maxrregcount=32 to see the spill checks fire),
# RSLORA_FORCE_NO_NVCC=1 (behave as if nvcc were absent), RSLORA_CUDA_DIR (the cuda/ tree to build,
# default the repo's; the tests of this script build small trees with deliberately bad kernels).
set -euo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
src_dir="${RSLORA_CUDA_DIR:-$root/cuda}"
src_dir="$(cd "$src_dir" && pwd)"
out_root="$1"
res_dir="$out_root/dev/rslora/cuda"
fatbin="$res_dir/rslora_kernels.fatbin"
fatbin90a="$res_dir/rslora_kernels_sm90a.fatbin"
table_copy="$res_dir/kernels.table"
props="$res_dir/kernels.properties"
report="$(dirname "$out_root")/ptxas-report.txt"
mkdir -p "$res_dir"

archs="sm_80 sm_86 sm_89 sm_90"
ptx_arch="compute_90"
archs90a="sm_90a"
table() { RSLORA_KERNEL_TABLE="$src_dir/kernels.table" "$here/kernel-table.sh" "$@"; }

find_nvcc() {
    if [[ "${RSLORA_FORCE_NO_NVCC:-0}" == "1" ]]; then
        return 1
    fi
    if [[ -n "${NVCC:-}" && -x "${NVCC}" ]]; then
        echo "$NVCC"
    elif command -v nvcc >/dev/null 2>&1; then
        command -v nvcc
    elif [[ -x /usr/local/cuda/bin/nvcc ]]; then
        echo /usr/local/cuda/bin/nvcc
    else
        return 1
    fi
}

write_props() {  # built, reason, nvcc version
    {
        echo "# written by native-build/build-kernels.sh"
        echo "built=$1"
        echo "reason=$2"
        echo "nvcc=$3"
        echo "archs=${archs// /,}"
        echo "ptx=$ptx_arch"
        echo "resource=dev/rslora/cuda/rslora_kernels.fatbin"
        echo "images=main,sm90a"
        echo "image.main=dev/rslora/cuda/rslora_kernels.fatbin"
        echo "image.sm90a=dev/rslora/cuda/rslora_kernels_sm90a.fatbin"
        echo "archs.sm90a=${archs90a// /,}"
        echo "table=dev/rslora/cuda/kernels.table"
    } >"$props"
}

# the table travels with the jar whether or not the kernels are built (the Java side reads it)
if ! table check >/dev/null; then
    table check || true
    echo "rslora: cuda/kernels.table is malformed (see above)" >&2
    exit 1
fi
cp "$src_dir/kernels.table" "$table_copy"

if ! nvcc_bin="$(find_nvcc)"; then
    rm -f "$fatbin" "$fatbin90a"
    write_props false "nvcc absent at build time" none
    echo "rslora: CUDA kernels NOT built: nvcc absent at build time (not on PATH, not at /usr/local/cuda/bin/nvcc)"
    exit 0
fi
nvcc_version="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)"

# Up to date when the fatbins, their properties and the report are newer than every source, the table and this script.
if [[ -f "$fatbin" && -f "$fatbin90a" && -f "$props" && -f "$report" ]] && grep -q '^built=true' "$props"; then
    newer="$(find "$src_dir" -maxdepth 2 \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' -o -name '*.table' \) -newer "$fatbin" -print | head -1)"
    if [[ -z "$newer" && ! "$0" -nt "$fatbin" && ! "$here/kernel-table.sh" -nt "$fatbin" ]]; then
        echo "rslora: CUDA kernels up to date ($fatbin, $(basename "$fatbin90a"))"
        grep -h 'SPILL WARNING' "$report" || true
        exit 0
    fi
fi

gencode=()
for a in $archs; do
    gencode+=("-gencode" "arch=compute_${a#sm_},code=$a")
done
gencode+=("-gencode" "arch=$ptx_arch,code=$ptx_arch")
gencode90a=("-gencode" "arch=compute_90a,code=sm_90a")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)
compile() {  # label, output, source, gencode...
    local label="$1" out="$2" src="$3"
    shift 3
    if ! "$nvcc_bin" -std=c++17 -O3 -fatbin "$@" --threads "${RSLORA_NVCC_THREADS:-2}" \
            -Xptxas -v -Werror all-warnings ${RSLORA_NVCC_EXTRA:-} -o "$out.tmp" "$src" >"$tmp/$label.log" 2>&1; then
        cat "$tmp/$label.log" >&2
        # no image of an earlier build stays beside the new table as if it were current
        rm -f "$fatbin" "$fatbin.tmp" "$fatbin90a" "$fatbin90a.tmp"
        write_props false "compilation failed ($label image)" "$nvcc_version"
        echo "rslora: CUDA kernel compilation FAILED ($label image, see above)" >&2
        exit 1
    fi
}
echo "rslora: compiling CUDA kernels with $nvcc_bin (CUDA $nvcc_version): main for $archs + $ptx_arch PTX, sm90a for $archs90a"
compile main "$fatbin" "$src_dir/rslora_kernels.cu" "${gencode[@]}"
compile sm90a "$fatbin90a" "$src_dir/rslora_kernels_sm90a.cu" "${gencode90a[@]}"
elapsed=$(( $(date +%s) - start ))

# ptxas -v prints, per entry function and arch:
#   ptxas info : Compiling entry function 'NAME' for 'sm_80'
#       N bytes stack frame, S bytes spill stores, L bytes spill loads
#   ptxas info : Used R registers, ... B bytes smem, ...
# → one row per (image, kernel, arch): image kernel arch regs smem stack spill_stores spill_loads
rows() {  # image label
    awk -v img="$1" '
    /Compiling entry function/ { match($0, /function .[^'"'"']*/); fn = substr($0, RSTART + 10, RLENGTH - 10); match($0, /for .sm_[0-9a-z]*/); arch = substr($0, RSTART + 5, RLENGTH - 5); stack = 0; sst = 0; sld = 0 }
    /bytes stack frame/ { stack = $1; sst = $5; sld = $9 }
    /Used [0-9]+ registers/ {
        match($0, /Used [0-9]+/); regs = substr($0, RSTART + 5, RLENGTH - 5)
        smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH - 11) }
        print img, fn, arch, regs, smem, stack, sst, sld
    }' "$tmp/$1.log"
}
{ rows main; rows sm90a; } >"$tmp/rows.txt"

# the kernels the strict checks cover: rows of families other than v1/v2 whose kernel no v1/v2 row uses
table strict | sort >"$tmp/strict.txt"

failures=()
# table ↔ images: every table name in its image (in every arch of it), every image entry in the table
for img in main sm90a; do
    table names "image=$img" | sort >"$tmp/want-$img.txt"
    awk -v img="$img" '$1 == img { print $2 }' "$tmp/rows.txt" | sort -u >"$tmp/have-$img.txt"
    while read -r k; do failures+=("table names $k (image $img) but the $img image has no such kernel"); done \
        < <(comm -23 "$tmp/want-$img.txt" "$tmp/have-$img.txt")
    while read -r k; do failures+=("the $img image exports $k, which cuda/kernels.table does not list"); done \
        < <(comm -13 "$tmp/want-$img.txt" "$tmp/have-$img.txt")
done
# no stack frame and no spills in the strict kernels
while read -r img fn arch regs smem stack sst sld; do
    if grep -qx "$fn" "$tmp/strict.txt" && (( stack > 0 || sst > 0 || sld > 0 )); then
        failures+=("$fn on $arch ($img image): $stack bytes stack frame, $sst bytes spill stores, $sld bytes spill loads (v3/v4 and memory-bound kernels must keep everything in registers)")
    fi
done <"$tmp/rows.txt"
# wgmma serialisation / accumulator warnings, anywhere
while read -r line; do failures+=("ptxas: $line"); done < <(grep -hE 'C75(10|11|15)' "$tmp/main.log" "$tmp/sm90a.log" || true)

{
    printf "# ptxas -v report: nvcc %s, %s s; images main (%s + %s PTX) and sm90a (%s)\n" "$nvcc_version" "$elapsed" "$archs" "$ptx_arch" "$archs90a"
    printf "# strict checks (no stack, no spill): %s kernels of the families after v2\n" "$(wc -l <"$tmp/strict.txt")"
    printf "# %-44s %-7s %5s %7s %6s %6s %6s %s\n" "kernel" "arch" "regs" "smem" "stack" "spillS" "spillL" "image"
    while read -r img fn arch regs smem stack sst sld; do
        printf "%-46s %-7s %5s %7s %6s %6s %6s %s\n" "$fn" "$arch" "$regs" "$smem" "$stack" "$sst" "$sld" "$img"
    done <"$tmp/rows.txt"
    awk '$7 + 0 > 0 || $8 + 0 > 0 { print "SPILL WARNING: " $2 " on " $3 " spills " $7 " bytes stored, " $8 " bytes loaded" }' "$tmp/rows.txt"
    for f in "${failures[@]}"; do echo "BUILD CHECK FAILED: $f"; done
    echo
    echo "# raw ptxas output, main image"
    cat "$tmp/main.log"
    echo
    echo "# raw ptxas output, sm90a image"
    cat "$tmp/sm90a.log"
} >"$report"

if (( ${#failures[@]} > 0 )); then
    rm -f "$fatbin.tmp" "$fatbin90a.tmp" "$fatbin" "$fatbin90a"
    write_props false "the build checks failed (see $report)" "$nvcc_version"
    echo "################################################################" >&2
    for f in "${failures[@]}"; do echo "rslora: BUILD CHECK FAILED: $f" >&2; done
    echo "################################################################" >&2
    echo "rslora: CUDA kernels REFUSED by the build checks; ptxas report: $report" >&2
    exit 1
fi
mv "$fatbin.tmp" "$fatbin"
mv "$fatbin90a.tmp" "$fatbin90a"
write_props true "compiled at build time" "$nvcc_version"
kernels=$(wc -l <"$tmp/rows.txt")
echo "rslora: CUDA kernels built in ${elapsed}s: $fatbin ($(stat -c %s "$fatbin") bytes), $(basename "$fatbin90a") ($(stat -c %s "$fatbin90a") bytes), $kernels kernel×arch entries; ptxas report: $report"
if grep -q 'SPILL WARNING' "$report"; then
    echo "################################################################"
    grep 'SPILL WARNING' "$report"
    echo "################################################################"
fi
