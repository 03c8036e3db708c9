#!/usr/bin/env bash
# Builds everything (kernels when nvcc is present, library, CLI jar, benchmarks jar) and runs the
# test suite, then the consumer check (examples/consumer/check.sh). Extra arguments go to Maven
# (e.g. ./test.sh -Dtest='Cpu*') and skip the consumer check.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=native-build/find-jdk.sh
. "$here/native-build/find-jdk.sh"
rslora_require_maven
cd "$here"
echo "test.sh: JAVA_HOME=$JAVA_HOME ($("$JAVA_HOME/bin/java" -version 2>&1 | head -n1))"
# install (not just verify): examples/consumer builds against the installed artifacts.
mvn -B --no-transfer-progress install "$@"
# A full run (no arguments) ends with the consumer check: a separate project on the installed
# rslora-core (class path, module path, jlink) and rslora-cuda's resolution on four platforms.
if [ $# -eq 0 ]; then
  "$here/examples/consumer/check.sh"
fi
