#!/usr/bin/env bash
# Reproducible builds: packages the published artifacts (rslora-core, rslora-cuda, rslora-cli, with
# their sources and javadoc jars and the CLI's shaded jar) twice from clean, and compares every jar
# byte for byte. Prints one line per jar and exits non-zero when any differs.
# Usage: native-build/reproducible-check.sh   (takes two full builds; kernels too when nvcc exists)
set -euo pipefail
if [[ $# -gt 0 ]]; then
    echo "usage: $0   (takes no arguments; see its header)" >&2
    exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=find-jdk.sh
. "$here/native-build/find-jdk.sh"
rslora_require_maven
cd "$here"
out="$(mktemp -d -t rslora-repro.XXXXXX)"
trap 'rm -rf "$out"' EXIT
for run in 1 2; do
  echo "reproducible-check: build $run"
  mvn -B -q --no-transfer-progress clean package -DskipTests -pl java/core,java/cuda,java/cli -am >"$out/build-$run.log" 2>&1 \
    || { tail -n 30 "$out/build-$run.log" >&2; exit 1; }
  mkdir -p "$out/$run"
  cp java/core/target/*.jar java/cuda/target/*.jar java/cli/target/*.jar "$out/$run/"
done
status=0
for f in "$out"/1/*.jar; do
  name="$(basename "$f")"
  if cmp -s "$f" "$out/2/$name"; then
    echo "identical  $(sha256sum "$f" | cut -c1-16)  $name"
  else
    echo "DIFFERENT  $name"; status=1
  fi
done
exit $status
