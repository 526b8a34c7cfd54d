#!/usr/bin/env bash
# Installs the Debian packages overlap-bench needs. Does nothing when they are all present.
# The CUDA toolkit (with cuBLASLt and NCCL) is optional and not installed here: without it the
# build has the sim backend only.
set -euo pipefail

packages=(
  cmake ninja-build g++ ccache pkg-config
  nlohmann-json3-dev libcli11-dev zlib1g-dev libsqlite3-dev
  libgtest-dev googletest libbenchmark-dev
  openmpi-bin libopenmpi-dev
  clang libclang-rt-dev
  python3 python3-matplotlib python3-jsonschema
)

# lizard (function length and complexity limits, tests/e2e/test_code_limits.py) is on PyPI only.
if ! python3 -c "import lizard" 2>/dev/null; then
  python3 -m pip install --quiet lizard 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages lizard 2>/dev/null ||
    echo "setup.sh: could not install lizard; the code-limits test will be skipped" >&2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup.sh: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup.sh: done" >&2
