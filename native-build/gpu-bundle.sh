#!/usr/bin/env bash
# Packs a self-contained folder for a GPU host that has neither Java nor Maven (run it here, where
# Maven is, from anywhere in the repo):
#   gpu-bundle/jre.tar.xz      jlink'd Java 25 with only the modules the library, tests and JMH need
#                              (xz-compressed: libjvm.so alone is ~25 MB; gpu-check.sh unpacks it)
#   gpu-bundle/lib/*.jar       rslora-core, rslora-cuda (with the kernel fatbin), their runtime dependencies
#                              (JCuda and JCublas with their linux-x86_64 natives: the cuBLAS baseline uses
#                              JCublas where libcublas.so.12 loads), junit-platform-console-standalone, and
#                              benchmarks.jar when the jmh module builds one
#   gpu-bundle/test-classes/   the compiled tests of java/core and java/cuda (the GPU tests are tagged "gpu")
#   gpu-bundle/rslora          the CLI launcher (native-build/bundle-launcher.sh): same commands as ./rslora,
#                              on the bundled runtime (which includes java.desktop, so the demo draws its PNGs)
#   gpu-bundle/BUNDLE.txt      what was packed, from which commit, and the size
# The packed runtime is smoke-tested here: the JUnit console on the packed classes, and the launcher's
# `info` and `demo --quick` (on the cpu backend here; RSLORA_BUNDLE_DEMO=0 skips the demo, ~1 min).
# Fails if the bundle exceeds 49 MB. Built in gpu-bundle.partial/ and renamed to gpu-bundle/ only when
# every smoke test passed and the size fits: a failed run leaves the previous bundle as it was. Environment: JAVA_HOME (a JDK 25; default temurin-25),
# MVN_FLAGS (default "-o -q -B").
set -euo pipefail
if [[ $# -gt 0 ]]; then
    echo "usage: $0   (takes no arguments; see its header)" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/gpu-bundle"
stage="$root/gpu-bundle.partial"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
mvn_flags=(${MVN_FLAGS:--o -q -B})
junit_console="org.junit.platform:junit-platform-console-standalone:1.14.4"
limit_mb=49

cd "$root"
echo "gpu-bundle: building rslora-core, rslora-cuda, rslora-cli and their test classes (skipping tests)"
deps_tmp="$(mktemp -d)"
trap 'rm -rf "$deps_tmp" "$stage"' EXIT
# one reactor run: copy-dependencies then sees rslora-core as packaged in this session
mvn "${mvn_flags[@]}" -pl java/cuda,java/cli -am -DskipTests package \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DexcludeGroupIds=dev.rslora -DoutputDirectory="$deps_tmp"
if mvn "${mvn_flags[@]}" -pl jmh -am -DskipTests package >/dev/null 2>&1 && [[ -f jmh/target/benchmarks.jar ]]; then
    bench=jmh/target/benchmarks.jar
else
    bench=""
    echo "gpu-bundle: no benchmarks.jar (the jmh module did not build one); packing without it"
fi

rm -rf "$stage"
mkdir -p "$stage/lib"
for m in core cuda cli; do  # the thin jars (not the shaded -cli.jar: its classes are all here already)
    cp "$(ls java/$m/target/rslora-$m-*.jar | grep -v -e '-tests.jar' -e '-sources.jar' -e '-javadoc.jar' -e '-cli.jar' | head -1)" "$stage/lib/"
done
cp "$deps_tmp"/*.jar "$stage/lib/"
# only the linux-x86_64 natives are needed on the GPU host
find "$stage/lib" -name '*-natives-*' ! -name '*linux-x86_64*' -delete
mvn "${mvn_flags[@]}" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$junit_console" -DoutputDirectory="$stage/lib"
cp -r java/core/target/test-classes "$stage/test-classes"
cp -r java/cuda/target/test-classes/. "$stage/test-classes/"
if [[ -n "$bench" ]]; then
    cp "$bench" "$stage/lib/benchmarks.jar"
fi
# JCuda's NVRTC and PTX-compiler natives need CUDA 12 toolkit libraries and are never used here
# (kernels are precompiled): drop them from the copies in the bundle (24 MB).
for j in "$stage"/lib/jcuda-natives-*.jar "$stage"/lib/benchmarks.jar; do
    if [[ -f "$j" ]]; then
        zip -q -d "$j" 'lib/libJNvPTXCompiler*' 'lib/libJNvrtc*' >/dev/null 2>&1 || true
    fi
done
# The GPU host runs only the GPU benchmarks (GpuBench): the CPU peer's OpenBLAS natives (~85 MB
# unpacked) stay out of the bundled benchmarks.jar.
if [[ -f "$stage/lib/benchmarks.jar" ]]; then
    zip -q -d "$stage/lib/benchmarks.jar" 'org/bytedeco/openblas/linux-x86_64/*' >/dev/null 2>&1 || true
fi

# java.base + the Vector API + what JUnit, jackson and JMH touch (logging, management), java.desktop for
# the demo's PNG plots (XChart draws with java.awt), jdk.zipfs for JUnit's class-path scan of jars
modules="java.base,java.logging,java.management,java.xml,java.sql,java.desktop,jdk.incubator.vector,jdk.unsupported,jdk.management,jdk.zipfs"
jre_tmp="$(mktemp -d)"
trap 'rm -rf "$jre_tmp" "$deps_tmp" "$stage"' EXIT
# The modules image is left uncompressed (zip-0) for xz to compress: with java.desktop, zip-9 inside
# plus xz outside made a 34.6 MB archive, zip-0 plus xz -9 makes 20.8 MB (measured 2026-12-04 here).
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
    --compress zip-0 --output "$jre_tmp/jre"
strip --strip-unneeded "$jre_tmp/jre/lib/server/libjvm.so" 2>/dev/null || true
tar -C "$jre_tmp" -cf - jre | xz -9 -T2 >"$stage/jre.tar.xz"

# smoke test: the packed runtime starts the console launcher on the packed classes (GPU tests skip here)
"$jre_tmp/jre/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
    -jar "$stage/lib/junit-platform-console-standalone-1.14.4.jar" execute \
    --class-path "$stage/test-classes:$(ls "$stage"/lib/*.jar | grep -v -e benchmarks.jar -e console-standalone | tr '\n' ':')" \
    --select-class dev.rslora.backend.cuda.KernelImageTest --details=summary --disable-banner >"$jre_tmp/smoke.log" 2>&1 \
    || { cat "$jre_tmp/smoke.log" >&2; echo "gpu-bundle: smoke test of the packed runtime FAILED" >&2; exit 1; }
grep -E "tests (successful|failed)" "$jre_tmp/smoke.log" | sed 's/^/gpu-bundle: smoke: /'

# the launcher: same CLI as ./rslora, on the packed runtime (unpacked once into gpu-bundle/.jre)
cp native-build/bundle-launcher.sh "$stage/rslora"
chmod +x "$stage/rslora"
RSLORA_JAVA="$jre_tmp/jre/bin/java" "$stage/rslora" info >"$jre_tmp/info.log" 2>&1 \
    || { cat "$jre_tmp/info.log" >&2; echo "gpu-bundle: smoke test 'rslora info' FAILED" >&2; exit 1; }
echo "gpu-bundle: smoke: rslora info: $(grep -m1 -i 'backend' "$jre_tmp/info.log")"
if [[ "${RSLORA_BUNDLE_DEMO:-1}" != 0 ]]; then
    RSLORA_JAVA="$jre_tmp/jre/bin/java" "$stage/rslora" demo --quick --out "$jre_tmp/demo" >"$jre_tmp/demo.log" 2>&1 \
        || { tail -30 "$jre_tmp/demo.log" >&2; echo "gpu-bundle: smoke test 'rslora demo --quick' FAILED" >&2; exit 1; }
    for f in rank_sweep.csv rank_sweep.json loss_curves.png grad_norm_vs_rank.png; do
        [[ -s "$jre_tmp/demo/$f" ]] || { tail -30 "$jre_tmp/demo.log" >&2; echo "gpu-bundle: demo --quick wrote no $f" >&2; exit 1; }
    done
    echo "gpu-bundle: smoke: rslora demo --quick wrote rank_sweep.csv, .json and both PNGs ($(tail -1 "$jre_tmp/demo.log"))"
fi

size_kb=$(du -sk "$stage" | cut -f1)
{
    echo "rslora GPU bundle"
    echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "java: $("$jre_tmp/jre/bin/java" -version 2>&1 | head -1)"
    echo "modules: $modules"
    echo "size: $((size_kb / 1024)) MB"
    echo "jars:"
    (cd "$stage" && ls -s lib | sed 's/^/  /')
} >"$stage/BUNDLE.txt"
cat "$stage/BUNDLE.txt"
# the launcher's own runtime path: unpack jre.tar.xz next to itself on first use (then removed again)
"$stage/rslora" info >"$jre_tmp/info-unpacked.log" 2>&1 \
    || { cat "$jre_tmp/info-unpacked.log" >&2; echo "gpu-bundle: 'rslora info' on the unpacked bundled runtime FAILED" >&2; exit 1; }
rm -rf "$stage/.jre"
echo "gpu-bundle: smoke: rslora info on the bundled runtime (unpacked on first use): ok"
if (( size_kb > limit_mb * 1024 )); then
    echo "gpu-bundle: $((size_kb / 1024)) MB exceeds the ${limit_mb} MB limit" >&2
    exit 1
fi
rm -rf "$out"
mv "$stage" "$out"
echo "gpu-bundle: ready in $out ($((size_kb / 1024)) MB)"
