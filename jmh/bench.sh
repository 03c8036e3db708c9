#!/usr/bin/env bash
# The benchmark suite and its results file, in one command (see jmh/README.md):
#   jmh/bench.sh cpu [--quick] [--no-build] [--only RUN,RUN...]
#                                           run the CPU suite here (see jmh/README.md for its duration), write the
#                                           raw JMH JSON to bench/raw/cpu-*.json (+ cpu-env.json, cpu-loads.json),
#                                           regenerate bench/RESULTS.md and the README's CPU summary; --only re-runs
#                                           the named runs (vs-512, decode, ...: the names of bench/raw/cpu-NAME.json)
#                                           and keeps every other result with its load; it refuses (exit 1, before
#                                           any run) on a machine other than the one bench/raw/cpu-env.json records
#                                           (CPU vendor, family/model, model, ISA or logical CPUs differ): the report
#                                           names one machine for all results
#   jmh/bench.sh gpu-import LOGDIR [--commit SHA] [--no-build]
#                                           take a GPU check's files (native-build/gpu-check.sh LOGDIR on a GPU
#                                           host) into bench/raw/gpu/ (only when it measured something), regenerate;
#                                           --commit names the commit the bundle was packed from when LOGDIR has
#                                           no BUNDLE.txt (checks before 2026-12 did not copy it)
#   jmh/bench.sh report [LOGDIR] [--no-build]
#                                           regenerate bench/RESULTS.md, bench/r-vs-rank.png and the README's CPU
#                                           summary from bench/raw/ (the GPU part from LOGDIR instead of bench/raw/gpu/)
# --quick is a smoke test of the pipeline (N=512, d=1024, r=16, two short iterations each; benchmarks
# missing from this build are skipped) that writes to bench/raw-quick/ and bench/quick/, never to the
# committed results. Environment: JAVA_HOME (a JDK 25; found like ./rslora does), MVN_FLAGS (default -q -B),
# RSLORA_BENCH_MIX_MACHINES=1 (--only adds its runs to results from another machine, with a warning).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../native-build/find-jdk.sh
. "$here/native-build/find-jdk.sh"
caller="$PWD"  # a relative LOGDIR is the caller's, not the repo root's
cd "$here"
jar=jmh/target/benchmarks.jar
java=("$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector)
mvn_flags=(${MVN_FLAGS:--q -B})

from_caller() { [[ "$1" == /* ]] && echo "$1" || echo "$caller/$1"; }

usage() { # [WHY]: what was wrong, first, then the header comment
    [[ -n "${1:-}" ]] && echo "bench: $1" >&2
    sed -n '2,/^[^#]/{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

build() {
    rslora_require_maven
    echo "bench: building jmh/target/benchmarks.jar"
    mvn "${mvn_flags[@]}" -DskipTests -pl jmh -am package
}

stale() { # true when the jar is missing or older than any of its build inputs (core, cuda and its kernels, jmh, poms)
    [[ -f "$jar" ]] || return 0
    [[ -n "$(find pom.xml java/core/pom.xml java/cuda/pom.xml jmh/pom.xml java/core/src/main java/cuda/src/main \
        jmh/src/main cuda -newer "$jar" -type f -print -quit 2>/dev/null)" ]]
}

report() { # extra ResultsReport arguments
    "${java[@]}" -cp "$jar" dev.rslora.bench.report.ResultsReport "$@"
}

load_now() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }

# How many CPUs other processes kept busy over the 2 s before a run, while the suite itself is idle
# (/proc/stat: user, nice, system, irq, softirq and steal time against the total; steal is the host
# giving the vCPU to someone else). Unlike the 1-minute load average, which at a run's start still
# counts the suite's own previous run, this sees only what competes with the run. "?" without /proc/stat.
busy_now() {
    local a b
    a="$(head -n 1 /proc/stat 2>/dev/null)" || { echo "?"; return; }
    sleep 2
    b="$(head -n 1 /proc/stat 2>/dev/null)" || { echo "?"; return; }
    awk -v a="$a" -v b="$b" -v n="$(nproc)" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        busy = (y[2] + y[3] + y[4] + y[7] + y[8] + y[9]) - (x[2] + x[3] + x[4] + x[7] + x[8] + x[9]);
        total = busy + (y[5] + y[6]) - (x[5] + x[6]);
        if (total <= 0) print "?"; else printf "%.2f", n * busy / total }'
}

# jmh NAME SETTINGS... : one JMH invocation writing $stage/cpu-NAME.json; the load average before
# and after, the UTC time it ended and the CPUs other processes kept busy just before it (busy_now)
# go to $stage/loads.tsv (cpu-loads.json at the end)
jmh() {
    local name="$1"
    shift
    if [[ -n "$only" && ",$only," != *",$name,"* ]]; then return 0; fi
    local before busy
    busy="$(busy_now)"
    before="$(load_now)"
    echo "bench: [$(date -u +%H:%M:%S)] $name (load $before; other processes kept $busy of $(nproc) CPUs busy over the last 2 s)"
    [[ " $* " == *" -f "* ]] || set -- "$@" -f 1  # one JVM unless the run asks for more
    if ! "${java[@]}" -jar "$jar" "$@" -foe true -rf json -rff "$stage/cpu-$name.json" >"$stage/cpu-$name.log" 2>&1; then
        echo "bench: $name FAILED; its output: $stage/cpu-$name.log" >&2
        tail -n 30 "$stage/cpu-$name.log" >&2
        return 1
    fi
    printf 'cpu-%s.json\t%s\t%s\t%s\t%s\n' "$name" "$before" "$(load_now)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$busy" \
        >>"$stage/loads.tsv"
    grep -E '^(Benchmark|[A-Za-z]+Benchmark[.:])' "$stage/cpu-$name.log" || true
}

# env_field FILE KEY: a top-level value of a cpu-env.json without its quotes, empty when absent (Jackson's
# pretty printer writes one `  "key" : value,` a line; grep and sed only, no jq or python on a fresh machine)
env_field() {
    sed -n "/^ *\"$2\" *: */{s///;s/,\$//;s/^\"\(.*\)\"\$/\1/;p;q}" "$1"
}

# machine FILE: the machine a cpu-env.json records, for messages
machine() {
    printf '%s (%s, family/model %s, %s logical CPUs)' "$(env_field "$1" cpu_model)" "$(env_field "$1" cpu_vendor)" \
        "$(env_field "$1" cpu_family_model)" "$(env_field "$1" logical_cpus)"
}

# machine_diff OLD NEW: the machine facts two cpu-env.json disagree on, `field "old" vs "new"` each; empty when
# they name the same machine (memory and load are not compared: they vary on one machine)
machine_diff() {
    local k a b out=""
    for k in cpu_vendor cpu_family_model cpu_model isa logical_cpus; do
        a="$(env_field "$1" "$k")"
        b="$(env_field "$2" "$k")"
        [[ "$a" == "$b" ]] || out+="${out:+, }$k \"${a:-(not recorded)}\" vs \"${b:-(not recorded)}\""
    done
    printf '%s' "$out"
}

# cpu-loads.json from loads.tsv
write_loads() {
    local first=1
    {
        printf '{"loads": {'
        while IFS=$'\t' read -r file before after ended busy; do
            (( first )) || printf ','
            first=0
            printf '\n  "%s": {"before": "%s", "after": "%s"' "$file" "$before" "$after"
            [[ -n "$ended" ]] && printf ', "ended": "%s"' "$ended"
            [[ -n "$busy" ]] && printf ', "busy_before": "%s"' "$busy"
            printf '}'
        done <"$stage/loads.tsv"
        printf '\n}}\n'
    } >"$stage/cpu-loads.json"
}

cpu() {
    local quick=0 nobuild=0 want_only=0
    only=""
    for a in "$@"; do
        if (( want_only )); then
            only="$a"
            want_only=0
            if [[ -z "${only//,/}" ]]; then  # an empty list would re-run nothing (",") or everything ("")
                echo "bench: --only '$a' names no run (e.g. --only vs-512,decode)" >&2
                exit 2
            fi
            continue
        fi
        case "$a" in
            --quick) quick=1 ;;
            --no-build) nobuild=1 ;;
            --only) want_only=1 ;;
            *) usage "cpu: unknown option '$a'" ;;
        esac
    done
    (( want_only )) && usage "cpu: --only needs a list of runs (e.g. --only vs-512,decode)"
    if (( quick )) && [[ -n "$only" ]]; then
        echo "bench: --only names runs of the full suite; --quick runs its own smoke set (use one or the other)" >&2
        exit 2
    fi
    if [[ -n "$only" ]]; then  # every name must be one of the suite's runs (the NAME of a jmh line below)
        local known n
        known="$(grep -oE '^ *jmh [a-z0-9-]+' "${BASH_SOURCE[0]}" | awk '{print $2}' | grep -v '^quick-' | tr '\n' ' ')"
        local g  # the shape groups' runs (step 5): TAG-ours-lora, TAG-ours-base, TAG-openblas-lora, TAG-openblas-base
        for g in $(sed -n 's/^ *local groups=(\(.*\))$/\1/p' "${BASH_SOURCE[0]}" | tr -d '"'); do
            known+="${g%%:*}-ours-lora ${g%%:*}-ours-base ${g%%:*}-openblas-lora ${g%%:*}-openblas-base "
        done
        for n in ${only//,/ }; do
            if [[ " $known " != *" $n "* ]]; then
                echo "bench: --only: '$n' is not a run of the CPU suite (runs: $known)" >&2
                exit 2
            fi
        done
    fi
    if (( nobuild == 0 )) && stale; then build; fi
    [[ -f "$jar" ]] || { echo "bench: $jar missing (run without --no-build)" >&2; exit 1; }
    local listed
    # with its errors: under set -e a failed listing used to end the script without a word
    listed="$("${java[@]}" -jar "$jar" -l 2>&1)" || {
        echo "bench: cannot list the benchmarks of $jar (a broken jar? rebuild without --no-build):" >&2
        tail -3 <<<"$listed" >&2
        exit 1
    }
    local have_cpu=1
    for cls in CpuLayerBenchmark ReferenceLayerBenchmark OpenBlasLoraBenchmark CpuVsOpenBlasBenchmark FmaPeakBenchmark; do
        if ! grep -q "\.$cls\." <<<"$listed"; then
            if (( quick )); then
                echo "bench: $cls is not in this build: skipped (--quick)" >&2
                [[ $cls == CpuLayerBenchmark ]] && have_cpu=0
            else
                echo "bench: $cls is not in $jar: the CPU suite needs the cpu backend's benchmark (merge branch cpu)" >&2
                exit 1
            fi
        fi
    done
    local raw=bench/raw out=bench
    (( quick )) && raw=bench/raw-quick out=bench/quick
    stage="$raw/.run-$(date -u +%Y%m%dT%H%M%SZ)"
    mkdir -p "$stage"
    local t0=$(date +%s)
    "${java[@]}" -cp "$jar" dev.rslora.bench.BenchEnv --out "$stage/cpu-env.json" \
        --openblas auto --openblas Haswell --openblas Cooperlake
    if [[ -n "$only" && -f "$raw/cpu-env.json" ]]; then
        # a partial run keeps the other results, and the report names this run's machine for all of them: on
        # another machine (a VM moved to another host) it would mix two CPUs under the new one's name
        local mixed
        mixed="$(machine_diff "$raw/cpu-env.json" "$stage/cpu-env.json")"
        if [[ -n "$mixed" ]]; then
            local what="$raw was measured on $(machine "$raw/cpu-env.json") and this one is $(machine "$stage/cpu-env.json") ($mixed)"
            if [[ "${RSLORA_BENCH_MIX_MACHINES:-}" == 1 ]]; then
                echo "bench: warning: RSLORA_BENCH_MIX_MACHINES=1: --only mixes machines: $what; the report will name this one for all results" >&2
            else
                rm -rf "$stage"
                echo "bench: --only would mix machines: $what; run the whole suite (without --only) to replace every result (RSLORA_BENCH_MIX_MACHINES=1 mixes them anyway)" >&2
                exit 1
            fi
        fi
    fi
    : >"$stage/loads.tsv"
    local cores=(-p core=Haswell,Cooperlake)
    # Our 256-bit tile with the JIT limited to 256-bit vectors: on this AVX-512 host C2 keeps its 32 EVEX
    # registers, as an SVE-256 machine (Graviton 3) has, so this runs the 8x16 tile; -XX:UseAVX=2 below
    # compiles as an AVX2 machine does (16 registers, the 6x16 tile).
    local t256=(-p tile=256 -jvmArgsAppend "-XX:MaxVectorSize=32")
    if (( quick )); then
        local q=(-wi 1 -w 500ms -i 2 -r 500ms)
        (( have_cpu )) && jmh quick-ours 'CpuLayerBenchmark' -p n=512 -p dIn=1024 -p dOut=1024 -p r=16 -p dropout=0 "${q[@]}"
        jmh quick-openblas 'OpenBlasLoraBenchmark' -p n=512 -p d=1024 -p r=16 "${cores[@]}" "${q[@]}"
        jmh quick-reference 'ReferenceLayerBenchmark' -p r=16 -wi 0 -i 1
        if (( have_cpu )); then
            jmh quick-vs 'CpuVsOpenBlasBenchmark' -p n=512 -p tile=512 -p block=2 -p gapMs=20 "${q[@]}"
            jmh quick-fma 'FmaPeakBenchmark.fma512' -t 1 "${q[@]}"
            jmh quick-cpu 'CpuLayerBenchmark.loraThenBaseCpu' -p n=512 -p dIn=1024 -p dOut=1024 -p r=64 -p threads=1 \
                -p tile=256 -jvmArgsAppend "-XX:UseAVX=2" "${q[@]}"
        fi
    else
        # 1. The machine's FMA ceiling per vector width, one thread: 20 iterations of 100 ms, the report
        #    takes the best (on this shared host the rate drops for stretches of seconds; jmh/README.md).
        jmh fma 'FmaPeakBenchmark' -t 1 -wi 2 -w 1s -i 20 -r 100ms
        #    and with one thread per core (all cores together: the ceiling of the all-core figures)
        jmh fma-all 'FmaPeakBenchmark.fma(512|256)$' -t "$(nproc)" -wi 2 -w 1s -i 20 -r 100ms
        # 2. Ours against OpenBLAS interleaved in one JVM (N = 512 and 2048, d = 1024, r = 64): the 512-bit
        #    tile against the Cooperlake (AVX-512) kernels, the 256-bit tile against the Haswell (AVX2) ones.
        #    Three JVMs each (-f 3): on this shared machine both sides' times move from one JVM to the next,
        #    OpenBLAS's more than ours (jmh/README.md), so one JVM's ratio does not survive a re-run; the
        #    report pools the three JVMs' iterations and lists each JVM's median.
        jmh vs-512 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Cooperlake -p tile=512 -f 3
        jmh vs-256 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Haswell "${t256[@]}" -f 3
        #    The same pair with the JIT compiling for AVX2 (-XX:UseAVX=2: VEX code, 16 ymm registers), which
        #    is what an AVX2 machine runs: on an AVX-512 host -XX:MaxVectorSize=32 alone keeps EVEX code
        #    (ymm16-31) and with it the 8x16 tile (jmh/README.md).
        jmh vs-256-avx2 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Haswell \
            -p tile=256 -jvmArgsAppend "-XX:UseAVX=2" -f 3
        #    The 512-bit pair at d = 4096 (N = 512): a packed W of 64 MB, which every chunk of rows streams from
        #    memory; two steps a block (a step takes ~0.1 s), three JVMs as well.
        jmh vs-512-d4096 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512 -p d=4096 -p r=64 -p core=Cooperlake -p tile=512 \
            -p block=2 -f 3 -wi 1 -w 4s -i 5 -r 4s
        #    How much one busy core slows each side: blocks with and without a competing thread, side by side
        #    (three JVMs as well).
        jmh busy 'CpuVsOpenBlasBenchmark.busyEffect' -p n=512 -p d=1024 -p r=64 -p core=Cooperlake -p tile=512 -f 3
        #    The same pairs with one thread each, timed in the calling thread's CPU time as well: each side's
        #    rate per core, which other processes on a shared machine do not dilute.
        jmh vs-1t-512 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Cooperlake -p tile=512 -p threads=1 \
            -p block=4
        jmh vs-1t-256 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Haswell -p threads=1 -p block=4 \
            "${t256[@]}"
        jmh vs-1t-256-avx2 'CpuVsOpenBlasBenchmark.oursThenOpenBlas' -p n=512,2048 -p d=1024 -p r=64 -p core=Haswell -p threads=1 \
            -p block=4 -p tile=256 -jvmArgsAppend "-XX:UseAVX=2"
        # 3. R and decoding latency with the LoRA and base steps interleaved; decoding also forward only
        #    (forwardThenBase: the LoRA forward against the frozen base's, no backward).
        local ri=(-wi 3 -w 1s -i 6 -r 1s)
        jmh r-d1024 'CpuLayerBenchmark.loraThenBase$' -p n=512 -p dIn=1024 -p dOut=1024 -p r=16,64,256 -p dropout=0 \
            -p tile=512 "${ri[@]}"
        jmh r-d1024-t256 'CpuLayerBenchmark.loraThenBase$' -p n=512 -p dIn=1024 -p dOut=1024 -p r=64,256 -p dropout=0 \
            "${t256[@]}" "${ri[@]}"
        jmh r-n2048 'CpuLayerBenchmark.loraThenBase$' -p n=2048 -p dIn=1024 -p dOut=1024 -p r=64 -p dropout=0 -p tile=512 \
            "${ri[@]}"
        jmh r-d4096 'CpuLayerBenchmark.loraThenBase$' -p n=512 -p dIn=4096 -p dOut=4096 -p r=64,256 -p dropout=0 \
            -p tile=512 -wi 2 -w 2s -i 5 -r 2s
        #    small training batches: up to 64 rows the row path (no cached adapter panels, outer-product gradients)
        jmh r-small 'CpuLayerBenchmark.loraThenBase$' -p n=16,32,64 -p dIn=1024 -p dOut=1024 -p r=16,64 -p dropout=0 \
            -p tile=512 "${ri[@]}"
        #    settings fine-tuning runs often have: dropout 0.1 on the LoRA input (fp32 and bf16), and a bf16
        #    model (X, W and dY in bf16, the adapter fp32 as PEFT keeps it) at a batch and at one row
        jmh r-dropout 'CpuLayerBenchmark.loraThenBase$' -p n=512 -p dIn=1024 -p dOut=1024 -p r=16,64 -p dropout=0.1 \
            -p dtype=F32,BF16 -p tile=512 "${ri[@]}"
        jmh r-bf16 'CpuLayerBenchmark.loraThenBase$' -p n=1,512 -p dIn=1024 -p dOut=1024 -p r=16,64 -p dropout=0 \
            -p dtype=BF16 -p tile=512 "${ri[@]}"
        jmh decode 'CpuLayerBenchmark.(loraThenBase|forwardThenBase)$' -p n=1,8 -p dIn=1024 -p dOut=1024 -p r=8,16,64 -p dropout=0 -p tile=512 \
            "${ri[@]}"
        #    the same in blocks of 32 steps a side: single steps alternating let the base step pay for writing back
        #    the gradients the LoRA step left dirty in the caches
        jmh decode-blocks 'CpuLayerBenchmark.(loraThenBase|forwardThenBase)$' -p n=1,8 -p dIn=1024 -p dOut=1024 -p r=8,16,64 -p dropout=0 \
            -p tile=512 -p block=32 "${ri[@]}"
        #    the N = 1 step's and forward's bytes moved alone (no arithmetic, the same threads): the traffic floor
        #    under the decoding targets, measured on this machine
        jmh traffic 'TrafficFloorBenchmark.(loraThenBase|forwardThenBase)$' -p n=1 -p dIn=1024 -p dOut=1024 -p r=64 -p block=32 \
            "${ri[@]}"
        # 4. One worker thread timed in its CPU time: each tile's rate against the FMA ceiling of its width
        #    (256 bits twice: the JIT limited to 32-byte vectors with 32 registers, the 8x16 tile, and AVX2
        #    alone with 16 registers, the 6x16 tile), unaffected by other processes on a shared machine.
        local ct=(-p n=512 -p dIn=1024 -p dOut=1024 -p r=64 -p dropout=0 -p threads=1 -wi 3 -w 1s -i 5 -r 1s)
        jmh cpu-t512 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=512 "${ct[@]}"
        jmh cpu-t256 'CpuLayerBenchmark.loraThenBaseCpu' "${t256[@]}" "${ct[@]}"
        jmh cpu-t256-avx2 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=256 -jvmArgsAppend "-XX:UseAVX=2" "${ct[@]}"
        jmh cpu-t128 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=128 -jvmArgsAppend "-XX:MaxVectorSize=16" "${ct[@]}"
        #    128-bit tiles as x86 without AVX-512 compiles them (16 vector registers): with FMA (AVX and FMA3,
        #    or AVX2 limited to 128 bits) and without (x86 before Haswell)
        jmh cpu-t128-avx 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=128 -jvmArgsAppend "-XX:UseAVX=1" "${ct[@]}"
        jmh cpu-t128-nofma 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=128 -jvmArgsAppend "-XX:UseAVX=1 -XX:-UseFMA" "${ct[@]}"
        jmh cpu-scalar 'CpuLayerBenchmark.loraThenBaseCpu' -p tile=0 "${ct[@]}"
        # 5. Separate runs, shape group by shape group: every figure and the scaling tables.
        # Shapes N ∈ {512, 2048}, d ∈ {1024, 4096}, r ∈ {16, 64, 256}, fp32, dropout 0; each implementation's
        # frozen base once per shape (it does not depend on r). Ours and OpenBLAS run shape group by shape
        # group so that their ratio is measured minutes, not a quarter of an hour, apart. Iterations per
        # group fit the time budget (a d=4096, N=2048 step took 0.4–0.8 s on the 2-core machine: an
        # iteration there is one or two steps).
        local small=(-wi 3 -w 1s -i 5 -r 1s) big=(-wi 2 -w 1s -i 5 -r 1s)
        local groups=("d1024:512,2048:small" "d4096-n512:512:big" "d4096-n2048:2048:big")
        for g in "${groups[@]}"; do
            IFS=: read -r tag ns set <<<"$g"
            local d=1024
            [[ $tag == d4096* ]] && d=4096
            local -n it="$set"
            jmh "$tag-ours-lora" 'CpuLayerBenchmark.loraForwardBackward' -p "n=$ns" -p "dIn=$d" -p "dOut=$d" \
                -p r=16,64,256 -p dropout=0 -p tile=512 "${it[@]}"
            jmh "$tag-ours-base" 'CpuLayerBenchmark.baseForwardBackward' -p "n=$ns" -p "dIn=$d" -p "dOut=$d" \
                -p r=16 -p dropout=0 -p tile=512 "${it[@]}"
            jmh "$tag-openblas-lora" 'OpenBlasLoraBenchmark.loraForwardBackward' -p "n=$ns" -p "d=$d" \
                -p r=16,64,256 "${cores[@]}" "${it[@]}"
            jmh "$tag-openblas-base" 'OpenBlasLoraBenchmark.baseForwardBackward' -p "n=$ns" -p "d=$d" \
                -p r=16 "${cores[@]}" "${it[@]}"
            unset -n it
        done
        # the scalar oracle: seconds per step, single shots at the smallest shape only
        jmh reference-lora 'ReferenceLayerBenchmark.loraForwardBackward' -p n=512 -p dIn=1024 -p dOut=1024 \
            -p r=16,64,256 -p dropout=0 -wi 1 -i 3
        jmh reference-base 'ReferenceLayerBenchmark.baseForwardBackward' -p n=512 -p dIn=1024 -p dOut=1024 \
            -p r=16 -p dropout=0 -wi 1 -i 3
    fi
    if [[ -n "$only" && -f "$raw/cpu-loads.json" ]]; then
        # a partial run keeps the loads of the results it does not replace
        local f
        for f in "$raw"/cpu-*.json; do
            f="$(basename "$f")"
            [[ "$f" == cpu-loads.json || "$f" == cpu-env.json || -f "$stage/$f" ]] && continue
            sed -n "s/^ *\"$f\": {\"before\": \"\([^\"]*\)\", \"after\": \"\([^\"]*\)\"\(, \"ended\": \"\([^\"]*\)\"\)\{0,1\}\(, \"busy_before\": \"\([^\"]*\)\"\)\{0,1\}}.*/$f\t\1\t\2\t\4\t\6/p" \
                "$raw/cpu-loads.json" >>"$stage/loads.tsv"
        done
    fi
    write_loads
    # the run succeeded: its files replace the previous CPU results (all of them, or with --only the
    # ones it re-ran; logs stay in the run folder)
    [[ -z "$only" ]] && rm -f "$raw"/cpu-*.json
    mv "$stage"/cpu-*.json "$raw"/
    echo "bench: CPU suite done in $(( $(date +%s) - t0 )) s; raw JSON in $raw/, logs in $stage/"
    if (( quick )); then
        report --raw "$raw" --out "$out/RESULTS.md" --plot "$out/r-vs-rank.png"
    else
        report --raw "$raw" --out "$out/RESULTS.md" --plot "$out/r-vs-rank.png" --readme README.md
    fi
}

# gpu_args ARGS...: LOGDIR (required for gpu-import), --commit SHA, --no-build, in any order, into logdir,
# commit and nobuild
gpu_args() {
    local want=$1
    shift
    logdir="" commit="" nobuild=0
    while (( $# )); do
        case "$1" in
            --no-build) nobuild=1 ;;
            --commit)
                [[ $want == gpu-import ]] || usage "$want: unknown option --commit (it belongs to gpu-import)"
                (( $# >= 2 )) || usage "$want: --commit needs a commit"
                commit=$2
                shift ;;
            -*) usage "$want: unknown option '$1'" ;;
            *)
                [[ -z "$logdir" ]] || usage "$want: one LOGDIR, got '$logdir' and '$1'"
                logdir=$1 ;;
        esac
        shift
    done
    [[ $want != gpu-import || -n "$logdir" ]] || usage "gpu-import: LOGDIR missing (a native-build/gpu-check.sh log folder)"
    [[ -z "$logdir" ]] || logdir="$(from_caller "$logdir")"
    if [[ -n "$commit" ]]; then  # any name git knows (HEAD, a tag, an abbreviated id in either case), as its full id
        local full
        full="$(git rev-parse -q --verify "$commit^{commit}" 2>/dev/null)" || {
            echo "bench: --commit $commit is not a commit of this repository" >&2
            exit 2
        }
        commit=$full
    fi
}

cmd="${1:-}"
[[ -n "$cmd" ]] || usage "a command is missing: cpu, gpu-import or report"
shift
case "$cmd" in
    cpu) cpu "$@" ;;
    gpu-import)
        gpu_args gpu-import "$@"
        if (( nobuild == 0 )) && stale; then build; fi
        if [[ -n "$commit" ]]; then report --import-gpu "$logdir" --commit "$commit" --readme README.md
        else report --import-gpu "$logdir" --readme README.md; fi
        ;;
    report)
        gpu_args report "$@"
        if (( nobuild == 0 )) && stale; then build; fi
        if [[ -n "$logdir" ]]; then report --gpu "$logdir" --readme README.md; else report --readme README.md; fi
        ;;
    *) usage "unknown command '$cmd' (cpu, gpu-import or report)" ;;
esac
