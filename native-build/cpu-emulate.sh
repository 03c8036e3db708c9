#!/usr/bin/env bash
# Runs the CUDA kernels WITHOUT a GPU: builds cuda/dev/rslora_dev.cu with g++ against the CPU
# emulation of cuda/dev/emu/ (every CUDA thread a fiber, barriers / collectives / mbarriers park it,
# AddressSanitizer + UBSan on every access) and runs the harness's own validation against its
# double-precision reference, after the emulation's own self-test (cuda/dev/emu/emu_selftest.cpp:
# every emulated instruction against hand-derived expectations, deadlock/divergence/misuse reports,
# deliberately broken kernels that must fail). Catches tail/bounds bugs, index and stride mistakes,
# mask mismatches, most missing barriers and waits; NOT true data races, tensor-core rounding,
# timing or the Java side (see cuda/dev/emu/cuda_emu.h and cuda/REVIEW.md).
#   native-build/cpu-emulate.sh [quick|full|build] [BUILD_DIR]
# The families come from cuda/kernels.table (native-build/kernel-table.sh families), in table order.
#     quick (default; the Java test CudaCpuEmulationTest runs it in CI): emuself (the emulation's own
#           self-test), selftest, validate FAMILY quick for every family (thread order alternating
#           forward / reverse), bigindex of the first and the last family (n·d > 2^31 elements:
#           64-bit index math, last row tile only), adamw quick in reverse order (fused AdamW +
#           gradient norm, 30 steps per tensor mix), adafactor quick in reverse order (fused Adafactor
#           bit for bit vs the CPU update's mirror, 6 steps per mix and option set), seqlogprob quick
#           (sequence log-probs vs a double reference)
#     full: emuself, selftest, validate of every family over every combination in two thread orders
#           (forward + reverse, or forward + shuffled), bigindex of every family, adamw (100 steps
#           per mix), adafactor (30 steps) in two thread orders, seqlogprob
#     build: only build BUILD_DIR/rslora_dev_emu and BUILD_DIR/emu_selftest
#   BUILD_DIR defaults to cuda/dev/build. RS_EMU_JOBS: how many runs at once (default: the CPU count).
#   Needs g++ and the CUDA toolkit headers (no nvcc, no driver).
# Exit: 0 all passed; 1 a failure; 2 bad arguments; 3 g++ or the CUDA headers absent (nothing run, reason printed).
set -uo pipefail
mode="${1:-quick}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
build="${2:-$root/cuda/dev/build}"
if [[ "$mode" != quick && "$mode" != full && "$mode" != build ]]; then
    echo "usage: $0 [quick|full|build] [BUILD_DIR]" >&2
    exit 2
fi
jobs_max="${RS_EMU_JOBS:-$(nproc 2>/dev/null || echo 1)}"
if ! [[ "$jobs_max" =~ ^[1-9][0-9]*$ ]]; then
    echo "cpu-emulate: RS_EMU_JOBS=$jobs_max is not a positive integer" >&2
    exit 2
fi
cxx="${CXX_EMU:-g++}"
if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "cpu-emulate: SKIPPED: $cxx not found"
    exit 3
fi
inc=""
for d in "${CUDA_HOME:-/nonexistent}/include" /usr/local/cuda/include; do
    if [[ -f "$d/cuda_fp16.h" && -f "$d/cuda_bf16.h" ]]; then inc="$d"; break; fi
done
if [[ -z "$inc" ]] && command -v nvcc >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v nvcc)")")/../include"
    [[ -f "$d/cuda_fp16.h" ]] && inc="$(cd "$d" && pwd)"
fi
if [[ -z "$inc" ]]; then
    echo "cpu-emulate: SKIPPED: CUDA toolkit headers (cuda_fp16.h, cuda_bf16.h) not found (set CUDA_HOME)"
    exit 3
fi
# absolute (a relative BUILD_DIR is the caller's; make runs in cuda/dev), and given to make relative to
# cuda/dev: make splits a path at its spaces, and the repo's own path may have one
build="$(mkdir -p "$build" && cd "$build" && pwd)" || { echo "cpu-emulate: cannot create BUILD_DIR ${2:-}" >&2; exit 2; }
mk_build="$(realpath --relative-to="$root/cuda/dev" "$build")"
if [[ "$mk_build" == *" "* ]]; then
    echo "cpu-emulate: BUILD_DIR $build: make cannot build into a folder whose own path has a space" >&2
    exit 2
