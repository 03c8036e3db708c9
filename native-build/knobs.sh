# Checks of the numeric environment knobs of gpu-check.sh and gpu-bench.sh, sourced by both so that
# gpu-check refuses a bad benchmark setting before the GPU minutes it would spend ahead of step 6.
# Bash arithmetic reads "7m" or "abc" as 0 (or fails mid-run) and "0420" as octal; an empty rank in
# a list would run JMH with -p r=. Each check exits 2 naming the variable and its value; an unset or
# empty variable means the script's default.
#   knob_seconds SCRIPT VAR [0]    a whole number of seconds, at least 1 (0 too with the third argument)
#   knob_list SCRIPT VAR           a comma list of positive integers

knob_seconds() {
    local v="${!2:-}" low='[1-9][0-9]{0,8}'
    [[ "${3:-}" == 0 ]] && low='(0|[1-9][0-9]{0,8})'
    [[ -z "$v" || "$v" =~ ^$low$ ]] && return 0
    echo "$1: $2=$v is not a whole number of seconds ($([[ "${3:-}" == 0 ]] && echo "0 or more" || echo "1 or more"))" >&2
    exit 2
}

knob_list() {
    local v="${!2:-}"
    [[ -z "$v" || "$v" =~ ^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*$ ]] && return 0
    echo "$1: $2=$v is not a comma list of positive integers" >&2
    exit 2
}

# The knobs gpu-bench.sh reads (gpu-check.sh passes them on to it).
knob_check_bench() {
    knob_seconds "$1" RSLORA_BENCH_BUDGET_S
    knob_seconds "$1" RSLORA_PEER_TIMEOUT_S
    knob_list "$1" RSLORA_BENCH_N
    knob_list "$1" RSLORA_BENCH_D
    knob_list "$1" RSLORA_BENCH_R
}
