#!/usr/bin/env bash
# Self-test of build-kernels.sh. With a fake nvcc (no real compile): (1) nvcc absent → exit 0,
# built=false, the table still copied; (2) v1 spills → report rows + SPILL WARNING, still built;
# (3) a compile error fails; (4) a spilling or stack-using kernel of the new families fails the
# build; (5) ptxas C7510/C7511/C7515 (wgmma serialised) fails it; (6) a table kernel missing from its
# image, or an untabled kernel in an image, fails it. With the real nvcc (when present): (7) a small
# cuda/ tree whose v3 kernel needs a stack frame fails, the same tree with a register-only kernel
# builds both images. check-sass.sh with a fake cuobjdump: (8) HGMMA/UTMALDG in every sm90a kernel and
# no LDL/STL in the new families' kernels pass; a missing HGMMA, a local-memory access, or a table
# kernel absent from the SASS fail. kernel-table.sh: (9) a malformed table prints no row and names the
# line, sizes beyond a Java int are malformed, a step or grid rule not in the header's lists is refused
# naming it, and check-sass.sh refuses such a table. (10) gpu-check.sh, gpu-bench.sh, check-sass.sh and
# build-kernels.sh refuse bad arguments, and the GPU scripts numeric environment knobs that are not whole
# numbers, before doing anything. (11) gpu-check's budget on a fake bundle: the runtime is unpacked at a
# budget below the benchmarks' reserve, what the budget cuts is SKIP 'budget'. (12) jmh/bench.sh takes a
# relative LOGDIR as the caller's, names a jar it cannot list, and cpu --only refuses (before any run) to
# add results from a machine other than bench/raw's unless RSLORA_BENCH_MIX_MACHINES=1. Prints "N passed,
# N failed".
set -uo pipefail
# each case sets the build's switches it tests; one inherited from the caller (a test run with
# RSLORA_FORCE_NO_NVCC=1, as on a machine without a GPU) would turn every compile case into "nvcc absent"
unset RSLORA_FORCE_NO_NVCC
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

# a cuda/ tree for the fake compiler: the two translation units (never read) and a table
tree="$work/tree"
mkdir -p "$tree"
: >"$tree/rslora_kernels.cu"
: >"$tree/rslora_kernels_sm90a.cu"
cat >"$tree/kernels.table" <<'T'
// test table
RS_KERNEL(v1, down, f32,  rslora_clean_v1_f32, 256, 0, 1x1x1, sm80,  main,  tiles_r_n, 0, sm90)
RS_KERNEL(v1, dx,   f32,  rslora_fake_v1_f32,  256, 0, 1x1x1, sm80,  main,  tiles_din_n, 0, none)
RS_KERNEL(v3, down, bf16, rslora_mb_new_bf16,  256, 0, 1x1x1, sm80,  main,  mb_rows, 16, none)
RS_KERNEL(v3, dx,   bf16, rslora_v3_gemm_bf16, 384, 0, 1x1x1, sm90a, sm90a, tiles_din_n, 0, none)
T
entry() {  # name arch stack spill_stores spill_loads regs
    printf "ptxas info    : Compiling entry function '%s' for '%s'\nptxas info    : Function properties for %s\n    %s bytes stack frame, %s bytes spill stores, %s bytes spill loads\nptxas info    : Used %s registers, used 1 barriers, 8704 bytes smem, 424 bytes cmem[0]\n" \
        "$1" "$2" "$1" "$3" "$4" "$5" "$6"
}
mkdir -p "$work/bin"
cat >"$work/bin/nvcc" <<'FAKE'
#!/bin/bash
if [[ "$1" == "--version" ]]; then echo "Cuda compilation tools, release 99.1, V99.1.0"; exit 0; fi
out=""; src=""; while [[ $# -gt 0 ]]; do if [[ "$1" == "-o" ]]; then out="$2"; shift; fi; src="$1"; shift; done
if [[ -n "${FAKE_FAIL:-}" ]]; then echo "error: fake compile error" >&2; exit 1; fi
printf 'P\xedU\xba' >"$out"
case "$src" in
    *_sm90a.cu) cat "$FAKE_DIR/sm90a.txt" >&2 ;;
    *) cat "$FAKE_DIR/main.txt" >&2 ;;
esac
FAKE
chmod +x "$work/bin/nvcc"
fake() {  # case name: writes $work/<case>/{main,sm90a}.txt from the entries given on stdin, tagged M: or S:
    local d="$work/fake-$1"
    mkdir -p "$d"
    : >"$d/main.txt"
    : >"$d/sm90a.txt"
    while read -r img rest; do
        # shellcheck disable=SC2086
        if [[ "$img" == M ]]; then entry $rest >>"$d/main.txt"; elif [[ "$img" == S ]]; then entry $rest >>"$d/sm90a.txt"; else echo "$rest" >>"$d/$img"; fi
    done
    echo "$d"
}
build() {  # case → runs build-kernels.sh with the fake compiler and FAKE_DIR, output in $work/<case>.log
    local c="$1"
    shift
    env "$@" NVCC="$work/bin/nvcc" RSLORA_CUDA_DIR="$tree" "$here/build-kernels.sh" "$work/$c/classes" >"$work/$c.log" 2>&1
}
clean_entries() {
    cat <<'E'
M rslora_clean_v1_f32 sm_80 0 0 0 40
M rslora_clean_v1_f32 sm_90 0 0 0 40
M rslora_fake_v1_f32 sm_90 16 12 8 255
M rslora_mb_new_bf16 sm_80 0 0 0 96
M rslora_mb_new_bf16 sm_90 0 0 0 96
S rslora_v3_gemm_bf16 sm_90a 0 0 0 168
E
}
res() { echo "$work/$1/classes/dev/rslora/cuda"; }

