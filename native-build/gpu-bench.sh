#!/usr/bin/env bash
# The GPU benchmarks of the GPU check (native-build/gpu-check.sh runs it as its "benchmarks" step;
# it can also run alone on a GPU host from the repo root):
#   native-build/gpu-bench.sh LOGDIR
# writes into LOGDIR, all machine-readable (jmh/bench.sh gpu-import LOGDIR turns them into
# bench/RESULTS.md):
#   gpu-info.csv        nvidia-smi: name, driver, memory, SM clock now and max, power limit
#   peft.jsonl          jmh/peft_peer.py: PyTorch/PEFT rsLoRA step and torch's frozen base, CUDA events
#   jmh-gpu-r<R>.json   dev.rslora.bench.GpuBench (JMH, CudaLayerBenchmark), one file per rank, so a
#                       timeout loses one rank only
#   gpu-bench.log       what each part printed
# Environment:
#   RSLORA_JAVA            java to use (default: java on PATH); needs the bundled benchmarks.jar
#   RSLORA_BENCH_JAR       default gpu-bundle/lib/benchmarks.jar, else jmh/target/benchmarks.jar
#   RSLORA_BENCH_N, _D, _R comma lists (default 8192 / 4096 / 16,64,256: the reference shape, ~1.5 min);
#                          the full sweep is RSLORA_BENCH_N=2048,8192,16384 RSLORA_BENCH_D=4096,11008
#                          (about 12 minutes: run it alone with RSLORA_BENCH_BUDGET_S=900)
#   RSLORA_BENCH_BUDGET_S  seconds this script may use in all (default 120); each part's timeout is
#                          cut to what is left
#   RSLORA_PYTHON          python for the PEFT peer (default python3)
# Exit status: 0 when every part produced results; 1 when a part failed, timed out or was not run;
# 3 when nothing failed but a part skipped itself (no CUDA, or no torch/peft for the peer).
set -uo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 LOGDIR" >&2
    exit 2
fi
logdir="$(mkdir -p "$1" && cd "$1" && pwd)"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
java="${RSLORA_JAVA:-java}"
jar="${RSLORA_BENCH_JAR:-}"
if [[ -z "$jar" ]]; then
    jar=gpu-bundle/lib/benchmarks.jar
    [[ -f "$jar" ]] || jar=jmh/target/benchmarks.jar
fi
python="${RSLORA_PYTHON:-python3}"
ns="${RSLORA_BENCH_N:-8192}"
ds="${RSLORA_BENCH_D:-4096}"
rs="${RSLORA_BENCH_R:-16,64,256}"
budget="${RSLORA_BENCH_BUDGET_S:-120}"
t_start=$(date +%s)
log="$logdir/gpu-bench.log"
: >"$log"
failed=0
skipped=0
parts=0

left() { echo $(( budget - ($(date +%s) - t_start) )); }
cap() {  # max seconds → min(max, time left - 2), at least 1
    local l=$(( $(left) - 2 ))
    (( l > $1 )) && l=$1
    (( l < 1 )) && l=1
    echo "$l"
}
note() { echo "gpu-bench: $*" | tee -a "$log"; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv >"$logdir/gpu-info.csv" 2>>"$log" || { rm -f "$logdir/gpu-info.csv"; note "nvidia-smi failed: no gpu-info.csv"; }

# 1 the PEFT peer (fast; first, so a slow JMH run cannot starve it)
parts=$((parts + 1))
t=$(cap 45)
note "PEFT peer: n=$ns d=$ds r=$rs (timeout ${t}s)"
timeout --kill-after=5 "$t" "$python" jmh/peft_peer.py --n "$ns" --d "$ds" --ranks "$rs" --dropout 0.1 \
    --out "$logdir/peft.jsonl" >>"$log" 2>&1
rc=$?
case $rc in
    0) note "PEFT peer: done ($(grep -c '"kind": "timing"' "$logdir/peft.jsonl") timings)" ;;
    3) skipped=$((skipped + 1)); note "PEFT peer: skipped ($(grep -o '"reason": "[^"]*"' "$logdir/peft.jsonl" 2>/dev/null))" ;;
    *) failed=1; note "PEFT peer: FAILED (rc $rc$( ((rc == 124 || rc == 137)) && echo ", timed out after ${t}s"))" ;;
esac

# 2 JMH through the Java API, one run per rank
IFS=, read -r -a ranks <<<"$rs"
for r in "${ranks[@]}"; do
    parts=$((parts + 1))
    if (( $(left) < 15 )); then
        failed=1
        note "JMH r=$r: not run, the budget (${budget}s) is spent"
        continue
    fi
    t=$(cap 60)
    out="$logdir/jmh-gpu-r$r.json"
    note "JMH r=$r: n=$ns d=$ds (timeout ${t}s)"
    timeout --kill-after=5 "$t" "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
        -cp "$jar" dev.rslora.bench.GpuBench -p "n=$ns" -p "d=$ds" -p "r=$r" -p dropout=0.1 \
        -rf json -rff "$out" >>"$log" 2>&1
    rc=$?
    case $rc in
        0) note "JMH r=$r: done ($(grep -c '"benchmark"' "$out" 2>/dev/null) results in $(basename "$out"))" ;;
        3) skipped=$((skipped + 1)); note "JMH r=$r: skipped (CUDA unavailable, see gpu-bench.log)"; break ;;
        *) failed=1; note "JMH r=$r: FAILED (rc $rc$( ((rc == 124 || rc == 137)) && echo ", timed out after ${t}s"))" ;;
    esac
done

note "$(( $(date +%s) - t_start ))s; files: $(cd "$logdir" && ls gpu-info.csv peft.jsonl jmh-gpu-r*.json 2>/dev/null | tr '\n' ' ')"
if (( failed )); then
    exit 1
fi
if (( skipped > 0 )); then
    exit 3
fi
exit 0
