#!/usr/bin/env bash
# The main job: set up if needed, build, then run the default scenario (GPT-3 175B TP4 layer
# sweep) on the best backend available. Prints the table; writes JSON, CSV and PNGs under
# results/latest/. Extra arguments go to `overlap-bench run` (e.g. --set comm_ctas=8,16).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" >/dev/null
out="$root/results/latest"
mkdir -p "$out"
"$root/build/overlap-bench" run --backend auto --json "$out/result.json" --csv "$out/result.csv" \
  --trace "$out/trace.json" "$@"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
"$py" "$root/scripts/plot.py" "$out/result.json" --out "$out"
echo "wrote $out/result.json, result.csv, trace.json and PNGs" >&2