# (1) nvcc absent
RSLORA_FORCE_NO_NVCC=1 RSLORA_CUDA_DIR="$tree" "$here/build-kernels.sh" "$work/a/classes" >"$work/a.log" 2>&1
rc=$?
check "absent nvcc exits 0" test "$rc" -eq 0
check "absent nvcc recorded" grep -q '^built=false' "$(res a)/kernels.properties"
check "absent nvcc says so" grep -q 'NOT built: nvcc absent' "$work/a.log"
check "absent nvcc leaves no fatbin" test ! -e "$(res a)/rslora_kernels.fatbin"
check "the table is copied anyway" cmp -s "$tree/kernels.table" "$(res a)/kernels.table"

# (2) v1 spills: a warning; both images built
d="$(clean_entries | fake b)"
build b FAKE_DIR="$d"
rc=$?
check "v1 spill builds (exit 0)" test "$rc" -eq 0
check "report row with the image" grep -Eq '^rslora_fake_v1_f32 +sm_90 +255 +8704 +16 +12 +8 +main$' "$work/b/ptxas-report.txt"
check "sm90a image row" grep -Eq '^rslora_v3_gemm_bf16 +sm_90a +168 +8704 +0 +0 +0 +sm90a$' "$work/b/ptxas-report.txt"
check "clean kernel not warned" bash -c "! grep -q 'SPILL WARNING: rslora_clean' '$work/b/ptxas-report.txt'"
check "spill warning in report" grep -q 'SPILL WARNING: rslora_fake_v1_f32 on sm_90' "$work/b/ptxas-report.txt"
check "spill warning printed" grep -q 'SPILL WARNING: rslora_fake_v1_f32' "$work/b.log"
check "built recorded" grep -q '^built=true' "$(res b)/kernels.properties"
check "both images written" test -s "$(res b)/rslora_kernels.fatbin" -a -s "$(res b)/rslora_kernels_sm90a.fatbin"
check "images recorded" grep -q '^image.sm90a=dev/rslora/cuda/rslora_kernels_sm90a.fatbin' "$(res b)/kernels.properties"

# (3) a compile error fails the script
build c FAKE_FAIL=1 FAKE_DIR="$d"
rc=$?
check "compile error fails" test "$rc" -ne 0
check "compile error shown" grep -q 'fake compile error' "$work/c.log"

refused() {  # case, expected message fragment
    local c="$1" want="$2"
    test "$rc" -ne 0 && grep -q "BUILD CHECK FAILED: .*$want" "$work/$c.log" && grep -q '^built=false' "$(res "$c")/kernels.properties" \
        && test ! -e "$(res "$c")/rslora_kernels.fatbin"
}
# (4) a memory-bound kernel that spills, and a v3 GEMM with a stack frame
d="$(clean_entries | sed 's/^M rslora_mb_new_bf16 sm_90 0 0 0 96$/M rslora_mb_new_bf16 sm_90 8 8 8 128/' | fake d)"
build d FAKE_DIR="$d"
rc=$?
check "a spilling mb kernel fails the build" refused d "rslora_mb_new_bf16 on sm_90 .*8 bytes spill stores"
d="$(clean_entries | sed 's/^S rslora_v3_gemm_bf16 sm_90a 0 0 0 168$/S rslora_v3_gemm_bf16 sm_90a 32 0 0 168/' | fake e)"
build e FAKE_DIR="$d"
rc=$?
check "a v3 kernel with a stack frame fails the build" refused e "rslora_v3_gemm_bf16 on sm_90a .*32 bytes stack frame"

# (5) wgmma serialised
d="$( { clean_entries; echo "sm90a.txt ptxas warning : (C7515) Potential Performance Loss: wgmma.mma_async instructions are serialized due to the presence of Extern calls in the function 'rslora_v3_gemm_bf16'."; } | fake f)"
build f FAKE_DIR="$d"
rc=$?
check "C7515 fails the build" refused f "C7515"
d="$( { clean_entries; echo "main.txt ptxas warning : (C7510) Potential Performance Loss: wgmma.mma_async instructions are serialized"; } | fake f2)"
build f2 FAKE_DIR="$d"
rc=$?
check "C7510 fails the build" refused f2 "C7510"

# (6) table ↔ images
d="$(clean_entries | grep -v rslora_mb_new_bf16 | fake g)"
build g FAKE_DIR="$d"
rc=$?
check "a table kernel missing from its image fails" refused g "table names rslora_mb_new_bf16 (image main)"
d="$( { clean_entries; echo "M rslora_untabled_v1_f32 sm_80 0 0 0 20"; } | fake h)"
build h FAKE_DIR="$d"
rc=$?
check "an untabled kernel fails" refused h "exports rslora_untabled_v1_f32"

# (7) the real compiler: a stack-using v3 kernel (a dynamically indexed local array) is refused
nvcc_real="$(command -v nvcc || { [[ -x /usr/local/cuda/bin/nvcc ]] && echo /usr/local/cuda/bin/nvcc; })"
if [[ -n "$nvcc_real" && -z "${RSLORA_SKIP_REAL_NVCC:-}" ]]; then
    real="$work/real"
    mkdir -p "$real"
    cat >"$real/kernels.table" <<'T'
RS_KERNEL(v3, down, bf16, rslora_mb_probe_bf16, 256, 0, 1x1x1, sm80, main, mb_rows, 16, none)
T
    cat >"$real/rslora_kernels_sm90a.cu" <<'K'
