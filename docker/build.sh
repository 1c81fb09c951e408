#!/usr/bin/env bash
# docker/build.sh - builds wf (CMake, Release) and installs what a deployment runs into PREFIX:
#
#   PREFIX/bin/wf, wf-worker, drafts-service     the programs (RPATH $ORIGIN/../lib)
#   PREFIX/lib/libwf.so*, libwf-worker.so*       the libraries (+ headers, pkg-config files)
#   PREFIX/lib/wf/workflows/*.so                 the example workflow modules (publish-draft)
#
# The one build recipe of the image: docker/Dockerfile runs `docker/build.sh /opt/wf` in its build
# stage, and scripts/test runs it into a temporary prefix on the CI machine and checks that the
# installed programs start, so the image's build cannot rot unnoticed where no Docker engine runs.
#
# Usage: docker/build.sh PREFIX [BUILD_DIR]      (BUILD_DIR default: build-docker in the repo)
# Needs the -dev packages of scripts/deps (the Dockerfile's build stage installs them).
# WF_JOBS sets the build's parallelism (default: the number of cores).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    [ $# -ge 1 ] && exit 0
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=$1
BUILD=${2:-$ROOT/build-docker}
JOBS=${WF_JOBS:-$(nproc 2>/dev/null || echo 2)}
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)

# Release, no tests or benchmarks. Binaries are linked with their install RPATH from the start
# ($ORIGIN/../lib), so the copies made below find the libraries wherever PREFIX is.
cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" \
    -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
    '-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib' \
    -DWF_WERROR=OFF -DWF_TESTS=OFF -DWF_BENCH=OFF -DWF_EXAMPLES=ON >/dev/null
cmake --build "$BUILD" -j"$JOBS"
cmake --install "$BUILD" >/dev/null

# The example service and workflow modules are not part of `cmake --install` (they are examples,
# not the library); a deployment of the demo needs them.
install -m 755 "$BUILD/examples/drafts-service" "$PREFIX/bin/drafts-service"
mkdir -p "$PREFIX/lib/wf/workflows"
install -m 644 "$BUILD"/examples/workflows/*.so "$PREFIX/lib/wf/workflows/"

# The installed programs must start from PREFIX alone.
"$PREFIX/bin/wf" --version >/dev/null
"$PREFIX/bin/wf-worker" --help >/dev/null
echo "build.sh: installed wf $("$PREFIX/bin/wf" --version | awk '{print $2}') into $PREFIX"
