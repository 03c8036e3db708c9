#!/usr/bin/env bash
# The GPU benchmarks of the GPU check (native-build/gpu-check.sh runs it as its "benchmarks" step;
# it can also run alone on a GPU host from the repo root):
#   native-build/gpu-bench.sh LOGDIR
# writes into LOGDIR, all machine-readable (jmh/bench.sh gpu-import LOGDIR turns them into
# bench/RESULTS.md):
#   gpu-info.csv        nvidia-smi: name, driver, memory, SM clock now and max, power limit
#   gpu-clocks.csv      nvidia-smi every 250 ms while the benchmarks run: SM clock, power draw, temperature
#   BUNDLE.txt          the bundle's record of what was packed (the project commit), when gpu-bundle/ has one
#   peft.jsonl          jmh/peft_peer.py: the PyTorch peers (PEFT fp32 and bf16 adapters, the eager formula,
#                       addmm without dropout, torch.compile) and torch's frozen base, CUDA events
#   java-events.jsonl   dev.rslora.bench.GpuEventBench: our bases (cublasGemmEx, cuBLASLt) and layer steps
#                       (split, fused; CUDA graph replay) timed with CUDA events exactly as the peer times its own
#   jmh-gpu-r<R>.json   dev.rslora.bench.GpuBench (JMH, CudaLayerBenchmark), one file per rank, so a
#                       timeout loses one rank only
#   jmh-gpu-families.json  fusedGraph for the other fused families (RSLORA_BENCH_FAMILIES, default v2,v3,v4)
#   gpu-bench.log       what each part printed
# (files of these names left in LOGDIR by an earlier run are removed first; nothing else there is touched)
# Environment:
#   RSLORA_JAVA            java to use (default: java on PATH); needs the bundled benchmarks.jar
#   RSLORA_BENCH_JAR       default gpu-bundle/lib/benchmarks.jar, else jmh/target/benchmarks.jar
#   RSLORA_BENCH_N, _D, _R comma lists (default 8192 / 4096 / 16,64,256: the reference shape; ~4-5 min
#                          with every part, estimated, not measured: the 2026-12-04 H200 run's peer and
#                          JMH (4 methods x 3 ranks, ~5 s a fork) took 81 s; now 7 methods x 3 ranks and
#                          9 family forks (~150 s of JMH) plus the CUDA-event timings and the larger set
#                          of peers, capped at 60 and 120 s; jmh/README.md "The GPU part");
#                          the full sweep is RSLORA_BENCH_N=2048,8192,16384 RSLORA_BENCH_D=4096,11008
#                          (about 12 minutes: run it alone with RSLORA_BENCH_BUDGET_S=900)
#   RSLORA_BENCH_BUDGET_S  seconds this script may use in all (default 420); each part's timeout is
#                          cut to what is left
#   RSLORA_PYTHON          python for the PEFT peer (default python3)
#   RSLORA_PEER_TIMEOUT_S  the PyTorch peers' timeout (default 120: torch.compile compiles in it; the peer gets
#                          --budget-s 15 s less, so a slow compile skips its own tail instead of being killed)
#   RSLORA_BENCH_FAMILIES  fused families besides v1 for jmh-gpu-families.json (default v2,v3,v4; empty: none)
# A number or list of numbers above that is not one (7m, 0420, 16,,64) exits 2 naming it, before anything runs.
# Order: our CUDA-event timings (the figures R is made of), the PyTorch peers, JMH per rank, the fused
# families. Exit status: 0 when every part that ran produced results (parts the budget left no time
# for, or stopped before their own limit, are counted in the last line, "N of M parts not run or cut
# short: the budget ..."); 1 when a part failed or ran past its own limit; 3 when nothing failed but a part skipped itself (no CUDA, or no torch/peft for the peer).
set -uo pipefail

if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 LOGDIR" >&2
    exit 2
