#!/usr/bin/env bash
# Builds everything (kernels when nvcc is present, library, CLI jar, benchmarks jar) and runs the
# test suite. Extra arguments go to Maven (e.g. ./test.sh -Dtest='Cpu*').
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=native-build/find-jdk.sh
. "$here/native-build/find-jdk.sh"
rslora_require_maven
cd "$here"
echo "test.sh: JAVA_HOME=$JAVA_HOME ($("$JAVA_HOME/bin/java" -version 2>&1 | head -n1))"
exec mvn -B --no-transfer-progress verify "$@"