fi
echo "cpu-emulate: building $build/rslora_dev_emu and $build/emu_selftest ($cxx, headers $inc)"
if ! make -s -j2 -C "$root/cuda/dev" BUILD="$mk_build" CXX_EMU="$cxx" CUDA_INC="$inc" "$mk_build/rslora_dev_emu" "$mk_build/emu_selftest"; then
    echo "cpu-emulate: BUILD FAILED"
    exit 1
fi
bin="$build/rslora_dev_emu"
if [[ "$mode" == build ]]; then
    echo "cpu-emulate: built $bin and $build/emu_selftest"
    exit 0
fi
# The runs are single-threaded (every CUDA thread is a fiber of one OS thread), so up to
# RS_EMU_JOBS of them (default: the number of CPUs) run at once; each one's report is printed in
# queue order once all have finished, so the output does not depend on the parallelism.
queue=()
enqueue() {  # order, args... (args "emuself": the emulation's own self-test binary)
    queue+=("$*")
}
run() {  # order, args...: prints this run's report; returns 1 on a failure
    local order="$1"
    shift
    local t0=$(date +%s)
    local out exe="$bin"
    [[ "$1" == emuself ]] && exe="$build/emu_selftest"
    out="$(RS_EMU_ORDER="$order" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" "$exe" "$@" 2>&1)"
    local rc=$?
    local line
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' <<<"$out" | tail -1)"
    if (( rc != 0 )); then
        grep -vE '^ok ' <<<"$out" | tail -40
        echo "cpu-emulate: FAIL $* (order $order, rc $rc): ${line:-no summary}"
        return 1
    fi
    echo "cpu-emulate: ok   $* (order $order, $(( $(date +%s) - t0 )) s): $line"
}
run_queue() {  # runs every queued run, at most jobs_max at once; sets fail
    local logs="$build/emu-runs" i running=0
    rm -rf "$logs" && mkdir -p "$logs"
    local t0=$(date +%s)
    for i in "${!queue[@]}"; do
        # shellcheck disable=SC2086  # a queued run is words without spaces
        ( run ${queue[$i]} >"$logs/$i.out" 2>&1; echo $? >"$logs/$i.rc" ) &
        if (( ++running >= jobs_max )); then
            wait -n
            running=$(( running - 1 ))
        fi
    done
    wait
    for i in "${!queue[@]}"; do
        cat "$logs/$i.out"
        [[ "$(cat "$logs/$i.rc" 2>/dev/null)" == 0 ]] || fail=1
    done
    echo "cpu-emulate: ${#queue[@]} runs, $jobs_max at a time, in $(( $(date +%s) - t0 )) s"
}
if ! families=($("$here/kernel-table.sh" families)) || (( ${#families[@]} == 0 )); then
    echo "cpu-emulate: FAIL: no families in cuda/kernels.table"
    exit 1
fi
fail=0
enqueue fwd emuself
enqueue fwd selftest
if [[ "$mode" == quick ]]; then
    orders=(fwd rev)
    for i in "${!families[@]}"; do enqueue "${orders[$((i % 2))]}" validate "${families[$i]}" quick; done
    enqueue fwd bigindex "${families[0]}"
    (( ${#families[@]} > 1 )) && enqueue rev bigindex "${families[${#families[@]} - 1]}"
    enqueue rev adamw quick
    enqueue rev adafactor quick
    enqueue fwd seqlogprob quick
else
    second=(rev shuffle)
    for i in "${!families[@]}"; do
        enqueue fwd validate "${families[$i]}"
        enqueue "${second[$((i % 2))]}" validate "${families[$i]}"
    done
    for i in "${!families[@]}"; do enqueue "${second[$((i % 2))]}" bigindex "${families[$i]}"; done
    enqueue fwd adamw
    enqueue shuffle adamw
    enqueue fwd adafactor
    enqueue shuffle adafactor
    enqueue rev seqlogprob
fi
run_queue
if (( fail )); then
    echo "cpu-emulate: FAILED"
    exit 1
fi
echo "cpu-emulate: all passed ($mode)"