// empty sm90a image
K
    write_probe() {  # local array size and index mask: 64 with data-dependent indices = a stack frame; 1 = a register
        cat >"$real/rslora_kernels.cu" <<K
extern "C" __global__ void rslora_mb_probe_bf16(const float* in, float* out, int k) {
    float a[$1];
#pragma unroll
    for (int i = 0; i < $1; ++i) a[(i * k) & $2] = in[threadIdx.x * $1 + i];
    out[threadIdx.x] = a[k & $2] + a[(k >> 6) & $2];
}
K
    }
    write_probe 64 63
    NVCC="$nvcc_real" RSLORA_NVCC_THREADS=1 RSLORA_CUDA_DIR="$real" "$here/build-kernels.sh" "$work/r1/classes" >"$work/r1.log" 2>&1
    rc=$?
    check "real nvcc: a v3 kernel with a stack frame is refused" refused r1 "rslora_mb_probe_bf16 on sm_80 .*bytes stack frame"
    write_probe 1 0
    NVCC="$nvcc_real" RSLORA_NVCC_THREADS=1 RSLORA_CUDA_DIR="$real" "$here/build-kernels.sh" "$work/r2/classes" >"$work/r2.log" 2>&1
    rc=$?
    check "real nvcc: the register-only version builds both images" test "$rc" -eq 0 -a -s "$(res r2)/rslora_kernels_sm90a.fatbin"
    check "real nvcc: its report row" grep -Eq '^rslora_mb_probe_bf16 +sm_90 +[0-9]+ +0 +0 +0 +0 +main$' "$work/r2/ptxas-report.txt"
else
    echo "skip (7): no nvcc here"
fi

# (8) check-sass.sh with a fake cuobjdump that prints the SASS in $SASS_DIR/<fatbin name>.sass
sass="$work/sass"
mkdir -p "$sass/img"
: >"$sass/img/rslora_kernels.fatbin"
: >"$sass/img/rslora_kernels_sm90a.fatbin"
cat >"$work/bin/cuobjdump" <<'FAKE'
#!/bin/bash
cat "$SASS_DIR/$(basename "$2").sass"
FAKE
chmod +x "$work/bin/cuobjdump"
fn() {  # arch name opcodes...
    local arch="$1" name="$2"
    shift 2
    printf '\n\tcode for %s\n\t\tFunction : %s\n' "$arch" "$name"
    local i=0
    for op in "$@"; do printf '        /*%04x*/                   %s ;\n' $((i += 16)) "$op"; done
}
write_sass() {  # main-gemm-op  v3-gemm-extra-op  mb-op
    {
        echo "arch = sm_80"
        fn sm_80 rslora_clean_v1_f32 "LDG.E R2, desc[UR4][R2.64]" "STL [R1], R2" "EXIT"
        fn sm_80 rslora_fake_v1_f32 "EXIT"
        fn sm_80 rslora_mb_new_bf16 "LDG.E.128 R4, desc[UR4][R2.64]" "$3" "HMMA.16816.F32.BF16 R8, R4, R6, R8" "EXIT"
    } >"$sass/rslora_kernels.fatbin.sass"
    {
        echo "arch = sm_90a"
        fn sm_90a rslora_v3_gemm_bf16 "UTMALDG.2D [UR8], [UR4]" "$1" "$2" "EXIT"
    } >"$sass/rslora_kernels_sm90a.fatbin.sass"
}
sass_check() {  # case
    env SASS_DIR="$sass" CUOBJDUMP="$work/bin/cuobjdump" RSLORA_FATBIN_DIR="$sass/img" RSLORA_KERNEL_TABLE="$tree/kernels.table" \
        "$here/check-sass.sh" "$work/$1" >"$work/$1.log" 2>&1
}
write_sass "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ" "NOP" "NOP"
sass_check s1
rc=$?
check "sass: clean kernels pass (a v1 STL is not checked)" test "$rc" -eq 0
check "sass: the sm90a kernel reported" grep -q '^ok   rslora_v3_gemm_bf16 sm_90a (sm90a): HGMMA, UTMALDG' "$work/s1.log"
write_sass "NOP" "NOP" "NOP"
sass_check s2
rc=$?
check "sass: an sm90a kernel without HGMMA fails" bash -c "test $rc -eq 1 && grep -q 'FAIL rslora_v3_gemm_bf16 sm_90a (sm90a): no HGMMA' '$work/s2.log'"
write_sass "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ" "NOP" "LDL.LU R5, [R1+0x4]"
sass_check s3
rc=$?
check "sass: local memory in an mb kernel fails" bash -c "test $rc -eq 1 && grep -q 'FAIL rslora_mb_new_bf16 sm_80 (main): LDL/STL' '$work/s3.log'"
write_sass "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ" "STL.64 [R1], R4" "NOP"
sass_check s4
rc=$?
check "sass: local memory in a v3 GEMM fails" bash -c "test $rc -eq 1 && grep -q 'FAIL rslora_v3_gemm_bf16 sm_90a (sm90a): LDL/STL' '$work/s4.log'"
write_sass "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ" "NOP" "NOP"
sed -i 's/rslora_mb_new_bf16/rslora_mb_other_bf16/' "$sass/rslora_kernels.fatbin.sass"
sass_check s5
rc=$?
check "sass: a table kernel missing from the SASS fails" bash -c "test $rc -eq 1 && grep -q 'FAIL rslora_mb_new_bf16: in the table' '$work/s5.log'"
CUOBJDUMP=/nonexistent "$here/check-sass.sh" "$work/s6" >"$work/s6.log" 2>&1
rc=$?
check "sass: no cuobjdump is a skip (exit 3)" test "$rc" -eq 3

