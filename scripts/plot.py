#!/usr/bin/python3
"""Plots an overlap-bench result document (schema overlap-bench/result/v1).

Usage: plot.py RESULT.json --out DIR

Writes the pictures `overlap-bench report` puts in its report (scripts/report_plots.py draws
both), without the report: e2e_by_method.png (end-to-end time per method, stacked compute +
chunking cost + exposed), heatmap_<method>.png (exposed comm over CDMC x SM margin, a panel per
launch order), diagnosis.png (each case's exposed time by cause) and timeline_best/worst.png.
Titles say SIMULATED when the document is simulated, so a model plot is never shown as a
measurement. Exit 2 when RESULT.json is not a v1 result (the message names the file), 3 when
matplotlib is missing (Debian: apt-get install python3-matplotlib; run with /usr/bin/python3).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report_plots  # noqa: E402  (beside this script)

SCHEMA = "overlap-bench/result/v1"


def fail(code, message):
    print(f"plot.py: {message}", file=sys.stderr)
    sys.exit(code)


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
    if doc.get("schema") != SCHEMA:
        fail(2, f"{path}: schema: expected \"{SCHEMA}\", got {json.dumps(doc.get('schema'))} "
                "(not an overlap-bench result v1 document)")
    if not isinstance(doc.get("simulated"), bool):
        fail(2, f"{path}: simulated: expected true or false")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        fail(2, f"{path}: cases: expected an array")
    for i, c in enumerate(cases):
        where = f"{path}: cases[{i}]"
        if not isinstance(c, dict):
            fail(2, f"{where}: expected an object")
        if not isinstance(c.get("id"), str):
            fail(2, f"{where}.id: expected a string")
        if not isinstance(c.get("params"), dict):
            fail(2, f"{where}.params: expected an object")
        v = c.get("exposed_comm_ms")
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            fail(2, f"{where}.exposed_comm_ms: expected a number")
    return doc


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", metavar="RESULT.json")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs")
    args = parser.parse_args(argv)  # usage errors exit 2, as the binary's do

    doc = load_result(args.result)
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display on CI and GPU nodes
        import matplotlib.pyplot as plt
        import numpy as np
    except ImportError:
        fail(3, "matplotlib not found: apt-get install python3-matplotlib and run with "
                "/usr/bin/python3")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        fail(3, f"{args.out}: cannot create folder: {e.strerror}")

    written = []
    report_plots.e2e_by_method(doc, plt, args.out, written)
    report_plots.heatmaps(doc, plt, np, args.out, written)
    report_plots.diagnosis_bars(doc, plt, args.out, written)
    report_plots.timelines(doc, plt, args.out, written)
    if not written:
        print(f"plot.py: {args.result}: nothing to plot: no case has params cdmc and sm_margin, "
              "method, a diagnosis or a timeline", file=sys.stderr)
    for _, name, _ in written:
        print(os.path.join(args.out, name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
