#!/usr/bin/env bash
# Set up if needed, build everything (CUDA code too when the toolkit is present), run every test;
# then the device script's dry run (scripts/device_validate.sh --dry-run); then the sanitizer build with its tests and the fuzz targets (scripts/sanitize.sh; skip it with
# OB_SKIP_SANITIZE=1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
(cd "${BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "${OB_JOBS:-$(nproc)}" -LE benchmark)
# The GPU lease path without a GPU (README "On a GPU"): builds the MPI-free pack when the CUDA
# toolkit is there, runs every step that needs no GPU, checks the archive; skip with
# OB_SKIP_DRY_RUN=1.
if [ "${OB_SKIP_DRY_RUN:-0}" != 1 ]; then
  start=$SECONDS
  "$root/scripts/device_validate.sh" --dry-run >"${BUILD_DIR:-$root/build}/device_dry_run.log" 2>&1 || {
    tail -n 60 "${BUILD_DIR:-$root/build}/device_dry_run.log" >&2
    echo "test.sh: scripts/device_validate.sh --dry-run failed" >&2
    exit 1
  }
  grep -E '^(Verdict|device_validate)' "${BUILD_DIR:-$root/build}/device_dry_run.log" >&2 || true
  echo "test.sh: device dry run took $((SECONDS - start)) s" >&2
fi
if [ "${OB_SKIP_SANITIZE:-0}" != 1 ]; then
  start=$SECONDS
  "$root/scripts/sanitize.sh"
  echo "test.sh: sanitizer build, tests and fuzzing took $((SECONDS - start)) s" >&2
fi
