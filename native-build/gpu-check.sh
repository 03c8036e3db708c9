#!/usr/bin/env bash
# The GPU check, run on a GPU host from the repo root, after native-build/gpu-bundle.sh packed
# gpu-bundle/ (where Maven is) and the folder was copied along:
#   native-build/gpu-check.sh LOGDIR [--force]
# 1 env        driver, GPU, CUDA toolkit and cuBLAS libraries found
# 2 jre        unpack gpu-bundle/jre.tar.xz
# 3 gpu-tests  the JUnit @Tag("gpu") tests with the bundled runtime (JUnit XML in LOGDIR/junit);
#   cublas     the cuBLAS binding those tests used (JCublas 12.6.0 or java.lang.foreign, and the library)
# 4 dev-build  make -C cuda/dev (needs nvcc; SASS for sm_80 and sm_90a)
# 5 cuda/dev (families of cuda/kernels.table, native-build/kernel-table.sh families; those with a
#   layer-step row not yet validated on hardware first, then the rest): dev-selftest; dev-validate-F
#   (the whole step vs the double reference) and dev-bench-F (LOGDIR/dev-bench-F.jsonl: one line per
#   part of the step at 8192x4096x4096) for every family; then dev-bigindex-F (n·d > 2^31, ~25 GB)
#   and dev-oracle-F (F ≠ v1: the whole step vs v1 ON THE DEVICE at large shapes), only for a family
#   that brings kernels no family checked before it ran; dev-adamw-full, dev-adamw-bench,
#   dev-adafactor-full, dev-adafactor-bench, dev-seqlogprob-full, dev-seqlogprob-bench;
#   dev-memcheck-F, dev-racecheck-F, dev-synccheck-F (compute-sanitizer on `validate F quick`,
#   families after v2); dev-sass (native-build/check-sass.sh: cuobjdump -sass of the shipped
#   fatbins: every sm90a-image kernel holds HGMMA and UTMALDG, no kernel of the families after v2
#   holds LDL/STL).
# 6 benchmarks native-build/gpu-bench.sh LOGDIR: PEFT peer and GPU JMH (gpu-info.csv, peft.jsonl,
#              jmh-gpu-r*.json); jmh/bench.sh gpu-import LOGDIR turns them into bench/RESULTS.md
# Every step writes LOGDIR/<step>.log; the run ends with one table (LOGDIR/summary.txt) and the same
# rows as JSON lines (LOGDIR/summary.jsonl: step, state, seconds, summary), and exits 0 only when no
# step failed. Without an NVIDIA driver it says so, skips the GPU steps and exits 3 (--force runs them
# anyway, to test this script on a machine without a GPU).
#
# Time budget: 8 minutes (RSLORA_CHECK_BUDGET_S, default 480). Steps 2-5 leave RSLORA_BENCH_RESERVE_S
# (default 150) to the benchmarks (the runtime's unpacking, which they need too, may use it); each
# step's timeout is cut to what is left; a step that would get
# less than it needs is recorded SKIP with "budget: ...", and so is one the cut timeout stopped
# (never a budget cut reported as a failure). The steps run in order of value for a short run: what is new on hardware
# first. Per step, from the 2026-12-04 H200 run (../shared/gpu-runs/2026-12-04-h200/gpu-check:
# measured) or scaled from it: env + jre 4 s (measured 0 + 3) | gpu-tests ~120 s (84 then; the split,
# family, Adafactor and seq-logprob GPU tests came since) | dev-build ~90 s (14 with v1/v2; now ~3x the
# kernels plus sm_90a SASS) | selftest 1 s | validate + bench: v1 21 s, v2 22 s (measured), v3, v4
# ~25 s each | bigindex + oracle ~35 s per family that brings kernels | optimizers ~20 s |
# compute-sanitizer on v3, v4 ~250 s | dev-sass 5 s | benchmarks 81 s measured (the peer and 4 JMH
# methods x 3 ranks then), ~4-5 min now (estimated, not measured: native-build/gpu-bench.sh's header)
# -> ~1000 s in all. The reserve (150 s) is a floor for a short run, not the benchmarks' length: they
# get whatever the earlier steps leave, and run their parts in order of value (our CUDA-event
# timings, the peers, JMH rank by rank, the other families), so 150 s covers the first of them.
# At the default budget the SASS check, v3/v4 validation and every family's bench run, and
# the v1 oracle, the sanitizers, the optimizers and the large-shape checks are what a short run
# SKIPs (each row says so); in a 15-minute device session run it with RSLORA_CHECK_BUDGET_S=900.
# RSLORA_CHECK_BUDGET_S and RSLORA_BENCH_RESERVE_S are whole numbers of seconds (the reserve may be 0);
# any other value exits 2 naming it, before LOGDIR is made. A LOGDIR an earlier check wrote (its env.log or summary) exits 2.
set -uo pipefail