# (9) kernel-table.sh on a malformed table: no row at all (not the rows above the bad line), the line
# named, exit 1; a size no Java int holds is malformed too (the Java reader refuses it); check-sass.sh
# refuses such a table instead of checking what is left of it
bad_table="$work/bad.table"
{ head -n 2 "$tree/kernels.table"; echo "RS_KERNEL(v1, da, f32, rslora_x_v1_f32, 256, 0, 1x1x1, sm80, main, tiles_r_n, 0, none"; } >"$bad_table"
RSLORA_KERNEL_TABLE="$bad_table" "$here/kernel-table.sh" names >"$work/t1.out" 2>"$work/t1.err"
rc=$?
check "table: a malformed line fails (exit 1)" test "$rc" -eq 1
check "table: a malformed table prints no row" test ! -s "$work/t1.out"
check "table: the bad line is named" grep -q "bad.table line 3 not a row" "$work/t1.err"
sed 's/rslora_clean_v1_f32, 256, 0,/rslora_clean_v1_f32, 256, 2147483648,/' "$tree/kernels.table" >"$work/big.table"
RSLORA_KERNEL_TABLE="$work/big.table" "$here/kernel-table.sh" check >"$work/t2.log" 2>&1
rc=$?
check "table: smem beyond a Java int is refused" bash -c "test $rc -eq 1 && grep -q 'big.table line 2 smem 2147483648' '$work/t2.log'"
# a step or grid rule outside the header's lists (a typo the kernel selector or the C++ build met only later)
sed 's/^RS_KERNEL(v1, dx,   f32,/RS_KERNEL(v1, dX,   f32,/' "$tree/kernels.table" >"$work/step.table"
RSLORA_KERNEL_TABLE="$work/step.table" "$here/kernel-table.sh" rows >"$work/t3.out" 2>"$work/t3.err"
rc=$?
check "table: an unknown step is refused naming the line and the step" \
    bash -c "test $rc -eq 1 && test ! -s '$work/t3.out' && grep -q 'step.table line 3 unknown step dX ' '$work/t3.err'"
sed 's/main,  mb_rows, 16/main,  mb_row, 16/' "$tree/kernels.table" >"$work/grid.table"
RSLORA_KERNEL_TABLE="$work/grid.table" "$here/kernel-table.sh" names >"$work/t4.out" 2>"$work/t4.err"
rc=$?
check "table: an unknown grid rule is refused naming the line and the rule" \
    bash -c "test $rc -eq 1 && test ! -s '$work/t4.out' && grep -q 'grid.table line 4 unknown grid rule mb_row ' '$work/t4.err'"
"$here/kernel-table.sh" steps >"$work/t5.out" 2>&1 && "$here/kernel-table.sh" grids >>"$work/t5.out" 2>&1
rc=$?
check "table: every step and grid rule of the test table is listed" \
    bash -c "test $rc -eq 0 && grep -qx dx '$work/t5.out' && grep -qx mb_rows '$work/t5.out' && grep -qx persistent_din_n '$work/t5.out'"
write_sass "HGMMA.64x128x16.F32.BF16 R24, gdesc[UR4], RZ" "NOP" "NOP"
env SASS_DIR="$sass" CUOBJDUMP="$work/bin/cuobjdump" RSLORA_FATBIN_DIR="$sass/img" RSLORA_KERNEL_TABLE="$bad_table" \
    "$here/check-sass.sh" "$work/s7" >"$work/s7.log" 2>&1
rc=$?
check "sass: a malformed table fails naming the line" bash -c "test $rc -eq 1 && grep -q 'FAIL: kernel-table: .*bad.table line 3' '$work/s7.log'"

# (10) the GPU scripts refuse bad arguments before doing anything: an unknown option, a LOGDIR/OUTDIR that
# cannot be created (they wrote their logs to / before), a malformed table (gpu-check read it as "v1 only")
: >"$work/afile"
root="$(cd "$here/.." && pwd)"
(cd "$root" && native-build/gpu-check.sh "$work/g1" --forec) >"$work/g1.log" 2>&1
rc=$?
check "gpu-check: an unknown option is a usage error" bash -c "test $rc -eq 2 && grep -q '^usage:' '$work/g1.log' && test ! -e '$work/g1'"
(cd "$root" && native-build/gpu-check.sh "$work/afile/logs") >"$work/g2.log" 2>&1
rc=$?
check "gpu-check: a LOGDIR it cannot create is named" bash -c "test $rc -eq 2 && grep -q 'cannot create LOGDIR $work/afile/logs' '$work/g2.log'"
(cd "$root" && RSLORA_KERNEL_TABLE="$bad_table" native-build/gpu-check.sh "$work/g3") >"$work/g3.log" 2>&1
rc=$?
check "gpu-check: a malformed table is named" bash -c "test $rc -eq 2 && grep -q 'bad.table line 3 not a row' '$work/g3.log'"
# a LOGDIR an earlier check wrote to: its files would be imported as this run's
mkdir -p "$work/g7"
echo '[]' >"$work/g7/jmh-gpu-r16.json"
echo 'earlier' >"$work/g7/env.log"
(cd "$root" && native-build/gpu-check.sh "$work/g7") >"$work/g7.log" 2>&1
rc=$?
check "gpu-check: a LOGDIR an earlier check wrote is refused, left as it was" \
    bash -c "test $rc -eq 2 && grep -q 'LOGDIR $work/g7 holds an earlier check' '$work/g7.log' && test \"\$(ls '$work/g7' | tr '\n' ' ')\" = 'env.log jmh-gpu-r16.json '"
# a console log tee'd into LOGDIR exists before the check starts: not an earlier check
mkdir -p "$work/g8"
echo 'console' >"$work/g8/console.log"
(cd "$root" && native-build/gpu-check.sh "$work/g8") >"$work/g8.log" 2>&1
rc=$?
check "gpu-check: a LOGDIR holding only other files (a tee'd console log) is used" \
    bash -c "test $rc -eq 3 && test -f '$work/g8/summary.txt' && grep -q console '$work/g8/console.log'"
