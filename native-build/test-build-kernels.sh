#!/usr/bin/env bash
# Self-test of build-kernels.sh without compiling anything real: (1) nvcc absent → exit 0 and
# built=false recorded; (2) a fake nvcc that reports a spill → the report has the kernel row and a
# SPILL WARNING line; (3) a fake nvcc that fails → the script fails. Prints "N passed, N failed".
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pass=0
fail=0
check() {  # name, command...
    local name="$1"
    shift
    if "$@"; then pass=$((pass + 1)); echo "ok   $name"; else fail=$((fail + 1)); echo "FAIL $name"; fi
}

# (1) nvcc absent
RSLORA_FORCE_NO_NVCC=1 "$here/build-kernels.sh" "$work/a/classes" >"$work/a.log" 2>&1
rc=$?
check "absent nvcc exits 0" test "$rc" -eq 0
check "absent nvcc recorded" grep -q '^built=false' "$work/a/classes/dev/rslora/cuda/kernels.properties"
check "absent nvcc says so" grep -q 'NOT built: nvcc absent' "$work/a.log"
check "absent nvcc leaves no fatbin" test ! -e "$work/a/classes/dev/rslora/cuda/rslora_kernels.fatbin"

# (2) a fake nvcc whose ptxas output reports spills
mkdir -p "$work/bin"
cat >"$work/bin/nvcc" <<'FAKE'
#!/bin/bash
if [[ "$1" == "--version" ]]; then echo "Cuda compilation tools, release 99.1, V99.1.0"; exit 0; fi
out=""; while [[ $# -gt 0 ]]; do if [[ "$1" == "-o" ]]; then out="$2"; shift; fi; shift; done
if [[ -n "${FAKE_FAIL:-}" ]]; then echo "error: fake compile error" >&2; exit 1; fi
printf 'P\xedU\xba' >"$out"
cat >&2 <<'L'
ptxas info    : Compiling entry function 'rslora_clean_v1_f32' for 'sm_80'
ptxas info    : Function properties for rslora_clean_v1_f32
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, used 1 barriers, 8704 bytes smem, 424 bytes cmem[0]
ptxas info    : Compiling entry function 'rslora_fake_v1_f32' for 'sm_90'
ptxas info    : Function properties for rslora_fake_v1_f32
    16 bytes stack frame, 12 bytes spill stores, 8 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 8704 bytes smem, 424 bytes cmem[0]
L
FAKE
chmod +x "$work/bin/nvcc"
NVCC="$work/bin/nvcc" "$here/build-kernels.sh" "$work/b/classes" >"$work/b.log" 2>&1
rc=$?
check "fake nvcc exits 0" test "$rc" -eq 0
check "report row" grep -Eq '^rslora_fake_v1_f32 +sm_90 +255 +8704 +16 +12 +8$' "$work/b/ptxas-report.txt"
check "clean kernel not warned" bash -c "! grep -q 'SPILL WARNING: rslora_clean' '$work/b/ptxas-report.txt'"
check "spill warning in report" grep -q 'SPILL WARNING: rslora_fake_v1_f32 on sm_90' "$work/b/ptxas-report.txt"
check "spill warning printed" grep -q 'SPILL WARNING: rslora_fake_v1_f32' "$work/b.log"
check "built recorded" grep -q '^built=true' "$work/b/classes/dev/rslora/cuda/kernels.properties"

# (3) a compile error fails the script
FAKE_FAIL=1 NVCC="$work/bin/nvcc" "$here/build-kernels.sh" "$work/c/classes" >"$work/c.log" 2>&1
rc=$?
check "compile error fails" test "$rc" -ne 0
check "compile error shown" grep -q 'fake compile error' "$work/c.log"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
