#!/usr/bin/env bash
# Set up if needed, build everything (CUDA code too when the toolkit is present), run every test;
# then the sanitizer build with its tests and the fuzz targets (scripts/sanitize.sh; skip it with
# OB_SKIP_SANITIZE=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "${OB_JOBS:-$(nproc)}" -LE benchmark)
if [ "${OB_SKIP_SANITIZE:-0}" != 1 ]; then
  start=$SECONDS
  "$root/scripts/sanitize.sh"
  echo "test.sh: sanitizer build, tests and fuzzing took $((SECONDS - start)) s" >&2
fi
