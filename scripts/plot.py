#!/usr/bin/python3
"""Plots an overlap-bench result or step document (overlap-bench/result/v1, overlap-bench/step/v1).

Usage: plot.py RESULT.json --out DIR

Writes the pictures `overlap-bench report` puts in its report (scripts/report_plots.py draws
both), without the report. For a result: e2e_by_method.png (end-to-end time per method, stacked
compute + chunking cost + exposed), heatmap_<method>.png (exposed comm over CDMC x SM margin, a
panel per launch order), diagnosis.png (each case's exposed time by cause) and
timeline_best/worst.png. For a step document: breakdown.png, diagnosis.png and throughput.png
(scripts/step_plots.py). Titles say SIMULATED when the document is simulated, so a model plot is
never shown as a measurement. Exit 2 when RESULT.json is neither document (the message names the
file), 3 when matplotlib is missing (Debian: apt-get install python3-matplotlib; run with
/usr/bin/python3).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_common  # noqa: E402  (beside this script)
import report_plots  # noqa: E402

# The number each kind of case must carry: what the pictures read.
EXPOSED = {plot_common.RESULT_SCHEMA: "exposed_comm_ms", plot_common.STEP_SCHEMA: "exposed_ms"}


def fail(code, message):
    print(f"plot.py: {message}", file=sys.stderr)
    sys.exit(code)


def check_case(c, where, exposed_key):
    if not isinstance(c, dict):
        fail(2, f"{where}: expected an object")
    if not isinstance(c.get("id"), str):
        fail(2, f"{where}.id: expected a string")
    if not isinstance(c.get("params"), dict):
        fail(2, f"{where}.params: expected an object")
    v = c.get(exposed_key)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        fail(2, f"{where}.{exposed_key}: expected a number")


def load_result(path):
    """Reads `path` and checks the fields this script uses; exit 2 naming file and JSON path."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        fail(2, f"{path}: cannot open file: {e.strerror}")
    except json.JSONDecodeError as e:
        fail(2, f"{path}: invalid JSON: {e}")
    if not isinstance(doc, dict):
        fail(2, f"{path}: (top level): expected an object (not an overlap-bench result v1 document)")
    if doc.get("schema") not in EXPOSED:
        fail(2, f"{path}: schema: expected \"{plot_common.RESULT_SCHEMA}\" or "
                f"\"{plot_common.STEP_SCHEMA}\", got {json.dumps(doc.get('schema'))} "
                "(not an overlap-bench result v1 document)")
    if not isinstance(doc.get("simulated"), bool):
        fail(2, f"{path}: simulated: expected true or false")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        fail(2, f"{path}: cases: expected an array")
    for i, c in enumerate(cases):
        check_case(c, f"{path}: cases[{i}]", EXPOSED[doc["schema"]])
    return doc


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", metavar="RESULT.json")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
    args = parser.parse_args(argv)  # usage errors exit 2, as the binary's do

    doc = load_result(args.result)
    plt, np = plot_common.import_pyplot()
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        fail(3, f"{args.out}: cannot create folder: {e.strerror}")

    written = report_plots.draw(doc, plt, np, args.out)
    if not written:
        print(f"plot.py: {args.result}: nothing to plot: no case has params cdmc and sm_margin, "
              "method, a diagnosis or a timeline", file=sys.stderr)
    for _, name, _ in written:
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
