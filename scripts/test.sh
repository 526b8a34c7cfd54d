#!/usr/bin/env bash
# Set up if needed, build everything (CUDA code too when the toolkit is present), run every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${OB_JOBS:-$(nproc)}"
