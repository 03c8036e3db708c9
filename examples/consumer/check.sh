#!/usr/bin/env bash
# The consumer check (CI, after `mvn install` of the repository): builds this separate project
# against the installed rslora-core only, runs its 50-step trainer (train, save, reload) on the
# class path, on the module path and from a jlink image (consumer + rslora-core + Jackson), and
# resolves it with rslora-cuda for linux-x86_64, linux-aarch64, macOS-x86_64 and macOS-aarch64.
# Any failure exits non-zero. Usage: examples/consumer/check.sh (from anywhere)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../../native-build/find-jdk.sh
. "$root/native-build/find-jdk.sh"
rslora_require_maven
start=$SECONDS
# the repository's version: the first <version> of the root POM (the parent's own)
version="$(sed -n 's:.*<version>\(.*\)</version>.*:\1:p' "$root/pom.xml" | head -n1)"
mvn_q=(mvn -B -q --no-transfer-progress -f "$here/pom.xml" "-Drslora.version=$version")
tmp="$(mktemp -d -t rslora-consumer.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "consumer-check: FAILED: $*" >&2; exit 1; }

echo "consumer-check: building examples/consumer against the installed rslora $version"
"${mvn_q[@]}" clean package
classes="$here/target/classes"
lib="$here/target/lib"
deps="$(ls "$lib" | tr '\n' ' ')"
echo "consumer-check: runtime dependencies of rslora-core: $deps"
for banned in jcuda picocli xchart progressbar jline; do
  case "$deps" in *"$banned"*) fail "rslora-core brings $banned to a consumer ($deps)";; esac
done

java="$JAVA_HOME/bin/java"
# each run must pick the cpu backend (the flags below are given): a fall back to the reference fails
expect_cpu() { grep -q "backend cpu\]" "$1" || { cat "$1" >&2; fail "$2 did not run on the cpu backend"; }; }
flags=(--add-modules jdk.incubator.vector)
"$java" "${flags[@]}" -cp "$classes:$lib/*" dev.rslora.examples.consumer.Trainer "$tmp/cp" | tee "$tmp/cp.log" \
  || fail "class path run"
expect_cpu "$tmp/cp.log" "the class path run"
"$java" "${flags[@]}" -p "$classes:$lib" -m dev.rslora.examples.consumer/dev.rslora.examples.consumer.Trainer "$tmp/mp" \
  | tee "$tmp/mp.log" || fail "module path run"
expect_cpu "$tmp/mp.log" "the module path run"
# the image resolves jdk.incubator.vector only when asked: bake the flag into its launcher options
"$JAVA_HOME/bin/jlink" --module-path "$classes:$lib" --add-modules dev.rslora.examples.consumer,jdk.incubator.vector \
  --add-options=--add-modules=jdk.incubator.vector \
  --output "$tmp/image" --strip-debug --no-header-files --no-man-pages || fail "jlink of consumer + rslora-core + Jackson"
"$tmp/image/bin/java" -m dev.rslora.examples.consumer/dev.rslora.examples.consumer.Trainer "$tmp/jlink" | tee "$tmp/jl.log" \
  || fail "jlink image run"
expect_cpu "$tmp/jl.log" "the jlink image run"
echo "consumer-check: jlink image $(du -sh "$tmp/image" | cut -f1) (modules: $("$tmp/image/bin/java" --list-modules | grep -c .))"

# Dependency resolution with rslora-cuda as Maven runs on each platform. Maven's OS profile
# activation reads the JVM's os.name/os.arch, so they are set through MAVEN_OPTS (a plain
# `mvn -Dos.name=...` does not reach it).
for p in "Linux amd64 linux-x86_64" "Linux aarch64 -" "MacOSX x86_64 -" "MacOSX aarch64 -"; do
  read -r os arch natives <<<"$p"
  out="$tmp/resolve-$os-$arch.txt"
  if ! MAVEN_OPTS="-Dos.name=$os -Dos.arch=$arch" "${mvn_q[@]}" -Pwith-cuda dependency:resolve -DoutputFile="$out" \
       -DincludeScope=runtime >"$tmp/resolve.log" 2>&1; then
    cat "$tmp/resolve.log" >&2
    fail "rslora-cuda does not resolve for os.name=$os os.arch=$arch"
  fi
  grep -q "dev.rslora:rslora-cuda:jar" "$out" && grep -q "org.jcuda:jcuda:jar" "$out" || fail "no rslora-cuda/jcuda for $os $arch"
  got="$( (grep -o 'org.jcuda:jcu[a-z]*-natives:jar:[a-z0-9_-]*' "$out" || true) | sort | tr '\n' ' ')"
  if [ "$natives" = "-" ]; then
    [ -z "$got" ] || fail "$os $arch got natives that JCuda does not publish for it: $got"
  else
    [ "$got" = "org.jcuda:jcublas-natives:jar:$natives org.jcuda:jcuda-natives:jar:$natives " ] || fail "$os $arch natives: '$got'"
  fi
  echo "consumer-check: rslora-cuda resolves for os.name=$os os.arch=$arch; natives: ${got:-none}"
done
echo "consumer-check: passed in $((SECONDS - start)) s"
