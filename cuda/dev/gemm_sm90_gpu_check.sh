#!/usr/bin/env bash
# The hardware checks of the sm_90a core and the v3 kernels, for native-build/gpu-check.sh (one
# call) on a compute capability 9.0 GPU host with nvcc (and cuobjdump, compute-sanitizer when the
# toolkit has them):
#   cuda/dev/gemm_sm90_gpu_check.sh LOGDIR [BUDGET_S]
# Steps (each logs LOGDIR/sm90-<step>.log; a summary table goes to stdout and LOGDIR/sm90-summary.txt):
#   build     make -C cuda/dev ptxas-sm90 gemm-sm90 (ptxas: 0 spill / stack / lmem, no C7510/C7511/C7515)
#   sass      cuobjdump -sass of the four v3 kernels: HGMMA, UTMALDG and UTMASTG present, no LDL/STL
#   validate  build/gemm_sm90 all: the core and the v3 kernels against the CPU double reference
#   memcheck  compute-sanitizer --tool memcheck build/gemm_sm90 all quick
#   synccheck compute-sanitizer --tool synccheck build/gemm_sm90 core quick
#   bench     build/gemm_sm90 bench: cuBLAS base GEMMs and the v3 forward/dX at 8192×4096×4096, r = 0/16/64/256
# Exit 0 when no step failed (a step whose tool is absent is SKIP, not FAIL); 3 without a cc 9.0 GPU.
# BUDGET_S (default 240) bounds the whole run; each step's timeout is cut to what is left.
set -uo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: $0 LOGDIR [BUDGET_S]" >&2
    exit 2
fi
logdir="$(mkdir -p "$1" && cd "$1" && pwd)"
budget="${2:-240}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
t_start=$(date +%s)
rows=()
overall=0
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
bindir="$(dirname "$(readlink -f "$nvcc")")"
cuobjdump="$(command -v cuobjdump || echo "$bindir/cuobjdump")"
sanitizer="$(command -v compute-sanitizer || echo "$bindir/compute-sanitizer")"
[[ -x "$sanitizer" ]] || sanitizer="$bindir/../compute-sanitizer/compute-sanitizer"

left() { echo $(( budget - ($(date +%s) - t_start) )); }
record() {  # step status seconds summary
    rows+=("$(printf '%-10s %-5s %4ss  %s' "$1" "$2" "$3" "$4")")
    [[ "$2" == "FAIL" ]] && overall=1
    echo "== sm90 $1: $2 ($3 s) $4"
}
run() {  # name max_seconds command... → step_rc, step_secs; output in LOGDIR/sm90-name.log
    local name="$1" max="$2"
    shift 2
    local l
    l=$(left)
    (( l > max )) && l=$max
    (( l < 1 )) && l=1
    local t0=$(date +%s)
    timeout --kill-after=5 "$l" "$@" >"$logdir/sm90-$name.log" 2>&1
    step_rc=$?
    step_secs=$(( $(date +%s) - t0 ))
    (( step_rc == 124 || step_rc == 137 )) && echo "(timed out after $l s)" >>"$logdir/sm90-$name.log"
}
summary_line() { grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -1; }

# build ---------------------------------------------------------------------------------------------
run build 150 make NVCC="$nvcc" ptxas-sm90 gemm-sm90
if (( step_rc != 0 )); then
    record build FAIL "$step_secs" "see sm90-build.log"
else
    record build ok "$step_secs" "$(grep -c 'Used 168 registers' build/ptxas-sm90a.txt) kernels at 168 registers, 0 spill/stack"
fi
cp build/ptxas-sm90a.txt "$logdir/sm90-ptxas.txt" 2>/dev/null

# sass ----------------------------------------------------------------------------------------------
if [[ ! -f build/rslora_kernels_sm90a.cubin ]]; then
    record sass FAIL 0 "no cubin"
elif [[ ! -x "$cuobjdump" ]]; then
    record sass SKIP 0 "no cuobjdump"
else
    t0=$(date +%s)
    "$cuobjdump" -sass build/rslora_kernels_sm90a.cubin >"$logdir/sm90-sass.txt" 2>&1
    bad=""
    facts=""
    for k in rslora_lora_forward_v3_bf16 rslora_lora_forward_v3_f16 rslora_lora_backward_dx_v3_bf16 rslora_lora_backward_dx_v3_f16; do
        body="$(awk -v k="$k" '$1 == "Function" && $2 == ":" { on = ($3 == k) } on' "$logdir/sm90-sass.txt")"
        hg=$(grep -c 'HGMMA' <<<"$body")
        ld=$(grep -c 'UTMALDG' <<<"$body")
        st=$(grep -c 'UTMASTG' <<<"$body")
        lm=$(grep -cE '\b(LDL|STL)\b' <<<"$body")
        facts+="$k HGMMA=$hg UTMALDG=$ld UTMASTG=$st LDL/STL=$lm; "
        if (( hg == 0 || ld == 0 || st == 0 || lm != 0 )); then bad+="$k "; fi
    done
    echo "$facts" | tr ';' '\n' >"$logdir/sm90-sass.log"
    if [[ -n "$bad" ]]; then
        record sass FAIL $(( $(date +%s) - t0 )) "wrong SASS facts in: $bad(sm90-sass.log)"
    else
        record sass ok $(( $(date +%s) - t0 )) "HGMMA, UTMALDG, UTMASTG present, no LDL/STL in the 4 v3 kernels"
    fi
fi

# validate ------------------------------------------------------------------------------------------
if [[ ! -x build/gemm_sm90 ]]; then
    record validate FAIL 0 "not built"
else
    run validate 120 ./build/gemm_sm90 all
    if (( step_rc == 3 )); then
        record validate SKIP "$step_secs" "$(tail -1 "$logdir/sm90-validate.log")"
        echo "sm90: no compute capability 9.0 device; the remaining steps are skipped"
        printf '%s\n' "${rows[@]}" | tee "$logdir/sm90-summary.txt"
        exit 3
    fi
    record validate "$( (( step_rc == 0 )) && echo ok || echo FAIL)" "$step_secs" "$(summary_line "$logdir/sm90-validate.log")"

    # memcheck / synccheck ----------------------------------------------------------------------------
    if [[ -x "$sanitizer" ]]; then
        run memcheck 90 "$sanitizer" --tool memcheck --error-exitcode 9 ./build/gemm_sm90 all quick
        record memcheck "$( (( step_rc == 0 )) && echo ok || echo FAIL)" "$step_secs" \
            "$(grep -E 'ERROR SUMMARY' "$logdir/sm90-memcheck.log" | tail -1) $(summary_line "$logdir/sm90-memcheck.log")"
        run synccheck 60 "$sanitizer" --tool synccheck --error-exitcode 9 ./build/gemm_sm90 core quick
        record synccheck "$( (( step_rc == 0 )) && echo ok || echo FAIL)" "$step_secs" \
            "$(grep -E 'ERROR SUMMARY' "$logdir/sm90-synccheck.log" | tail -1) $(summary_line "$logdir/sm90-synccheck.log")"
    else
        record memcheck SKIP 0 "no compute-sanitizer"
    fi

    # bench ---------------------------------------------------------------------------------------------
    run bench 60 ./build/gemm_sm90 bench
    record bench "$( (( step_rc == 0 )) && echo ok || echo FAIL)" "$step_secs" "see sm90-bench.log"
fi

printf '%s\n' "${rows[@]}" | tee "$logdir/sm90-summary.txt"
exit "$overall"
