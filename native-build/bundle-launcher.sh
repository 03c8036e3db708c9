#!/usr/bin/env bash
# rslora launcher of the GPU bundle (native-build/gpu-bundle.sh copies this file to gpu-bundle/rslora):
# the same CLI as ./rslora, on a host that has neither Java nor Maven.
#   gpu-bundle/rslora <command> [options]            e.g. gpu-bundle/rslora demo --quick --backend cuda
#   gpu-bundle/rslora -Drslora.cuda.step=split info  leading -Dname=value arguments are JVM system properties
# Runs the bundled Java 25 runtime (jre.tar.xz, unpacked once next to this script, or under
# $TMPDIR when the bundle folder is read-only) on the bundled jars. RSLORA_JAVA=/path/to/java uses
# another Java 25 instead; RSLORA_JAVA_OPTS adds JVM options. Exit status: the CLI's, or 3 when the
# runtime cannot be unpacked or started.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

java="${RSLORA_JAVA:-}"
if [[ -z "$java" ]]; then
    stamp="$(cksum <"$here/jre.tar.xz" 2>/dev/null | cut -d' ' -f1)" || stamp=""
    if [[ -z "$stamp" ]]; then
        echo "rslora: $here/jre.tar.xz is missing or unreadable: this is not a complete GPU bundle" >&2
        exit 3
    fi
    # unpack once per runtime archive: next to this script when writable, else in a temp folder
    for base in "$here/.jre" "${TMPDIR:-/tmp}/rslora-bundle-jre-$(id -u)"; do
        if [[ -x "$base/$stamp/jre/bin/java" ]]; then
            java="$base/$stamp/jre/bin/java"
            break
        fi
        if mkdir -p "$base" 2>/dev/null && [[ -w "$base" ]]; then
            tmp="$(mktemp -d "$base/.unpack.XXXXXX")"
            if tar -C "$tmp" -xJf "$here/jre.tar.xz" 2>"$tmp.err"; then
                rm -f "$tmp.err"
                # rename is atomic; when two launchers unpacked at once the second rename fails on the
                # first's non-empty folder and that one is used (never removed while it may run)
                mv -T "$tmp" "$base/$stamp" 2>/dev/null || rm -rf "$tmp"
                if [[ -x "$base/$stamp/jre/bin/java" ]]; then
                    java="$base/$stamp/jre/bin/java"
                    break
                fi
                echo "rslora: $base/$stamp exists but holds no runtime (remove it to unpack again)" >&2
                continue
            fi
            echo "rslora: cannot unpack $here/jre.tar.xz into $base: $(head -c 300 "$tmp.err")" >&2
            rm -rf "$tmp" "$tmp.err"
        fi
    done
    if [[ -z "$java" ]]; then
        echo "rslora: no writable place to unpack the bundled runtime (tried $here/.jre and \$TMPDIR)" >&2
        exit 3
    fi
fi

# the library and CLI jars and their dependencies; the benchmarks jar and the JUnit console stay out
cp=""
for j in "$here"/lib/*.jar; do
    case "$(basename "$j")" in
        benchmarks.jar | junit-platform-console-standalone-*.jar) ;;
        *) cp="${cp:+$cp:}$j" ;;
    esac
done
if [[ -z "$cp" ]]; then
    echo "rslora: no jars in $here/lib: this is not a complete GPU bundle" >&2
    exit 3
fi

# the CUDA toolkit's libraries (cuBLAS, cuBLASLt) are often not on the loader's path
[[ -d /usr/local/cuda/lib64 ]] && export LD_LIBRARY_PATH="/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

jvm_props=()
while [[ $# -gt 0 && "$1" == -D* ]]; do jvm_props+=("$1"); shift; done

# shellcheck disable=SC2086  # RSLORA_JAVA_OPTS is a list of options
exec "$java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Djava.awt.headless=true \
    ${RSLORA_JAVA_OPTS:-} "${jvm_props[@]}" -cp "$cp" dev.rslora.cli.Main "$@"