fi
# the numeric knobs (native-build/knobs.sh), before anything is made or run
# shellcheck source=knobs.sh
. "$(dirname "${BASH_SOURCE[0]}")/knobs.sh"
knob_check_bench gpu-bench
logdir="$(mkdir -p "$1" && cd "$1" && pwd)" || { echo "gpu-bench: cannot create LOGDIR $1" >&2; exit 2; }
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
budget="${RSLORA_BENCH_BUDGET_S:-420}"
peer_timeout="${RSLORA_PEER_TIMEOUT_S:-120}"
families="${RSLORA_BENCH_FAMILIES-v2,v3,v4}"
t_start=$(date +%s)
log="$logdir/gpu-bench.log"
# an earlier run's files of the same names would pass for this run's (a rank this run times out on):
# this script's own outputs go first, nothing else in LOGDIR is touched
rm -f "$logdir"/{gpu-info.csv,gpu-clocks.csv,BUNDLE.txt,peft.jsonl,java-events.jsonl,jmh-gpu-families.json} "$logdir"/jmh-gpu-r*.json
: >"$log"
failed=0
skipped=0
parts=0
cut=0  # parts the budget left no time for (not failures: the summary counts them)

left() { echo $(( budget - ($(date +%s) - t_start) )); }
cap() {  # max seconds → min(max, time left - 2), at least 1
    local l=$(( $(left) - 2 ))
    (( l > $1 )) && l=$1
    (( l < 1 )) && l=1
    echo "$l"
}
note() { echo "gpu-bench: $*" | tee -a "$log"; }
# a part that exited non-zero (not 3): label rc t want. A timeout the budget had cut below the part's
# own limit (t < want) is the budget running out, counted with the parts not run; any other is a failure,
# a kill before the timeout included (137 from the OOM killer: the part ran less than t seconds)
part_start=0
start_part() { part_start=$(date +%s); }
ended() {
    local ran=$(( $(date +%s) - part_start ))
    if (( ($2 == 124 || $2 == 137) && $3 < $4 && ran >= $3 )); then
        cut=$((cut + 1))
        note "$1: cut short by the budget after ${3}s (its own limit ${4}s; not a failure: RSLORA_BENCH_BUDGET_S)"
    else
        failed=1
        note "$1: FAILED (rc $2$( (($2 == 124 || $2 == 137)) && echo ", timed out after ${3}s"))"
    fi
}
# a part that exited 0 must have written its file: how many results it holds, else the part failed
produced() {  # label file pattern noun
    if [[ -s "$2" ]]; then
        note "$1: done ($(grep -c "$3" "$2") $4 in $(basename "$2"))"
    else
        failed=1
        note "$1: FAILED (exit 0, but no $(basename "$2") written)"
    fi
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv >"$logdir/gpu-info.csv" 2>>"$log" || { rm -f "$logdir/gpu-info.csv"; note "nvidia-smi failed: no gpu-info.csv"; }
[[ -f gpu-bundle/BUNDLE.txt ]] && cp gpu-bundle/BUNDLE.txt "$logdir/BUNDLE.txt"
# clocks and power while the benchmarks run (a long JMH iteration may run at lower clocks than a short
# CUDA-event burst: issue 12 §2); stopped by its PID at the end
sampler=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu --format=csv,nounits -lms 250 \
        >"$logdir/gpu-clocks.csv" 2>>"$log" &
    sampler=$!
fi
stop_sampler() { [[ -n "$sampler" ]] && kill "$sampler" 2>/dev/null; sampler=""; }
trap stop_sampler EXIT

# 1 ours timed with CUDA events, as the peers time theirs (bases, split and fused graph replay): first,
#   the figures R is made of; at most a third of the budget
parts=$((parts + 1))
et=$(( budget / 3 ))
(( et > 60 )) && et=60
t=$(cap "$et")
note "Java CUDA-event timings: n=$ns d=$ds r=$rs (timeout ${t}s)"
start_part; timeout --kill-after=5 "$t" "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
    -cp "$jar" dev.rslora.bench.GpuEventBench --n "$ns" --d "$ds" --ranks "$rs" --dropout 0.1 \
    --out "$logdir/java-events.jsonl" >>"$log" 2>&1
rc=$?
case $rc in
    0) produced "Java CUDA-event timings" "$logdir/java-events.jsonl" '"kind": "timing"' timings ;;
    3) skipped=$((skipped + 1)); note "Java CUDA-event timings: skipped (CUDA unavailable)" ;;
    *) ended "Java CUDA-event timings" "$rc" "$t" 60 ;;