if [[ $# -lt 1 || $# -gt 2 || "$1" == -* || ( $# -eq 2 && "$2" != --force ) ]]; then
    echo "usage: $0 LOGDIR [--force]" >&2
    exit 2
fi
# the numeric knobs (native-build/knobs.sh), before anything is made or run; gpu-bench's too, which
# step 6 would otherwise refuse only after the steps before it had spent their minutes
# shellcheck source=knobs.sh
. "$(dirname "${BASH_SOURCE[0]}")/knobs.sh"
knob_seconds gpu-check RSLORA_CHECK_BUDGET_S
knob_seconds gpu-check RSLORA_BENCH_RESERVE_S 0
knob_check_bench gpu-check
budget="${RSLORA_CHECK_BUDGET_S:-480}"
reserve="${RSLORA_BENCH_RESERVE_S:-150}"  # kept for step 6 until it starts
logdir="$(mkdir -p "$1" && cd "$1" && pwd)" || { echo "gpu-check: cannot create LOGDIR $1" >&2; exit 2; }
# an earlier check's files would stay beside this one's (a JMH file this run did not get to rewrite) and
# jmh/bench.sh gpu-import would take them as this run's. Its env.log (written first) or summary says
# one ran here; other files are fine (a console log tee'd into LOGDIR is created before this runs).
for earlier in env.log summary.txt summary.jsonl; do
    if [[ -e "$logdir/$earlier" ]]; then
        echo "gpu-check: LOGDIR $logdir holds an earlier check's $earlier (its files would mix with this one's): give a new folder" >&2
        exit 2
    fi
done
force="${2:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# the families and their order come from the kernel table: a malformed one is named, not read as "v1 only"
if ! table_err="$(native-build/kernel-table.sh check 2>&1 >/dev/null)"; then
    echo "gpu-check: ${table_err:-native-build/kernel-table.sh check failed}" >&2
    exit 2
fi
t_start=$(date +%s)
rows=()
overall=0
step_cut=0

left() { echo $(( budget - ($(date +%s) - t_start) )); }
limit() {  # step maximum → min(max, time left - reserve - 5), at least 1
    local l=$(( $(left) - reserve - 5 ))
    (( l > $1 )) && l=$1
    (( l < 1 )) && l=1
    echo "$l"
}
json_rows=()
json_str() {  # a JSON string literal of $1
    local v="${1//\\/\\\\}"
    v="${v//\"/\\\"}"
    v="${v//$'\t'/ }"
    printf '"%s"' "${v//$'\n'/ }"
}
record() {  # step status seconds summary
    rows+=("$(printf '%-20s %-5s %5ss  %s' "$1" "$2" "$3" "$4")")
    json_rows+=("{\"step\": $(json_str "$1"), \"state\": $(json_str "$2"), \"seconds\": $3, \"summary\": $(json_str "$4")}")
    [[ "$2" == "FAIL" ]] && overall=1
    echo "== $1: $2 ($3 s) $4"
}
write_summary() {
    {
        echo "rslora gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), $(( $(date +%s) - t_start )) s"
        echo "step                 state   time  summary"
        printf '%s\n' "${rows[@]}"
    } | tee "$logdir/summary.txt"
    printf '%s\n' "${json_rows[@]}" >"$logdir/summary.jsonl"
}
families=($(native-build/kernel-table.sh families 2>/dev/null))
(( ${#families[@]} > 0 )) || families=(v1)
# The order cuda/dev checks the families in: those with a layer-step row (the steps of
# dev.rslora.backend.cuda.KernelTable.LAYER_STEPS) not yet validated on hardware (column 12 of the
# table is none) first, then the rest, each group in table order.
check_order=()
for f in "${families[@]}"; do
    native-build/kernel-table.sh rows "family=$f" validated=none 2>/dev/null \
        | awk -F'\t' '$2 ~ /^(prep|down|forward|vdb|vdb_reduce|reduce|da|dx|merge)$/ {found = 1} END {exit !found}' \
        && check_order+=("$f")
done
n_new=${#check_order[@]}
for f in "${families[@]}"; do
    [[ " ${check_order[*]} " == *" $f "* ]] || check_order+=("$f")
done
dev_steps() {  # every cuda/dev step name (the SKIP rows when cuda/dev cannot run)
    local f
    echo dev-build dev-selftest dev-sass
    for f in "${check_order[@]}"; do echo "dev-validate-$f dev-bench-$f dev-oracle-$f"; done
    for f in "${check_order[@]}"; do [[ $f == v1 || $f == v2 ]] || echo "dev-memcheck-$f dev-synccheck-$f dev-racecheck-$f"; done
    for f in "${check_order[@]}"; do echo "dev-bigindex-$f"; done
    echo dev-adamw-full dev-adamw-bench dev-adafactor-full dev-adafactor-bench dev-seqlogprob-full dev-seqlogprob-bench
}
gate() {  # name min_seconds → 0 when the budget (less the benchmarks' reserve) leaves at least min_seconds;
    # else records the step as SKIP (a step cut to a second would only report a timeout)
    local l=$(( $(left) - reserve - 5 ))
    (( l >= $2 )) && return 0
    record "$1" SKIP 0 "budget: $(( l > 0 ? l : 0 )) s left of ${budget} s (RSLORA_CHECK_BUDGET_S)$( (( reserve > 0 )) && echo " before the benchmarks' ${reserve} s")"
    return 1
}
run_step() {  # name max_seconds command... → sets step_rc, step_secs, step_cut (1: timed out under a limit the budget cut below max)
    local name="$1" max="$2"
    shift 2
    local t0=$(date +%s) lim
    lim=$(limit "$max")
    timeout --kill-after=5 "$lim" "$@" >"$logdir/$name.log" 2>&1
    step_rc=$?
    step_secs=$(( $(date +%s) - t0 ))
    step_cut=0
    if (( step_rc == 124 || step_rc == 137 )); then
        echo "(timed out after $lim s)" >>"$logdir/$name.log"
        (( lim < max )) && step_cut=1
    fi
}

# 1 env ------------------------------------------------------------------------------------------
{
    echo "host: $(uname -a)"
    echo "--- nvidia-smi"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
        nvidia-smi
    else
        echo "nvidia-smi not found"
    fi
    echo "--- driver and CUDA libraries (ldconfig)"
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libcublas(Lt)?\.so|libcudart\.so|libnvrtc\.so' || echo "none registered with ldconfig"
    echo "--- CUDA toolkit"
    ls -d /usr/local/cuda* 2>/dev/null
    ls /usr/local/cuda/lib64 2>/dev/null | grep -E 'libcublas|libcudart' || true
    (command -v nvcc || ls /usr/local/cuda/bin/nvcc) 2>/dev/null && (nvcc --version 2>/dev/null || /usr/local/cuda/bin/nvcc --version) | tail -2
} >"$logdir/env.log" 2>&1
driver=""
for d in $(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1/ {print $NF}') /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/local/nvidia/lib64/libcuda.so.1; do
    if [[ -e "$d" ]]; then driver="$d"; break; fi
done
gpu_name="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1)"
cublas="$(ldconfig -p 2>/dev/null | grep -oE 'libcublas\.so\.[0-9]+' | sort -u | tr '\n' ' ')"
[[ -z "$cublas" ]] && cublas="$(ls /usr/local/cuda/lib64 2>/dev/null | grep -oE '^libcublas\.so\.[0-9]+$' | tr '\n' ' ')"
if [[ -z "$driver" ]]; then
    record env FAIL 0 "no NVIDIA driver found (libcuda.so.1 not registered, not in the usual places): not a GPU host?"
    if [[ "$force" != "--force" ]]; then
        echo
        echo "gpu-check: NO GPU: libcuda.so.1 was not found, so the GPU tests, cuda/dev and benchmarks cannot run here."
        echo "gpu-check: run this on a machine with an NVIDIA GPU and driver (or pass --force to exercise the script)."
        for s in jre gpu-tests cublas $(dev_steps) benchmarks; do
            record "$s" SKIP 0 "no GPU"
        done
        write_summary
        exit 3
    fi
else
    record env PASS 0 "driver $driver; GPU ${gpu_name:-?}; cuBLAS ${cublas:-none}"
fi

# 2 jre ------------------------------------------------------------------------------------------
java=""
if [[ ! -f gpu-bundle/jre.tar.xz ]]; then
    record jre FAIL 0 "gpu-bundle/jre.tar.xz missing: run native-build/gpu-bundle.sh where Maven is and copy gpu-bundle/ along"
else
    jre_dir="${TMPDIR:-/tmp}/rslora-gpu-check-jre"
    rm -rf "$jre_dir" && mkdir -p "$jre_dir"
    # the benchmarks need the runtime too: its unpacking may use their reserve
    kept="$reserve"
    reserve=0
    run_step jre 60 tar -C "$jre_dir" -xJf gpu-bundle/jre.tar.xz
    reserve="$kept"
    if (( step_rc == 0 )) && "$jre_dir/jre/bin/java" -version >>"$logdir/jre.log" 2>&1; then
        java="$jre_dir/jre/bin/java"
        record jre PASS "$step_secs" "$(head -1 "$logdir/jre.log" | cut -c1-60)"
    elif (( step_cut )); then
        record jre SKIP "$step_secs" "budget: cut to ${step_secs} s before the runtime was unpacked (RSLORA_CHECK_BUDGET_S)"
    else
        record jre FAIL "$step_secs" "cannot unpack or start the bundled runtime (see jre.log)"
    fi
fi

# 3 gpu-tests ------------------------------------------------------------------------------------
# the toolkit's libraries (cuBLAS for the baseline test) are often not on the loader's path
[[ -d /usr/local/cuda/lib64 ]] && export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [[ -z "$java" ]]; then
    record gpu-tests SKIP 0 "no runtime"
    record cublas SKIP 0 "no runtime"
elif ! gate gpu-tests 60; then
    record cublas SKIP 0 "gpu-tests did not run (budget)"
else
    cp="gpu-bundle/test-classes:$(ls gpu-bundle/lib/*.jar | grep -v -e benchmarks.jar -e console-standalone | tr '\n' ':')"
    run_step gpu-tests 240 "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xss4m \
        -jar gpu-bundle/lib/junit-platform-console-standalone-1.14.4.jar execute --disable-banner \
        --class-path "$cp" --select-package dev.rslora --include-tag gpu --details=tree \
        --reports-dir "$logdir/junit"
    ok=$(sed -n 's/.*\[ *\([0-9]*\) tests successful.*/\1/p' "$logdir/gpu-tests.log" | tail -1)
    failed=$(sed -n 's/.*\[ *\([0-9]*\) tests failed.*/\1/p' "$logdir/gpu-tests.log" | tail -1)
    aborted=$(sed -n 's/.*\[ *\([0-9]*\) tests aborted.*/\1/p' "$logdir/gpu-tests.log" | tail -1)
    summary="${ok:-?} passed, ${failed:-?} failed, ${aborted:-?} skipped"
    reason="$(grep -m1 -oE 'GPU tests (skipped|on)[^)]*\)?' "$logdir/gpu-tests.log")"
    if (( step_cut )); then
        record gpu-tests SKIP "$step_secs" "budget: cut to ${step_secs} s before finishing; $summary"
    elif (( step_rc == 124 || step_rc == 137 )); then
        record gpu-tests FAIL "$step_secs" "timed out; $summary"
    elif [[ "${failed:-1}" != "0" ]]; then
        record gpu-tests FAIL "$step_secs" "$summary ${reason}"
    elif [[ "${aborted:-0}" != "0" ]]; then
        # a skipped GPU test on a GPU host is a failure to run, not a pass
        record gpu-tests "$([[ -n "$driver" ]] && echo FAIL || echo SKIP)" "$step_secs" "$summary: ${reason:-see gpu-tests.log}"
    elif [[ "${ok:-0}" == "0" ]]; then
        record gpu-tests FAIL "$step_secs" "no test ran ($summary)"
    else
        record gpu-tests PASS "$step_secs" "$summary ${reason}"
    fi
    # which cuBLAS binding the baseline used (CublasBinding: JCublas where libcublas.so.12 loads, else
    # java.lang.foreign), as printed by the baseline GPU tests
    cub="$(grep -m1 -oE 'cuBLAS binding: .*' "$logdir/gpu-tests.log" | cut -c17-150)"
    case "$cub" in
        "cuBLAS via"*) record cublas PASS 0 "$cub" ;;
        "no cuBLAS"*) record cublas "$([[ -n "$driver" ]] && echo FAIL || echo SKIP)" 0 "$cub" ;;
        *) record cublas SKIP 0 "binding not reported (the cuBLAS baseline tests did not run)" ;;
    esac
fi

# 4-5 cuda/dev -----------------------------------------------------------------------------------
dev_result() {  # name [summary] → records the step from step_rc and its log's "N passed, N failed" line
    local name="$1" line="${2:-}"
    [[ -z "$line" ]] && line="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logdir/$name.log" | tail -1)"
    if (( step_rc == 0 )); then
        record "$name" PASS "$step_secs" "$line"
    elif (( step_rc == 3 )); then
        record "$name" SKIP "$step_secs" "no CUDA device visible to the runtime"
    elif (( step_cut )); then
        record "$name" SKIP "$step_secs" "budget: cut to the ${step_secs} s left before finishing; ${line:-no summary} (see $name.log)"
    elif (( step_rc == 124 || step_rc == 137 )); then
        record "$name" FAIL "$step_secs" "timed out; ${line:-no summary} (see $name.log)"
    else
        record "$name" FAIL "$step_secs" "rc $step_rc; ${line:-no summary} (see $name.log)"
    fi
}
nvcc_bin="$(command -v nvcc || { [[ -x /usr/local/cuda/bin/nvcc ]] && echo /usr/local/cuda/bin/nvcc; })"
if [[ -z "$nvcc_bin" ]]; then
    for s in $(dev_steps); do record "$s" SKIP 0 "nvcc not found on this host"; done
else
    if gate dev-build 90; then
        run_step dev-build 150 make -C cuda/dev NVCC="$nvcc_bin" FLAGS="-std=c++17 -O3 --threads $(nproc 2>/dev/null || echo 4)"
    else
        step_rc=-1
    fi
    if (( step_rc == -1 )) || (( step_cut )); then
        (( step_rc == -1 )) || record dev-build SKIP "$step_secs" "budget: cut to ${step_secs} s before the build finished"
        for s in $(dev_steps); do [[ $s == dev-build ]] || record "$s" SKIP 0 "not built (budget)"; done
    elif (( step_rc != 0 )); then
        record dev-build FAIL "$step_secs" "see dev-build.log"
        for s in $(dev_steps); do [[ $s == dev-build ]] || record "$s" SKIP 0 "not built"; done
    else
        record dev-build PASS "$step_secs" "cuda/dev/build/rslora_dev (families: ${families[*]})"
        dev=cuda/dev/build/rslora_dev
        run_step dev-selftest 20 "$dev" selftest
        dev_result dev-selftest
        # the SASS of the shipped images (gpu-bundle's rslora-cuda jar; else a fresh build-kernels.sh)
        if gate dev-sass 10; then
            run_step dev-sass 90 native-build/check-sass.sh "$logdir/sass"
            case $step_rc in
                0) record dev-sass PASS "$step_secs" "$(tail -1 "$logdir/dev-sass.log")" ;;
                3) record dev-sass SKIP "$step_secs" "$(tail -1 "$logdir/dev-sass.log")" ;;
                *) record dev-sass FAIL "$step_secs" "rc $step_rc; $(grep -m1 'FAIL' "$logdir/dev-sass.log" | cut -c1-100) (see dev-sass.log)" ;;
            esac
        fi
        covered=" "
        declare -A brings=()
        for f in "${check_order[@]}"; do  # the kernels a family adds to those of the families checked before it
            n=0
            for k in $(native-build/kernel-table.sh names "family=$f"); do
                [[ "$covered" == *" $k "* ]] || { n=$((n + 1)); covered+="$k "; }
            done
            brings[$f]=$n
        done
        sanitizer="$(command -v compute-sanitizer || { [[ -x /usr/local/cuda/bin/compute-sanitizer ]] && echo /usr/local/cuda/bin/compute-sanitizer; })"
        validate() {  # family: the whole step vs the double reference
            if gate "dev-validate-$1" 25; then
                run_step "dev-validate-$1" 90 "$dev" validate "$1"
                dev_result "dev-validate-$1"
            fi
        }
        bench() {  # family: its timings at the reference shape
            if gate "dev-bench-$1" 15; then
                run_step "dev-bench-$1" 45 "$dev" bench "$1" "$logdir/dev-bench-$1.jsonl"
                dev_result "dev-bench-$1" "$(grep -c '"kind": "kernel"' "$logdir/dev-bench-$1.jsonl" 2>/dev/null) timings"
            fi
        }
        oracle() {  # family: the whole step vs v1 on the device at large shapes
            if [[ $1 == v1 ]]; then
                record "dev-oracle-$1" SKIP 0 "v1 is the oracle"
            elif (( brings[$1] == 0 )); then
                record "dev-oracle-$1" SKIP 0 "every kernel of $1 is run by an earlier family"
            elif gate "dev-oracle-$1" 35; then
                run_step "dev-oracle-$1" 75 "$dev" oracle "$1"
                dev_result "dev-oracle-$1"
            fi
        }
        sanitize() {  # family: compute-sanitizer on its quick set (families after v2 that bring kernels)
            local tool name max errs
            [[ $1 == v1 || $1 == v2 ]] && return
            for tool in memcheck synccheck racecheck; do
                name="dev-$tool-$1"
                if [[ -z "$sanitizer" ]]; then
                    record "$name" SKIP 0 "compute-sanitizer not found"
                    continue
                elif (( brings[$1] == 0 )); then
                    record "$name" SKIP 0 "every kernel of $1 is run by an earlier family"
                    continue
                fi
                max=40
                [[ $tool == racecheck ]] && max=60
                gate "$name" "$max" || continue
                run_step "$name" "$max" "$sanitizer" --tool "$tool" --error-exitcode 1 "$dev" validate "$1" quick
                errs="$(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$logdir/$name.log" | tail -1)"
                dev_result "$name" "$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$logdir/$name.log" | tail -1); ${errs:-no sanitizer summary}"
            done
        }
        # what is new on hardware first (the issue-11 checks: validate, bench, v1 as the on-device
        # oracle, compute-sanitizer; the bench of every family), then the optimizers, then the families
        # already validated there, then the large-shape index checks
        for f in "${check_order[@]:0:n_new}"; do validate "$f"; bench "$f"; done
        for f in "${check_order[@]:n_new}"; do bench "$f"; done
        for f in "${check_order[@]:0:n_new}"; do oracle "$f"; done
        for f in "${check_order[@]:0:n_new}"; do sanitize "$f"; done
        # the fused optimizers and the sequence log-probs (Adafactor and seqlogprob are new on hardware too)
        if gate dev-adamw-full 10; then
            run_step dev-adamw-full 30 "$dev" adamw   # the fused AdamW vs its host references
            dev_result dev-adamw-full
        fi
        if gate dev-adamw-bench 5; then
            run_step dev-adamw-bench 20 "$dev" adamw bench
            dev_result dev-adamw-bench " "
        fi
        if gate dev-adafactor-full 15; then
            run_step dev-adafactor-full 40 "$dev" adafactor   # the fused Adafactor vs the CPU update's host mirror
            dev_result dev-adafactor-full
        fi
        if gate dev-adafactor-bench 5; then
            run_step dev-adafactor-bench 20 "$dev" adafactor bench
            dev_result dev-adafactor-bench " "
        fi
        if gate dev-seqlogprob-full 10; then
            run_step dev-seqlogprob-full 20 "$dev" seqlogprob   # sequence log-probs vs the double reference
            dev_result dev-seqlogprob-full
        fi
        if gate dev-seqlogprob-bench 5; then
            run_step dev-seqlogprob-bench 20 "$dev" seqlogprob bench
            dev_result dev-seqlogprob-bench " "
        fi
        for f in "${check_order[@]:n_new}"; do validate "$f"; done
        for f in "${check_order[@]}"; do
            if (( brings[$f] == 0 )); then
                record "dev-bigindex-$f" SKIP 0 "every kernel of $f is run by an earlier family"
            elif gate "dev-bigindex-$f" 15; then
                run_step "dev-bigindex-$f" 60 "$dev" bigindex "$f"
                dev_result "dev-bigindex-$f"
            fi
        done
        for f in "${check_order[@]:n_new}"; do oracle "$f"; done
        for f in "${check_order[@]:n_new}"; do sanitize "$f"; done
    fi
