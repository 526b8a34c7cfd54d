#!/usr/bin/env bash
# The sanitizer and fuzzing step of CI (README: sanitizers, fuzzing). A second, lean build into
# ${SAN_BUILD_DIR:-build-san}: core, sim, the CLI and the tests with OB_SANITIZE=address,undefined,
# no CUDA, no MPI, no benchmarks; with clang also the libFuzzer targets (OB_FUZZ). Then every
# unit and end-to-end test, the replay of each fuzz corpus, and ${OB_FUZZ_SECONDS:-20} s of fuzzing
# per target. A crash leaves its input in build-san/tests/fuzz/crashes/: copy it into
# tests/fuzz/<target>/ as a regression input once fixed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${SAN_BUILD_DIR:-$root/build-san}
jobs=${OB_JOBS:-$(nproc)}
flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -g1"
       -DOB_SANITIZE=address,undefined -DOB_WITH_CUDA=OFF -DOB_WITH_MPI=OFF -DOB_WITH_BENCH=OFF
       "-DOB_FUZZ_SECONDS=${OB_FUZZ_SECONDS:-20}")
if command -v clang++ >/dev/null; then
  flags+=(-DCMAKE_CXX_COMPILER=clang++ -DOB_FUZZ=ON)
else
  echo "sanitize.sh: no clang++; sanitizer build with the default compiler, no fuzzing" >&2
fi
if [ ! -f "$build/build.ninja" ]; then
  mkdir -p "$build"
  cmake -S "$root" -B "$build" "${flags[@]}" >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j "$jobs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Tests that measure memory skip under AddressSanitizer, whose shadow memory inflates the RSS.
export OB_SANITIZED=1
cd "$build"
# Left out: the line-count and complexity limits (source checks, which the main build's run
# covers) and the simulator's speed floor (sanitizers slow it several times).
ctest --output-on-failure -j "$jobs" -LE benchmark \
  -E '^(e2e\.test_code_limits|SimExecutor\.LayerCasesPerSecond)$'