"$here/gpu-bench.sh" "$work/afile/logs" >"$work/g4.log" 2>&1
rc=$?
check "gpu-bench: a LOGDIR it cannot create is named" bash -c "test $rc -eq 2 && grep -q 'cannot create LOGDIR $work/afile/logs' '$work/g4.log'"
# a part the budget stopped before its own limit is counted as cut short, not failed; a part that ran
# past its own limit fails (stub java and python: no JVM, GPU or torch needed)
mkdir -p "$work/stub"
printf '#!/bin/sh\nexec sleep 30\n' >"$work/stub/sleeper"
printf '#!/bin/sh\nexit 3\n' >"$work/stub/skipper"
printf '#!/bin/sh\nkill -9 $$\n' >"$work/stub/killed"
chmod +x "$work/stub/sleeper" "$work/stub/skipper" "$work/stub/killed"
(cd "$root" && RSLORA_JAVA="$work/stub/sleeper" RSLORA_PYTHON="$work/stub/skipper" RSLORA_BENCH_BUDGET_S=20 \
    RSLORA_BENCH_FAMILIES= native-build/gpu-bench.sh "$work/b1") >"$work/b1.log" 2>&1
rc=$?
check "gpu-bench: a part the budget cut short is not a failure" bash -c "test $rc -eq 3 \
    && grep -q 'Java CUDA-event timings: cut short by the budget after 6s (its own limit 60s' '$work/b1.log' \
    && grep -q '4 of 5 parts not run or cut short' '$work/b1.log' && ! grep -q FAILED '$work/b1.log'"
(cd "$root" && RSLORA_JAVA="$work/stub/skipper" RSLORA_PYTHON="$work/stub/sleeper" RSLORA_PEER_TIMEOUT_S=3 \
    RSLORA_BENCH_BUDGET_S=60 RSLORA_BENCH_FAMILIES= native-build/gpu-bench.sh "$work/b2") >"$work/b2.log" 2>&1
rc=$?
check "gpu-bench: a part that ran past its own limit fails" bash -c "test $rc -eq 1 \
    && grep -q 'PyTorch peers: FAILED (rc 124, timed out after 3s)' '$work/b2.log'"
# killed at once (137, as by the OOM killer) under a budget-cut limit: a failure, not the budget
(cd "$root" && RSLORA_JAVA="$work/stub/killed" RSLORA_PYTHON="$work/stub/skipper" RSLORA_BENCH_BUDGET_S=20 \
    RSLORA_BENCH_FAMILIES= RSLORA_BENCH_R=16 native-build/gpu-bench.sh "$work/b3") >"$work/b3.log" 2>&1
rc=$?
check "gpu-bench: a part killed before its timeout fails even under a cut limit" bash -c "test $rc -eq 1 \
    && grep -q 'Java CUDA-event timings: FAILED (rc 137' '$work/b3.log' && ! grep -q 'cut short' '$work/b3.log'"
(cd "$work" && "$here/build-kernels.sh" --help) >"$work/g6.log" 2>&1
rc=$?
check "build-kernels: an option is a usage error, not an OUTDIR" bash -c "test $rc -eq 2 && grep -q '^usage:' '$work/g6.log' && test ! -e '$work/--help'"
"$here/check-sass.sh" "$work/afile/out" >"$work/g5.log" 2>&1
rc=$?
check "check-sass: an OUTDIR it cannot create is named" bash -c "test $rc -eq 2 && grep -q 'cannot create OUTDIR $work/afile/out' '$work/g5.log'"

# numeric knobs that are not whole numbers of seconds are refused naming the variable and the value, before
# LOGDIR is made (bash arithmetic read "8m" or "abc" as 0, or failed mid-run; "0480" as octal)
knob() {  # case script variable value: exit 2, the variable and value named, no LOGDIR
    local c="$1" script="$2" var="$3" val="$4"
    (cd "$root" && env "$var=$val" "native-build/$script" "$work/$c") >"$work/$c.log" 2>&1
    local r=$?
    test "$r" -eq 2 && grep -qF "$var=$val is not" "$work/$c.log" && test ! -e "$work/$c"
}
check "gpu-check: RSLORA_CHECK_BUDGET_S=8m is refused" knob k1 gpu-check.sh RSLORA_CHECK_BUDGET_S 8m
check "gpu-check: RSLORA_CHECK_BUDGET_S=0 is refused" knob k2 gpu-check.sh RSLORA_CHECK_BUDGET_S 0
check "gpu-check: RSLORA_CHECK_BUDGET_S=0480 is refused" knob k3 gpu-check.sh RSLORA_CHECK_BUDGET_S 0480
check "gpu-check: RSLORA_BENCH_RESERVE_S=-5 is refused" knob k4 gpu-check.sh RSLORA_BENCH_RESERVE_S -5
check "gpu-check: RSLORA_BENCH_RESERVE_S=abc is refused" knob k5 gpu-check.sh RSLORA_BENCH_RESERVE_S abc
check "gpu-bench: RSLORA_BENCH_BUDGET_S=abc is refused" knob k6 gpu-bench.sh RSLORA_BENCH_BUDGET_S abc
check "gpu-bench: RSLORA_BENCH_BUDGET_S=99999999999999999999 is refused" knob k7 gpu-bench.sh RSLORA_BENCH_BUDGET_S 99999999999999999999
check "gpu-bench: RSLORA_PEER_TIMEOUT_S=2.5 is refused" knob k8 gpu-bench.sh RSLORA_PEER_TIMEOUT_S 2.5
check "gpu-bench: RSLORA_BENCH_R=16,,64 is refused" knob k9 gpu-bench.sh RSLORA_BENCH_R 16,,64
check "gpu-bench: RSLORA_BENCH_N=8k is refused" knob k10 gpu-bench.sh RSLORA_BENCH_N 8k
# gpu-check refuses gpu-bench's knobs too, before its first step rather than at step 6
check "gpu-check: RSLORA_BENCH_R=16,,64 is refused up front" knob k13 gpu-check.sh RSLORA_BENCH_R 16,,64
check "gpu-check: RSLORA_BENCH_BUDGET_S=7m is refused up front" knob k14 gpu-check.sh RSLORA_BENCH_BUDGET_S 7m
# valid values pass the check (seen by the next refusal: a LOGDIR it cannot create, checked after the knobs)
(cd "$root" && RSLORA_CHECK_BUDGET_S=1 RSLORA_BENCH_RESERVE_S=0 native-build/gpu-check.sh "$work/afile/k11") >"$work/k11.log" 2>&1
rc=$?
check "gpu-check: RSLORA_CHECK_BUDGET_S=1 and RSLORA_BENCH_RESERVE_S=0 are accepted" \
    bash -c "test $rc -eq 2 && grep -q 'cannot create LOGDIR' '$work/k11.log' && ! grep -q ' is not ' '$work/k11.log'"
