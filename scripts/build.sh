#!/usr/bin/env bash
# Configures and builds into ${BUILD_DIR:-build}. CUDA is used when the toolkit is found
# (sm_90a by default; set OB_CUDA_ARCHS="90a;100a" for more). Extra CMake flags: $OB_CMAKE_FLAGS.
# Only some targets: OB_BUILD_TARGETS="overlap-bench".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$root/build}
jobs=${OB_JOBS:-$(nproc)}
flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
[ -n "${OB_CUDA_ARCHS:-}" ] && flags+=("-DCMAKE_CUDA_ARCHITECTURES=${OB_CUDA_ARCHS}")
# shellcheck disable=SC2206
[ -n "${OB_CMAKE_FLAGS:-}" ] && flags+=(${OB_CMAKE_FLAGS})
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" "${flags[@]}" >"$build.configure.log" 2>&1 || {
    cat "$build.configure.log" >&2; exit 1; }
fi
# OB_BUILD_TARGETS (space-separated) builds only those: scripts/run.sh asks for the CLI alone
# (with the CUDA plugin it depends on), so a fresh clone answers before the tests are built.
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" ${OB_BUILD_TARGETS:+--target $OB_BUILD_TARGETS}
