# Sourced by ./rslora and ./test.sh: sets JAVA_HOME to a JDK >= 25 or exits with what to install.
# The project compiles to release 25 (FFM is final since 22, the code uses 25), so both the build
# and the runtime need a 25+ JDK; the machine's default java may be older (17 on Debian 12).
rslora_need_java=25

rslora_java_major() { # feature version of the java binary $1, or 0
  local v
  v=$("$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)
  [[ "$v" =~ ^[0-9]+$ ]] && echo "$v" || echo 0
}

rslora_find_jdk() { # prints a JAVA_HOME whose java and javac are >= rslora_need_java
  local c j
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/* /opt/java/* /opt/jdk* /usr/java/* \
           "$HOME"/.sdkman/candidates/java/*; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    if [ "$(rslora_java_major "$c/bin/java")" -ge "$rslora_need_java" ]; then echo "$c"; return 0; fi
  done
  j=$(command -v java || true)
  if [ -n "$j" ]; then
    c=$(dirname "$(dirname "$(readlink -f "$j")")")
    if [ -x "$c/bin/javac" ] && [ "$(rslora_java_major "$c/bin/java")" -ge "$rslora_need_java" ]; then echo "$c"; return 0; fi
  fi
  return 1
}

if ! rslora_jdk=$(rslora_find_jdk); then
  echo "rslora: error: no JDK $rslora_need_java or newer found (looked at JAVA_HOME, /usr/lib/jvm, /opt, PATH)." >&2
  echo "rslora: install one (Temurin 25 from Adoptium, or any OpenJDK 25+) and/or set JAVA_HOME to it." >&2
  exit 3
fi
export JAVA_HOME="$rslora_jdk"
# Maven itself on JDK 24+ warns about sun.misc.Unsafe in its bundled Guava: allow it quietly.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"

rslora_require_maven() {
  if ! command -v mvn >/dev/null 2>&1; then
    echo "rslora: error: Maven (mvn) is needed to build: apt-get install maven" >&2
    exit 3
  fi
}