RSLORA_BENCH_BUDGET_S=900 RSLORA_PEER_TIMEOUT_S=60 RSLORA_BENCH_N=2048,8192 RSLORA_BENCH_D=4096 RSLORA_BENCH_R=16 \
    "$here/gpu-bench.sh" "$work/afile/k12" >"$work/k12.log" 2>&1
rc=$?
check "gpu-bench: valid budget, timeout and shape lists are accepted" \
    bash -c "test $rc -eq 2 && grep -q 'cannot create LOGDIR' '$work/k12.log' && ! grep -q ' is not ' '$work/k12.log'"
# a part that exits 0 without writing its file is a failure, not "done ( timings)": a java that writes
# nothing, a python peer that writes one timing
cat >"$work/bin/java-silent" <<'J'
#!/bin/bash
exit 0
J
cat >"$work/bin/python-one" <<'P'
#!/bin/bash
while [[ $# -gt 0 ]]; do [[ "$1" == --out ]] && { echo '{"kind": "timing", "name": "fake"}' >"$2"; shift; }; shift; done
exit 0
P
chmod +x "$work/bin/java-silent" "$work/bin/python-one"
mkdir -p "$work/gb-silent"   # an earlier run's r = 256 file and someone else's note
echo '[]' >"$work/gb-silent/jmh-gpu-r256.json"
echo 'mine' >"$work/gb-silent/notes.txt"
RSLORA_JAVA="$work/bin/java-silent" RSLORA_PYTHON="$work/bin/python-one" RSLORA_BENCH_R=16 RSLORA_BENCH_FAMILIES= \
    RSLORA_BENCH_BUDGET_S=60 "$here/gpu-bench.sh" "$work/gb-silent" >"$work/gb-silent.log" 2>&1
rc=$?
check "gpu-bench: a part that exits 0 but writes no file fails, one that writes is counted" \
    bash -c "test $rc -eq 1 && grep -q 'Java CUDA-event timings: FAILED (exit 0, but no java-events.jsonl written)' '$work/gb-silent.log' \
        && grep -q 'JMH r=16: FAILED (exit 0, but no jmh-gpu-r16.json written)' '$work/gb-silent.log' \
        && grep -q 'PyTorch peers: done (1 timings in peft.jsonl)' '$work/gb-silent.log'"
check "gpu-bench: an earlier run's output of the same name is removed, other files kept" \
    bash -c "test ! -e '$work/gb-silent/jmh-gpu-r256.json' && grep -qx mine '$work/gb-silent/notes.txt'"

# (11) gpu-check's budget on a copy of its scripts in a folder with a space (a fake bundle whose runtime
# only answers -version, a tar that takes 2 s, no driver: --force), at RSLORA_CHECK_BUDGET_S=20: the
# benchmarks' reserve (150 s by default) is more than the budget, but the runtime they need is unpacked
fake_root="$work/gpu check/repo"
mkdir -p "$fake_root/native-build" "$fake_root/cuda" "$work/gc-jre/jre/bin" "$fake_root/gpu-bundle/lib" "$work/bin-slow" "$work/gc-tmp"
cp "$here"/{gpu-check,gpu-bench,knobs,kernel-table,check-sass}.sh "$fake_root/native-build/"
cp "$tree/kernels.table" "$fake_root/cuda/kernels.table"
printf '#!/bin/bash\n[[ "$1" == -version ]] && echo "openjdk version \\"25-fake\\"" >&2\nexit 0\n' >"$work/gc-jre/jre/bin/java"
chmod +x "$work/gc-jre/jre/bin/java"
tar -C "$work/gc-jre" -cJf "$fake_root/gpu-bundle/jre.tar.xz" jre
printf '#!/bin/bash\nsleep 2\nexec %q "$@"\n' "$(command -v tar)" >"$work/bin-slow/tar"
chmod +x "$work/bin-slow/tar"
gc_row() {  # step state [summary ERE]: the step's row in summary.txt has that state (and summary)
    grep -qE "^$1 +$2 +[0-9]+s  ${3:-}" "$work/gpu check/logs/summary.txt"
}
(cd / && PATH="$work/bin-slow:$PATH" TMPDIR="$work/gc-tmp" RSLORA_CHECK_BUDGET_S=20 \
    "$fake_root/native-build/gpu-check.sh" "$work/gpu check/logs" --force) >"$work/gc1.log" 2>&1
rc=$?
check "gpu-check: a budget below the benchmarks' reserve still unpacks the runtime" gc_row jre PASS
# the ~15 s left for the benchmarks time nothing: SKIP 'budget', not a gpu-bench run whose parts all time out
check "gpu-check: benchmarks the budget leaves under 30 s for are SKIP 'budget'" \
    bash -c "grep -qE '^benchmarks +SKIP +0s  budget: ' '$work/gpu check/logs/summary.txt' && test ! -e '$work/gpu check/logs/benchmarks.log'"
# and one that cannot unpack it in time is a budget SKIP, not a FAIL
(cd / && PATH="$work/bin-slow:$PATH" TMPDIR="$work/gc-tmp" RSLORA_CHECK_BUDGET_S=3 \
    "$fake_root/native-build/gpu-check.sh" "$work/gpu check/logs2" --force) >"$work/gc2.log" 2>&1
check "gpu-check: an unpacking the budget cut is SKIP 'budget'" grep -qE '^jre +SKIP +[0-9]+s  budget: ' "$work/gpu check/logs2/summary.txt"

# (12) jmh/bench.sh gpu-import and report take a relative LOGDIR as the caller's, not the repo root's (a fake
# JDK that records the report's arguments, a Maven that builds nothing)
mkdir -p "$work/jdk/bin" "$work/bin-mvn" "$work/caller dir/run 1"
cat >"$work/jdk/bin/java" <<'J'
#!/bin/bash
[[ "$1" == -XshowSettings* ]] && { echo "    java.specification.version = 25" >&2; exit 0; }
printf '%s\n' "$@" >"$FAKE_JAVA_ARGS"
J
chmod +x "$work/jdk/bin/java"
cp "$work/jdk/bin/java" "$work/jdk/bin/javac"
printf '#!/bin/bash\nexit 0\n' >"$work/bin-mvn/mvn"
chmod +x "$work/bin-mvn/mvn"
for sub in gpu-import report; do
    (cd "$work/caller dir" && PATH="$work/bin-mvn:$PATH" JAVA_HOME="$work/jdk" FAKE_JAVA_ARGS="$work/java-args-$sub" \
        "$root/jmh/bench.sh" "$sub" "run 1") >"$work/bench-$sub.log" 2>&1
    check "bench.sh $sub: a relative LOGDIR is the caller's" grep -qxF "$work/caller dir/run 1" "$work/java-args-$sub"
done
# a benchmarks.jar the JVM cannot list (a truncated jar) is named, not a silent exit: bench.sh in a copy of
# its tree with an empty jar, the fake JDK failing as java does on a corrupt jarfile
mkdir -p "$work/btree/jmh/target" "$work/btree/native-build"
cp "$root/jmh/bench.sh" "$work/btree/jmh/" && cp "$root/native-build/find-jdk.sh" "$work/btree/native-build/"
: >"$work/btree/jmh/target/benchmarks.jar"
cat >"$work/jdk-broken-jar" <<'J'
#!/bin/bash
[[ "$1" == -XshowSettings* ]] && { echo "    java.specification.version = 25" >&2; exit 0; }
echo "Error: Invalid or corrupt jarfile jmh/target/benchmarks.jar" >&2
exit 1
J
mkdir -p "$work/jdk2/bin" && cp "$work/jdk-broken-jar" "$work/jdk2/bin/java" && cp "$work/jdk-broken-jar" "$work/jdk2/bin/javac"
chmod +x "$work/jdk2/bin/java" "$work/jdk2/bin/javac"
(JAVA_HOME="$work/jdk2" "$work/btree/jmh/bench.sh" cpu --no-build --only vs-512) >"$work/bench-list.log" 2>&1
rc=$?
check "bench.sh cpu: a jar it cannot list is named (exit 1)" \
    bash -c "test $rc -eq 1 && grep -q 'cannot list the benchmarks of jmh/target/benchmarks.jar' '$work/bench-list.log' && grep -q 'corrupt jarfile' '$work/bench-list.log'"

# --only on a machine other than the one bench/raw records stops before any JMH run (the report would name
# the new machine for every result): bench.sh in a copy of its tree, a fake JDK that lists the five classes,
# writes BenchEnv's cpu-env.json for family/model $FAKE_FM and records each JMH run (then fails it)
mkdir -p "$work/mtree/jmh/target" "$work/mtree/native-build" "$work/mtree/bench/raw" "$work/jdk3/bin"
cp "$root/jmh/bench.sh" "$work/mtree/jmh/" && cp "$root/native-build/find-jdk.sh" "$work/mtree/native-build/"
echo jar >"$work/mtree/jmh/target/benchmarks.jar"
cat >"$work/jdk3/bin/java" <<'J'
#!/bin/bash
[[ "$1" == -XshowSettings* ]] && { echo "    java.specification.version = 25" >&2; exit 0; }
if [[ " $* " == *" -l "* ]]; then
    echo "Benchmarks:"
    for c in CpuLayerBenchmark.loraThenBase ReferenceLayerBenchmark.loraForwardBackward OpenBlasLoraBenchmark.loraForwardBackward \
        CpuVsOpenBlasBenchmark.oursThenOpenBlas FmaPeakBenchmark.fma512; do echo "dev.rslora.bench.$c"; done
    exit 0
fi
if [[ " $* " == *" dev.rslora.bench.BenchEnv "* ]]; then
    while [[ $# -gt 0 ]]; do [[ "$1" == --out ]] && out="$2"; shift; done
    printf '{\n  "date" : "2026-12-07T10:00:00Z",\n  "cpu_model" : "AMD EPYC",\n  "cpu_vendor" : "AuthenticAMD",\n  "cpu_family_model" : "%s",\n  "isa" : "avx2 fma avx512f avx512bw avx512vl avx512_bf16 avx_vnni",\n  "logical_cpus" : 2,\n  "memory" : "24683748 kB",\n  "openblas_environment" : {\n    "OPENBLAS_CORETYPE" : "Haswell"\n  }\n}\n' \
        "$FAKE_FM" >"$out"
    exit 0
fi
[[ " $* " == *" -rff "* ]] && { printf '%s\n' "$*" >>"$FAKE_JMH_RUNS"; echo "fake JMH run" >&2; exit 1; }
exit 0
J
chmod +x "$work/jdk3/bin/java" && cp "$work/jdk3/bin/java" "$work/jdk3/bin/javac"
FAKE_FM=26/2 "$work/jdk3/bin/java" -cp x dev.rslora.bench.BenchEnv --out "$work/mtree/bench/raw/cpu-env.json"
echo '[]' >"$work/mtree/bench/raw/cpu-r-small.json"
printf '{"loads": {\n  "cpu-r-small.json": {"before": "0.1 0.1 0.1", "after": "0.2 0.2 0.2"}\n}}\n' >"$work/mtree/bench/raw/cpu-loads.json"
cp -r "$work/mtree/bench/raw" "$work/mtree-raw-before"
mix() {  # case family/model [VAR=value...]: bench.sh cpu --no-build --only r-small, output in $work/mix-<case>.log
    local c="$1" fm="$2"
    shift 2
    rm -f "$work/jmh-runs-$c"
    (env "$@" JAVA_HOME="$work/jdk3" FAKE_FM="$fm" FAKE_JMH_RUNS="$work/jmh-runs-$c" \
        "$work/mtree/jmh/bench.sh" cpu --no-build --only r-small) >"$work/mix-$c.log" 2>&1
}
mix a 25/17
rc=$?
check "bench.sh cpu --only: another machine (26/2 recorded, 25/17 here) is refused before any run" \
    bash -c "test $rc -eq 1 && grep -q 'would mix machines: .*family/model 26/2.*family/model 25/17' '$work/mix-a.log' \
        && grep -qF 'cpu_family_model \"26/2\" vs \"25/17\"' '$work/mix-a.log' && test ! -e '$work/jmh-runs-a'"
check "bench.sh cpu --only: a refused run leaves bench/raw as it was and no .run-* folder" \
    bash -c "diff -r '$work/mtree-raw-before' '$work/mtree/bench/raw' && ! compgen -G '$work/mtree/bench/raw/.run-*'"
mix b 26/2
check "bench.sh cpu --only: the same machine passes the check and runs" \
    bash -c "! grep -qE 'would mix|mixes machines' '$work/mix-b.log' && grep -q -- '-rff .*/cpu-r-small.json' '$work/jmh-runs-b'"
rm -rf "$work/mtree/bench/raw"/.run-*
mix c 25/17 RSLORA_BENCH_MIX_MACHINES=1
check "bench.sh cpu --only: RSLORA_BENCH_MIX_MACHINES=1 runs on another machine with a warning" \
    bash -c "grep -q 'warning: RSLORA_BENCH_MIX_MACHINES=1: --only mixes machines: .*26/2.*25/17' '$work/mix-c.log' \
        && ! grep -q 'would mix machines' '$work/mix-c.log' && grep -q -- '-rff .*/cpu-r-small.json' '$work/jmh-runs-c'"

# (13) cpu-emulate.sh with a fake compiler (each binary it "builds" prints a passing summary): a relative
# BUILD_DIR is the caller's (make runs in cuda/dev), and a repo whose path has a space builds and runs
cat >"$work/bin/fake-g++" <<'F'
#!/bin/bash
out=""; while [[ $# -gt 0 ]]; do [[ "$1" == -o ]] && { out="$2"; shift; }; shift; done
printf '#!/bin/bash\necho "1 passed, 0 failed"\n' >"$out" && chmod +x "$out"
F
chmod +x "$work/bin/fake-g++"
mkdir -p "$work/emucwd" "$work/emu repo/native-build"
cp "$here"/{cpu-emulate,kernel-table}.sh "$work/emu repo/native-build/"
cp -r "$root/cuda" "$work/emu repo/cuda"
rm -rf "$work/emu repo/cuda/dev/build"
(cd "$work/emucwd" && CXX_EMU="$work/bin/fake-g++" "$work/emu repo/native-build/cpu-emulate.sh" build rel-build) >"$work/e1.log" 2>&1
rc=$?
if (( rc == 3 )); then
    echo "skip (13): $(tail -1 "$work/e1.log")"
else
    check "cpu-emulate: a relative BUILD_DIR is the caller's" \
        bash -c "test $rc -eq 0 && test -x '$work/emucwd/rel-build/rslora_dev_emu' -a -x '$work/emucwd/rel-build/emu_selftest'"
    CXX_EMU="$work/bin/fake-g++" "$work/emu repo/native-build/cpu-emulate.sh" quick >"$work/e2.log" 2>&1
    rc=$?
    check "cpu-emulate: a repo path with a space builds and runs" bash -c "test $rc -eq 0 && grep -q 'all passed (quick)' '$work/e2.log'"
    CXX_EMU="$work/bin/fake-g++" "$work/emu repo/native-build/cpu-emulate.sh" build "$work/emucwd/a build" >"$work/e3.log" 2>&1
    rc=$?
    check "cpu-emulate: a BUILD_DIR make cannot take is refused naming it" \
        bash -c "test $rc -eq 2 && grep -q 'BUILD_DIR $work/emucwd/a build: make cannot' '$work/e3.log'"
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
