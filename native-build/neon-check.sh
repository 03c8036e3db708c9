#!/usr/bin/env bash
# The cpu backend's tests on an aarch64 JVM without SVE, as on Apple silicon, Graviton 2 and Ampere
# Altra: Debian's OpenJDK 25 for arm64 run by qemu-user as a Neoverse N1 (NEON only). There C2
# compiles no masked vector load or store, no gather and no VectorMask.fromLong; where the backend
# used one, the Vector API's Java fallback boxed every vector (MicroKernel.PLAIN_MEMORY). The x86
# test runs cannot show that: AVX-512 compiles all of them at every width.
#
#   native-build/neon-check.sh [--ci] [TEST ...]
#
# TEST: surefire test selectors (default: the allocation tests, e^x's accuracy and the tile shape
# check). --ci (as
# .ci/run calls it): when the emulator or the JDK cannot be had (no network to the Debian mirror),
# say so and exit 0 instead of failing; a test that fails still fails. Needs
# network access to deb.debian.org (sid's arm64 packages, about 55 MB, cached in
# $RSLORA_NEON_CACHE, default ~/.cache/rslora-neon) and qemu-user-static (installed with apt-get
# when missing; as root or through sudo). Runs `mvn -o` against the reactor built by the README's
# build command. Emulated, a JVM runs roughly 10-30x slower than natively: the allocation tests take
# some minutes (each allocation test may take RSLORA_NEON_BUDGET seconds, default 900, to reach
# compiled code). QEMU_CPU picks another CPU model: QEMU_CPU=max,sve-default-vector-length=32 is an SVE2
# machine with 256-bit vectors, where the JIT prefers 256 bits and has 32 vector registers (the 8x16
# tile); RSLORA_NEON_JVM_FLAGS=-XX:UseSVE=1 then compiles as for SVE without SVE2 (Graviton 3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
# Maven runs on the JDK the build used (the tests themselves run on the emulated one)
# shellcheck source=native-build/find-jdk.sh
. "$here/find-jdk.sh"
rslora_require_maven
cache="${RSLORA_NEON_CACHE:-$HOME/.cache/rslora-neon}"
mirror="${RSLORA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cpu="${QEMU_CPU:-neoverse-n1}"
ci=0
if [ "${1:-}" = "--ci" ]; then
    ci=1
    shift
fi
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
    tests=(StepAllocationTest AdapterRowsAllocationTest SeqLogprobAllocationTest VectorExpTest TileShapeTest)
fi

die() { echo "neon-check: $*" >&2; exit 2; }
# a set-up step that failed: fatal, or with --ci a skip that says why
unavailable() {
    if [ "$ci" -eq 1 ]; then
        echo "neon-check: SKIPPED, the NEON tests did not run: $*" >&2
        exit 0
    fi
    die "$@"
}

if ! command -v qemu-aarch64-static > /dev/null; then
    echo "neon-check: installing qemu-user-static" >&2
    sudo_=""
    [ "$(id -u)" -eq 0 ] || sudo_="sudo"
    { $sudo_ apt-get update -qq && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static > /dev/null; } \
        || unavailable "could not install qemu-user-static (apt-get install qemu-user-static)"
fi

root="$cache/root"
jdk="$root/usr/lib/jvm/java-25-openjdk-arm64"
if [ ! -x "$jdk/bin/java" ]; then
    mkdir -p "$cache/debs"
    echo "neon-check: fetching Debian sid's arm64 OpenJDK 25 into $cache" >&2
    curl -fsS -m 300 -o "$cache/Packages.xz" "$mirror/dists/sid/main/binary-arm64/Packages.xz" \
        || unavailable "could not download $mirror/dists/sid/main/binary-arm64/Packages.xz"
    xz -dc "$cache/Packages.xz" > "$cache/Packages" || unavailable "sid's arm64 index did not decompress"
    rm -rf "$root.tmp"
    mkdir -p "$root.tmp"
    for pkg in openjdk-25-jre-headless libc6 libgcc-s1 libstdc++6 zlib1g; do
        file="$(awk -v p="Package: $pkg" '$0 == p {on = 1} on && /^Filename: / {print $2; exit}' "$cache/Packages")"
        [ -n "$file" ] || unavailable "package $pkg not in sid's arm64 index"
        deb="$cache/debs/$(basename "$file")"
        [ -s "$deb" ] || curl -fsS -m 600 -o "$deb" "$mirror/$file" || unavailable "could not download $mirror/$file"
        dpkg-deb -x "$deb" "$root.tmp" || unavailable "could not unpack $deb"
    done
    ln -sfn usr/lib "$root.tmp/lib"  # the loader's path, /lib/ld-linux-aarch64.so.1
    rm -rf "$root"
    mv "$root.tmp" "$root"
fi

mkdir -p "$cache/bin"
wrapper="$cache/bin/java"  # surefire wants a path that ends in bin/java
cat > "$wrapper" <<EOF
#!/bin/sh
export QEMU_CPU="$cpu"
exec qemu-aarch64-static -L "$root" "$jdk/bin/java" "\$@"
EOF
chmod +x "$wrapper"
flags="$("$wrapper" ${RSLORA_NEON_JVM_FLAGS:-} -XX:+PrintFlagsFinal -version 2> /dev/null | grep -E ' (UseSVE|MaxVectorSize|UseFMA) ')" \
    || unavailable "the emulated JVM does not start: $wrapper ${RSLORA_NEON_JVM_FLAGS:-} -version"
echo "$flags" >&2
# the tile width that JVM prefers: 16-byte vectors (NEON, or SVE-128 such as Graviton 4) give the 128-bit
# tiles, 32-byte SVE (Graviton 3; QEMU_CPU=max,sve-default-vector-length=32) the 256-bit ones
bytes="$(echo "$flags" | awk '$2 == "MaxVectorSize" {print $4}')"
case "$bytes" in
    16) bits=128 ;;
    32) bits=256 ;;
    64|128|256) bits=512 ;;
    *) die "unexpected MaxVectorSize '$bytes' on the emulated JVM" ;;
esac

selector="$(IFS=,; echo "${tests[*]}")"
cd "$repo"
# surefire forks the emulated JVM (-Djvm) for the default test execution of rslora-core; the tile
# shape check expects the width that JVM prefers
RSLORA_FORCE_NO_NVCC=1 mvn -o -B -q -pl java/core surefire:test@default-test -Djvm="$wrapper" \
    -Dtest="$selector" -Dsurefire.failIfNoSpecifiedTests=false -Drslora.jvm.flags="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector ${RSLORA_NEON_JVM_FLAGS:-} -Drslora.test.expectVectorBits=$bits -Drslora.test.allocationBudgetSeconds=${RSLORA_NEON_BUDGET:-900}"
echo "neon-check: passed: ${tests[*]} on an emulated $cpu ($(basename "$jdk")${RSLORA_NEON_JVM_FLAGS:+, $RSLORA_NEON_JVM_FLAGS}, $bits-bit tiles)"
