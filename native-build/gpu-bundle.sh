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
#   gpu-bundle/BUNDLE.txt      what was packed, from which commit, and the size
# Fails if the bundle exceeds 45 MB. Environment: JAVA_HOME (a JDK 25; default temurin-25),
# MVN_FLAGS (default "-o -q -B").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/gpu-bundle"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
mvn_flags=(${MVN_FLAGS:--o -q -B})
junit_console="org.junit.platform:junit-platform-console-standalone:1.14.4"
limit_mb=45

cd "$root"
echo "gpu-bundle: building rslora-core, rslora-cuda and their test classes (skipping tests)"
deps_tmp="$(mktemp -d)"
trap 'rm -rf "$deps_tmp"' EXIT
# one reactor run: copy-dependencies then sees rslora-core as packaged in this session
mvn "${mvn_flags[@]}" -pl java/cuda -am -DskipTests package \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DexcludeGroupIds=dev.rslora -DoutputDirectory="$deps_tmp"
if mvn "${mvn_flags[@]}" -pl jmh -am -DskipTests package >/dev/null 2>&1 && [[ -f jmh/target/benchmarks.jar ]]; then
    bench=jmh/target/benchmarks.jar
else
    bench=""
    echo "gpu-bundle: no benchmarks.jar (the jmh module did not build one); packing without it"
fi

rm -rf "$out"
mkdir -p "$out/lib"
for m in core cuda; do
    cp "$(ls java/$m/target/rslora-$m-*.jar | grep -v -e '-tests.jar' -e '-sources.jar' -e '-javadoc.jar' | head -1)" "$out/lib/"
done
cp "$deps_tmp"/*.jar "$out/lib/"
# only the linux-x86_64 natives are needed on the GPU host
find "$out/lib" -name '*-natives-*' ! -name '*linux-x86_64*' -delete
mvn "${mvn_flags[@]}" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$junit_console" -DoutputDirectory="$out/lib"
cp -r java/core/target/test-classes "$out/test-classes"
cp -r java/cuda/target/test-classes/. "$out/test-classes/"
if [[ -n "$bench" ]]; then
    cp "$bench" "$out/lib/benchmarks.jar"
fi
# JCuda's NVRTC and PTX-compiler natives need CUDA 12 toolkit libraries and are never used here
# (kernels are precompiled): drop them from the copies in the bundle (24 MB).
for j in "$out"/lib/jcuda-natives-*.jar "$out"/lib/benchmarks.jar; do
    if [[ -f "$j" ]]; then
        zip -q -d "$j" 'lib/libJNvPTXCompiler*' 'lib/libJNvrtc*' >/dev/null 2>&1 || true
    fi
done
# The GPU host runs only the GPU benchmarks (GpuBench): the CPU peer's OpenBLAS natives (~85 MB
# unpacked) stay out of the bundled benchmarks.jar.
if [[ -f "$out/lib/benchmarks.jar" ]]; then
    zip -q -d "$out/lib/benchmarks.jar" 'org/bytedeco/openblas/linux-x86_64/*' >/dev/null 2>&1 || true
fi

# java.base + the Vector API + what JUnit, jackson and JMH touch (logging, management)
modules="java.base,java.logging,java.management,java.xml,java.sql,jdk.incubator.vector,jdk.unsupported,jdk.management"
jre_tmp="$(mktemp -d)"
trap 'rm -rf "$jre_tmp" "$deps_tmp"' EXIT
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
    --compress zip-9 --output "$jre_tmp/jre"
strip --strip-unneeded "$jre_tmp/jre/lib/server/libjvm.so" 2>/dev/null || true
tar -C "$jre_tmp" -cJf "$out/jre.tar.xz" jre

# smoke test: the packed runtime starts the console launcher on the packed classes (GPU tests skip here)
"$jre_tmp/jre/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector \
    -jar "$out/lib/junit-platform-console-standalone-1.14.4.jar" execute \
    --class-path "$out/test-classes:$(ls "$out"/lib/*.jar | grep -v -e benchmarks.jar -e console-standalone | tr '\n' ':')" \
    --select-class dev.rslora.backend.cuda.KernelImageTest --details=summary --disable-banner >"$jre_tmp/smoke.log" 2>&1 \
    || { cat "$jre_tmp/smoke.log" >&2; echo "gpu-bundle: smoke test of the packed runtime FAILED" >&2; exit 1; }
grep -E "tests (successful|failed)" "$jre_tmp/smoke.log" | sed 's/^/gpu-bundle: smoke: /'

size_kb=$(du -sk "$out" | cut -f1)
{
    echo "rslora GPU bundle"
    echo "commit: $(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "java: $("$jre_tmp/jre/bin/java" -version 2>&1 | head -1)"
    echo "modules: $modules"
    echo "size: $((size_kb / 1024)) MB"
    echo "jars:"
    (cd "$out" && ls -s lib | sed 's/^/  /')
} >"$out/BUNDLE.txt"
cat "$out/BUNDLE.txt"
if (( size_kb > limit_mb * 1024 )); then
    echo "gpu-bundle: $((size_kb / 1024)) MB exceeds the ${limit_mb} MB limit" >&2
    exit 1
fi
echo "gpu-bundle: ready in $out ($((size_kb / 1024)) MB)"
