#!/usr/bin/env bash
# The GPU check of the sm_80-family core and the v4 kernels, one call, on a GPU host from the repo
# root (about a minute after the build; NOTES-v4.md lists what it must confirm):
#   cuda/dev/gemm_sm80_check.sh LOGDIR
# Steps (each writes LOGDIR/v4-<step>.log; LOGDIR/v4-summary.txt is the table):
#   build      make -C cuda/dev gemm (nvcc, sm_80 + sm_90 SASS)
#   banks      the shared-memory layout has no bank conflicts (CPU only, as in the emulation)
#   frags      ldmatrix.x4 (.trans), mma.m16n8k16 bf16/f16, cp.async zero fill, one instruction at a
#              time against CuTe's fragment maps: the facts the emulation could share a misreading of
#   core       the core at awkward shapes, both Q layouts, bf16/f16, both tiles, masks (CPU reference)
#   v4         the four exported v4 kernels × bf16/f16 against the double reference (data contract)
#   bigindex   n·d > 2^31 elements (64-bit index math), the last row tile checked (~26 GB of device memory)
#   sass       cuobjdump: HMMA.16816 (bf16 and f16), LDSM (+ .MT88 transposed), LDGSTS in the v4
#              kernels, and no local memory (LDL/STL)
#   memcheck, racecheck, synccheck, initcheck   compute-sanitizer on `v4 quick` (0 errors / hazards)
#   bench      TFLOP/s of the v4 kernels at 8192×4096×4096, r = 0/16/64/256 (LOGDIR/v4-bench.jsonl)
# Exit 0 when every step passed.
set -uo pipefail
if [[ $# -ne 1 ]]; then
    echo "usage: $0 LOGDIR" >&2
    exit 2
fi
logdir="$(mkdir -p "$1" && cd "$1" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
bin=cuda/dev/build/gemm_sm80
export bin
[[ -d /usr/local/cuda/bin ]] && export PATH="$PATH:/usr/local/cuda/bin"
rows=()
fail=0
step() {  # name timeout command...
    local name="$1" limit="$2"
    shift 2
    local t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@" >"$logdir/v4-$name.log" 2>&1
    local rc=$?
    local line
    line="$(grep -E '^[0-9]+ passed, [0-9]+ failed|ERROR SUMMARY|RACECHECK SUMMARY|^sass:' "$logdir/v4-$name.log" | tail -1)"
    local state=PASS
    (( rc != 0 )) && state=FAIL && fail=1
    rows+=("$(printf '%-10s %-5s %4ss  %s' "$name" "$state" "$(( $(date +%s) - t0 ))" "${line:-rc $rc}")")
    echo "== v4 $name: $state ${line:-rc $rc}"
}
sass() {  # the v4 kernels' SASS holds the instructions the design relies on, and no local memory
    local dump
    dump="$(cuobjdump -sass "$bin")" || return 1
    local ok=0
    for k in rslora_lora_forward_v4_bf16 rslora_lora_backward_dx_v4_f16 rslora_lora_up_add_v4_bf16 rslora_lora_dx_add_v4_f16; do
        local body
        body="$(awk -v k="$k" '/Function : /{on = index($0, k) > 0} on' <<<"$dump")"
        local hmma ldsm ldsmt ldgsts local_mem
        hmma=$(grep -c 'HMMA.16816.F32' <<<"$body")
        ldsm=$(grep -c 'LDSM.16.M88.4' <<<"$body")
        ldsmt=$(grep -c 'LDSM.16.MT88.4' <<<"$body")
        ldgsts=$(grep -c 'LDGSTS' <<<"$body")
        local_mem=$(grep -cE '\b(LDL|STL)\b' <<<"$body")
        echo "$k: HMMA.16816.F32 $hmma, LDSM.M88.4 $ldsm, LDSM.MT88.4 $ldsmt, LDGSTS $ldgsts, LDL/STL $local_mem"
        if (( hmma == 0 || ldsm == 0 || ldgsts == 0 || local_mem != 0 )); then ok=1; fi
        case "$k" in *dx*) (( ldsmt == 0 )) && ok=1 ;; esac
    done
    grep -q 'HMMA.16816.F32.BF16' <<<"$dump" || ok=1
    echo "sass: $([[ $ok == 0 ]] && echo 'as designed' || echo 'MISSING instructions or local memory')"
    return $ok
}
export -f sass

step build 300 make -C cuda/dev gemm
if [[ -x "$bin" ]]; then
    step banks 30 "$bin" banks
    step frags 30 "$bin" frags
    step core 120 "$bin" core
    step v4 120 "$bin" v4
    step bigindex 120 "$bin" bigindex
    step sass 60 bash -c sass
    if command -v compute-sanitizer >/dev/null 2>&1; then
        for tool in memcheck racecheck synccheck initcheck; do
            step "$tool" 180 compute-sanitizer --tool "$tool" --error-exitcode 1 "$bin" v4 quick
        done
    else
        rows+=("sanitizers SKIP  compute-sanitizer not on PATH")
    fi
    step bench 120 "$bin" bench "$logdir/v4-bench.jsonl"
    cat "$logdir/v4-bench.log"
fi
{ echo "step       state   time  summary"; printf '%s\n' "${rows[@]}"; } | tee "$logdir/v4-summary.txt"
exit $fail
