#!/usr/bin/env bash
# Compiles cuda/rslora_kernels.cu (every kernel family) into ONE fatbin:
#   SASS for sm_80, sm_86, sm_89, sm_90 plus compute_90 PTX (JIT for newer cards).
# Usage: native-build/build-kernels.sh OUTDIR      (Maven passes java/cuda/target/classes)
# Writes OUTDIR/dev/rslora/cuda/rslora_kernels.fatbin, OUTDIR/dev/rslora/cuda/kernels.properties
# (built=true|false and why: the Java side reports "kernels not built: ..." from it) and the
# ptxas -v report (registers, shared memory, spills per kernel and arch) to OUTDIR/../ptxas-report.txt,
# with a loud "SPILL WARNING" line per kernel that spills. A kernel that does not compile fails
# the script (and so the Maven build). Where nvcc is absent it says so and exits 0.
# Environment: NVCC (path to nvcc), RSLORA_NVCC_THREADS (nvcc --threads, default 2),
# RSLORA_NVCC_EXTRA (extra nvcc flags, e.g. -maxrregcount=32 to see the spill warning), RSLORA_FORCE_NO_NVCC=1 (behave as if nvcc were absent; used by the tests of this script).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
src_dir="$root/cuda"
out_root="$1"
res_dir="$out_root/dev/rslora/cuda"
fatbin="$res_dir/rslora_kernels.fatbin"
props="$res_dir/kernels.properties"
report="$(dirname "$out_root")/ptxas-report.txt"
mkdir -p "$res_dir"

archs="sm_80 sm_86 sm_89 sm_90"
ptx_arch="compute_90"

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
    } >"$props"
}

if ! nvcc_bin="$(find_nvcc)"; then
    rm -f "$fatbin"
    write_props false "nvcc absent at build time" none
    echo "rslora: CUDA kernels NOT built: nvcc absent at build time (not on PATH, not at /usr/local/cuda/bin/nvcc)"
    exit 0
fi
nvcc_version="$("$nvcc_bin" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -1)"

# Up to date when the fatbin, its properties and the report are newer than every source and this script.
if [[ -f "$fatbin" && -f "$props" && -f "$report" ]] && grep -q '^built=true' "$props"; then
    newer="$(find "$src_dir" -maxdepth 2 \( -name '*.cu' -o -name '*.cuh' -o -name '*.h' \) -newer "$fatbin" -print | head -1)"
    if [[ -z "$newer" && ! "$0" -nt "$fatbin" ]]; then
        echo "rslora: CUDA kernels up to date ($fatbin)"
        grep -h 'SPILL WARNING' "$report" || true
        exit 0
    fi
fi

gencode=()
for a in $archs; do
    gencode+=("-gencode" "arch=compute_${a#sm_},code=$a")
done
gencode+=("-gencode" "arch=$ptx_arch,code=$ptx_arch")

tmp_log="$(mktemp)"
trap 'rm -f "$tmp_log"' EXIT
start=$(date +%s)
echo "rslora: compiling CUDA kernels with $nvcc_bin (CUDA $nvcc_version) for $archs + $ptx_arch PTX"
if ! "$nvcc_bin" -std=c++17 -O3 -fatbin "${gencode[@]}" --threads "${RSLORA_NVCC_THREADS:-2}" \
        -Xptxas -v -Werror all-warnings ${RSLORA_NVCC_EXTRA:-} -o "$fatbin.tmp" "$src_dir/rslora_kernels.cu" >"$tmp_log" 2>&1; then
    cat "$tmp_log" >&2
    rm -f "$fatbin.tmp"
    echo "rslora: CUDA kernel compilation FAILED (see above)" >&2
    exit 1
fi
mv "$fatbin.tmp" "$fatbin"
elapsed=$(( $(date +%s) - start ))

# ptxas -v prints, per entry function and arch:
#   ptxas info : Compiling entry function 'NAME' for 'sm_80'
#       N bytes stack frame, S bytes spill stores, L bytes spill loads
#   ptxas info : Used R registers, ... B bytes smem, ...
awk -v nvcc="$nvcc_version" -v secs="$elapsed" '
BEGIN { printf "# ptxas -v report: nvcc %s, %s s\n# %-44s %-7s %5s %7s %6s %6s %6s\n", nvcc, secs, "kernel", "arch", "regs", "smem", "stack", "spillS", "spillL" }
/Compiling entry function/ { match($0, /function .[^'"'"']*/); fn = substr($0, RSTART + 10, RLENGTH - 10); match($0, /for .sm_[0-9a-z]*/); arch = substr($0, RSTART + 5, RLENGTH - 5) }
/bytes stack frame/ { stack = $1; sst = $5; sld = $9 }
/Used [0-9]+ registers/ {
    match($0, /Used [0-9]+/); regs = substr($0, RSTART + 5, RLENGTH - 5)
    smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH - 11) }
    printf "%-46s %-7s %5s %7s %6s %6s %6s\n", fn, arch, regs, smem, stack, sst, sld
    if (sst + 0 > 0 || sld + 0 > 0) { warn[++nw] = "SPILL WARNING: " fn " on " arch " spills " sst " bytes stored, " sld " bytes loaded" }
}
END { for (i = 1; i <= nw; i++) print warn[i] }
' "$tmp_log" >"$report"
{
    echo
    echo "# raw ptxas output"
    cat "$tmp_log"
} >>"$report"

write_props true "compiled at build time" "$nvcc_version"
kernels=$(grep -c "^rslora_" "$report" || true)
echo "rslora: CUDA kernels built in ${elapsed}s: $fatbin ($(stat -c %s "$fatbin") bytes, $kernels kernel×arch entries); ptxas report: $report"
if grep -q 'SPILL WARNING' "$report"; then
    echo "################################################################"
    grep 'SPILL WARNING' "$report"
    echo "################################################################"
fi
