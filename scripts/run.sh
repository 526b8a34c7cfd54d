#!/usr/bin/env bash
# The main job: set up if needed, build, then run the default scenario (GPT-3 175B TP4 layer
# sweep) on the best backend available. Prints the table (with its "why" column and the
# recommendation); writes results/latest/{result.json,result.csv,trace.json,result.gbench.json}
# and the report (results/latest/report.md, report.html and their PNGs), keeps a copy of the
# result in results/history/<date>_<backend>_<gpu>.json (one per day and backend) and draws the
# trend across that history (a step scenario gets its report, without history). Extra arguments
# go to `overlap-bench run` (e.g. --set comm_ctas=8,16).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
# Only what the main job runs: the CLI (and its CUDA plugin when the toolkit is there); the
# tests and benchmarks are scripts/test.sh's.
OB_BUILD_TARGETS=overlap-bench "$root/scripts/build.sh" >/dev/null
out="$root/results/latest"
mkdir -p "$out" "$root/results/history"
"$root/build/overlap-bench" run --backend auto --json "$out/result.json" --csv "$out/result.csv" \
  --trace "$out/trace.json" "$@"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
# A step scenario (run --config step_...) writes a step/v1 document: it gets its report and Google
# Benchmark JSON, but no history or trend (those hold layer and pair results).
read -r schema name < <("$py" -c 'import json, sys
d = json.load(open(sys.argv[1]))
env = d["env"]
print(d["schema"], env["backend"] + "_" + (env.get("gpu") or {}).get("config", "gpu"))' \
  "$out/result.json")
cd "$root"
if [ "$schema" != "overlap-bench/result/v1" ]; then
  build/overlap-bench report results/latest/result.json --out results/latest --html \
    --gbench-json results/latest/result.gbench.json >/dev/null
  echo "wrote results/latest/report.md (and report.html, PNGs), result.json ($schema)," \
    "result.gbench.json, trace.json; no history for a step" >&2
  exit 0
fi
saved="results/history/$(date +%F)_$name.json"
cp "$out/result.json" "$root/$saved"
# Relative to the source tree (the cd above), so the report names its files as a reader of the
# repository would.
build/overlap-bench report results/latest/result.json --out results/latest --html --trend \
  --history results/history --gbench-json results/latest/result.gbench.json >/dev/null
echo "wrote results/latest/report.md (and report.html, PNGs), result.json, result.csv," \
  "result.gbench.json, trace.json; history: $saved" >&2