fi

# 6 benchmarks -----------------------------------------------------------------------------------
reserve=0
# less than 30 s times nothing (a JMH rank took ~20 s on the 2026-12-04 H200): SKIP 'budget', not a
# run whose parts all time out and fail the check
if [[ -x native-build/gpu-bench.sh && -n "$java" ]] && gate benchmarks 30; then
    bench_limit=$(limit 600)
    run_step benchmarks "$bench_limit" env RSLORA_JAVA="$java" RSLORA_BENCH_BUDGET_S="$(( bench_limit > 4 ? bench_limit - 3 : 1 ))" \
        native-build/gpu-bench.sh "$logdir"
    files="$(cd "$logdir" && ls peft.jsonl jmh-gpu-r*.json 2>/dev/null | tr '\n' ' ')"
    case $step_rc in
        0) record benchmarks PASS "$step_secs" "${files:-no files}$(grep -m1 -oE '[0-9]+ of [0-9]+ parts not run( or cut short)?' "$logdir/benchmarks.log" | sed 's/^/; /')" ;;
        3) record benchmarks SKIP "$step_secs" "$(grep -m2 'skipped' "$logdir/benchmarks.log" | tr '\n' ' ' | cut -c1-110)" ;;
        *) record benchmarks FAIL "$step_secs" "rc $step_rc; ${files:-no files} (see benchmarks.log)" ;;
    esac
elif [[ -z "$java" ]]; then
    record benchmarks SKIP 0 "no runtime"
elif [[ ! -x native-build/gpu-bench.sh ]]; then
    record benchmarks SKIP 0 "native-build/gpu-bench.sh missing or not executable"
fi  # else the gate recorded it (budget)

echo
write_summary
exit $overall