esac

# 2 the PyTorch peers (torch's base is usually the best base: R's denominator), at most two thirds of
#   what is left, so the JMH runs keep some
parts=$((parts + 1))
pt=$(( $(left) * 2 / 3 ))
(( pt > peer_timeout )) && pt=$peer_timeout
t=$(cap "$pt")
note "PyTorch peers: n=$ns d=$ds r=$rs (timeout ${t}s)"
start_part; timeout --kill-after=5 "$t" "$python" jmh/peft_peer.py --n "$ns" --d "$ds" --ranks "$rs" --dropout 0.1 \
    --budget-s "$(( t > 20 ? t - 15 : 5 ))" --out "$logdir/peft.jsonl" >>"$log" 2>&1
rc=$?
case $rc in
    0) produced "PyTorch peers" "$logdir/peft.jsonl" '"kind": "timing"' timings ;;
    3) skipped=$((skipped + 1)); note "PyTorch peers: skipped ($(grep -o '"reason": "[^"]*"' "$logdir/peft.jsonl" 2>/dev/null))" ;;
    *) ended "PyTorch peers" "$rc" "$t" "$peer_timeout" ;;
esac

# 3 JMH through the Java API, one run per rank
IFS=, read -r -a ranks <<<"$rs"
for r in "${ranks[@]}"; do
    parts=$((parts + 1))
    if (( $(left) < 15 )); then
        cut=$((cut + 1))
        note "JMH r=$r: not run, the budget (${budget}s) is spent"
        continue
    fi
    t=$(cap 90)
    out="$logdir/jmh-gpu-r$r.json"
    note "JMH r=$r: n=$ns d=$ds (timeout ${t}s)"
    start_part; timeout --kill-after=5 "$t" "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
        -cp "$jar" dev.rslora.bench.GpuBench -p "n=$ns" -p "d=$ds" -p "r=$r" -p dropout=0.1 \
        -rf json -rff "$out" >>"$log" 2>&1
    rc=$?
    case $rc in
        0) produced "JMH r=$r" "$out" '"benchmark"' results ;;
        3) skipped=$((skipped + 1)); note "JMH r=$r: skipped (CUDA unavailable, see gpu-bench.log)"; break ;;
        *) ended "JMH r=$r" "$rc" "$t" 90 ;;
    esac
done

# 4 the other fused families' graph replay, every rank in one JMH run
if [[ -n "$families" ]]; then
    parts=$((parts + 1))
    if (( $(left) < 15 )); then
        cut=$((cut + 1))
        note "JMH families $families: not run, the budget (${budget}s) is spent"
    else
        t=$(cap 60)
        out="$logdir/jmh-gpu-families.json"
        note "JMH fusedGraph, kernels $families: n=$ns d=$ds r=$rs (timeout ${t}s)"
        start_part; timeout --kill-after=5 "$t" "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
            -cp "$jar" dev.rslora.bench.GpuBench 'CudaLayerBenchmark.fusedGraph' -p "kernels=$families" -p "n=$ns" -p "d=$ds" \
            -p "r=$rs" -p dropout=0.1 -rf json -rff "$out" >>"$log" 2>&1
        rc=$?
        case $rc in
            0) produced "JMH families" "$out" '"benchmark"' results ;;
            3) skipped=$((skipped + 1)); note "JMH families: skipped (CUDA unavailable)" ;;
            *) ended "JMH families" "$rc" "$t" 60 ;;
        esac
    fi
fi

stop_sampler
(( cut > 0 )) && note "$cut of $parts parts not run or cut short: the budget (${budget}s) was spent (RSLORA_BENCH_BUDGET_S)"
note "$(( $(date +%s) - t_start ))s; files: $(cd "$logdir" && ls gpu-info.csv gpu-clocks.csv peft.jsonl java-events.jsonl jmh-gpu-*.json 2>/dev/null | tr '\n' ' ')"
if (( failed )); then
    exit 1
fi
if (( skipped > 0 )); then
    exit 3
fi
exit 0
